// Where the decode kernel's time goes, and how it depends on the split count: times decode-kv4k
// (B16 H32/8 Sq1 Sk4096 d128) in f16 and f32: decode_split against decode_warp, the split target and
// decode_warp's keys per batch varied, then with parts of the kernel dropped (setDecodeTuning({ ablate }):
// outputs are wrong in those runs; only time counts).
// Usage (after npm run build, on a GPU): node scripts/decode-profile.mjs
import { GpuTensor, Tensor, gpuContext, planAttention, prepareGpuAttention, setGpuKernelPreference } from '../dist/index.js';
import { DECODE_TUNING_DEFAULTS, setDecodeTuning } from '../dist/kernels/webgpu/attention-gpu.js';
import { timeGpu } from './lib/gpu-time.mjs';

const ctx = await gpuContext();
// SMALL=1: a small shape, to try the script on a slow adapter.
// B=<n>: another batch size (decode-kv4k's H32/8 Sk4096 d128 otherwise).
const [B, H, Hk, Sk, d] = process.env.SMALL ? [2, 8, 2, 512, 64] : [Number(process.env.B ?? 16), 32, 8, 4096, 128];
let seed = 3;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
for (const dtype of ctx.caps.f16 ? ['f16', 'f32'] : ['f32']) {
  const mk = (shape) => GpuTensor.fromTensor(Tensor.fromValues(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rnd), shape, dtype), ctx);
  const q = await mk([B, 1, H, d]), k = await mk([B, Sk, Hk, d]), v = await mk([B, Sk, Hk, d]);
  const bytes = 2 * B * Sk * Hk * d * (dtype === 'f16' ? 2 : 4);
  const plan = planAttention(q, k, v, {});
  let ref = null;
  const run = async (label, t, pref = 'decode') => {
    setGpuKernelPreference(pref);
    setDecodeTuning({ ...DECODE_TUNING_DEFAULTS, ...t });
    const prep = await prepareGpuAttention(plan, q, k, v);
    const ms = await timeGpu(ctx.device, (e) => prep.encode(e));
    const kernel = `${/decode_(warp|split)/.exec(prep.stats.key)?.[0] ?? prep.stats.kernel}${prep.stats.key.includes('"fin"') ? ` fused${/"SS":\d/.exec(prep.stats.key)?.[0].replace('"SS":', ' SS ') ?? ' SS 1'}` : ''}`;
    // Runs that drop nothing must agree with the first one (decode_split): max |difference| printed.
    let check = '';
    if (!t.ablate) {
      const o = (await prep.out.toTensor()).toFloat32();
      if (!ref) ref = o;
      else { let e = 0; for (let i = 0; i < o.length; i++) e = Math.max(e, Math.abs(o[i] - ref[i]) || (o[i] === ref[i] ? 0 : Infinity)); check = `, Δ ${e.toExponential(1)}`; }
    }
    prep.destroy(); prep.out.dispose(); prep.lse?.dispose();
    return `${label} ${ms.toFixed(3)} ms (${(bytes / ms / 1e6).toFixed(0)} GB/s${pref === 'decode' ? `, ${kernel}` : ''}${check})`;
  };
  if (process.env.QUICK === '5') {
    // QUICK=5 (with B=…): the defaults against split + merge, alternating, twice.
    const cells = [];
    for (let rep = 0; rep < 2; rep++) cells.push(await run('default:', {}), await run('split + merge:', { fuse: false }));
    console.log(`B${B} H${H}/${Hk} Sk${Sk} d${d} ${dtype}: ${cells.join(' | ')}`);
    continue;
  }
  if (process.env.QUICK === '4') {
    // QUICK=4 (with B=…): the defaults (fused where the plan takes it) against split + merge at this batch size.
    const cells = [];
    for (let rep = 0; rep < 2; rep++) cells.push(await run('default:', {}), await run('split + merge:', { fuse: false }));
    console.log(`B${B} H${H}/${Hk} Sk${Sk} d${d} ${dtype}: ${cells.join(' | ')}`);
    continue;
  }
  if (process.env.QUICK === '3') {
    // QUICK=3: the fused kernel (one workgroup of 4·SS subgroups per sequence and KV head, no merge; SS from
    // the split target: 128 → 1, 256 → 2, 384 → 3, 512 → 4 at decode-kv4k's 128 pairs) against split + merge.
    const cells = [];
    for (let rep = 0; rep < 2; rep++) {
      cells.push(await run('default:', {}), await run('split + merge:', { fuse: false }), await run('split + merge, merge skipped:', { fuse: false, ablate: 32 }));
      for (const target of [128, 384, 512]) cells.push(await run(`target ${target}:`, { target }));
      cells.push(await run('split + merge, target 384:', { fuse: false, target: 384 }));
    }
    console.log(`decode-kv4k ${dtype}, fused: ${cells.join(' | ')}`);
    continue;
  }
  if (process.env.QUICK === '2') {
    // QUICK=2: f16 only, the split target swept (how many workgroups a call is cut into) with the defaults
    // in between, and keys per batch / prefetch depth at the two best-known targets.
    if (dtype !== 'f16') break;
    const cells = [];
    for (const target of [256, 160, 192, 224, 256, 288, 320, 384, 448, 256]) cells.push(await run(`target ${target}:`, { target }));
    for (const target of [256, 384]) for (const [kb, pipe] of [[2, 1], [2, 2], [4, 2]]) cells.push(await run(`target ${target} kb ${kb} pipe ${pipe}:`, { target, kb, pipe }));
    console.log(`decode-kv4k ${dtype}, sweep: ${cells.join(' | ')}`);
    break;
  }
  if (process.env.QUICK) {
    // QUICK=1: f16 only, the defaults (16-byte loads) against 8-byte loads and nearby split targets.
    if (dtype !== 'f16') break;
    const quick = [await run('decode_split:', {}, 'decode-split'), await run('default:', {}), await run('8-byte loads:', { wide: false }), await run('target 128:', { target: 128 }), await run('target 192:', { target: 192 }), await run('target 384:', { target: 384 }), await run('kb 4:', { kb: 4 }), await run('prefetch 2:', { pipe: 2 }), await run('default again:', {})];
    console.log(`decode-kv4k ${dtype}, quick: ${quick.join(' | ')}`);
    break;
  }
  const cells = [await run('decode_split:', {}, 'decode-split'), await run('default:', {}), await run('no combine:', { combine: false }), await run('no prefetch:', { pipe: 0 }), await run('prefetch 2:', { pipe: 2 }), await run('prefetch 2, target 512:', { pipe: 2, target: 512 })];
  for (const target of [128, 512]) cells.push(await run(`target ${target}:`, { target }));
  for (const kb of [4]) cells.push(await run(`kb ${kb}:`, { kb }));
  console.log(`decode-kv4k ${dtype}, kernel and tuning: ${cells.join(' | ')}`);
  const ab = [];
  for (const [name, bits] of [['full', 0], ['-K loads', 1], ['-V loads', 8], ['-K,V loads', 9], ['-reduction', 2], ['-P·V', 16], ['-reduction,P·V', 18], ['-all', 27]]) ab.push(await run(`${name}:`, { ablate: bits }));
  console.log(`decode-kv4k ${dtype}, parts dropped (defaults): ${ab.join(' | ')}`);
  setDecodeTuning(DECODE_TUNING_DEFAULTS);
  setGpuKernelPreference('auto');
  q.dispose(); k.dispose(); v.dispose();
}
process.exit(0);
