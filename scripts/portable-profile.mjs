// The portable f32 kernel as chosen by default, then with one choice changed at a time: two rows a thread
// (four is the default), 16-dim S slices instead of 32, the V-as-vec4 column mapping flipped from its
// default for the head dim, scalar storage loads instead of four-element ones, and V in chunks where the
// whole tile would fit (vfull off: it changes only value head dims 72–112), without the V prefetch (vpre
// off), and with further V chunks loaded in place (vnext off; it changes only tiles of two or more V
// chunks); on four shapes. EXPERIMENTS='<JSON tuning>': the default against that form, each twice (a JSON array:
// the default, then each form once). ABLATE=1: the default
// form with parts dropped instead (setPortableTuning({ ablate }): 1 Q/K slice loads, 2 S FMAs, 4 softmax,
// 8 V loads, 16 P·V FMAs; each part's cost shows as the time saved). Usage (after npm run build, on a GPU): node scripts/portable-profile.mjs
import { GpuTensor, Tensor, gpuContext, planAttention, prepareGpuAttention, setGpuKernelPreference } from '../dist/index.js';
import { portableUsesV4, setPortableTuning } from '../dist/kernels/webgpu/attention-gpu.js';
import { timeGpu } from './lib/gpu-time.mjs';

const ctx = await gpuContext();
const shapes = process.env.SMALL ? [['small B1 H2 N200 d64', 1, 2, 200, 64]] : [
  ['vitL B8 H16 N577 d64', 8, 16, 577, 64],
  ['qwen B1 H16 N5329 d80', 1, 16, 5329, 80],
  ['8k B1 H16 N8192 d64', 1, 16, 8192, 64],
  ['B1 H16 N4096 d128', 1, 16, 4096, 128],
];
setGpuKernelPreference('portable');
const DEFAULTS = { pch: true, wide: true, v4: 'auto', rows: 'auto', vecLoads: true, ablate: 0, vfull: true, vpre: true, vnext: 'auto' };
let seed = 5;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 - 0.5; };
for (const [name, B, H, N, d] of shapes) {
  const mk = () => GpuTensor.fromTensor(Tensor.fromValues(Float32Array.from({ length: B * N * H * d }, rnd), [B, N, H, d], 'f32'), ctx);
  const q = await mk(), k = await mk(), v = await mk();
  const plan = planAttention(q, k, v, {});
  const cells = [];
  let ref = null;
  // Each form: the default tuning with the listed choices changed.
  // EXPERIMENTS='<JSON tuning>' (e.g. '{"vnext":false}'): that form, twice against the default, alternating.
  const forms = process.env.ABLATE === '1'
    ? [0, 1, 2, 4, 8, 16, 31].map((ablate) => ({ ablate }))
    : process.env.EXPERIMENTS
      ? (Array.isArray(JSON.parse(process.env.EXPERIMENTS)) ? [{}, ...JSON.parse(process.env.EXPERIMENTS)] : [{}, JSON.parse(process.env.EXPERIMENTS), {}, JSON.parse(process.env.EXPERIMENTS)])
      : [{}, { pch: false }, { rows: 2 }, { wide: false }, { v4: !portableUsesV4(d) }, { vecLoads: false }, { vfull: false }, { vpre: false }, { vnext: false }];
  for (const form of forms) {
    setPortableTuning({ ...DEFAULTS, ...form });
    const ablate = form.ablate ?? 0;
    const prep = await prepareGpuAttention(plan, q, k, v);
    const ms = await timeGpu(ctx.device, (e) => prep.encode(e));
    const o = (await prep.out.toTensor()).toFloat32();
    let diff = '';
    if (!ref) ref = o;
    else if (!ablate) { let e = 0; for (let i = 0; i < o.length; i++) e = Math.max(e, Math.abs(o[i] - ref[i])); diff = `, Δ ${e.toExponential(1)}`; }
    cells.push(`${/"pch":true/.test(prep.stats.key) ? 'P by chunk, ' : ''}${/"wide":true/.test(prep.stats.key) ? '32-dim' : '16-dim'} slices${/"v4":true/.test(prep.stats.key) ? ', V as vec4' : ''}${/"r2":true/.test(prep.stats.key) ? ', 2 rows a thread' : ''}${/"vload":true/.test(prep.stats.key) ? '' : ', scalar loads'}${/"vfull":true/.test(prep.stats.key) ? ', whole V tile' : ''}${/"vpre":true/.test(prep.stats.key) ? ', V prefetch' : ''}${/"vnext":true/.test(prep.stats.key) ? ', next V chunk prefetch' : ''}${ablate ? ` ablate ${ablate}` : ''} ${ms.toFixed(3)} ms (${(4 * B * H * N * N * d / ms / 1e9).toFixed(1)} TF${diff})`);
    prep.destroy(); prep.out.dispose(); prep.lse?.dispose();
  }
  console.log(`${name} f32 portable: ${cells.join(' | ')}`);
  q.dispose(); k.dispose(); v.dispose();
}
setPortableTuning(DEFAULTS);
process.exit(0);
