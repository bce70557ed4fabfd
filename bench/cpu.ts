/**
 * `npm run bench:cpu`: our CPU attention against onnxruntime-node, TensorFlow.js (WASM), a naive
 * TypeScript implementation and the machine's WebAssembly SIMD ceiling, on issue 2's shapes.
 *
 * For each shape: inputs are seeded N(0, 1) (never zeros); our output is validated against a
 * float64 reference on a subset of rows BEFORE anything is timed (a wrong kernel stops the bench);
 * each peer's output is checked the same way (a peer with a wrong output is reported, not timed).
 * Then: our kernel with inputs already in the kernel heap (cpuTensor: nothing copied), in two
 * builds (SIMD128 here; relaxed-SIMD in a child process started with
 * --experimental-wasm-relaxed-simd, interleaved shape by shape), our kernel from plain
 * Float32Array tensors (copies included), ORT's standard Attention op and its fastest alternative
 * graph, tfjs-wasm's faster formulation, and the naive implementation.
 *
 * GFLOP/s = 4·B·H·Sq·Sk·d / time (halved for causal when Sq = Sk), time = median of N timed runs.
 */
import {
  type Mask, Tensor, attention, configureCpu, cpuRuntime, cpuTensor, lastKernelStats, randn, type KernelStats,
} from '../src/index.js';
import type { ReadAheadMode } from '../src/kernels/cpu/read-ahead.js';
import { intOption, parseArgs } from './lib/args.js';
import { type QKV, type ReferenceRows, type RowCheck, ValidationError, bhsdAt, bshdAt, checkRows, describeCheck, maxAbsDiff, referenceRows } from './lib/check.js';
import { type ChildServer, forkServer, nodeAcceptsFlag, serveRequests } from './lib/child.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { writeJson, writeResults } from './lib/results.js';
import { type AttentionShape, EXTRA_SHAPES, ISSUE2_SHAPES, attentionFlops, describeShape, kvBytes, shapeMask, visibleFraction } from './lib/shapes.js';
import { type Column, fmt, fmtRatio, formatTable, markdownTable } from './lib/table.js';
import { type Timing, type TimingOptions, gbPerSecond, gflops, summarize, timeIt } from './lib/timing.js';
import { type CeilingResult, measureCeiling } from './lib/wasm-ceiling.js';
import { naiveAttention, naiveTimedRows } from './peers/naive.js';
import { ORT_VERSION, type PeerCandidate, type PeerRun, ortAlternatives, ortAttentionOp } from './peers/ort.js';
import { type TfjsInfo, initTfjs, tfjsCandidates } from './peers/tfjs.js';

const USAGE = `npm run bench:cpu -- [options]
  (= node scripts/run-bench.mjs cpu [options]; node flags go before "cpu")`;

const SPEC = {
  'shapes=': 'comma-separated shape names (default: all of issue 2; decode-kv100 only when named)',
  'runs=': 'target timed runs per measurement: the N of "median of N" (default 10)',
  'min-timed-ms=': 'past --runs, keep timing a short call until its timed runs reach this many ms, at most 500 runs (default 300)',
  'min-runs=': 'minimum timed runs, whatever the budget (default 3)',
  'budget-ms=': 'stop adding timed runs once they took this long, per measurement (default 3000)',
  'slow-ms=': 'a measurement whose first warm-up run exceeds this takes 1 timed run, marked * (default 8000)',
  'warm-ms=': 'warm up each measurement with back-to-back calls for at least this long (default 300)',
  'threads=': 'our kernel threads (default: all cores, at most 16)',
  'decode-layers=': 'decode shapes are also timed over N layers\' K/V in turn, ours and ORT\'s fastest graph (a model\'s decode step; default 32, 0 skips)',
  'read-ahead=': "our decode's read-ahead: auto (default: timed both ways on the bench's own calls), on, off (CpuConfig.decodeReadAhead)",
  'ort-threads=': 'onnxruntime intra-op threads (default: the same as ours)',
  'skip=': 'comma-separated: relaxed, copy, ort, ort-alt, tfjs, naive, ceiling',
  quick: 'small odd shapes, few runs: runs every path and check end to end in seconds (timings meaningless)',
  markdown: 'also print the tables as Markdown (for BENCHMARKS.md)',
  'out=': 'JSON path (default bench/results/cpu.json; with --quick bench/results/cpu-quick.tmp.json)',
  'from-json=': 'measure nothing: print the report of earlier JSON files (comma-separated; shapes concatenated, e.g. a run split in two)',
  'child=': '(internal) "ours": serve our-kernel measurements over IPC (the relaxed-SIMD child)',
};

/** Small odd shapes that exercise every path (--quick). */
const QUICK_SHAPES: AttentionShape[] = [
  { name: 'quick-mha', batch: 2, numHeads: 3, numKvHeads: 3, seqLenQ: 97, seqLenK: 97, headDim: 40, headDimV: 40, causal: false, note: 'quick check' },
  { name: 'quick-gqa-causal', batch: 1, numHeads: 8, numKvHeads: 2, seqLenQ: 129, seqLenK: 129, headDim: 64, headDimV: 64, causal: true, note: 'quick check' },
  { name: 'quick-decode', batch: 1, numHeads: 8, numKvHeads: 2, seqLenQ: 1, seqLenK: 301, headDim: 64, headDimV: 64, causal: false, note: 'quick check' },
  { name: 'quick-xattn', batch: 1, numHeads: 4, numKvHeads: 4, seqLenQ: 17, seqLenK: 50, headDim: 24, headDimV: 24, causal: false, note: 'quick check' },
  { name: 'quick-blocksparse', batch: 1, numHeads: 2, numKvHeads: 2, seqLenQ: 320, seqLenK: 320, headDim: 32, headDimV: 32, causal: false, blockSparse: { sparsity: 0.6, blockSize: 64, seed: 3 }, note: 'quick check' },
];

// ------------------------------------------------------------------------------------------------
// Inputs and our kernel

function inputs(s: AttentionShape): QKV {
  // Seeded per shape, so the parent and the relaxed-SIMD child see identical inputs.
  const q = randn([s.batch, s.seqLenQ, s.numHeads, s.headDim], 11).data as Float32Array;
  const k = randn([s.batch, s.seqLenK, s.numKvHeads, s.headDim], 12).data as Float32Array;
  const v = randn([s.batch, s.seqLenK, s.numKvHeads, s.headDimV], 13).data as Float32Array;
  return { q, k, v };
}

