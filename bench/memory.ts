/**
 * `npm run bench:memory`: what one attention call allocates beyond its inputs and outputs.
 *
 * Ours (inputs and output allocated in the kernel heap with cpuTensor, so nothing is copied):
 *   - kernel heap: highWaterBytes after resetHighWater(), minus the bytes in use before the call
 *     (scratch, tile plans, job lists, mask programs, decode partials);
 *   - JS side: process.memoryUsage() around the call (heapUsed without GC ≈ allocated during the
 *     call; after GC = retained), and the process's peak RSS delta (VmHWM after clear_refs), which
 *     catches anything that touched memory, worker threads included.
 * The same call from plain Float32Array tensors is reported too: it copies inputs and output
 * through the heap, which is the avoidable part.
 *
 * ORT's standard Attention op materialises B·H·N² f32 scores (4 bytes each) per matrix: reported
 * analytically, measured (peak RSS delta of a child process) at sizes that fit, and attempted at
 * N = 16,384 only where it cannot endanger the machine (--ort-16k=run forces it).
 */
import * as ort from 'onnxruntime-node';
import { Tensor, attention, configureCpu, cpuRuntime, cpuTensor, lastKernelStats, randn } from '../src/index.js';
import { intOption, parseArgs } from './lib/args.js';
import { type QKV, ValidationError, bshdAt, checkRows, describeCheck, referenceRows } from './lib/check.js';
import { runChild } from './lib/child.js';
import { availableMemBytes, describeMachine, machineInfo } from './lib/machine.js';
import { type NodeMemory, diffMemory, gcAvailable, nodeMemory, peakRssBytes, resetPeakRss, rssBytes } from './lib/memory-probe.js';
import { writeJson, writeResults } from './lib/results.js';
import { type AttentionShape, ISSUE2_SHAPES, describeShape } from './lib/shapes.js';
import { type Column, fmt, fmtBytes, formatTable, markdownTable } from './lib/table.js';
import { ONNX_FLOAT, encodeModel } from './peers/onnx-graph.js';
import { ORT_VERSION } from './peers/ort.js';

const USAGE = `npm run bench:memory -- [options]
  (= node scripts/run-bench.mjs --expose-gc memory [options])`;

const SPEC = {
  'cases=': 'comma-separated: qwen2vl-1024px, n16k (default both)',
  'threads=': 'our kernel threads (default: all cores, at most 16)',
  'ort-16k=': 'auto (default: run only if the analytic need is < 50% of MemAvailable), run, skip',
  'skip=': 'comma-separated: plain, ort',
  markdown: 'also print the tables as Markdown',
  'out=': 'JSON path (default bench/results/memory.json)',
  'child=': '(internal) "ort": run ORT\'s Attention op once and report its peak RSS delta',
  'n=': '(internal) sequence length for --child=ort',
  'heads=': '(internal) heads for --child=ort',
  'dim=': '(internal) head dim for --child=ort',
  'child-out=': '(internal) where a child writes its JSON',
};

const N16K: AttentionShape = {
  name: 'n16k', batch: 1, numHeads: 16, numKvHeads: 16, seqLenQ: 16384, seqLenK: 16384, headDim: 64, headDimV: 64, causal: false,
  note: 'self-attention at N = 16,384 (the issue\'s memory-at-scale bar)',
};
// The plain-tensor path's extra is its copies (inputs + output, known in advance): measured on
// qwen2vl only, since each N = 16,384 call costs a minute or more on two cores.
const CASES: Record<string, { shape: AttentionShape; barBytes: number; plain: boolean }> = {
  'qwen2vl-1024px': { shape: ISSUE2_SHAPES.find((s) => s.name === 'qwen2vl-1024px')!, barBytes: 64e6, plain: true },
  n16k: { shape: N16K, barBytes: 100e6, plain: false },
};

/** Bytes of one materialised B·H·Sq·Sk f32 matrix. */
const scoreMatrixBytes = (s: AttentionShape) => 4 * s.batch * s.numHeads * s.seqLenQ * s.seqLenK;
const tensorBytes = (s: AttentionShape) => 4 * s.batch * (s.seqLenQ * s.numHeads * (s.headDim + s.headDimV) + s.seqLenK * s.numKvHeads * (s.headDim + s.headDimV));

