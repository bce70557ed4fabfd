/**
 * `npm run bench:relevance`: evaluation of relevance realisation on procedural scenes, and the
 * pipeline's latency budget.
 *
 * 1. Precision (validated against ground-truth masks, not timed): the share of the budget landing on
 *    the regions the query names, for colour queries (one object) and the texture query "striped"
 *    (every patterned object), against uniform, salience-only and information-only allocation; and
 *    the fraction of tokens that move when small Gaussian noise is added to the image.
 * 2. Latency: the full pipeline on a 1024×1024 scene with a 1,600-token budget, per stage, median of
 *    N runs after a warm-up, compared with the seed's plan (10/30/5/40/15 ms + 100 ms LLM).
 *
 *   npm run bench:relevance -- [--seeds=20] [--runs=5] [--backend=auto] [--skip=precision|latency] [--markdown]
 */
import { STAGES, SEED_PLAN_MS, type Stage, evaluateRelevance, generateScene, planRelevance, runRelevance, type EvalSummary, EVAL_METHODS, participatoryFromAttention, randn, planGrid, computeTexture, computeTextureGpu } from '../src/index.js';
import type { BackendName } from '../src/attention/backend.js';
import { intOption, parseArgs } from './lib/args.js';
import { describeMachine, machineInfo } from './lib/machine.js';
import { writeResults } from './lib/results.js';
import { type Column, fmt, formatTable, markdownTable } from './lib/table.js';

const USAGE = `npm run bench:relevance -- [options]
  (= node scripts/run-bench.mjs relevance-eval [options])`;
const SPEC = {
  'seeds=': 'number of procedural scenes (default 20; seeds 1..N)',
  'runs=': 'timed pipeline runs for the latency table (default 5, median)',
  'backend=': 'attention backend for the attention stages: auto (default), wasm, cpu-ts, webgpu',
  'size=': 'latency image side in pixels (default 1024)',
  'skip=': 'precision or latency',
  markdown: 'also print the tables as Markdown',
  'out=': 'JSON path (default bench/results/relevance-eval.json)',
};

const args = parseArgs(process.argv.slice(2), SPEC, USAGE);
const seeds = intOption(args, 'seeds', 20), runs = intOption(args, 'runs', 5), size = intOption(args, 'size', 1024);
const backend = (args.values.get('backend') ?? 'auto') as BackendName;
const skip = args.values.get('skip') ?? '';
const md = args.flags.has('markdown');
const command = `npm run bench:relevance -- ${process.argv.slice(2).join(' ')}`.trim();
const machine = machineInfo();
console.log(`relevance evaluation · ${describeMachine(machine)}`);

interface PrecisionRow { config: string; kind: 'colour' | 'texture'; cases: number; relevance: number; uniform: number; salience: number; information: number; ratio: number }
const precisionRows: PrecisionRow[] = [];
const summaries: Record<string, EvalSummary> = {};

