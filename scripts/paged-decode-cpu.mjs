// Decode over a paged KV cache on the WebAssembly backend, per block dtype (f32, f16, int8 on the uniform
// grid and 'auto'): B1 H32/8 Sk4096 d128, blocks of 16 in the kernel heap (read in place), 2 threads,
// median of 30 calls. DIST=<another build's dist> times that build instead (A/B of two builds).
// Usage (after npm run build): node --experimental-wasm-relaxed-simd scripts/paged-decode-cpu.mjs
const { PagedKvCache, attentionPaged, randn, configureCpu, cpuRuntime } = await import((process.env.DIST ?? new URL('../dist', import.meta.url).pathname) + '/index.js');
await configureCpu({ relaxedSimd: true, threads: 2 });
const rt = await cpuRuntime();
const Hk = 8, H = 32, D = 128, L = 4096;
const k = randn([1, L, Hk, D], 1), v = randn([1, L, Hk, D], 2);
for (const [dtype, int8Grid] of [['f32'], ['f16'], ['int8', 'uniform'], ['int8', 'auto']]) {
  const cache = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, numBlocks: L / 16 + 1, dtype, ...(int8Grid ? { int8Grid, rotation: true } : {}), prefixCaching: false, heap: rt.heap });
  const { id } = cache.addSequence();
  cache.append(id, Array.from({ length: L }, (_, i) => i), { k, v });
  const t = cache.batch([id]);
  const q = randn([1, 1, H, D], 3);
  for (let i = 0; i < 5; i++) await attentionPaged(q, cache, 0, t, t.seqLens, { backend: 'wasm' });
  const times = [];
  for (let i = 0; i < 30; i++) { const t0 = performance.now(); await attentionPaged(q, cache, 0, t, t.seqLens, { backend: 'wasm' }); times.push(performance.now() - t0); }
  times.sort((a, b) => a - b);
  const bytes = 2 * L * Hk * D * (dtype === 'f32' ? 4 : dtype === 'f16' ? 2 : 1);
  console.log(dtype, int8Grid ?? '', times[15].toFixed(2), 'ms', (bytes / times[15] / 1e6).toFixed(1), 'GB/s of stored K/V');
}
