// Which register blocking of the prefill micro-kernels runs fastest under V8? Compiles
// scripts/probes/microkernel-shapes.as.ts (AssemblyScript, relaxed SIMD) and times, on one thread with the tile in
// cache, Q·Kᵀ (Sᵀ layout, d128) and P·V (dv128) blocked as keys × queries (Q·Kᵀ) or queries × columns (P·V):
//   qk48  / pv48   4 × 8, eight accumulators: the kernel's blocking;
//   qk312 / pv312  3 × 12, nine accumulators (3 + 3 loaded values: fifteen xmm registers);
//   qk58, qk68, qk412, pv68, pv412  ten or twelve accumulators: V8 spills them (it schedules every load of an
//                  iteration before the multiply-adds), and they run at about half speed;
//   qk48s / qk412s 4 × 8 and 4 × 12 with the keys broadcast by shuffles from one loaded vector;
//   peak12 / peak8 twelve / eight independent multiply-add chains, no loads.
// Usage: node --experimental-wasm-relaxed-simd --no-liftoff scripts/microkernel-shapes-probe.mjs   (an idle machine)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(root, 'build/probes/microkernel-shapes.wasm');
mkdirSync(dirname(out), { recursive: true });
execFileSync(resolve(root, 'node_modules/.bin/asc'), [resolve(root, 'scripts/probes/microkernel-shapes.as.ts'), '-O3', '--enable', 'simd,relaxed-simd', '--runtime', 'stub', '-o', out], { stdio: 'inherit' });
const { instance } = await WebAssembly.instantiate(readFileSync(out), { env: { abort() {} } });
const x = instance.exports;
const D = 128, dv = 128;
const qt = x.alloc(D * 64 * 4 + 64), kb = x.alloc(66 * D * 4 + 64), st = x.alloc(66 * 64 * 4 + 64), v = x.alloc(64 * dv * 4), o = x.alloc(66 * dv * 4);
const fill = (p, n) => { const a = new Float32Array(x.memory.buffer, p, n); for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5; };
fill(qt, D * 64); fill(kb, 66 * D); fill(st, 66 * 64); fill(v, 64 * dv); fill(o, 66 * dv);
// Best of 9 rounds, GFLOP/s.
const best = (fn, flops) => { let b = Infinity; for (let r = 0; r < 9; r++) { const t0 = performance.now(); fn(); b = Math.min(b, performance.now() - t0); } return (flops / b / 1e6).toFixed(1); };
const R = 400;
const cases = [
  ['peak12', () => x.peak(2e7, 0), 2e7 * 96],
  ['peak8', () => x.peak8(3e7), 3e7 * 64],
  ['qk48', () => { for (let i = 0; i < R; i++) x.qk48(qt, kb, st, 64, 64, D); }, R * 2 * 64 * 64 * D],
  ['qk312', () => { for (let i = 0; i < R; i++) x.qk312(qt, kb, st, 63, 60, D); }, R * 2 * 63 * 60 * D],
  ['qk48s', () => { for (let i = 0; i < R; i++) x.qk48s(qt, kb, st, 64, 64, D); }, R * 2 * 64 * 64 * D],
  ['qk412s', () => { for (let i = 0; i < R; i++) x.qk412s(qt, kb, st, 64, 60, D); }, R * 2 * 64 * 60 * D],
  ['qk58', () => { for (let i = 0; i < R; i++) x.qk58(qt, kb, st, 65, 64, D); }, R * 2 * 65 * 64 * D],
  ['qk68', () => { for (let i = 0; i < R; i++) x.qk68(qt, kb, st, 66, 64, D); }, R * 2 * 66 * 64 * D],
  ['qk412', () => { for (let i = 0; i < R; i++) x.qk412(qt, kb, st, 64, 60, D); }, R * 2 * 64 * 60 * D],
  ['pv48', () => { for (let i = 0; i < R; i++) x.pv48(st, v, o, 64, 64, dv); }, R * 2 * 64 * 64 * dv],
  ['pv312', () => { for (let i = 0; i < R; i++) x.pv312(st, v, o, 63, 64, dv); }, R * 2 * 63 * 64 * 120],
  ['pv68', () => { for (let i = 0; i < R; i++) x.pv68(st, v, o, 66, 64, dv); }, R * 2 * 66 * 64 * dv],
  ['pv412', () => { for (let i = 0; i < R; i++) x.pv412(st, v, o, 64, 64, dv); }, R * 2 * 64 * 64 * 120],
];
for (let rep = 0; rep < 3; rep++) console.log(cases.map(([name, fn, flops]) => `${name} ${best(fn, flops)}`).join('  '));
