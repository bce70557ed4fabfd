/**
 * `npm run bench:gpu`: WebGPU attention (TFLOP/s per shape and kernel variant) side by side with
 * PyTorch SDPA on the same GPU (bench/torch_sdpa.py, run in the same invocation), and the GPU's
 * ceilings measured in the same run. Every variant is validated against a float64 reference on a
 * subset of rows before it is timed.
 *
 * Timing: each sample encodes `iters` calls in one command buffer and waits for the queue; the
 * per-call time is the sample over iters (≥ 20 ms of work per sample); median of N samples.
 * FLOPs: 4·B·H·Sq·Sk·d, halved for causal when Sq = Sk (bench/lib/shapes.ts).
 *
 * Decode shapes (every variant) and prefill shapes (f16) are also run over a paged KV (16-token blocks in
 * shuffled order, read through the block tables): issue 4's bar is paged ≥ 0.9× the contiguous decode
 * kernel's throughput.
 *
 *   node scripts/run-bench.mjs gpu [--shapes=a,b] [--variants=f32,f32-exact,f16,f16-portable] [--no-torch] [--no-paged] [--no-robustness] [--ablate=form] [--out=path] [--baseline=earlier.json]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  type AttentionPlan, GpuTensor, KvBlockStorage, Tensor, causal, f16ToF32, f32ToF16, gpuContext, gpuKvMirror, mulberry32, planAttention,
  prepareGpuAttention, setGpuKernelPreference, setGpuF32Policy, type GpuF32Policy, BENCH_SCHEMA, comparePredictions, type PreparedGpuAttention,
} from '../src/index.js';
import { parseArgs } from './lib/args.js';
import { type QKV, pickRows, referenceRow } from './lib/check.js';
import { machineInfo } from './lib/machine.js';
import { BASELINE_TOLERANCE, type BaselineRow, compareToBaseline, writeJson, resultsDir } from './lib/results.js';
import { type AttentionShape, attentionFlops } from './lib/shapes.js';
import { formatTable, markdownTable, type Column } from './lib/table.js';
import { timeGpu } from '../scripts/lib/gpu-time.mjs';
import { setSgmatAblation } from '../src/kernels/webgpu/sgmat.js';
import { measureGpuCeilings, type GpuCeilings } from './lib/gpu-ceilings.js';

const usage = 'node scripts/run-bench.mjs gpu [--shapes=a,b] [--variants=f32,f32-exact,f16,f16-portable] [--no-torch] [--no-paged] [--no-robustness] [--ablate=form] [--out=path] [--baseline=earlier.json]';

function shape(name: string, s: Partial<AttentionShape> & Pick<AttentionShape, 'numHeads' | 'seqLenQ' | 'headDim'>): AttentionShape {
  return {
    name, batch: s.batch ?? 1, numHeads: s.numHeads, numKvHeads: s.numKvHeads ?? s.numHeads, seqLenQ: s.seqLenQ,
    seqLenK: s.seqLenK ?? s.seqLenQ, headDim: s.headDim, headDimV: s.headDim, causal: s.causal ?? false, note: '',
  };
}

/** Issue 3's shapes. 8k-d128-causal's head count is not given there: 16 heads. */
export const GPU_SHAPES: AttentionShape[] = [
  shape('vitL14-336', { batch: 8, numHeads: 16, seqLenQ: 577, headDim: 64 }),
  shape('siglip-384', { batch: 8, numHeads: 16, seqLenQ: 729, headDim: 72 }),
  shape('qwen2vl-1024px', { batch: 1, numHeads: 16, seqLenQ: 5329, headDim: 80 }),
  shape('prefill-4k-gqa', { batch: 1, numHeads: 32, numKvHeads: 8, seqLenQ: 4096, headDim: 128, causal: true }),
  shape('decode-kv4k', { batch: 16, numHeads: 32, numKvHeads: 8, seqLenQ: 1, seqLenK: 4096, headDim: 128 }),
  shape('8k-d64', { batch: 1, numHeads: 16, seqLenQ: 8192, headDim: 64 }),
  shape('8k-d128-causal', { batch: 1, numHeads: 16, seqLenQ: 8192, headDim: 128, causal: true }),
];

