// Per-call cost of the WebAssembly backend on a small call, back to back (the regime of decode steps and of
// ARR-COC's cross-attention): median µs a call over rounds of 50 calls, inputs already in the kernel heap.
// Usage (after npm run build): node [--experimental-wasm-relaxed-simd] scripts/cpu-call-overhead.mjs
// Env: T (threads, default 1), SQ, SK (default 1 × 16; 32 × 196 is arrcoc-xattn), H (8), HK (KV heads, default H), D (64),
// R (rounds, 200), DIST (another build's dist/index.js, for an A/B of two builds in the same minutes).
// decode-kv4k: SQ=1 SK=4096 H=32 HK=8 D=128 (also prints GB/s of K/V read).
const { attention, configureCpu, cpuTensor } = await import(process.env.DIST ? new URL(process.env.DIST, `file://${process.cwd()}/`).href : '../dist/index.js');

const env = (k, d) => Number(process.env[k] ?? d);
const threads = env('T', 1), Sq = env('SQ', 1), Sk = env('SK', 16), H = env('H', 8), Hk = env('HK', H), d = env('D', 64), rounds = env('R', 200);
await configureCpu({ relaxedSimd: true, threads });
const q = await cpuTensor([1, Sq, H, d]), k = await cpuTensor([1, Sk, Hk, d]), v = await cpuTensor([1, Sk, Hk, d]);
const out = await cpuTensor([1, Sq, H, d]);
for (const t of [q, k, v]) { const a = t.data; for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37); }
const run = () => attention(q, k, v, { backend: 'wasm', out });
for (let i = 0; i < 200; i++) await run();
const per = [];
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) await run();
  per.push(((performance.now() - t0) / 50) * 1000);
}
per.sort((a, b) => a - b);
const med = per[Math.floor(per.length / 2)];
console.log(`threads ${threads}, Sq ${Sq} Sk ${Sk} H ${H}/${Hk} d ${d}: median ${med.toFixed(1)} µs a call (${((4 * H * Sq * Sk * d) / med / 1e3).toFixed(1)} GFLOP/s, ${((2 * Sk * Hk * d * 4) / med / 1e3).toFixed(1)} GB/s of K/V), best round ${per[0].toFixed(1)} µs`);