interface OursMeasurement {
  variant: string;
  threads: number;
  /** 'heap': inputs and output allocated in the kernel heap (no copies); 'copy': plain Float32Array tensors. */
  placement: 'heap' | 'copy';
  masked: boolean;
  check: RowCheck;
  timing: Timing;
  gflops: number;
  /** Visible-pair GFLOP/s for masked shapes (dense-equivalent FLOPs × visible fraction / time). */
  visibleGflops?: number;
  kvGBs?: number;
  stats: KernelStats | null;
  /** Decode over ≥ 8 MiB of f32 K/V, read-ahead 'auto': the tuner's median ms per KV tile each way after the timed runs. */
  readAhead?: { msPerTile: { off: number; on: number } };
}

/** The read-ahead tuner's state after our last call, where it timed that call's class (CpuConfig.decodeReadAhead). */
function readAheadAfterLastCall(): OursMeasurement['readAhead'] {
  const tuned = lastKernelStats?.readAheadMsPerTile;
  return tuned ? { msPerTile: tuned } : undefined;
}

async function measureOurs(s: AttentionShape, x: QKV, mask: Mask | null, rr: ReferenceRows, placement: 'heap' | 'copy', timing: TimingOptions, flops: number, visible: number, keepOutput?: (out: Float32Array) => void): Promise<OursMeasurement> {
  const rt = await cpuRuntime();
  const qShape = [s.batch, s.seqLenQ, s.numHeads, s.headDim], kShape = [s.batch, s.seqLenK, s.numKvHeads, s.headDim];
  const vShape = [s.batch, s.seqLenK, s.numKvHeads, s.headDimV], oShape = [s.batch, s.seqLenQ, s.numHeads, s.headDimV];
  const heapTensors: Tensor[] = [];
  try {
    let q: Tensor, k: Tensor, v: Tensor, out: Tensor | undefined;
    if (placement === 'heap') {
      q = await cpuTensor(qShape); k = await cpuTensor(kShape); v = await cpuTensor(vShape); out = await cpuTensor(oShape);
      heapTensors.push(q, k, v, out);
      (q.data as Float32Array).set(x.q); (k.data as Float32Array).set(x.k); (v.data as Float32Array).set(x.v);
      (out.data as Float32Array).fill(NaN); // poisoned: a row the kernel skips cannot pass the check
    } else {
      q = new Tensor(x.q, qShape); k = new Tensor(x.k, kShape); v = new Tensor(x.v, vShape);
    }
    let last: Tensor | null = null;
    const run = async () => { last = (await attention(q, k, v, { mask, backend: 'wasm', ...(out ? { out } : {}) })).out; };
    const t0 = performance.now();
    await run();
    const firstRunMs = performance.now() - t0;
    const stats = lastKernelStats ? { ...lastKernelStats } : null;
    const check = checkRows(s, rr, bshdAt(s, last!.data as Float32Array));
    if (!check.ok) throw new ValidationError(`${s.name}: our ${rt.variant} kernel (${placement}${mask ? ', masked' : ''}) is WRONG: ${describeCheck(check)}`);
    keepOutput?.((last!.data as Float32Array).slice());
    const t = await timeIt(run, { ...timing, firstRunMs });
    const readAhead = readAheadAfterLastCall();
    return {
      variant: rt.variant, threads: rt.threads, placement, masked: !!mask, check, timing: t, gflops: gflops(flops, t.medianMs),
      ...(mask && s.blockSparse ? { visibleGflops: gflops(flops * visible, t.medianMs) } : {}),
      ...(s.seqLenQ <= 16 ? { kvGBs: gbPerSecond(kvBytes(s), t.medianMs) } : {}),
      stats,
      ...(readAhead ? { readAhead } : {}),
    };
  } finally {
    for (const t of heapTensors) rt.heap.freeTensor(t);
  }
}

/** Our measurements of one shape: the masked run, plus the dense run of a block-sparse shape. */
interface OursShape { main: OursMeasurement; dense?: OursMeasurement }

async function measureOursShape(s: AttentionShape, timing: TimingOptions): Promise<OursShape> {
  const x = inputs(s), mask = shapeMask(s), flops = attentionFlops(s);
  const visible = s.blockSparse ? visibleFraction(s, mask) : 1;
  const main = await measureOurs(s, x, mask, referenceRows(s, x, mask), 'heap', timing, flops, visible);
  if (!s.blockSparse) return { main };
  const dense = await measureOurs(s, x, null, referenceRows(s, x, null), 'heap', timing, flops, 1);
  return { main, dense };
}

/**
 * Decode over `layers` layers' K/V in turn (distinct copies of the shape's K/V), as a model's decode step reads
 * them: each layer's K/V once, the other layers' reads evicting them from the last-level cache before their next
 * use. The benchmark's usual regime repeats one layer, whose K/V stay cached where they fit.
 */
interface LayersMeasurement {
  name: string;
  layers: number;
  /** Per call (one layer): the timed runs are of all layers, divided by `layers`. */
  timing: Timing;
  kvGBs: number;
  readAhead?: OursMeasurement['readAhead'];
}

function perLayer(t: Timing, layers: number): Timing {
  return summarize(t.samplesMs.map((x) => x / layers), t.warmup);
}

async function measureOursLayers(s: AttentionShape, layers: number, timing: TimingOptions): Promise<LayersMeasurement> {
  const rt = await cpuRuntime();
  const x = inputs(s), mask = shapeMask(s), rr = referenceRows(s, x, mask);
  const kShape = [s.batch, s.seqLenK, s.numKvHeads, s.headDim], vShape = [s.batch, s.seqLenK, s.numKvHeads, s.headDimV];
  const heapTensors: Tensor[] = [];
  try {
    const q = await cpuTensor([s.batch, s.seqLenQ, s.numHeads, s.headDim]), out = await cpuTensor([s.batch, s.seqLenQ, s.numHeads, s.headDimV]);
    heapTensors.push(q, out);
    (q.data as Float32Array).set(x.q);
    const kv: [Tensor, Tensor][] = [];
    for (let l = 0; l < layers; l++) {
      const k = await cpuTensor(kShape), v = await cpuTensor(vShape);
      heapTensors.push(k, v);
      (k.data as Float32Array).set(x.k); (v.data as Float32Array).set(x.v);
      kv.push([k, v]);
    }
    const run = async () => { for (const [k, v] of kv) await attention(q, k, v, { mask, backend: 'wasm', out }); };
    (out.data as Float32Array).fill(NaN);
    const t0 = performance.now();
    await run();
    const firstRunMs = performance.now() - t0;
    const check = checkRows(s, rr, bshdAt(s, out.data as Float32Array));
    if (!check.ok) throw new ValidationError(`${s.name} over ${layers} layers: our ${rt.variant} kernel is WRONG: ${describeCheck(check)}`);
    const t = perLayer(await timeIt(run, { ...timing, firstRunMs }), layers);
    const readAhead = readAheadAfterLastCall();
    return {
      name: `ours ${rt.variant}`, layers, timing: t, kvGBs: gbPerSecond(kvBytes(s), t.medianMs),
      ...(readAhead ? { readAhead } : {}),
    };
  } finally {
    for (const t of heapTensors) rt.heap.freeTensor(t);
  }
}

