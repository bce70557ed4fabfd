// Quick check of the tensor-core kernel on a few tiny shapes against the float64 reference (first 6
// outputs, 3 decimals). Exit code 1 on a mismatch. Usage: node scripts/sgmat-debug.mjs
import { attention, Tensor, setGpuKernelPreference, lastGpuStats, attentionReference } from '../dist/index.js';
setGpuKernelPreference('sgmat');
const rnd = (n, s) => { let x = s; return Array.from({ length: n }, () => { x = (x * 1103515245 + 12345) % 2147483648; return (x / 2147483648) * 2 - 1; }); };
for (const [N, d] of [[1, 64], [16, 64], [64, 64], [1, 128]]) {
  const shape = [1, N, 1, d];
  const q = Tensor.fromValues(rnd(N * d, 1), shape, 'f16'), k = Tensor.fromValues(rnd(N * d, 2), shape, 'f16'), v = Tensor.fromValues(rnd(N * d, 3), shape, 'f16');
  const r = await attention(q, k, v, { backend: 'webgpu' }); const o = r.out ?? r;
  const ref = attentionReference(q, k, v, {});
  const got = Array.from(o.toFloat32().slice(0, 6)).map((x) => x.toFixed(3));
  const want = Array.from((ref.out.data ?? ref.out).slice(0, 6)).map((x) => x.toFixed(3));
  console.log(`N${N} d${d} ${lastGpuStats?.kernel} got ${got} want ${want}`);
  if (got.join() !== want.join()) process.exitCode = 1;
}
