// Where the tensor-core kernel's time goes: times a few shapes with parts of the kernel dropped
// (setSgmatAblation) and prints ms per variant. Outputs are wrong in the ablated runs; only time counts.
// Usage (after npm run build, on a GPU with subgroup matrices): node scripts/sgmat-profile.mjs [ablations…]
import { GpuTensor, Tensor, gpuContext, planAttention, prepareGpuAttention, setGpuKernelPreference, causal } from '../dist/index.js';
import { setSgmatAblation } from '../dist/kernels/webgpu/sgmat.js';
import { timeGpu } from './lib/gpu-time.mjs';

// ROBUST=0: Dawn's bounds clamps off (gpuContext({ robustness: false })).
const ctx = await gpuContext(process.env.ROBUST === '0' ? { robustness: false } : undefined);
// SWEEP=1: key lengths 1024–4096 at a fixed token count (B·N = 8192), d64 and d128, instead of the usual shapes.
// D80=1: head dims 72 and 80 (16-dim padded to 80: SigLIP, Qwen2-VL) at 729–5329 keys.
// WAVES=1: 8k-d64 at 10, 13, 16 and 20 heads — 1280, 1664, 2048 and 2560 workgroups, 1.94, 2.52, 3.10 and
// 3.88 waves of the 660 resident at d64 (5 a unit, 'occ') — to see what the last, partly filled wave costs.
// WAVES=2: the same at the two-block kernel's 396 resident (3 a unit) — 12 to 24 heads, 1.94 to 3.88 waves —
// and qwen2vl's d80 (528 resident, 4 a unit) at 12 to 20 heads, 1.91 to 3.18 waves.
const shapes = process.env.WAVES === '1' ? [10, 13, 16, 20].map((H) => [`8k B1 H${H} N8192 d64`, 1, H, 8192, 64, false])
  : process.env.WAVES === '2' ? [...[12, 14, 16, 18, 20, 24].map((H) => [`8k B1 H${H} N8192 d64`, 1, H, 8192, 64, false]),
    ...[12, 14, 16, 17, 19, 20].map((H) => [`qwen B1 H${H} N5329 d80`, 1, H, 5329, 80, false])]
  : process.env.D80 === '1' ? [
  ['siglip B8 H16 N729 d72', 8, 16, 729, 72, false],
  ['B8 H16 N1024 d72', 8, 16, 1024, 72, false],
  ['B4 H16 N2048 d80', 4, 16, 2048, 80, false],
  ['qwen B1 H16 N5329 d80', 1, 16, 5329, 80, false],
] : process.env.SWEEP === '1' ? [
  ['B8 H16 N1024 d64', 8, 16, 1024, 64, false],
  ['B4 H16 N2048 d64', 4, 16, 2048, 64, false],
  ['B3 H16 N3072 d64', 3, 16, 3072, 64, false],
  ['B2 H16 N4096 d64', 2, 16, 4096, 64, false],
  ['B8 H16 N1024 d128', 8, 16, 1024, 128, false],
  ['B4 H16 N2048 d128', 4, 16, 2048, 128, false],
  ['B2 H16 N4096 d128', 2, 16, 4096, 128, false],
] : [
  ['vitL B8 H16 N577 d64', 8, 16, 577, 64, false],
  ['vitL B1 H128 N577 d64', 1, 128, 577, 64, false],
  ['8k B1 H16 N8192 d64', 1, 16, 8192, 64, false],
  ['qwen B1 H16 N5329 d80', 1, 16, 5329, 80, false],
  ['8k causal B1 H16 N8192 d128', 1, 16, 8192, 128, true],
];
// ONLY=<text>: just the shapes whose name contains it.
if (process.env.ONLY) shapes.splice(0, shapes.length, ...shapes.filter(([name]) => name.includes(process.env.ONLY)));
const ablations = process.argv.length > 2 ? process.argv.slice(2) : ['', 'load', 'qk', 'softmax', 'pv', 'load,qk,softmax,pv'];
setGpuKernelPreference('sgmat');
for (const [name, B, H, N, d, c] of shapes) {
  const shape = [B, N, H, d];
  // Independent standard-normal q, k, v (SAME=1: one sin-filled tensor for all three).
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());
  // DTYPE=f32: f32 inputs, i.e. the split form (SgmatVariant.split).
  const make = async (f) => GpuTensor.fromTensor(Tensor.fromValues(Float32Array.from({ length: B * N * H * d }, f), shape, process.env.DTYPE === 'f32' ? 'f32' : 'f16'), ctx);
  const same = process.env.SAME === '1';
  const gq = same ? await make((_, i) => Math.sin(i * 0.37)) : await make(normal);
  const gk = same ? gq : await make(normal), gv = same ? gq : await make(normal);
  const g = gq;
  const plan = planAttention(gq, gk, gv, { mask: c ? causal() : null });
  // 'occ' forms count resident workgroups in the LSE buffer (sgmat.ts), so they need one.
  const planOcc = planAttention(gq, gk, gv, { mask: c ? causal() : null, returnLse: true });
  const flops = 4 * B * H * N * N * d / (c ? 2 : 1);
  const cells = [];
  // Experiments (no part dropped) must give the full kernel's output: max |difference| is printed.
  const dropped = (a) => /load|qk|softmax|pv|occ/.test(a);
  let ref = null;
  for (const a of ablations) {
    setSgmatAblation(a);
    const occ = a.split(',').includes('occ');
    const prep = await prepareGpuAttention(occ ? planOcc : plan, gq, gk, gv);
    const ms = await timeGpu(ctx.device, (e) => prep.encode(e));
    let check = '';
    if (occ) {
      const [now, high] = new Uint32Array((await prep.lse.toTensor()).toFloat32().buffer, 0, 2);
      check = `, ${high} resident workgroups${now ? `, ${now} left counted in!` : ''}`;
    }
    if (!dropped(a)) {
      const o = (await prep.out.toTensor()).toFloat32();
      if (!ref) ref = o;
      else { let e = 0; for (let i = 0; i < o.length; i++) e = Math.max(e, Math.abs(o[i] - ref[i]) || (o[i] === ref[i] ? 0 : Infinity)); check = `, Δ ${e.toExponential(1)}`; }
    }
    cells.push(`${a || 'full'} ${ms.toFixed(3)} ms (${(flops / ms / 1e9).toFixed(1)} TF${check})`);
    prep.destroy(); prep.out.dispose(); prep.lse?.dispose();
  }
  setSgmatAblation('');
  console.log(`${name}: ${cells.join(' | ')}`);
  gq.dispose(); if (!same) { gk.dispose(); gv.dispose(); }
}