/** A peer's graph over `layers` layers' K/V in turn: one session (a model's one graph), each layer its own copy of K/V. */
async function measurePeerLayers(s: AttentionShape, c: PeerCandidate, layers: number, timing: TimingOptions): Promise<LayersMeasurement | { name: string; error: string }> {
  const x = inputs(s), rr = referenceRows(s, x, shapeMask(s));
  let p: PeerRun | null = null;
  try {
    p = await c.build(Array.from({ length: layers }, () => ({ q: x.q, k: x.k.slice(), v: x.v.slice() })));
    const run = () => p!.run();
    const t0 = performance.now();
    await run();
    const firstRunMs = performance.now() - t0;
    const o = p.output();
    const check = checkRows(s, rr, (o.layout === 'bshd' ? bshdAt : bhsdAt)(s, o.data), PEER_SLACK);
    if (!check.ok) return { name: c.name, error: `wrong output: ${describeCheck(check)}` };
    const t = perLayer(await timeIt(run, { ...timing, firstRunMs }), layers);
    return { name: c.name, layers, timing: t, kvGBs: gbPerSecond(kvBytes(s), t.medianMs) };
  } catch (e) {
    return { name: c.name, error: (e as Error).message.split('\n')[0]! };
  } finally {
    await p?.dispose();
  }
}

// ------------------------------------------------------------------------------------------------
// Peers

interface PeerMeasurement {
  name: string;
  description: string;
  status: 'ok' | 'wrong-output' | 'failed' | 'skipped';
  error?: string;
  check?: RowCheck;
  /** Max |peer − ours| over the whole output. */
  maxDiffToOurs?: number;
  timing?: Timing;
  gflops?: number;
  kvGBs?: number;
}

function bshdFromLayout(s: AttentionShape, data: Float32Array, layout: 'bshd' | 'bhsd'): Float32Array {
  if (layout === 'bshd') return data;
  const { batch: B, seqLenQ: Sq, numHeads: H, headDimV: Dv } = s;
  const out = new Float32Array(data.length);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Sq; i++) {
    out.set(data.subarray(((b * H + h) * Sq + i) * Dv, ((b * H + h) * Sq + i + 1) * Dv), ((b * Sq + i) * H + h) * Dv);
  }
  return out;
}

// Peers are checked against the float64 rows with 50× our tolerance (they are other people's
// kernels with their own exp and summation order; the check is there to catch a wrong graph).
const PEER_SLACK = 50;

async function measurePeer(s: AttentionShape, c: PeerCandidate, rr: ReferenceRows, ours: Float32Array, timing: TimingOptions, flops: number): Promise<PeerMeasurement> {
  const base = { name: c.name, description: c.description };
  let p;
  try {
    p = await c.build();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0]!;
    return msg.startsWith('skipped: ') ? { ...base, status: 'skipped', error: msg.slice(9) } : { ...base, status: 'failed', error: msg };
  }
  try {
    const t0 = performance.now();
    await p.run();
    const firstRunMs = performance.now() - t0;
    const o = p.output();
    const check = checkRows(s, rr, (o.layout === 'bshd' ? bshdAt : bhsdAt)(s, o.data), PEER_SLACK);
    const maxDiffToOurs = maxAbsDiff(bshdFromLayout(s, o.data, o.layout), ours);
    if (!check.ok) return { ...base, status: 'wrong-output', check, maxDiffToOurs, error: describeCheck(check) };
    const t = await timeIt(() => p.run(), { ...timing, firstRunMs });
    return {
      ...base, status: 'ok', check, maxDiffToOurs, timing: t, gflops: gflops(flops, t.medianMs),
      ...(s.seqLenQ <= 16 ? { kvGBs: gbPerSecond(kvBytes(s), t.medianMs) } : {}),
    };
  } catch (e) {
    return { ...base, status: 'failed', error: (e as Error).message.split('\n')[0]! };
  } finally {
    await p.dispose();
  }
}

function fastest(ms: PeerMeasurement[]): PeerMeasurement | null {
  const ok = ms.filter((m) => m.status === 'ok');
  return ok.length ? ok.reduce((a, b) => (b.gflops! > a.gflops! ? b : a)) : null;
}

interface NaiveMeasurement {
  check: RowCheck;
  /** Query rows timed (every k-th, all batches and heads); the time is extrapolated to all rows. */
  rowsTimed: number;
  timing: Timing;
  /** Extrapolated full-shape time (ms). */
  fullMs: number;
  gflops: number;
}

async function measureNaive(s: AttentionShape, x: QKV, mask: Mask | null, rr: ReferenceRows, timing: TimingOptions, flops: number, maxFlops: number): Promise<NaiveMeasurement> {
  const out = new Float32Array(s.batch * s.seqLenQ * s.numHeads * s.headDimV).fill(NaN);
  const checkQueries = [...new Set(rr.rows.map((r) => r.i))];
  naiveAttention(s, x, mask, out, checkQueries);
  const check = checkRows(s, rr, bshdAt(s, out), PEER_SLACK);
  if (!check.ok) throw new ValidationError(`${s.name}: the naive TypeScript peer is WRONG: ${describeCheck(check)}`);
  const rows = naiveTimedRows(s, flops, maxFlops);
  const t = await timeIt(() => naiveAttention(s, x, mask, out, rows), { ...timing, warmup: 1, warmMs: 0 });
  const fullMs = t.medianMs * (s.seqLenQ / rows.length);
  return { check, rowsTimed: rows.length, timing: t, fullMs, gflops: gflops(flops, fullMs) };
}

// ------------------------------------------------------------------------------------------------
// Results