interface Variant { name: string; dtype: 'f32' | 'f16'; kernel: 'auto' | 'portable'; f32Policy?: GpuF32Policy }
const VARIANTS: Record<string, Variant> = {
  // f32 as shipped: the tensor-core split form where the adapter has subgroup matrices (setGpuF32Policy).
  f32: { name: 'f32', dtype: 'f32', kernel: 'auto' },
  // f32 under the 'exact' policy (setGpuF32Policy): prefill on the SIMT kernel, f32 FMA throughout; decode
  // keeps its decode kernels, as for `f32`.
  'f32-exact': { name: 'f32-exact', dtype: 'f32', kernel: 'auto', f32Policy: 'exact' },
  f16: { name: 'f16', dtype: 'f16', kernel: 'auto' },
  'f16-portable': { name: 'f16-portable', dtype: 'f16', kernel: 'portable' },
};

interface Row {
  shape: string;
  variant: string;
  kernel: string;
  ms: number;
  tflops: number;
  gbps: number;
  maxErr: number;
  torch: Record<string, number>;
  note?: string;
}

/** The same call over a paged copy of k/v: 16-token blocks dealt out in a shuffled order. */
async function pagedCall(ctx: Awaited<ReturnType<typeof gpuContext>>, s: AttentionShape, dtype: 'f32' | 'f16', plan: AttentionPlan, gq: GpuTensor, k: Tensor, v: Tensor): Promise<{ prepared: PreparedGpuAttention; dispose: () => void }> {
  const bs = 16, per = Math.ceil(s.seqLenK / bs), numBlocks = s.batch * per;
  const st = new KvBlockStorage(1, numBlocks, bs, s.numKvHeads, s.headDim, dtype, null);
  const rng = mulberry32(5);
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [ids[i], ids[j]] = [ids[j]!, ids[i]!]; }
  const tables = Array.from({ length: s.batch }, (_, b) => ids.slice(b * per, (b + 1) * per));
  for (let b = 0; b < s.batch; b++) {
    const slots = Array.from({ length: s.seqLenK }, (_, j) => tables[b]![Math.floor(j / bs)]! * bs + (j % bs));
    st.writeSlots(0, slots, k.select(0, b), v.select(0, b));
  }
  const mirror = await gpuKvMirror(st);
  const L = mirror.layers[0]!;
  const prepared = await prepareGpuAttention(plan, gq, null, null, undefined, undefined, undefined, { blockSize: bs, tables, kvFmt: L.kvFmt, k: L.k, v: L.v });
  const enc = ctx.device.createCommandEncoder();
  prepared.encode(enc);
  ctx.device.queue.submit([enc.finish()]);
  await ctx.device.queue.onSubmittedWorkDone();
  return { prepared, dispose: () => { prepared.destroy(); prepared.out.dispose(); prepared.lse?.dispose(); mirror.dispose(); } };
}

function randomInputs(s: AttentionShape, dtype: 'f32' | 'f16', seed: number): { host: QKV; tensors: [Tensor, Tensor, Tensor] } {
  const rng = mulberry32(seed);
  const gen = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = Math.max(rng(), 1e-12), u2 = rng(), r = Math.sqrt(-2 * Math.log(u1));
      a[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    if (dtype === 'f16') for (let i = 0; i < n; i++) a[i] = f16ToF32(f32ToF16(a[i]!)); // the values the kernel sees
    return a;
  };
  const q = gen(s.batch * s.seqLenQ * s.numHeads * s.headDim), k = gen(s.batch * s.seqLenK * s.numKvHeads * s.headDim), v = gen(s.batch * s.seqLenK * s.numKvHeads * s.headDimV);
  const t = (a: Float32Array, shp: number[]) => Tensor.fromValues(a, shp, dtype);
  return {
    host: { q, k, v },
    tensors: [t(q, [s.batch, s.seqLenQ, s.numHeads, s.headDim]), t(k, [s.batch, s.seqLenK, s.numKvHeads, s.headDim]), t(v, [s.batch, s.seqLenK, s.numKvHeads, s.headDimV])],
  };
}

