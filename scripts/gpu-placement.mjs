// Diagnoses why the same kernel on the same shape times differently within one process
// (BENCHMARKS.md, "placement sensitivity"). Three experiments, printed as they run:
//   1. read bandwidth of freshly created storage buffers of several sizes, in creation order, with
//      the GPU's used memory (nvidia-smi) before and after, so a buffer left in host memory shows;
//   2. one attention call timed again and again while other buffers are created, destroyed and the
//      GPU is loaded in between: does the slowdown attach to the buffers, the process, or the data?
//   3. the same shape with normal vs sinusoidal data in the same buffers.
// Usage (after npm run build): node scripts/gpu-placement.mjs
import { execFileSync } from 'node:child_process';
import { GpuTensor, Tensor, gpuContext, planAttention, prepareGpuAttention } from '../dist/index.js';
import { timeGpu } from './lib/gpu-time.mjs';

const ctx = await gpuContext();
const dev = ctx.device;
const usedMiB = () => { try { return Number(execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], { encoding: 'utf8' }).trim().split('\n')[0]); } catch { return NaN; } };
const log = (...a) => console.log(...a);
// No clock warm-up: this script shows what short timings from an idle GPU read (the effect it chased).
const timeCold = (encode) => timeGpu(dev, encode, { warmMs: 0 });


// ---- 1. read bandwidth per buffer ----
const READ = `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = arrayLength(&src);
  let stride = nw.x * 256u;
  var acc = vec4<u32>(0u);
  for (var i = g.x; i < n; i += stride) { acc ^= src[i]; }
  let r = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (r == 0x9e3779b9u) { dst[g.x] = r; }
}`;
const readPipe = dev.createComputePipeline({ layout: 'auto', compute: { module: dev.createShaderModule({ code: READ }), entryPoint: 'main' } });
const sink = dev.createBuffer({ size: 4 * 256 * 4096, usage: GPUBufferUsage.STORAGE });
async function readGBs(buf) {
  const bg = dev.createBindGroup({ layout: readPipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }, { binding: 1, resource: { buffer: sink } }] });
  const ms = await timeCold((enc) => { const p = enc.beginComputePass(); p.setPipeline(readPipe); p.setBindGroup(0, bg); p.dispatchWorkgroups(4096); p.end(); });
  return buf.size / (ms / 1e3) / 1e9;
}
function makeBuf(bytes, fill) {
  const b = dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  if (fill) dev.queue.writeBuffer(b, 0, new Uint8Array(bytes).fill(7));
  return b;
}
log('## 1. read bandwidth of fresh buffers (GB/s), GPU memory used (MiB)');
let m0 = usedMiB();
const live = [];
for (const [mb, fill] of [[64, true], [64, false], [256, true], [1024, true], [1024, false], [16, true], [4, true], [256, true]]) {
  const b = makeBuf(mb << 20, fill);
  await dev.queue.onSubmittedWorkDone();
  const m1 = usedMiB();
  live.push(b);
  log(`  ${mb} MiB ${fill ? 'written' : 'unwritten'}: ${(await readGBs(b)).toFixed(0)} GB/s; used +${m1 - m0} MiB`);
  m0 = m1;
}
log('  again, in creation order: ' + (await Promise.all([])).length + (await (async () => { const r = []; for (const b of live) r.push((await readGBs(b)).toFixed(0)); return r.join(' '); })()));
for (const b of live.splice(0, 4)) b.destroy();
for (const mb of [64, 64, 64, 64]) { const b = makeBuf(mb << 20, true); live.push(b); }
log('  after destroying four and creating four 64 MiB: ' + (await (async () => { const r = []; for (const b of live) r.push((await readGBs(b)).toFixed(0)); return r.join(' '); })()));
for (const b of live) b.destroy();

// ---- 2./3. one attention call, timed while the process's buffers change ----
function normalData(n, seed) {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd()));
}
async function attn(name, B, H, N, d, dtype, data = 'normal') {
  const shape = [B, N, H, d], n = B * N * H * d;
  const mk = (seed) => GpuTensor.fromTensor(Tensor.fromValues(data === 'normal' ? normalData(n, seed) : Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed)), shape, dtype), ctx);
  const q = await mk(1), k = await mk(2), v = await mk(3);
  const plan = planAttention(q, k, v, {});
  const prep = await prepareGpuAttention(plan, q, k, v);
  const flops = 4 * B * H * N * N * d;
  const run = async (label) => { const ms = await timeCold((e) => prep.encode(e)); log(`  ${name} ${dtype} ${data} [${prep.stats.kernel}] ${label}: ${ms.toFixed(3)} ms ${(flops / ms / 1e9).toFixed(1)} TFLOP/s`); return ms; };
  const dispose = () => { prep.destroy(); prep.out.dispose(); prep.lse?.dispose(); q.dispose(); k.dispose(); v.dispose(); };
  return { run, dispose, q, k, v };
}
const f16 = ctx.caps.f16 ? 'f16' : 'f32';
log('## 2. one call re-timed while other buffers come and go');
const a = await attn('vitL14 B8 H16 N577 d64', 8, 16, 577, 64, f16);
await a.run('first');
await a.run('again');
const big = [];
for (let i = 0; i < 6; i++) big.push(makeBuf(512 << 20, true));
await dev.queue.onSubmittedWorkDone();
await a.run('with 3 GiB of other buffers alive');
for (const b of big) b.destroy();
await a.run('after they were destroyed');
const b8 = await attn('8k B1 H16 N8192 d64', 1, 16, 8192, 64, f16);
await b8.run('first');
await a.run('after the 8k call was prepared');
const a2 = await attn('vitL14 B8 H16 N577 d64', 8, 16, 577, 64, f16);
await a2.run('fresh buffers, same shape');
await b8.run('again');
a.dispose(); a2.dispose(); b8.dispose();
const a3 = await attn('vitL14 B8 H16 N577 d64', 8, 16, 577, 64, f16);
await a3.run('fresh after disposing all');
a3.dispose();
log('## 3. data');
const s1 = await attn('vitL14 B8 H16 N577 d64', 8, 16, 577, 64, f16, 'sin');
await s1.run('sin data');
s1.dispose();
const f32 = await attn('vitL14 B8 H16 N577 d64', 8, 16, 577, 64, 'f32');
await f32.run('f32 portable');
f32.dispose();