interface ShapeResult {
  shape: AttentionShape;
  description: string;
  flops: number;
  visibleFraction: number;
  kvBytes: number;
  ours: { simd128?: OursShape; relaxed?: OursShape | { error: string }; withCopy?: OursMeasurement };
  ort?: { standard: PeerMeasurement; alternatives: PeerMeasurement[]; fastest: string | null };
  tfjs?: { variants: PeerMeasurement[]; fastest: string | null };
  naive?: NaiveMeasurement;
  /** Decode shapes: the same call over several layers' K/V in turn (--decode-layers). */
  layers?: (LayersMeasurement | { name: string; error: string })[];
}

interface CpuBenchResults {
  shapes: ShapeResult[];
  /** The higher of the start and end measurements, per build. */
  ceiling: { simd128?: CeilingResult; relaxed?: CeilingResult | { error: string } };
  ceilingRuns: { when: string; build: string; result: CeilingResult }[];
  versions: { onnxruntimeNode: string; tfjs?: TfjsInfo; ourThreads: number; ortThreads: number };
  notes: string[];
}

const isOurs = (x: unknown): x is OursShape => !!x && typeof x === 'object' && 'main' in x;

/** The variant our ratios use: relaxed-SIMD where it ran (the default on Node ≥ 22 and browsers), else SIMD128. */
function headline(r: ShapeResult): OursMeasurement | undefined {
  return isOurs(r.ours.relaxed) && r.ours.relaxed.main.variant === 'relaxed-simd' ? r.ours.relaxed.main : r.ours.simd128?.main;
}

function ceilingFor(res: CpuBenchResults, variant: string | undefined): number | undefined {
  const c = variant === 'relaxed-simd' ? res.ceiling.relaxed : res.ceiling.simd128;
  return c && 'allThreads' in c ? c.allThreads.gflops : undefined;
}

/** GFLOP/s text, with * when fewer than 3 timed runs make up the median. */
const gCell = (g: number | undefined, t: Timing | undefined, digits = 1) => (g === undefined ? '' : `${fmt(g, digits)}${t && t.runs < 3 ? '*' : ''}`);
const okG = (m: PeerMeasurement | null | undefined) => (m && m.status === 'ok' ? m.gflops : undefined);
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
const peerCell = (m: PeerMeasurement | null | undefined) => (!m ? '' : m.status === 'ok' ? gCell(m.gflops, m.timing) : m.status);

function mainColumns(res: CpuBenchResults): Column<ShapeResult>[] {
  const ortStd = (r: ShapeResult) => r.ort?.standard;
  const ortBest = (r: ShapeResult) => (r.ort?.fastest ? [r.ort.standard, ...r.ort.alternatives].find((a) => a.name === r.ort!.fastest) : undefined);
  const tfBest = (r: ShapeResult) => (r.tfjs?.fastest ? r.tfjs.variants.find((a) => a.name === r.tfjs!.fastest) : undefined);
  return [
    { title: 'shape', cell: (r) => r.shape.name },
    { title: 'ours simd128', cell: (r) => gCell(r.ours.simd128?.main.gflops, r.ours.simd128?.main.timing) },
    { title: 'ours relaxed', cell: (r) => (isOurs(r.ours.relaxed) ? `${gCell(r.ours.relaxed.main.gflops, r.ours.relaxed.main.timing)}${r.ours.relaxed.main.variant === 'relaxed-simd' ? '' : ` (${r.ours.relaxed.main.variant})`}` : r.ours.relaxed ? 'failed' : '') },
    { title: 'ours +copy', cell: (r) => gCell(r.ours.withCopy?.gflops, r.ours.withCopy?.timing) },
    { title: 'ORT Attention', cell: (r) => peerCell(ortStd(r)) },
    { title: 'ORT fastest', cell: (r) => (ortBest(r) ? `${peerCell(ortBest(r))} ${ortBest(r)!.name}` : r.ort ? 'none ok' : '') },
    { title: 'tfjs-wasm', cell: (r) => (tfBest(r) ? `${peerCell(tfBest(r))} ${tfBest(r)!.name}` : r.tfjs ? 'none ok' : '') },
    { title: 'naive TS', cell: (r) => gCell(r.naive?.gflops, r.naive?.timing, 2) },
    { title: '÷ORT-Att', cell: (r) => fmtRatio(ratio(headline(r)?.gflops, okG(ortStd(r)))) },
    { title: '÷ORT-best', cell: (r) => fmtRatio(ratio(headline(r)?.gflops, okG(ortBest(r)))) },
    { title: '÷tfjs', cell: (r) => fmtRatio(ratio(headline(r)?.gflops, okG(tfBest(r)))) },
    { title: '÷naive', cell: (r) => fmtRatio(ratio(headline(r)?.gflops, r.naive?.gflops)) },
    // Block-sparse: the visible-pair rate (the dense-equivalent one can exceed the ceiling).
    { title: '% ceiling', cell: (r) => { const h = headline(r), c = ceilingFor(res, h?.variant), g = h?.visibleGflops ?? h?.gflops; return c && g ? `${((100 * g) / c).toFixed(0)}%` : ''; } },
  ];
}

function decodeRows(res: CpuBenchResults): { label: string; gbs?: number; ms?: number; readAhead?: string }[] {
  const rows: { label: string; gbs?: number; ms?: number; readAhead?: string }[] = [];
  for (const r of res.shapes.filter((x) => x.shape.seqLenQ <= 16)) {
    const add = (label: string, m: { kvGBs?: number; timing?: Timing; readAhead?: OursMeasurement['readAhead'] } | undefined) => {
      if (m?.kvGBs === undefined) return;
      const ra = m.readAhead && `${m.readAhead.msPerTile.on < m.readAhead.msPerTile.off ? 'on' : 'off'} (${fmt(1000 * m.readAhead.msPerTile.off, 1)} / ${fmt(1000 * m.readAhead.msPerTile.on, 1)})`;
      rows.push({ label: `${r.shape.name} ${label}`, gbs: m.kvGBs, ms: m.timing?.medianMs, ...(ra ? { readAhead: ra } : {}) });
    };
    add('ours simd128', r.ours.simd128?.main);
    if (isOurs(r.ours.relaxed)) add(`ours ${r.ours.relaxed.main.variant}`, r.ours.relaxed.main);
    add('ORT Attention', r.ort?.standard);
    for (const a of r.ort?.alternatives ?? []) add(`ORT ${a.name}`, a);
    for (const a of r.tfjs?.variants ?? []) add(`tfjs ${a.name}`, a);
    for (const m of r.layers ?? []) if (!('error' in m)) add(`${m.name}, ${m.layers} layers in turn`, m);
  }
  return rows;
}

interface BarRow { target: string; measured: string; met: boolean | null }