function inputs(s: AttentionShape): QKV {
  return {
    q: randn([s.batch, s.seqLenQ, s.numHeads, s.headDim], 21).data as Float32Array,
    k: randn([s.batch, s.seqLenK, s.numKvHeads, s.headDim], 22).data as Float32Array,
    v: randn([s.batch, s.seqLenK, s.numKvHeads, s.headDimV], 23).data as Float32Array,
  };
}

interface CallMemory {
  call: 'cold' | 'warm';
  ms: number;
  /** Kernel-heap high-water beyond what was in use before the call. */
  heapExtraBytes: number;
  /** Kernel-heap buffer growth during the call (address space committed to the heap). */
  heapGrowthBytes: number;
  /** JS: memoryUsage deltas right after the call (no GC: ≈ allocated during it). */
  jsDuring: NodeMemory;
  /** JS: memoryUsage deltas after a GC (retained by the call, e.g. caches). */
  jsRetained: NodeMemory;
  /** Peak RSS during the call minus RSS before it (null where /proc is unavailable). */
  peakRssDeltaBytes: number | null;
  /** The figure the bar is judged on: heap extra + max(0, JS heapUsed during). */
  extraBytes: number;
}

async function measureCall(label: 'cold' | 'warm', run: () => Promise<void>): Promise<CallMemory> {
  const rt = await cpuRuntime();
  const before = nodeMemory();
  const inUse = rt.heap.inUseBytes, heapBuf = rt.heap.memory.buffer.byteLength;
  const rss0 = rssBytes();
  const peakOk = resetPeakRss();
  rt.heap.resetHighWater();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const peak = peakOk ? peakRssBytes() : null;
  const m = process.memoryUsage();
  const during: NodeMemory = { rss: m.rss - before.rss, heapUsed: m.heapUsed - before.heapUsed, external: m.external - before.external, arrayBuffers: m.arrayBuffers - before.arrayBuffers };
  const heapExtraBytes = rt.heap.highWaterBytes - inUse;
  const heapGrowthBytes = rt.heap.memory.buffer.byteLength - heapBuf;
  const retained = diffMemory(before, nodeMemory());
  return {
    call: label, ms, heapExtraBytes, heapGrowthBytes, jsDuring: during, jsRetained: retained,
    peakRssDeltaBytes: peak !== null && rss0 !== null ? peak - rss0 : null,
    extraBytes: heapExtraBytes + Math.max(0, during.heapUsed),
  };
}

interface OursMemory {
  placement: 'heap' | 'plain';
  variant: string;
  threads: number;
  path: string | undefined;
  calls: CallMemory[];
  /** Max over the calls of extraBytes. */
  extraBytes: number;
  maxPeakRssDeltaBytes: number | null;
}

async function measureOurs(s: AttentionShape, x: QKV, placement: 'heap' | 'plain'): Promise<OursMemory> {
  const rt = await cpuRuntime();
  const qs = [s.batch, s.seqLenQ, s.numHeads, s.headDim], ks = [s.batch, s.seqLenK, s.numKvHeads, s.headDim];
  const vs = [s.batch, s.seqLenK, s.numKvHeads, s.headDimV], os = [s.batch, s.seqLenQ, s.numHeads, s.headDimV];
  const owned: Tensor[] = [];
  try {
    let q: Tensor, k: Tensor, v: Tensor, out: Tensor;
    if (placement === 'heap') {
      q = await cpuTensor(qs); k = await cpuTensor(ks); v = await cpuTensor(vs); out = await cpuTensor(os);
      owned.push(q, k, v, out);
      (q.data as Float32Array).set(x.q); (k.data as Float32Array).set(x.k); (v.data as Float32Array).set(x.v);
    } else {
      q = new Tensor(x.q, qs); k = new Tensor(x.k, ks); v = new Tensor(x.v, vs); out = Tensor.zeros(os);
    }
    (out.data as Float32Array).fill(NaN); // resident before the call, and poisoned for the check
    const run = async () => { await attention(q, k, v, { backend: 'wasm', out }); };
    const cold = await measureCall('cold', run);
    // Validate what we measured (a call that skipped work would allocate less).
    const rr = referenceRows(s, x, null, 16);
    const check = checkRows(s, rr, bshdAt(s, out.data as Float32Array));
    if (!check.ok) throw new ValidationError(`${s.name}: our kernel (${placement}) is WRONG: ${describeCheck(check)}`);
    // The plain path's extra is its copies, the same on every call: one call is enough there.
    const calls = placement === 'heap' ? [cold, await measureCall('warm', run)] : [cold];
    const peaks = calls.map((c) => c.peakRssDeltaBytes).filter((p): p is number => p !== null);
    return {
      placement, variant: rt.variant, threads: rt.threads, path: lastKernelStats?.path, calls,
      extraBytes: Math.max(...calls.map((c) => c.extraBytes)),
      maxPeakRssDeltaBytes: peaks.length ? Math.max(...peaks) : null,
    };
  } finally {
    for (const t of owned) rt.heap.freeTensor(t);
  }
}