if (skip !== 'precision') {
  // The demo's configuration (7×7 regions, min 16 per region) and one without a floor (min 0),
  // where the texture query is not capped by the tokens every region must keep.
  const configs = [
    { name: '7×7 regions, B=1600, min 16', pipeline: { budget: 1600, min: 16, grid: { regionRows: 7, regionCols: 7 }, lodAttention: 'none' as const, backend } },
    { name: '7×7 regions, B=1600, min 0', pipeline: { budget: 1600, min: 0, grid: { regionRows: 7, regionCols: 7 }, lodAttention: 'none' as const, backend } },
  ];
  for (const c of configs) {
    const t0 = performance.now();
    const s = await evaluateRelevance({ seeds: Array.from({ length: seeds }, (_, i) => i + 1), pipeline: c.pipeline, onProgress: (d, n) => process.stderr.write(`\r${c.name}: scene ${d}/${n}`) });
    process.stderr.write(`\r${c.name}: ${seeds} scenes in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    summaries[c.name] = s;
    for (const kind of ['colour', 'texture'] as const) {
      const m = s.mean[kind];
      precisionRows.push({ config: c.name, kind, cases: s.cases.filter((x) => x.kind === kind).length, relevance: m.relevance, uniform: m.uniform, salience: m['salience-only'], information: m['information-only'], ratio: s.ratioToUniform[kind] });
    }
  }
  const cols: Column<PrecisionRow>[] = [
    { title: 'configuration', cell: (r) => r.config, align: 'left' },
    { title: 'query', cell: (r) => (r.kind === 'colour' ? 'colour (one object)' : 'texture "striped"'), align: 'left' },
    { title: 'cases', cell: (r) => r.cases },
    { title: 'relevance', cell: (r) => `${fmt(100 * r.relevance)}%` },
    { title: 'uniform', cell: (r) => `${fmt(100 * r.uniform)}%` },
    { title: 'salience-only', cell: (r) => `${fmt(100 * r.salience)}%` },
    { title: 'information-only', cell: (r) => `${fmt(100 * r.information)}%` },
    { title: 'relevance / uniform', cell: (r) => `${r.ratio.toFixed(2)}×` },
  ];
  console.log('\nRelevance precision: share of the budget on the regions the query names (mean over scenes)');
  console.log(formatTable(cols, precisionRows));
  if (md) console.log('\n' + markdownTable(cols, precisionRows));
  for (const [name, s] of Object.entries(summaries)) {
    console.log(`stability (${name}): tokens moved under noise σ = 0.01: mean ${fmt(100 * s.instability.mean, 2)}%, max ${fmt(100 * s.instability.max, 2)}%`);
  }
}

// Validate before timing: the participatory scorer on the chosen backend against a float64
// reference (explicit softmax of QKᵀ over visible keys, column sums), GQA and causal.
function participatoryReference(q: ReturnType<typeof randn>, k: ReturnType<typeof randn>, rows: [number, number], span: [number, number]): Float64Array {
  const [, Sq, H, D] = q.shape as [number, number, number, number];
  const Sk = k.shape[1]!, Hk = k.shape[2]!;
  const Q = q.toFloat32(), K = k.toFloat32();
  const rel = new Float64Array(Sk);
  for (let h = 0; h < H; h++) {
    const hk = Math.floor(h / (H / Hk));
    for (let i = rows[0]; i < rows[1]; i++) {
      const s = new Float64Array(Sk).fill(-Infinity);
      for (let j = 0; j <= i + Sk - Sq && j < Sk; j++) {
        let d = 0;
        for (let c = 0; c < D; c++) d += Q[(i * H + h) * D + c]! * K[(j * Hk + hk) * D + c]!;
        s[j] = d / Math.sqrt(D);
      }
      let m = -Infinity;
      for (const v of s) m = Math.max(m, v);
      let z = 0;
      for (let j = 0; j < Sk; j++) z += Math.exp(s[j]! - m);
      for (let j = 0; j < Sk; j++) rel[j] += Math.exp(s[j]! - m) / z / (H * (rows[1] - rows[0]));
    }
  }
  const v = rel.subarray(span[0], span[1]);
  const tot = v.reduce((a, b) => a + b, 0);
  return Float64Array.from(v, (x) => x / tot);
}
let validation: { maxAbsError: number; tokens: number; backend: string; textureGpuMaxAbsError?: number } | null = null;
if (skip !== 'latency') {
  // An LLM-like layer: [BOS][24×24 image][40 text tokens], 16 query heads over 4 KV heads, d = 64.
  const grid = planGrid(24 * 14, 24 * 14, { regionRows: 4, regionCols: 4 });
  const Sk = 1 + 576 + 40;
  const q = randn([1, Sk, 16, 64], 31), k = randn([1, Sk, 4, 64], 32);
  const res = await participatoryFromAttention({ q, k, queryRows: [577, Sk], visualSpan: [1, 577], causal: true }, grid, { backend });
  const ref = participatoryReference(q, k, [577, Sk], [1, 577]);
  let err = 0;
  for (let j = 0; j < ref.length; j++) err = Math.max(err, Math.abs(res.tokens[j]! - ref[j]!));
  validation = { maxAbsError: err, tokens: ref.length, backend };
  console.log(`\nvalidation: participatory scorer on ${backend} vs float64 reference (explicit softmax of QKᵀ, column sums; GQA 16/4, causal, 40 text rows × 577 keys): max abs error ${err.toExponential(2)} ${err <= 1e-5 ? '≤' : '>'} 1e-5`);
  if (!(err <= 1e-5)) { console.error('validation failed: not timing'); process.exit(1); }
  if (backend === 'webgpu') {
    const scene = generateScene({ width: size, height: size, seed: 3 });
    const tplan = planGrid(size, size, { patchSize: 14, maxSide: 1024, regionRows: 8, regionCols: 8 });
    const a = computeTexture(scene.image, tplan), b = await computeTextureGpu(scene.image, tplan);
    let terr = 0;
    for (let i = 0; i < a.pixels.length; i++) terr = Math.max(terr, Math.abs(a.pixels[i]! - b.pixels[i]!));
    validation!.textureGpuMaxAbsError = terr;
    console.log(`validation: texture array on WebGPU vs CPU (${size}², 14 channels): max abs error ${terr.toExponential(2)} ${terr <= 2e-4 ? '≤' : '>'} 2e-4`);
    if (!(terr <= 2e-4)) { console.error('validation failed: not timing'); process.exit(1); }
  }
}

interface LatencyRowOut { stage: string; medianMs: number | null; minMs: number | null; planMs: number }
const latencyRows: LatencyRowOut[] = [];
let latencyInfo: Record<string, unknown> = {};
if (skip !== 'latency') {
  const scene = generateScene({ width: size, height: size, seed: 3 });
  const query = scene.objects[0]!.colour;
  const plan = planRelevance(size, size, { query, budget: 1600, min: 16, grid: { patchSize: 14, maxSide: 1024, regionRows: 8, regionCols: 8 }, backend, lodAttention: 'per-region' });
  await runRelevance(scene.image, plan); // warm-up: backend start, JIT
  const per: Record<Stage, number[]> = Object.fromEntries(STAGES.map((s) => [s, []])) as unknown as Record<Stage, number[]>;
  const totals: number[] = [];
  let tokens = 0;
  for (let r = 0; r < runs; r++) {
    const res = await runRelevance(scene.image, plan);
    tokens = res.tokens.count;
    let t = 0;
    for (const s of STAGES) { per[s].push(res.timings[s]); t += res.timings[s]; }
    totals.push(t);
  }
  const med = (a: number[]) => { const b = [...a].sort((x, y) => x - y); return b.length ? b[Math.floor((b.length - 1) / 2)]! : NaN; };
  for (const s of STAGES) latencyRows.push({ stage: s, medianMs: med(per[s]), minMs: Math.min(...per[s]), planMs: SEED_PLAN_MS[s] });
  latencyRows.push({ stage: 'llm (not ours)', medianMs: null, minMs: null, planMs: SEED_PLAN_MS.llm });
  latencyRows.push({ stage: 'total (without LLM)', medianMs: med(totals), minMs: Math.min(...totals), planMs: STAGES.reduce((a, s) => a + SEED_PLAN_MS[s], 0) });
  latencyInfo = { image: `${size}×${size}`, budget: 1600, baseGrid: `${plan.grid.gridRows}×${plan.grid.gridCols}`, regions: `${plan.grid.regionRows}×${plan.grid.regionCols}`, tokens, backend, runs, query };
  const cols: Column<LatencyRowOut>[] = [
    { title: 'stage', cell: (r) => r.stage, align: 'left' },
    { title: 'median ms', cell: (r) => fmt(r.medianMs) },
    { title: 'min ms', cell: (r) => fmt(r.minMs) },
    { title: 'seed plan ms', cell: (r) => r.planMs },
  ];
  console.log(`\nLatency: ${size}×${size} scene, budget 1600, base grid ${plan.grid.gridRows}×${plan.grid.gridCols} (14 px), ${plan.grid.regionRows}×${plan.grid.regionCols} regions, backend ${backend}; median of ${runs} runs after a warm-up`);
  console.log(formatTable(cols, latencyRows));
  if (md) console.log('\n' + markdownTable(cols, latencyRows));
}

const path = writeResults('relevance-eval', {
  bench: 'relevance-eval', command, machine,
  method: 'precision: mean over procedural scenes (seeds 1..N); latency: median of N pipeline runs after one warm-up run',
  results: { validation, precision: precisionRows, summaries: Object.fromEntries(Object.entries(summaries).map(([k, s]) => [k, { mean: s.mean, ratioToUniform: s.ratioToUniform, instability: s.instability, cases: s.cases }])), methods: EVAL_METHODS, latency: { ...latencyInfo, rows: latencyRows } },
}, args.values.get('out'));
console.log(`\nwrote ${path}`);