function barRows(res: CpuBenchResults): BarRow[] {
  const rows: BarRow[] = [];
  const by = (n: string) => res.shapes.find((r) => r.shape.name === n);
  for (const n of ['vitL14-336', 'siglip-384', 'qwen2vl-1024px']) {
    const r = by(n);
    const h = r && headline(r);
    if (!r || !h) continue;
    rows.push({ target: `${n} ≥ 70 GFLOP/s`, measured: `${fmt(h.gflops)} (${h.variant})`, met: h.gflops >= 70 });
    const tf = r.tfjs?.fastest ? r.tfjs.variants.find((v) => v.name === r.tfjs!.fastest) : undefined;
    if (tf?.gflops) rows.push({ target: `${n} ≥ 2.2× tfjs-wasm`, measured: fmtRatio(h.gflops / tf.gflops), met: h.gflops / tf.gflops >= 2.2 });
  }
  const pre = by('prefill-2k-gqa'), ph = pre && headline(pre);
  if (pre && ph && okG(pre.ort?.standard)) rows.push({ target: 'prefill-2k-gqa ≥ 1.0× ORT Attention op', measured: fmtRatio(ph.gflops / okG(pre.ort!.standard)!), met: ph.gflops >= okG(pre.ort!.standard)! });
  const dec = by('decode-kv4k'), dh = dec && headline(dec);
  if (dec && dh) {
    const best = dec.ort?.fastest ? [dec.ort.standard, ...dec.ort.alternatives].find((a) => a.name === dec.ort!.fastest) : undefined;
    const ortBest = okG(best) ?? 0;
    if (ortBest > 0) rows.push({ target: 'decode-kv4k ≥ 1.0× ORT fastest graph', measured: fmtRatio(dh.gflops / ortBest), met: dh.gflops >= ortBest });
    if (dh.kvGBs !== undefined) rows.push({ target: 'decode-kv4k ≥ 25 GB/s effective K/V read', measured: `${fmt(dh.kvGBs)} GB/s`, met: dh.kvGBs >= 25 });
  }
  const xa = by('arrcoc-xattn'), xh = xa && headline(xa);
  if (xa && xh && okG(xa.ort?.standard)) rows.push({ target: 'arrcoc-xattn ≥ 1.0× ORT Attention op', measured: fmtRatio(xh.gflops / okG(xa.ort!.standard)!), met: xh.gflops >= okG(xa.ort!.standard)! });
  const bs = by('blocksparse-4k');
  if (bs) {
    const v = isOurs(bs.ours.relaxed) && bs.ours.relaxed.main.variant === 'relaxed-simd' ? bs.ours.relaxed : bs.ours.simd128;
    if (v?.dense) {
      const sp = v.dense.timing.medianMs / v.main.timing.medianMs;
      rows.push({ target: 'blocksparse-4k (90%) ≥ 5× our dense speed', measured: `${fmtRatio(sp)} (${v.main.variant})`, met: sp >= 5 });
    }
  }
  return rows;
}

function printReport(res: CpuBenchResults, command: string, machineLine: string, markdown: boolean): string {
  const lines: string[] = [];
  const say = (s = '') => { lines.push(s); };
  const table = <R>(cols: Column<R>[], rows: R[]) => { say(formatTable(cols, rows)); if (markdown) { say(); say(markdownTable(cols, rows)); } };
  const n = res.shapes.flatMap((r) => [r.ours.simd128?.main.timing.runs ?? 0]).filter((x) => x > 0);
  say(`command: ${command}`);
  say(`machine: ${machineLine}`);
  say(`GFLOP/s = 4·B·H·Sq·Sk·d / median time (causal with Sq = Sk halved); median of N timed runs after warm-up (N = ${Math.min(...n)}–${Math.max(...n)} for ours; per-cell N in the JSON)`);
  say(`threads: ours ${res.versions.ourThreads}, onnxruntime-node ${res.versions.onnxruntimeNode} intra-op ${res.versions.ortThreads}, tfjs-wasm ${res.versions.tfjs ? `${res.versions.tfjs.version} ${res.versions.tfjs.threads} thread(s)${res.versions.tfjs.multithreadSupport ? '' : ' (no multithreaded build under Node)'}` : 'not run'}`);
  say();
  table(mainColumns(res), res.shapes);
  say();
  say('÷ columns: ours (relaxed-SIMD where it ran, else SIMD128; inputs in the kernel heap) over each peer. % ceiling: of the same build\'s all-thread fmaPeak.');
  say('ours +copy: SIMD128 from plain Float32Array tensors (inputs copied into the kernel heap, output copied out). naive TS: every k-th query row timed, extrapolated.');
  say('* fewer than 3 timed runs (the first warm-up run exceeded --slow-ms).');
  const shapesOk = res.shapes.filter((r) => r.shape.blockSparse && r.ours.simd128?.dense);
  if (shapesOk.length) {
    say();
    say('Block-sparse vs our dense kernel on the same shape (GFLOP/s on dense-equivalent FLOPs; speed-up = dense time / sparse time):');
    const rows = shapesOk.flatMap((r) => [r.ours.simd128, isOurs(r.ours.relaxed) ? r.ours.relaxed : undefined].filter((v): v is OursShape => !!v?.dense).map((v) => ({ r, v })));
    table<{ r: ShapeResult; v: OursShape }>([
      { title: 'shape', cell: (x) => x.r.shape.name },
      { title: 'variant', cell: (x) => x.v.main.variant },
      { title: 'visible', cell: (x) => `${(100 * x.r.visibleFraction).toFixed(1)}%` },
      { title: 'sparse ms', cell: (x) => fmt(x.v.main.timing.medianMs, 2) },
      { title: 'dense ms', cell: (x) => fmt(x.v.dense!.timing.medianMs, 2) },
      { title: 'sparse GFLOP/s (dense-eq.)', cell: (x) => fmt(x.v.main.gflops) },
      { title: 'sparse GFLOP/s (visible)', cell: (x) => fmt(x.v.main.visibleGflops) },
      { title: 'dense GFLOP/s', cell: (x) => fmt(x.v.dense!.gflops) },
      { title: 'speed-up', cell: (x) => fmtRatio(x.v.dense!.timing.medianMs / x.v.main.timing.medianMs) },
    ], rows);
  }
  const dec = decodeRows(res);
  if (dec.length) {
    say();
    say('Decode: effective K/V read bandwidth (K and V bytes once / median time); read-ahead: ours, the tuner\'s choice at the');
    say("end of the timed runs, from its median µs per KV tile without / with (CpuConfig.decodeReadAhead 'auto'; it re-times the other way every 32nd call):");
    table<{ label: string; gbs?: number; ms?: number; readAhead?: string }>([
      { title: 'run', cell: (x) => x.label },
      { title: 'median ms', cell: (x) => fmt(x.ms, 3) },
      { title: 'GB/s', cell: (x) => fmt(x.gbs) },
      { title: 'read-ahead', cell: (x) => x.readAhead ?? '' },
    ], dec);
  }
  say();
  say('WebAssembly SIMD ceiling (fmaPeak: 12 independent f32x4 multiply-adds per iteration, 96 flops; all threads = one instance per worker thread, released together; fastest of N runs, the higher of a measurement at the start and one at the end):');
  type CeilRow = { k: string; c: CeilingResult | null; e?: string };
  const ceilRows = (['simd128', 'relaxed'] as const).flatMap((k): CeilRow[] => { const c = res.ceiling[k]; return c && 'allThreads' in c ? [{ k, c }] : c ? [{ k, c: null, e: c.error }] : []; });
  table<CeilRow>([
    { title: 'build', cell: (x) => x.k },
    { title: '1 thread GFLOP/s', cell: (x) => (x.c ? fmt(x.c.singleThread.gflops) : x.e) },
    { title: 'threads', cell: (x) => x.c?.allThreads.threads },
    { title: 'all threads GFLOP/s', cell: (x) => fmt(x.c?.allThreads.gflops) },
    { title: 'scaling', cell: (x) => (x.c ? `${(100 * x.c.scaling).toFixed(0)}%` : '') },
  ], ceilRows);
  const bar = barRows(res);
  if (bar.length) {
    say();
    say('Issue 2 bar (indicative where the machine is shared):');
    table<BarRow>([
      { title: 'target', cell: (x) => x.target },
      { title: 'measured', cell: (x) => x.measured },
      { title: 'met', cell: (x) => (x.met === null ? '' : x.met ? 'yes' : 'NO') },
    ], bar);
  }
  const problems = res.shapes.flatMap((r) => [
    ...(r.ort ? [r.ort.standard, ...r.ort.alternatives] : []).filter((m) => m.status !== 'ok').map((m) => `${r.shape.name}: ORT ${m.name}: ${m.status}: ${m.error}`),
    ...(r.tfjs?.variants ?? []).filter((m) => m.status !== 'ok').map((m) => `${r.shape.name}: tfjs ${m.name}: ${m.status}: ${m.error}`),
    ...(r.ours.relaxed && !isOurs(r.ours.relaxed) ? [`${r.shape.name}: relaxed-SIMD child: ${r.ours.relaxed.error}`] : []),
  ]);
  if (problems.length) {
    say();
    say('Peers not timed:');
    for (const p of problems) say(`  ${p}`);
  }
  for (const note of res.notes) say(`note: ${note}`);
  const text = lines.join('\n');
  console.log(text);
  return text;
}