function runTorch(names: string[]): { torch: string; device: string; results: { shape: string; backend: string; dtype: string; ms?: number; tflops?: number; error?: string }[] } | { error: string } {
  const py = spawnSync('python3', ['bench/torch_sdpa.py', `--shapes=${names.join(',')}`], { encoding: 'utf8', timeout: 240_000 });
  if (py.status !== 0) return { error: (py.stderr || py.error?.message || 'python3 failed').split('\n').slice(-3).join(' ') };
  try { return JSON.parse(py.stdout.trim().split('\n').pop()!); } catch (e) { return { error: `could not parse torch output: ${(e as Error).message}` }; }
}

/** Per-call time after ≥ 0.6 s of back-to-back calls: the H200 idles at 345 MHz and reaches its 1980 MHz
 * boost only after ~0.3 s of sustained load (scripts/gpu-clocks.mjs); median of 7 command buffers. */
function timeCall(ctx: Awaited<ReturnType<typeof gpuContext>>, encode: (e: GPUCommandEncoder) => void): Promise<number> {
  return timeGpu(ctx.device, encode, { warmMs: 600, samples: 7, maxIters: 2000 });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), { 'shapes=': 'comma-separated shape names', 'variants=': 'f32,f32-exact,f16,f16-portable', 'out=': 'JSON path', 'no-torch': 'skip the PyTorch peer', 'no-paged': 'skip the paged-KV runs', 'ablate=': 'a tensor-core trial form for every call (setSgmatAblation; outputs are still validated)', 'no-robustness': 'run without WebGPU bounds clamps (gpuContext robustness: false; Node/Dawn)', 'baseline=': 'an earlier bench:gpu JSON: every call timed against it, changes past the run-to-run spread flagged' }, usage);
  const pick = args.values.get('shapes');
  const shapes = pick ? GPU_SHAPES.filter((s) => pick.split(',').includes(s.name)) : GPU_SHAPES;
  const variants = (args.values.get('variants') ?? 'f32,f32-exact,f16').split(',').map((v) => VARIANTS[v] ?? (() => { throw new Error(`unknown variant ${v}`); })());
  const ctx = await gpuContext(args.flags.has('no-robustness') ? { robustness: false } : undefined);
  if (args.values.get('ablate')) { setSgmatAblation(args.values.get('ablate')!); console.log(`tensor-core trial form: ${args.values.get('ablate')}`); }
  const info = `${ctx.caps.vendor} ${ctx.caps.architecture} ${ctx.caps.description}`.trim();
  console.log(`adapter: ${info}; f16=${ctx.caps.f16} subgroups=${ctx.caps.subgroups} (${ctx.caps.subgroupMinSize}–${ctx.caps.subgroupMaxSize}) subgroup-matrix configs: ${ctx.caps.subgroupMatrix.map((c) => `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`).join(', ') || 'none'}; bounds clamps ${ctx.caps.robust ? 'on' : 'off (robustness: false)'}`);
  const ceilings: GpuCeilings = await measureGpuCeilings(ctx);
  console.log(`ceilings (this run): f32 FMA ${(ceilings.f32FmaFlops / 1e12).toFixed(1)} TFLOP/s, f16 FMA ${ceilings.f16FmaFlops ? (ceilings.f16FmaFlops / 1e12).toFixed(1) : '–'}, copy ${(ceilings.copyBytesPerSecond / 1e12).toFixed(2)} TB/s, subgroup-matrix f16→f32 ${ceilings.sgmatFlops ? (ceilings.sgmatFlops / 1e12).toFixed(0) : '–'} TFLOP/s (registers)`);
  const torch = args.flags.has('no-torch') ? { error: 'skipped (--no-torch)' } : runTorch(shapes.map((s) => s.name));
  if ('error' in torch) console.log(`PyTorch SDPA peer: ${torch.error}`);
  else console.log(`PyTorch ${torch.torch} on ${torch.device}`);

  const rows: Row[] = [];
  for (const s of shapes) {
    for (const variant of variants) {
      const { host, tensors } = randomInputs(s, variant.dtype, 11);
      const [gq, gk, gv] = await Promise.all(tensors.map((t) => GpuTensor.fromTensor(t, ctx)));
      const mask = s.causal ? causal() : null;
      const plan: AttentionPlan = planAttention(gq!, gk!, gv!, { mask });
      setGpuKernelPreference(variant.kernel);
      setGpuF32Policy(variant.f32Policy ?? 'split');
      let prepared;
      try {
        prepared = await prepareGpuAttention(plan, gq!, gk!, gv!);
      } catch (e) {
        const msg = (e as Error).message.split('\n').slice(0, 6).join(' | ');
        console.log(`${s.name} ${variant.name}: FAILED to prepare: ${msg}`);
        rows.push({ shape: s.name, variant: variant.name, kernel: 'error', ms: NaN, tflops: NaN, gbps: NaN, maxErr: NaN, torch: {}, note: msg });
        gq!.dispose(); gk!.dispose(); gv!.dispose();
        continue;
      } finally {
        setGpuKernelPreference('auto');
        setGpuF32Policy('split');
      }
      // Validate before timing.
      const enc = ctx.device.createCommandEncoder();
      prepared.encode(enc);
      ctx.device.queue.submit([enc.finish()]);
      const out = (await prepared.out.toTensor()).toFloat32();
      let maxErr = 0;
      for (const r of pickRows(s, 12)) {
        const ref = referenceRow(s, host, r, mask, false);
        const o = ((r.b * s.seqLenQ + r.i) * s.numHeads + r.h) * s.headDimV;
        for (let c = 0; c < s.headDimV; c++) maxErr = Math.max(maxErr, Math.abs(out[o + c]! - ref[c]!));
      }
      const tol = variant.dtype === 'f16' ? 2e-2 : 1e-4;
      const ok = maxErr <= tol && Number.isFinite(maxErr);
      const ms = ok ? await timeCall(ctx, (e) => prepared!.encode(e)) : NaN;
      const flops = attentionFlops(s);
      const elem = variant.dtype === 'f16' ? 2 : 4;
      const kvBytes = elem * s.batch * s.seqLenK * s.numKvHeads * (s.headDim + s.headDimV);
      const torchBy: Record<string, number> = {};
      if (!('error' in torch)) for (const t of torch.results) if (t.shape === s.name && t.tflops) torchBy[`${t.backend}-${t.dtype}`] = t.tflops;
      rows.push({
        shape: s.name, variant: variant.name, kernel: prepared.stats.kernel, ms, tflops: flops / (ms / 1e3) / 1e12, gbps: kvBytes / (ms / 1e3) / 1e9,
        maxErr, torch: torchBy, ...(ok ? {} : { note: `validation failed: max error ${maxErr.toExponential(2)} > ${tol}` }),
      });
      console.log(`${s.name} ${variant.name} [${prepared.stats.kernel}]: ${ok ? `${ms.toFixed(3)} ms, ${(flops / ms / 1e9).toFixed(1)} TFLOP/s` : `INVALID (max err ${maxErr})`}`);
      if (ok && (s.seqLenQ === 1 || variant.name === 'f16') && !args.flags.has('no-paged')) {
        // The same call over a paged KV (16-token blocks, shuffled physical ids), read through the block
        // tables in place — decode in every variant, prefill on the f16 tensor-core kernel; checked against
        // the contiguous output, then timed the same way.
        const paged = await pagedCall(ctx, s, variant.dtype, plan, gq!, tensors[1], tensors[2]);
        let pdiff = 0;
        const pout = (await paged.prepared.out.toTensor()).toFloat32();
        for (let i = 0; i < pout.length; i++) pdiff = Math.max(pdiff, Math.abs(pout[i]! - out[i]!));
        const pok = pdiff <= (variant.dtype === 'f16' ? 1e-3 : 1e-5);
        const pms = pok ? await timeCall(ctx, (e) => paged.prepared.encode(e)) : NaN;
        rows.push({
          shape: s.name, variant: `${variant.name}-paged`, kernel: paged.prepared.stats.kernel, ms: pms, tflops: flops / (pms / 1e3) / 1e12, gbps: kvBytes / (pms / 1e3) / 1e9,
          maxErr: pdiff, torch: {}, note: pok ? `paged ÷ contiguous throughput ${(ms / pms).toFixed(2)}×` : `paged output differs from contiguous by ${pdiff.toExponential(2)}`,
        });
        console.log(`${s.name} ${variant.name}-paged [${paged.prepared.stats.kernel}]: ${pok ? `${pms.toFixed(3)} ms (${(ms / pms).toFixed(2)}× contiguous)` : `INVALID (differs by ${pdiff})`}`);
        paged.dispose();
      }
      prepared.destroy();
      prepared.out.dispose(); prepared.lse?.dispose();
      gq!.dispose(); gk!.dispose(); gv!.dispose();
    }
  }

  const ratio = (r: Row, key: string) => (r.torch[key] ? (r.tflops / r.torch[key]!).toFixed(2) + '×' : '');
  const cols: Column<Row>[] = [
    { title: 'shape', cell: (r) => r.shape },
    { title: 'variant', cell: (r) => r.variant },
    { title: 'kernel', cell: (r) => r.kernel },
    { title: 'ms', cell: (r) => (Number.isFinite(r.ms) ? r.ms.toFixed(3) : 'invalid') },
    { title: 'TFLOP/s', cell: (r) => (Number.isFinite(r.tflops) ? r.tflops.toFixed(1) : '') },
    { title: 'KV GB/s', cell: (r) => (r.shape.startsWith('decode') && Number.isFinite(r.gbps) ? r.gbps.toFixed(0) : '') },
    { title: 'torch FLASH fp16', cell: (r) => r.torch['FLASH-fp16']?.toFixed(1) ?? '' },
    { title: 'torch CUDNN fp16', cell: (r) => r.torch['CUDNN-fp16']?.toFixed(1) ?? '' },
    { title: 'torch EFF fp16', cell: (r) => r.torch['EFFICIENT-fp16']?.toFixed(1) ?? '' },
    { title: 'torch EFF fp32', cell: (r) => r.torch['EFFICIENT-fp32']?.toFixed(1) ?? '' },
    { title: 'vs FLASH', cell: (r) => ratio(r, 'FLASH-fp16') },
    { title: 'vs EFF fp32', cell: (r) => ratio(r, 'EFFICIENT-fp32') },
    { title: '% ceiling', cell: (r) => {
      if (!Number.isFinite(r.tflops)) return '';
      if (r.shape.startsWith('decode')) return `${(r.gbps * 1e9 / ceilings.copyBytesPerSecond * 100).toFixed(0)}% copy`;
      const c = r.kernel === 'flash_sgmat' ? ceilings.sgmatFlops : r.variant.startsWith('f16') && ceilings.f16FmaFlops ? ceilings.f16FmaFlops : ceilings.f32FmaFlops;
      return c ? `${(r.tflops * 1e12 / c * 100).toFixed(0)}%` : '';
    } },
  ];
  console.log('\n' + formatTable(cols, rows));
  // Against an earlier run (a regression check: check:gpu cannot see a kernel that got slower).
  const baselinePath = args.values.get('baseline');
  let baseline: { file: string; rows: BaselineRow[] } | undefined;
  if (baselinePath) {
    const earlier = JSON.parse(readFileSync(baselinePath, 'utf8')) as { results?: { shape: string; variant: string; ms: number | string }[] };
    const cmp = compareToBaseline(rows, earlier.results ?? []);
    baseline = { file: baselinePath, rows: cmp };
    console.log(`\nagainst ${baselinePath} (same shapes and variants; ±${BASELINE_TOLERANCE * 100}% taken as run-to-run spread):`);
    console.log(formatTable<BaselineRow>([
      { title: 'call', cell: (r) => r.name },
      { title: 'before ms', cell: (r) => r.beforeMs.toFixed(3) },
      { title: 'now ms', cell: (r) => r.nowMs.toFixed(3) },
      { title: 'now ÷ before', cell: (r) => r.ratio.toFixed(2) },
      { title: 'verdict', cell: (r) => (r.verdict === 'same' ? '' : r.verdict.toUpperCase()) },
    ], cmp));
    const slower = cmp.filter((r) => r.verdict === 'slower');
    if (slower.length) console.log(`REGRESSION: ${slower.map((r) => `${r.name} ${r.ratio.toFixed(2)}×`).join(', ')} slower than ${baselinePath}`);
  }
  const machine = machineInfo();
  const command = `npm run bench:gpu -- ${process.argv.slice(2).join(' ')}`.trim();
  const file = {
    bench: 'gpu', command, machine, adapter: info, caps: ctx.caps, ceilings,
    torch: 'error' in torch ? torch : { version: torch.torch, device: torch.device },
    method: 'after ≥ 0.6 s of back-to-back calls (clock warm-up), median of 7 samples; each sample = one command buffer of N calls (≥ 20 ms), per-call time = sample / N',
    results: rows, ...(baseline ? { baseline } : {}), torchResults: 'error' in torch ? [] : torch.results, markdown: markdownTable(cols, rows),
  };
  const out = args.values.get('out') ?? `${resultsDir()}/gpu.json`;
  console.log(`\nwrote ${writeJson(out, file)}`);
  // The cost model's measured profile and its predictions for these shapes.
  const profile = {
    schema: BENCH_SCHEMA, device: `${info} via WebGPU`, name: 'webgpu-measured', api: 'webgpu', base: 'h200', date: machine.date.slice(0, 10),
    ceilings: {
      // f32 on tensor units: the split form's three f16 products per f32 product (SgmatVariant.split).
      f32: { vector: ceilings.f32FmaFlops, ...(ceilings.sgmatFlops ? { tensor: ceilings.sgmatFlops / 3 } : {}) },
      f16: { vector: ceilings.f16FmaFlops ?? ceilings.f32FmaFlops, ...(ceilings.sgmatFlops ? { tensor: ceilings.sgmatFlops } : {}) },
      bandwidth: ceilings.copyBytesPerSecond,
      sources: { 'f16.tensor': 'subgroup-matrix f16→f32 MMA from registers (bench/lib/gpu-ceilings.ts)', 'f32.tensor': 'a third of f16.tensor: the split form takes three f16 products per f32 product' },
    },
    results: rows.filter((r) => Number.isFinite(r.ms)).map((r) => {
      const s = shapes.find((x) => x.name === r.shape)!;
      return { name: `${r.shape}/${r.variant}`, ms: r.ms, unit: r.kernel === 'flash_sgmat' ? 'tensor' : 'vector', shape: { batch: s.batch, seqLenQ: s.seqLenQ, seqLenK: s.seqLenK, numHeads: s.numHeads, numKvHeads: s.numKvHeads, headDim: s.headDim, dtype: r.variant.startsWith('f16') ? 'f16' : 'f32', causal: s.causal } };
    }),
  };
  writeJson(out.replace(/\.json$/, '-profile.json'), profile);
  try {
    const table = (title: string, pred: ReturnType<typeof comparePredictions>) => {
      console.log(title);
      console.log(formatTable([
        { title: 'call', cell: (p: typeof pred[number]) => p.name },
        { title: 'measured ms', cell: (p) => p.measuredMs.toFixed(3) },
        { title: 'predicted ms', cell: (p) => p.predictedMs.toFixed(3) },
        { title: 'ratio', cell: (p) => p.ratio.toFixed(2) },
        { title: 'within 2×', cell: (p) => (p.within2x ? 'yes' : 'no') },
        { title: 'bound', cell: (p) => p.bound },
        { title: 'rate from', cell: (p) => (p.calibration === 'ceiling' ? 'ceiling' : `${p.calibratedFrom!.length} other shapes, ${(p.calibratedFlopsPerSecond! / 1e12).toFixed(1)} TFLOP/s`) },
      ], pred));
    };
    table('\ncost model (measured profile), roofline lower bounds on the measured ceilings vs measured:', comparePredictions(profile));
    table('\ncost model, each compute-bound shape predicted from the rate the same kernel sustained on the other shapes (leave-one-out):', comparePredictions(profile, undefined, { calibrate: 'leave-one-out' }));
  } catch (e) {
    console.log(`cost-model comparison failed: ${(e as Error).message}`);
  }
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
