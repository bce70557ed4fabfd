// A/B of two builds of the library in one process, for kernel changes that are not a tuning switch:
// OLD (default build/dist-old: e.g. `git stash; npm run build; cp -r dist build/dist-old; git stash pop;
// npm run build`) against dist, alternating old/new/old/new per shape, with max |Δ| between their outputs.
// Usage (on a GPU; on the H200 carry "build" too): node scripts/ab-builds.mjs [portable|sgmat] [f32|f16]
// TUNING='<JSON>' applies setPortableTuning to both builds (e.g. '{"vecLoads":false}': scalar loads).
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { timeGpu } from './lib/gpu-time.mjs';

const [pref = 'portable', dtype = pref === 'sgmat' ? 'f16' : 'f32'] = process.argv.slice(2);
const oldDir = resolve(process.env.OLD ?? 'build/dist-old');
const mods = { old: await import(pathToFileURL(`${oldDir}/index.js`).href), new: await import('../dist/index.js') };
if (process.env.TUNING) {
  const t = JSON.parse(process.env.TUNING);
  (await import(pathToFileURL(`${oldDir}/kernels/webgpu/attention-gpu.js`).href)).setPortableTuning(t);
  (await import('../dist/kernels/webgpu/attention-gpu.js')).setPortableTuning(t);
}
const shapes = [
  ['siglip B8 H16 N729 d72', 8, 729, 16, 72],
  ['qwen B1 H16 N5329 d80', 1, 5329, 16, 80],
  ['vitL B8 H16 N577 d64', 8, 577, 16, 64],
];
for (const [name, B, N, H, d] of shapes) {
  const preps = {};
  for (const [tag, M] of Object.entries(mods)) {
    const ctx = await M.gpuContext();
    M.setGpuKernelPreference(pref);
    const mk = async (seed) => M.GpuTensor.fromTensor(M.randn([B, N, H, d], seed, dtype), ctx);
    const q = await mk(1), k = await mk(2), v = await mk(3);
    preps[tag] = { prep: await M.prepareGpuAttention(M.planAttention(q, k, v, {}), q, k, v), ctx };
  }
  const cells = [], outs = {};
  for (const tag of ['old', 'new', 'old', 'new']) {
    const { prep, ctx } = preps[tag];
    const ms = await timeGpu(ctx.device, (e) => prep.encode(e));
    outs[tag] ??= (await prep.out.toTensor()).toFloat32();
    cells.push(`${tag} ${ms.toFixed(3)} ms (${((4 * B * H * N * N * d) / ms / 1e9).toFixed(1)} TF)`);
  }
  let e = 0;
  for (let i = 0; i < outs.old.length; i++) e = Math.max(e, Math.abs(outs.old[i] - outs.new[i]));
  console.log(`${name} ${dtype} ${pref}${process.env.TUNING ? ` ${process.env.TUNING}` : ''}: ${cells.join(' | ')} | Δ ${e}`);
}
process.exit(0);