// ------------------------------------------------------------------------------------------------
// Main

function timingOptions(args: ReturnType<typeof parseArgs>, quick: boolean): TimingOptions {
  return {
    warmup: 2,
    // Every timed call (ours and each peer) first runs back to back for 0.3 s.
    warmMs: intOption(args, 'warm-ms', quick ? 50 : 300),
    runs: intOption(args, 'runs', quick ? 3 : 10),
    minTimedMs: intOption(args, 'min-timed-ms', quick ? 0 : 300),
    minRuns: intOption(args, 'min-runs', quick ? 2 : 3),
    budgetMs: intOption(args, 'budget-ms', quick ? 200 : 3000),
    slowMs: intOption(args, 'slow-ms', 8000),
  };
}

function selectShapes(args: ReturnType<typeof parseArgs>, quick: boolean): AttentionShape[] {
  const all = quick ? QUICK_SHAPES : [...ISSUE2_SHAPES];
  const want = args.values.get('shapes');
  if (!want) return all;
  const names = want.split(',').map((x) => x.trim()).filter(Boolean);
  const pool = [...ISSUE2_SHAPES, ...EXTRA_SHAPES, ...QUICK_SHAPES];
  return names.map((n) => {
    const s = pool.find((p) => p.name === n);
    if (!s) throw new Error(`bench: unknown shape ${n}; known: ${pool.map((p) => p.name).join(', ')}`);
    return s;
  });
}

function readAheadOption(args: ReturnType<typeof parseArgs>): ReadAheadMode {
  const v = args.values.get('read-ahead') ?? 'auto';
  if (v !== 'auto' && v !== 'on' && v !== 'off') throw new Error(`bench: --read-ahead=${v}: expected auto, on or off`);
  return v;
}

async function childMain(args: ReturnType<typeof parseArgs>): Promise<void> {
  const threads = args.values.has('threads') ? intOption(args, 'threads', 0) : undefined;
  await configureCpu({ relaxedSimd: true, ...(threads ? { threads } : {}), decodeReadAhead: readAheadOption(args) });
  const pool = [...ISSUE2_SHAPES, ...EXTRA_SHAPES, ...QUICK_SHAPES];
  serveRequests(async (m) => {
    if (m.type === 'ceiling') {
      const rt = await cpuRuntime();
      return measureCeiling(rt.pool.module, rt.threads);
    }
    if (m.type === 'variant') {
      const rt = await cpuRuntime();
      return { variant: rt.variant, threads: rt.threads };
    }
    if (m.type === 'measure') {
      const s = pool.find((p) => p.name === m.shape);
      if (!s) throw new Error(`unknown shape ${String(m.shape)}`);
      return measureOursShape(s, m.timing as TimingOptions);
    }
    if (m.type === 'layers') {
      const s = pool.find((p) => p.name === m.shape);
      if (!s) throw new Error(`unknown shape ${String(m.shape)}`);
      return measureOursLayers(s, m.layers as number, m.timing as TimingOptions);
    }
    throw new Error(`unknown request ${String(m.type)}`);
  });
}

interface CpuFile { command: string; machine: ReturnType<typeof machineInfo>; results: CpuBenchResults }

