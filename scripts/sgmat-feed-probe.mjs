// How fast can subgroup-matrix products be fed from workgroup memory? The tensor-core kernel loads every
// K and V right matrix (and P's left matrix) from workgroup memory once per 16 query rows; this times
// 128-invocation workgroups (4 subgroups) that each do ITERS rounds of 8 products whose right (or left)
// operands are loaded from workgroup memory in the kernel's layouts, against the same products with
// operands held in registers. TFLOP/s over OCC·132 workgroups.
//   regs        8 products a round, operands in registers (the ceiling);
//   kcol        right matrices column-major at stride 72 halves (K tiles: 8 loads a round);
//   vrow        right matrices row-major at stride 72 (V tiles);
//   pleft       left matrices column-major at stride 16 (P), right from registers;
//   pleftrow    pleft with row-major left loads;
//   kcol-share  kcol with 2 products per loaded matrix (two row blocks of Q: the loads per product halved).
// Usage (after npm run build): node scripts/sgmat-feed-probe.mjs [occupancy=5]
import { gpuContext } from '../dist/index.js';
import { timeProbe } from './lib/gpu-time.mjs';

const ctx = await gpuContext();
const device = ctx.device;
const occ = Number(process.argv[2] ?? 5);
const iters = Number(process.env.ITERS ?? 4096);
const L = 'subgroup_matrix_left<f16, 16, 16>', R = 'subgroup_matrix_right<f16, 16, 16>', A = 'subgroup_matrix_result<f32, 16, 16>';
const mma = (a, b, c) => `${c} = subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c});`;
const eight = (f) => Array.from({ length: 8 }, (_, i) => f(i)).join('\n    ');
const forms = {
  regs: { per: 8, body: eight((i) => mma('ql', `r${i % 2}`, `c${i % 4}`)) },
  kcol: { per: 8, body: eight((i) => mma('ql', `subgroupMatrixLoad<${R}, col_major>(&sh, ((it + ${i}u) & 1u) * 8u + ${(i % 4) * 16}u + ${Math.floor(i / 4) * 1152}u, 72u)`, `c${i % 4}`)) },
  vrow: { per: 8, body: eight((i) => mma('ql', `subgroupMatrixLoad<${R}, row_major>(&sh, ${(i % 4) * 16}u + ${Math.floor(i / 4) * 1152}u + ((it + ${i}u) & 1u) * 8u, 72u)`, `c${i % 4}`)) },
  pleft: { per: 8, body: eight((i) => mma(`subgroupMatrixLoad<${L}, col_major>(&sh, sg * 256u + ${(i % 2) * 1024}u + ((it + ${i}u) & 7u) * 16u, 16u)`, `r${i % 2}`, `c${i % 4}`)) },
  pleftrow: { per: 8, body: eight((i) => mma(`subgroupMatrixLoad<${L}, row_major>(&sh, sg * 256u + ${(i % 2) * 1024}u + ((it + ${i}u) & 7u) * 16u, 16u)`, `r${i % 2}`, `c${i % 4}`)) },
  'kcol-share': { per: 16, body: eight((i) => `{ let k = subgroupMatrixLoad<${R}, col_major>(&sh, ((it + ${i}u) & 1u) * 8u + ${(i % 4) * 16}u + ${Math.floor(i / 4) * 1152}u, 72u);
    ${mma('ql', 'k', `c${i % 4}`)}
    ${mma('ql2', 'k', `d${i % 4}`)} }`) },
};

function source(body) {
  return `
diagnostic(off, chromium.subgroup_matrix_uniformity);
diagnostic(off, subgroup_uniformity);
enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read_write> outb: array<f32>;
var<workgroup> sh: array<f16, 4096>;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sg: u32) {
  for (var i = lid; i < 4096u; i += 128u) { sh[i] = f16(f32(i % 97u) * 0.01); }
  workgroupBarrier();
  let ql = subgroupMatrixLoad<${L}, col_major>(&sh, sg * 16u, 72u);
  let ql2 = subgroupMatrixLoad<${L}, col_major>(&sh, sg * 16u + 8u, 72u);
  let r0 = subgroupMatrixLoad<${R}, col_major>(&sh, 64u, 72u);
  let r1 = subgroupMatrixLoad<${R}, col_major>(&sh, 1216u, 72u);
  var c0 = ${A}(); var c1 = ${A}(); var c2 = ${A}(); var c3 = ${A}();
  var d0 = ${A}(); var d1 = ${A}(); var d2 = ${A}(); var d3 = ${A}();
  for (var it = 0u; it < ${iters}u; it++) {
    ${body}
  }
  subgroupMatrixStore<col_major>(&outb, sg * 256u, c0, 16u);
  subgroupMatrixStore<col_major>(&outb, 1024u + sg * 256u, c1, 16u);
  subgroupMatrixStore<col_major>(&outb, 2048u + sg * 256u, c2, 16u);
  subgroupMatrixStore<col_major>(&outb, 3072u + sg * 256u, c3, 16u);
  subgroupMatrixStore<col_major>(&outb, 4096u + sg * 256u, d0, 16u);
  subgroupMatrixStore<col_major>(&outb, 5120u + sg * 256u, d1, 16u);
  subgroupMatrixStore<col_major>(&outb, 6144u + sg * 256u, d2, 16u);
  subgroupMatrixStore<col_major>(&outb, 7168u + sg * 256u, d3, 16u);
}`;
}

const out = device.createBuffer({ size: 8192 * 4, usage: GPUBufferUsage.STORAGE });
console.log(`${iters} rounds, ${132 * occ} workgroups of 4 subgroups`);
for (const [name, f] of Object.entries(forms)) {
  try {
    const ms = await timeProbe(device, source(f.body), [out], 132 * occ);
    const flops = 132 * occ * 4 * iters * f.per * 2 * 16 * 16 * 16;
    console.log(`${name.padEnd(11)} ${ms.toFixed(3)} ms  ${(flops / ms / 1e9).toFixed(1)} TFLOP/s`);
  } catch (e) {
    console.log(`${name}: ${String(e.message ?? e).replace(/\n/g, ' ').slice(0, 600)}`);
  }
}