// ------------------------------------------------------------------------------------------------
// ORT: a child process runs the standard Attention op once and reports its peak RSS delta.

interface OrtChildResult { ok: boolean; error?: string; ms?: number; peakRssDeltaBytes?: number | null }

async function ortChild(args: ReturnType<typeof parseArgs>): Promise<void> {
  const N = intOption(args, 'n', 0), H = intOption(args, 'heads', 16), D = intOption(args, 'dim', 64);
  const out = args.values.get('child-out')!;
  const result: OrtChildResult = { ok: false };
  try {
    const model = encodeModel({
      name: 'attention-op', opsets: { '': 23 }, irVersion: 11,
      inputs: ['Q', 'K', 'V'].map((name) => ({ name, elemType: ONNX_FLOAT, dims: [1, N, H * D] })),
      outputs: [{ name: 'Y', elemType: ONNX_FLOAT, dims: [1, N, H * D] }],
      nodes: [{ op: 'Attention', inputs: ['Q', 'K', 'V'], outputs: ['Y'], attrs: { q_num_heads: H, kv_num_heads: H, scale: { float: 1 / Math.sqrt(D) } } }],
    });
    const sess = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const feeds: Record<string, ort.Tensor> = {};
    ['Q', 'K', 'V'].forEach((name, i) => { feeds[name] = new ort.Tensor('float32', randn([1, N, H, D], 31 + i).data as Float32Array, [1, N, H * D]); });
    const rss0 = rssBytes();
    resetPeakRss();
    const t0 = performance.now();
    await sess.run(feeds);
    result.ms = performance.now() - t0;
    const peak = peakRssBytes();
    result.peakRssDeltaBytes = peak !== null && rss0 !== null ? peak - rss0 : null;
    result.ok = true;
    await sess.release();
  } catch (e) {
    result.error = (e as Error).message.split('\n')[0]!;
  }
  writeJson(out, result);
}

interface OrtMemory {
  n: number;
  heads: number;
  headDim: number;
  /** B·H·N²·4: one materialised score (or probability) matrix. */
  analyticBytes: number;
  attempted: boolean;
  reason?: string;
  ok?: boolean;
  error?: string;
  ms?: number;
  peakRssDeltaBytes?: number | null;
}

async function measureOrt(n: number, heads: number, headDim: number, mode: 'auto' | 'run' | 'skip'): Promise<OrtMemory> {
  const analyticBytes = 4 * heads * n * n;
  const base: OrtMemory = { n, heads, headDim, analyticBytes, attempted: false };
  const avail = availableMemBytes();
  const need = analyticBytes * 1.25 + 4 * 4 * n * heads * headDim;
  if (mode === 'skip') return { ...base, reason: 'skipped (--ort-16k=skip)' };
  if (mode === 'auto' && need > 0.5 * avail) {
    return { ...base, reason: `not attempted: needs ≥ ${fmtBytes(need)} (analytic matrix + inputs/outputs + 25%), over half of the ${fmtBytes(avail)} MemAvailable on a machine shared with others; --ort-16k=run forces it` };
  }
  const r = await runChild<OrtChildResult>(process.argv[1]!, ['--child=ort', `--n=${n}`, `--heads=${heads}`, `--dim=${headDim}`], { label: `ort N=${n}`, timeoutMs: 9 * 60_000 });
  if (!r.ok) return { ...base, attempted: true, ok: false, error: r.signal ? `child killed by ${r.signal} (out of memory?)` : r.error };
  return { ...base, attempted: true, ok: r.value.ok, ...(r.value.error ? { error: r.value.error } : {}), ms: r.value.ms, peakRssDeltaBytes: r.value.peakRssDeltaBytes ?? null };
}

