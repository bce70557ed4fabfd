// Does the order in which the decode kernel reads K/V limit its memory throughput? Compiles
// scripts/probes/kv-read-order.as.ts (AssemblyScript, SIMD128) and times, on one thread, BSHD K/V of
// keys × 8 heads × d128 f32 read in different orders:
//   linear             every byte in address order (v128 loads, summed): what one thread can stream;
//   VC=n               the decode kernel's order: n-key chunks, each head's n rows (4 KiB apart) in turn;
//   VC8+touch1/2       VC=8 plus one load per 64-byte line of the chunk 1/2 ahead, in address order;
//   copy+VC8/16        each chunk copied in address order to an L2 scratch, then read in the chunk order;
//   qk linear/chunk8   Q·Kᵀ for 4 query rows a KV head (the decode micro-kernel's arithmetic, mul + add) over
//                      K read key by key (address order) or as qkRows4 does, streaming (33.5 MB) and in cache.
// Usage: [RELAXED=1] node [--experimental-wasm-relaxed-simd] scripts/kv-read-order-probe.mjs   (one thread; an idle machine)
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(root, 'build/probes/kv-read-order.wasm');
mkdirSync(dirname(out), { recursive: true });
// RELAXED=1: the multiply-adds fused (relaxed SIMD; node 20 needs --experimental-wasm-relaxed-simd), as the kernel's default build.
const relaxed = process.env.RELAXED === '1';
execFileSync(resolve(root, 'node_modules/.bin/asc'), [resolve(root, 'scripts/probes/kv-read-order.as.ts'), '-O3', '--enable', relaxed ? 'simd,relaxed-simd' : 'simd', '--runtime', 'stub', '-o', out], { stdio: 'inherit' });
console.log(relaxed ? 'relaxed SIMD (fused multiply-adds)' : 'SIMD128 (multiply + add)');
const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { abort() {} } });
const x = instance.exports;
const Hk = 8, D = 128, keys = 4096, bytes = keys * Hk * D * 4;
const kv = x.alloc(bytes * 2 + 64), sc = x.alloc(1 << 20);
new Float32Array(x.memory.buffer, kv, bytes / 2).fill(1);
const k = kv, v = kv + bytes;
const median = (f, n = 15) => { const r = []; for (let i = 0; i < n; i++) { const t0 = performance.now(); f(); r.push(performance.now() - t0); } r.sort((a, b) => a - b); return r[n >> 1]; };
const gbs = (b, ms) => (b / ms / 1e6).toFixed(1);
for (let rep = 0; rep < 3; rep++) {
  const row = [];
  row.push(`linear ${gbs(2 * bytes, median(() => { x.linear(k, bytes); x.linear(v, bytes); }))}`);
  for (const VC of [1, 2, 8]) row.push(`VC=${VC} ${gbs(2 * bytes, median(() => { x.chunked(k, keys, Hk, D, VC); x.chunked(v, keys, Hk, D, VC); }))}`);
  for (const ah of [1, 2]) row.push(`VC8+touch${ah} ${gbs(2 * bytes, median(() => { x.chunkedTouch(k, keys, Hk, D, 8, ah); x.chunkedTouch(v, keys, Hk, D, 8, ah); }))}`);
  for (const VC of [8, 16]) row.push(`copy+VC${VC} ${gbs(2 * bytes, median(() => { x.copyChunked(k, keys, Hk, D, VC, sc); x.copyChunked(v, keys, Hk, D, VC, sc); }))}`);
  row.push(`VC8 in L2 ${gbs(64 * 4096 * 200, median(() => { for (let i = 0; i < 200; i++) x.chunked(k, 64, Hk, D, 8); }))}`);
  console.log(`read GB/s: ${row.join('  ')}`);
}
// Q·Kᵀ: K of 8192 keys (33.5 MB, the decode call's K + V bytes) streamed, and 256 keys (1 MiB) in cache.
const big = 8192, small = 256, kb = big * Hk * D * 4;
const q = x.alloc(Hk * 4 * D * 4), s = x.alloc(Hk * 4 * big * 4);
new Float32Array(x.memory.buffer, q, Hk * 4 * D).fill(0.25);
const gf = (n, ms) => (2 * n * Hk * 4 * D / ms / 1e6).toFixed(1);
for (let rep = 0; rep < 3; rep++) {
  const row = [];
  let ms = median(() => x.qkLinear(k, q, s, big, Hk, D)); row.push(`linear ${gbs(kb, ms)} GB/s ${gf(big, ms)} GFLOP/s`);
  ms = median(() => x.qkLinearImm(k, q, s, big, Hk)); row.push(`linear-imm ${gbs(kb, ms)} GB/s ${gf(big, ms)} GFLOP/s`);
  ms = median(() => x.qkChunked(k, q, s, big, Hk, D, 8)); row.push(`chunk8 ${gbs(kb, ms)} GB/s ${gf(big, ms)} GFLOP/s`);
  row.push(`in cache: linear ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.qkLinear(k, q, s, small, Hk, D); }))}`);
  row.push(`linear-imm ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.qkLinearImm(k, q, s, small, Hk); }))}`);
  row.push(`chunk8 ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.qkChunked(k, q, s, small, Hk, D, 8); }))}`);
  row.push(`chunk8 2×4 ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.qkChunked2x4(k, q, s, small, Hk, D, 8); }))}`);
  row.push(`chunk8 bcast ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.qkChunkedBcast(k, q, s, small, Hk, D); }))}`);
  row.push(`2×4 imm ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.qkChunked2x4i(k, q, s, small, Hk, D, 8); }))}`);
  row.push(`2×6 ${gf(240 * 32, median(() => { for (let i = 0; i < 32; i++) x.qkChunked2x6(k, q, s, 240, Hk, D, 24); }))} GFLOP/s`);
  row.push(`| streamed: 2×4 ${gf(big, median(() => x.qkChunked2x4(k, q, s, big, Hk, D, 8)))}`);
  row.push(`bcast ${gf(big, median(() => x.qkChunkedBcast(k, q, s, big, Hk, D)))}`);
  row.push(`2×4 imm ${gf(big, median(() => x.qkChunked2x4i(k, q, s, big, Hk, D, 8)))}`);
  row.push(`2×6 ${gf(8160, median(() => x.qkChunked2x6(k, q, s, 8160, Hk, D, 24)))} GFLOP/s`);
  console.log(`Q·Kᵀ: ${row.join('  ')}`);
}
// P·V: V of 8192 keys streamed, and 256 keys in cache; o and p stay in L1.
const o = x.alloc(Hk * 4 * 128 * 4 + 64);
new Float32Array(x.memory.buffer, s, Hk * 4 * 64).fill(0.01);
for (let rep = 0; rep < 3; rep++) {
  const row = [];
  let ms = median(() => x.pvLinear(k, s, o, big, Hk)); row.push(`linear ${gbs(kb, ms)} GB/s ${gf(big, ms)} GFLOP/s`);
  ms = median(() => x.pvChunked(k, s, o, big, Hk, 8)); row.push(`chunk8 ${gbs(kb, ms)} GB/s ${gf(big, ms)} GFLOP/s`);
  row.push(`in cache: linear ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.pvLinear(k, s, o, small, Hk); }))}`);
  row.push(`chunk8 ${gf(small * 32, median(() => { for (let i = 0; i < 32; i++) x.pvChunked(k, s, o, small, Hk, 8); }))} GFLOP/s`);
  console.log(`P·V: ${row.join('  ')}`);
}