/** Prints the report of one or more earlier result files (a run split across invocations). */
async function reprint(paths: string[], markdown: boolean): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const files = paths.map((p) => JSON.parse(readFileSync(p.trim(), 'utf8')) as CpuFile);
  const res: CpuBenchResults = { shapes: [], ceiling: {}, ceilingRuns: [], versions: files[0]!.results.versions, notes: [] };
  for (const f of files) {
    res.shapes.push(...f.results.shapes);
    res.ceilingRuns.push(...f.results.ceilingRuns);
    for (const k of ['simd128', 'relaxed'] as const) {
      const c = f.results.ceiling[k], prev = res.ceiling[k];
      if (c && 'allThreads' in c && (!prev || !('allThreads' in prev) || c.allThreads.gflops > prev.allThreads.gflops)) res.ceiling[k] = c as CeilingResult;
      else if (c && !prev) res.ceiling[k] = c as CeilingResult;
    }
    for (const n of f.results.notes) if (!res.notes.includes(n)) res.notes.push(n);
  }
  const commands = files.map((f) => f.command).join('  +  ');
  const machines = [...new Set(files.map((f) => describeMachine(f.machine)))].join('\n         ');
  printReport(res, commands, machines, markdown);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), SPEC, USAGE);
  if (args.values.get('child') === 'ours') return childMain(args);
  if (args.values.has('from-json')) return reprint(args.values.get('from-json')!.split(','), args.flags.has('markdown'));
  const quick = args.flags.has('quick');
  const skip = new Set((args.values.get('skip') ?? '').split(',').map((x) => x.trim()).filter(Boolean));
  for (const k of skip) if (!['relaxed', 'copy', 'ort', 'ort-alt', 'tfjs', 'naive', 'ceiling'].includes(k)) throw new Error(`bench: --skip: unknown part ${k}`);
  const timing = timingOptions(args, quick);
  const shapes = selectShapes(args, quick);
  const command = `npm run bench:cpu${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}${process.execArgv.filter((f) => !f.startsWith('--enable-source-maps')).length ? ` (node ${process.execArgv.join(' ')})` : ''}`;
  const machine = machineInfo();
  const machineLine = describeMachine(machine);
  console.log(`bench:cpu — ${shapes.length} shape(s); ${machineLine}`);

  const threadsOpt = args.values.has('threads') ? intOption(args, 'threads', 0) : undefined;
  const decodeLayers = intOption(args, 'decode-layers', quick ? 3 : 32);
  await configureCpu({ relaxedSimd: false, ...(threadsOpt ? { threads: threadsOpt } : {}), decodeReadAhead: readAheadOption(args) });
  const rt = await cpuRuntime();
  const ortThreads = intOption(args, 'ort-threads', rt.threads);
  const notes: string[] = [];
  if (machine.loadAvg[0]! > 0.5) notes.push(`the 1-minute load average was ${machine.loadAvg[0]!.toFixed(2)} at the start: other processes share the CPU, so timings are indicative only`);
  const res: CpuBenchResults = { shapes: [], ceiling: {}, ceilingRuns: [], versions: { onnxruntimeNode: ORT_VERSION, ourThreads: rt.threads, ortThreads }, notes };

  // The relaxed-SIMD child: node < 22 needs the flag; newer nodes have relaxed SIMD on by default.
  let child: ChildServer | null = null;
  if (!skip.has('relaxed')) {
    const flag = '--experimental-wasm-relaxed-simd';
    const flags = nodeAcceptsFlag(flag) && !process.execArgv.includes(flag) ? [flag] : [];
    try {
      child = await forkServer(process.argv[1]!, ['--child=ours', ...(threadsOpt ? [`--threads=${threadsOpt}`] : []), `--read-ahead=${readAheadOption(args)}`], flags);
      const v = await child.request<{ variant: string; threads: number }>({ type: 'variant' });
      console.log(`relaxed-SIMD child (node ${flags.join(' ') || '(no flag needed)'}): kernel build ${v.variant}, ${v.threads} threads`);
      if (v.variant !== 'relaxed-simd') notes.push(`the relaxed-SIMD child ran the ${v.variant} build: this runtime has no relaxed SIMD`);
    } catch (e) {
      res.ceiling.relaxed = { error: (e as Error).message };
      child = null;
    }
  }
  console.log(`parent: kernel build ${rt.variant}, ${rt.threads} threads; ORT ${ORT_VERSION} with ${ortThreads} intra-op threads`);

  // The ceiling is measured at the start and again at the end; the higher of the two is kept (other
  // processes can only lower a peak), both are in the JSON.
  const ceilingRound = async (when: string) => {
    if (skip.has('ceiling')) return;
    const mine = await measureCeiling(rt.pool.module, rt.threads);
    res.ceilingRuns.push({ when, build: rt.variant, result: mine });
    if (!res.ceiling.simd128 || mine.allThreads.gflops > res.ceiling.simd128.allThreads.gflops) res.ceiling.simd128 = mine;
    console.log(`ceiling (${when}) ${rt.variant}: ${fmt(mine.singleThread.gflops)} GFLOP/s on 1 thread, ${fmt(mine.allThreads.gflops)} on ${rt.threads}`);
    if (!child) return;
    try {
      const c = await child.request<CeilingResult>({ type: 'ceiling' });
      res.ceilingRuns.push({ when, build: 'relaxed child', result: c });
      const prev = res.ceiling.relaxed;
      if (!prev || !('allThreads' in prev) || c.allThreads.gflops > prev.allThreads.gflops) res.ceiling.relaxed = c;
      console.log(`ceiling (${when}) relaxed child: ${fmt(c.singleThread.gflops)} GFLOP/s on 1 thread, ${fmt(c.allThreads.gflops)} on ${c.allThreads.threads}`);
    } catch (e) {
      if (!res.ceiling.relaxed) res.ceiling.relaxed = { error: (e as Error).message };
    }
  };
  await ceilingRound('start');

  let tfInfo: TfjsInfo | undefined;
  if (!skip.has('tfjs')) {
    try {
      tfInfo = await initTfjs(rt.threads);
      res.versions.tfjs = tfInfo;
    } catch (e) {
      notes.push(`tfjs-wasm could not start: ${(e as Error).message}`);
    }
  }

  let failed: Error | null = null;
  try {
    for (const s of shapes) {
      const t0 = performance.now();
      console.log(`\n${s.name}: ${describeShape(s)} — ${s.note}`);
      const x = inputs(s), mask = shapeMask(s), flops = attentionFlops(s);
      const visible = mask ? visibleFraction(s, mask) : 1;
      const rr = referenceRows(s, x, mask);
      const r: ShapeResult = { shape: s, description: describeShape(s), flops, visibleFraction: visible, kvBytes: kvBytes(s), ours: {} };
      res.shapes.push(r);

      // Ours: validated inside measureOurs before timing (throws ValidationError when wrong).
      let ours: Float32Array = new Float32Array(0); // our validated output, for the peers' whole-output comparison
      const main = await measureOurs(s, x, mask, rr, 'heap', timing, flops, visible, (o) => { ours = o; });
      const dense = s.blockSparse ? await measureOurs(s, x, null, referenceRows(s, x, null), 'heap', timing, flops, 1) : undefined;
      r.ours.simd128 = dense ? { main, dense } : { main };
      console.log(`  ours ${main.variant}: ${fmt(main.gflops)} GFLOP/s (${fmt(main.timing.medianMs, 2)} ms, N=${main.timing.runs}); check ${describeCheck(main.check)}${dense ? `; dense ${fmt(dense.gflops)} GFLOP/s, speed-up ${fmtRatio(dense.timing.medianMs / main.timing.medianMs)}` : ''}`);
      if (child) {
        try {
          const c = await child.request<OursShape>({ type: 'measure', shape: s.name, timing });
          r.ours.relaxed = c;
          console.log(`  ours ${c.main.variant}: ${fmt(c.main.gflops)} GFLOP/s (${fmt(c.main.timing.medianMs, 2)} ms, N=${c.main.timing.runs})${c.dense ? `; dense ${fmt(c.dense.gflops)}, speed-up ${fmtRatio(c.dense.timing.medianMs / c.main.timing.medianMs)}` : ''}`);
        } catch (e) {
          const msg = (e as Error).message;
          if (msg.includes('ValidationError') || msg.includes('is WRONG')) throw new ValidationError(`relaxed-SIMD child: ${msg}`);
          r.ours.relaxed = { error: msg.split('\n')[0]! };
        }
      }
      if (!skip.has('copy')) {
        r.ours.withCopy = await measureOurs(s, x, mask, rr, 'copy', timing, flops, visible);
        console.log(`  ours ${r.ours.withCopy.variant} from plain Float32Array tensors (copies timed): ${fmt(r.ours.withCopy.gflops)} GFLOP/s`);
      }

      // Block-sparse shapes are compared with our own dense kernel only (the issue's bar).
      const peers = !s.blockSparse;
      const peerTiming: TimingOptions = timing;
      if (peers && !skip.has('ort')) {
        const standard = await measurePeer(s, ortAttentionOp(s, x, { intraOpThreads: ortThreads }), rr, ours, peerTiming, flops);
        const alternatives: PeerMeasurement[] = [];
        if (!skip.has('ort-alt')) for (const c of ortAlternatives(s, x, { intraOpThreads: ortThreads })) alternatives.push(await measurePeer(s, c, rr, ours, peerTiming, flops));
        // "Fastest graph": the standard op competes too, so the comparison is never easier than it.
        const best = fastest([standard, ...alternatives]);
        r.ort = { standard, alternatives, fastest: best?.name ?? null };
        console.log(`  ORT Attention op: ${standard.status === 'ok' ? `${fmt(standard.gflops)} GFLOP/s (max diff to ours ${standard.maxDiffToOurs!.toExponential(1)})` : `${standard.status}: ${standard.error}`}`);
        for (const a of alternatives) console.log(`  ORT ${a.name}: ${a.status === 'ok' ? `${fmt(a.gflops)} GFLOP/s (max diff to ours ${a.maxDiffToOurs!.toExponential(1)})` : `${a.status}: ${a.error}`}`);
      }
      if (peers && tfInfo) {
        const variants: PeerMeasurement[] = [];
        for (const c of tfjsCandidates(s, x)) variants.push(await measurePeer(s, c, rr, ours, peerTiming, flops));
        r.tfjs = { variants, fastest: fastest(variants)?.name ?? null };
        for (const a of variants) console.log(`  tfjs ${a.name}: ${a.status === 'ok' ? `${fmt(a.gflops)} GFLOP/s` : `${a.status}: ${a.error}`}`);
      }
      if (peers && !skip.has('naive')) {
        r.naive = await measureNaive(s, x, mask, rr, peerTiming, flops, quick ? 2e7 : 2.5e8);
        console.log(`  naive TS: ${fmt(r.naive.gflops, 2)} GFLOP/s (${r.naive.rowsTimed} of ${s.seqLenQ} query rows timed, extrapolated)`);
      }
      if (peers && decodeLayers > 0 && s.seqLenQ <= 16) {
        const layers: ShapeResult['layers'] = [];
        const say = (m: LayersMeasurement | { name: string; error: string }) => {
          layers.push(m);
          console.log(`  ${m.name}, ${decodeLayers} layers in turn: ${'error' in m ? m.error : `${fmt(m.timing.medianMs, 3)} ms a call, ${fmt(m.kvGBs)} GB/s`}`);
        };
        say(await measureOursLayers(s, decodeLayers, timing));
        if (child) {
          try {
            say(await child.request<LayersMeasurement>({ type: 'layers', shape: s.name, layers: decodeLayers, timing }));
          } catch (e) {
            say({ name: 'ours relaxed-simd', error: (e as Error).message.split('\n')[0]! });
          }
        }
        const best = r.ort?.fastest;
        if (best) {
          const c = [ortAttentionOp(s, x, { intraOpThreads: ortThreads }), ...ortAlternatives(s, x, { intraOpThreads: ortThreads })].find((cc) => cc.name === best)!;
          const m = await measurePeerLayers(s, c, decodeLayers, timing);
          say({ ...m, name: `ORT ${m.name}` });
        }
        r.layers = layers;
      }
      console.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
    await ceilingRound('end');
  } catch (e) {
    failed = e as Error;
  } finally {
    await child?.close().catch(() => undefined);
  }

  const out = args.values.get('out') ?? (quick ? 'bench/results/cpu-quick.tmp.json' : undefined);
  const file = { bench: 'cpu', command, machine, method: 'median of N timed runs after warm-up; GFLOP/s = 4·B·H·Sq·Sk·d / median (causal with Sq = Sk halved)', results: res };
  if (failed) {
    const path = writeJson(out ?? 'bench/results/cpu-failed.tmp.json', { ...file, error: failed.message });
    console.error(`\nbench:cpu FAILED${failed instanceof ValidationError ? ' (validation)' : ''}: ${failed.message}\npartial results: ${path}`);
    process.exitCode = 1;
    return;
  }
  console.log();
  printReport(res, command, machineLine, args.flags.has('markdown'));
  const path = out ? writeJson(out, file) : writeResults('cpu', file);
  console.log(`\nJSON: ${path}`);
}

main().catch((e) => {
  console.error(e instanceof ValidationError ? `bench:cpu validation FAILED: ${e.message}` : e);
  process.exit(1);
});
