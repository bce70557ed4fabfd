// Decode over L layers' K/V in turn (as a model's decode step does: each layer's cache is read once, and the
// other layers' reads evict it from the last-level cache before its next use), against one layer repeated (the
// benchmark's regime: K/V stay in cache between calls when they fit). decode-kv4k's shape by default.
// Usage (after npm run build): node --experimental-wasm-relaxed-simd scripts/decode-layers.mjs
// Env: L (layers, default 32), T (threads, default 2), SK (4096), H (32), HK (8), D (128), R (rounds, 10),
// SIMD128=1 (the SIMD128 build), DIST (another build's dist/index.js), RA (decodeReadAhead: auto, on, off; default auto).
const { attention, configureCpu, cpuTensor } = await import(process.env.DIST ? new URL(process.env.DIST, `file://${process.cwd()}/`).href : '../dist/index.js');

const env = (k, d) => Number(process.env[k] ?? d);
const L = env('L', 32), threads = env('T', 2), Sk = env('SK', 4096), H = env('H', 32), Hk = env('HK', 8), d = env('D', 128), rounds = env('R', 10);
await configureCpu({ relaxedSimd: !process.env.SIMD128, threads, ...(process.env.RA ? { decodeReadAhead: process.env.RA } : {}) });
const q = await cpuTensor([1, 1, H, d]), out = await cpuTensor([1, 1, H, d]);
const fill = (t, s) => { const a = t.data; for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37 + s); };
fill(q, 0);
const layers = [];
for (let l = 0; l < L; l++) {
  const k = await cpuTensor([1, Sk, Hk, d]), v = await cpuTensor([1, Sk, Hk, d]);
  fill(k, 2 * l + 1); fill(v, 2 * l + 2);
  layers.push([k, v]);
}
const bytes = 2 * Sk * Hk * d * 4;
const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
const step = async (ls) => { for (const [k, v] of ls) await attention(q, k, v, { backend: 'wasm', out }); };
const measure = async (ls) => {
  await step(ls); await step(ls);
  const per = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    await step(ls);
    per.push(((performance.now() - t0) / ls.length) * 1000);
  }
  return median(per);
};
const rotating = await measure(layers);
const one = await measure(Array.from({ length: L }, () => layers[0]));
const fmt = (us) => `${us.toFixed(0)} µs a call, ${(bytes / us / 1e3).toFixed(1)} GB/s`;
console.log(`${process.env.RA ?? 'auto'}: threads ${threads}, H ${H}/${Hk} Sk ${Sk} d ${d}, ${(bytes / 2 ** 20).toFixed(1)} MiB of K/V a layer: ${L} layers in turn ${fmt(rotating)}; one layer repeated ${fmt(one)}`);
