// Does the GPU's clock ramp explain the "placement sensitivity"? Runs one attention call back to back
// for a few seconds (two batches always in flight), prints the per-call time in successive windows,
// and logs nvidia-smi's SM/memory clocks and P-state alongside (every 100 ms).
// Usage (after npm run build, on an NVIDIA machine): node scripts/gpu-clocks.mjs [seconds]
import { spawn } from 'node:child_process';
import { GpuTensor, Tensor, gpuContext, planAttention, prepareGpuAttention } from '../dist/index.js';

const seconds = Number(process.argv[2] ?? 3);
const ctx = await gpuContext();
const dev = ctx.device;
const t00 = performance.now();
const smi = [];
const mon = spawn('nvidia-smi', ['--query-gpu=clocks.sm,clocks.mem,pstate,power.draw,utilization.gpu', '--format=csv,noheader', '-lms', '100']);
mon.stdout.on('data', (d) => { for (const line of String(d).trim().split('\n')) smi.push([performance.now() - t00, line.trim()]); });
mon.on('error', () => {});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function normal(n, seed) {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd()));
}
async function prepare(B, H, N, d, dtype) {
  const shape = [B, N, H, d], n = B * N * H * d;
  const [q, k, v] = await Promise.all([1, 2, 3].map((s) => GpuTensor.fromTensor(Tensor.fromValues(normal(n, s), shape, dtype), ctx)));
  const prep = await prepareGpuAttention(planAttention(q, k, v, {}), q, k, v);
  return { prep, flops: 4 * B * H * N * N * d, dispose() { prep.destroy(); prep.out.dispose(); q.dispose(); k.dispose(); v.dispose(); } };
}

/** Back-to-back batches for `sec` seconds; returns [t_end_ms, ms_per_call] per batch. */
async function sustained(encode, perCallMs, sec) {
  const iters = Math.max(1, Math.round(10 / perCallMs)); // ~10 ms batches
  const out = [];
  const t0 = performance.now();
  let inflight = [];
  const submit = () => {
    const enc = dev.createCommandEncoder();
    for (let i = 0; i < iters; i++) encode(enc);
    dev.queue.submit([enc.finish()]);
    return dev.queue.onSubmittedWorkDone();
  };
  let last = t0;
  inflight.push(submit(), submit());
  while (performance.now() - t0 < sec * 1000) {
    await inflight.shift();
    const now = performance.now();
    out.push([now - t0, (now - last) / iters]);
    last = now;
    inflight.push(submit());
  }
  await Promise.all(inflight);
  return out;
}
function windows(series, flops) {
  const edges = [0, 50, 100, 200, 500, 1000, 2000, 5000, 1e9];
  const cells = [];
  for (let w = 0; w + 1 < edges.length; w++) {
    const xs = series.filter(([t]) => t >= edges[w] && t < edges[w + 1]).map(([, m]) => m).sort((a, b) => a - b);
    if (xs.length) { const m = xs[xs.length >> 1]; cells.push(`${edges[w]}–${edges[w + 1] === 1e9 ? 'end' : edges[w + 1]} ms: ${m.toFixed(3)} ms ${(flops / m / 1e9).toFixed(1)} TF`); }
  }
  return cells.join(' | ');
}

for (const [name, B, H, N, d] of [['vitL14 B8 H16 N577 d64', 8, 16, 577, 64], ['8k B1 H16 N8192 d64', 1, 16, 8192, 64]]) {
  const c = await prepare(B, H, N, d, ctx.caps.f16 ? 'f16' : 'f32');
  await sleep(1500); // let the GPU idle down
  const tStart = performance.now() - t00;
  const s = await sustained((e) => c.prep.encode(e), 1, seconds);
  const tEnd = performance.now() - t00;
  console.log(`${name} [${c.prep.stats.kernel}] sustained ${seconds}s from idle: ${windows(s, c.flops)}`);
  console.log('  nvidia-smi during the run (t ms: sm MHz, mem MHz, pstate, W, util):');
  for (const [t, l] of smi.filter(([t]) => t >= tStart - 200 && t <= tEnd)) console.log(`   ${(t - tStart).toFixed(0).padStart(6)}: ${l}`);
  c.dispose();
}
mon.kill();
process.exit(0);