// ------------------------------------------------------------------------------------------------

interface CaseResult {
  name: string;
  description: string;
  inputOutputBytes: number;
  barBytes: number;
  heap?: OursMemory;
  plain?: OursMemory;
  /** What ORT's standard Attention op would materialise for this shape (one score matrix). */
  ortAnalyticBytes: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), SPEC, USAGE);
  if (args.values.get('child') === 'ort') return ortChild(args);
  const skip = new Set((args.values.get('skip') ?? '').split(',').map((x) => x.trim()).filter(Boolean));
  const mode = (args.values.get('ort-16k') ?? 'auto') as 'auto' | 'run' | 'skip';
  if (!['auto', 'run', 'skip'].includes(mode)) throw new Error(`bench: --ort-16k must be auto, run or skip, got ${mode}`);
  const names = (args.values.get('cases') ?? Object.keys(CASES).join(',')).split(',').map((x) => x.trim()).filter(Boolean);
  for (const n of names) if (!CASES[n]) throw new Error(`bench: unknown case ${n}; known: ${Object.keys(CASES).join(', ')}`);
  const machine = machineInfo();
  const command = `npm run bench:memory${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
  console.log(`bench:memory — ${describeMachine(machine)}`);
  if (!gcAvailable()) console.log('note: no --expose-gc: JS "retained" figures include garbage (run through npm run bench:memory)');
  const threads = args.values.has('threads') ? intOption(args, 'threads', 0) : undefined;
  if (threads) await configureCpu({ threads });
  const rt = await cpuRuntime();
  console.log(`kernel build ${rt.variant}, ${rt.threads} threads; runtime baseline: heap ${fmtBytes(rt.heap.inUseBytes)} in use, RSS ${fmtBytes(rssBytes())}`);

  const cases: CaseResult[] = [];
  for (const name of names) {
    const { shape: s, barBytes, plain } = CASES[name]!;
    console.log(`\n${name}: ${describeShape(s)}`);
    const x = inputs(s);
    const c: CaseResult = { name, description: describeShape(s), inputOutputBytes: tensorBytes(s), barBytes, ortAnalyticBytes: scoreMatrixBytes(s) };
    cases.push(c);
    c.heap = await measureOurs(s, x, 'heap');
    for (const call of c.heap.calls) console.log(`  heap tensors, ${call.call}: heap +${fmtBytes(call.heapExtraBytes)}, JS heapUsed +${fmtBytes(call.jsDuring.heapUsed)} (retained ${fmtBytes(call.jsRetained.heapUsed)}), peak RSS Δ ${fmtBytes(call.peakRssDeltaBytes)}, ${fmt(call.ms / 1000, 1)} s`);
    if (plain && !skip.has('plain')) {
      c.plain = await measureOurs(s, x, 'plain');
      for (const call of c.plain.calls) console.log(`  plain tensors, ${call.call}: heap +${fmtBytes(call.heapExtraBytes)}, JS heapUsed +${fmtBytes(call.jsDuring.heapUsed)}, peak RSS Δ ${fmtBytes(call.peakRssDeltaBytes)}, ${fmt(call.ms / 1000, 1)} s`);
    }
  }

  const ort16: OrtMemory[] = [];
  if (!skip.has('ort')) {
    // Calibration sizes that fit anywhere, then the issue's N = 16,384.
    const sizes: [number, number, number, 'auto' | 'run' | 'skip'][] = [[2048, 16, 64, 'auto'], [4096, 16, 64, 'auto'], [5329, 16, 80, 'auto'], [16384, 16, 64, mode]];
    for (const [n, h, d, m] of sizes) {
      const r = await measureOrt(n, h, d, m);
      ort16.push(r);
      console.log(`  ORT Attention op N=${n} H${h} d${d}: analytic ${fmtBytes(r.analyticBytes)} per matrix; ${r.attempted ? (r.ok ? `ran in ${fmt(r.ms! / 1000, 1)} s, peak RSS Δ ${fmtBytes(r.peakRssDeltaBytes)}` : `FAILED: ${r.error}`) : r.reason}`);
    }
  }

  const lines: string[] = [];
  const say = (t = '') => lines.push(t);
  const table = <R>(cols: Column<R>[], rows: R[]) => { say(formatTable(cols, rows)); if (args.flags.has('markdown')) { say(); say(markdownTable(cols, rows)); } };
  say(`command: ${command}`);
  say(`machine: ${describeMachine(machine)}`);
  say(`ours: kernel build ${rt.variant}, ${rt.threads} threads; "extra" = kernel-heap high-water beyond inputs/outputs + JS heapUsed growth during the call; worst of a cold and a warm call`);
  say();
  type Row = { c: CaseResult; m: OursMemory };
  const rows: Row[] = cases.flatMap((c) => [c.heap, c.plain].filter((m): m is OursMemory => !!m).map((m) => ({ c, m })));
  table<Row>([
    { title: 'case', cell: (r) => r.c.name },
    { title: 'tensors', cell: (r) => (r.m.placement === 'heap' ? 'cpuTensor (in heap)' : 'plain Float32Array') },
    { title: 'inputs+output', cell: (r) => fmtBytes(r.c.inputOutputBytes) },
    { title: 'heap extra', cell: (r) => fmtBytes(Math.max(...r.m.calls.map((x) => x.heapExtraBytes))) },
    { title: 'JS during', cell: (r) => fmtBytes(Math.max(...r.m.calls.map((x) => x.jsDuring.heapUsed))) },
    { title: 'extra (bar)', cell: (r) => fmtBytes(r.m.extraBytes) },
    { title: 'peak RSS Δ', cell: (r) => fmtBytes(r.m.maxPeakRssDeltaBytes) },
    { title: 'bar', cell: (r) => `< ${fmtBytes(r.c.barBytes)}` },
    { title: 'met', cell: (r) => (r.m.placement === 'heap' ? (r.m.extraBytes < r.c.barBytes ? 'yes' : 'NO') : 'n/a (copies)') },
    { title: 'ORT matrix', cell: (r) => fmtBytes(r.c.ortAnalyticBytes) },
  ], rows);
  if (ort16.length) {
    say();
    say(`ORT ${ORT_VERSION} standard Attention op (opset 23, 2 intra-op threads), one run in a child process:`);
    table<OrtMemory>([
      { title: 'N', cell: (r) => r.n },
      { title: 'H', cell: (r) => r.heads },
      { title: 'd', cell: (r) => r.headDim },
      { title: 'B·H·N²·4 (analytic)', cell: (r) => fmtBytes(r.analyticBytes) },
      { title: 'peak RSS Δ (measured)', cell: (r) => (r.attempted && r.ok ? fmtBytes(r.peakRssDeltaBytes) : '') },
      { title: 'measured ÷ analytic', cell: (r) => (r.attempted && r.ok && r.peakRssDeltaBytes ? `${(r.peakRssDeltaBytes / r.analyticBytes).toFixed(2)}×` : '') },
      { title: 'outcome', align: 'left', cell: (r) => (r.attempted ? (r.ok ? `ran, ${fmt(r.ms! / 1000, 1)} s` : `failed: ${r.error}`) : r.reason ?? '') },
    ], ort16);
    // Where the largest case could not run, extrapolate it with the largest measured case's ratio.
    const measured = ort16.filter((r) => r.attempted && r.ok && r.peakRssDeltaBytes);
    const ref = measured[measured.length - 1];
    for (const r of ort16.filter((x) => !(x.attempted && x.ok))) {
      if (ref) say(`N=${r.n}: ≈ ${fmtBytes((r.analyticBytes * ref.peakRssDeltaBytes!) / ref.analyticBytes)} expected (analytic × the measured ÷ analytic ratio at N=${ref.n}).`);
    }
  }
  console.log('\n' + lines.join('\n'));
  const file = { bench: 'memory', command, machine, method: 'one cold and one warm call per case; kernel-heap high-water + process memory counters', results: { kernel: { variant: rt.variant, threads: rt.threads }, cases, ort: ort16 } };
  const out = args.values.get('out');
  const path = out ? writeJson(out, file) : writeResults('memory', file);
  console.log(`\nJSON: ${path}`);
}

main().catch((e) => {
  console.error(e instanceof ValidationError ? `bench:memory validation FAILED: ${e.message}` : e);
  process.exit(1);
});
