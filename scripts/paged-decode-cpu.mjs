// Decode over a paged KV cache on the WebAssembly backend, per block dtype (f32, f16, int8 on the uniform
// grid and 'auto'), next to the same decode over contiguous in-heap K/V (f32, f16) in the same run:
// B1 H32/8 Sk4096 d128, blocks of 16 in the kernel heap (read in place), 2 threads, median of 30 calls.
// Then the int8 writes that fill such a cache (2,048 tokens × 8 heads × d128 of K and V, rotated, per grid).
// DIST=<another build's dist> times that build instead (A/B of two builds). RA=auto|on|off: decodeReadAhead.
// Usage (after npm run build): node --experimental-wasm-relaxed-simd scripts/paged-decode-cpu.mjs
const { PagedKvCache, attention, attentionPaged, randn, configureCpu, cpuRuntime, cpuTensor } = await import((process.env.DIST ?? new URL('../dist', import.meta.url).pathname) + '/index.js');
await configureCpu({ relaxedSimd: true, threads: 2, ...(process.env.RA ? { decodeReadAhead: process.env.RA } : {}) });
const rt = await cpuRuntime();
const Hk = 8, H = 32, D = 128, L = 4096;
const median = async (f, n = 30) => {
  for (let i = 0; i < 5; i++) await f();
  const t = [];
  for (let i = 0; i < n; i++) { const t0 = performance.now(); await f(); t.push(performance.now() - t0); }
  return t.sort((a, b) => a - b)[n >> 1];
};
const row = (what, ms, bytes) => console.log(`${what.padEnd(26)} ${ms.toFixed(2).padStart(7)} ms  ${(bytes / ms / 1e6).toFixed(1).padStart(5)} GB/s of stored K/V`);
for (const dtype of ['f32', 'f16']) {
  const q = await cpuTensor([1, 1, H, D], dtype), k = await cpuTensor([1, L, Hk, D], dtype), v = await cpuTensor([1, L, Hk, D], dtype);
  const src = [randn([1, 1, H, D], 3), randn([1, L, Hk, D], 1), randn([1, L, Hk, D], 2)];
  [q, k, v].forEach((t, i) => t.data.set(src[i].to(dtype).data));
  const out = await cpuTensor([1, 1, H, D], dtype);
  row(`contiguous ${dtype}`, await median(() => attention(q, k, v, { backend: 'wasm', out })), 2 * L * Hk * D * (dtype === 'f32' ? 4 : 2));
}
const k = randn([1, L, Hk, D], 1), v = randn([1, L, Hk, D], 2), q = randn([1, 1, H, D], 3);
for (const [dtype, int8Grid] of [['f32'], ['f16'], ['int8', 'uniform'], ['int8', 'auto']]) {
  const cache = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, numBlocks: L / 16 + 1, dtype, ...(int8Grid ? { int8Grid, rotation: true } : {}), prefixCaching: false, heap: rt.heap });
  const { id } = cache.addSequence();
  cache.append(id, Array.from({ length: L }, (_, i) => i), { k, v });
  const t = cache.batch([id]);
  row(`paged ${dtype}${int8Grid ? ` (${int8Grid})` : ''}`, await median(() => attentionPaged(q, cache, 0, t, t.seqLens, { backend: 'wasm' })), 2 * L * Hk * D * (dtype === 'f32' ? 4 : dtype === 'f16' ? 2 : 1));
}
const W = 2048, kw = randn([1, W, Hk, D], 4), vw = randn([1, W, Hk, D], 5);
for (const int8Grid of ['uniform', 'gaussian', 'auto']) {
  const ms = await median(async () => {
    const cache = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, numBlocks: W / 16, dtype: 'int8', rotation: true, int8Grid, prefixCaching: false });
    cache.append(cache.addSequence().id, Array.from({ length: W }, (_, i) => i), { k: kw, v: vw });
  }, 5);
  console.log(`int8 write (${int8Grid})`.padEnd(26), `${ms.toFixed(0).padStart(7)} ms  for ${W} tokens × ${Hk} heads × d${D}, K and V`);
}
