// The split form's building blocks on the adapter (SgmatVariant.split): (A) three ways of taking a float's
// f16 high half and its scaled low half, compared with the exact values computed here; (B)
// subgroupMatrixScalarMultiply on an f32 result matrix; (C) f32 attention on the split tensor-core kernel with
// each form against the float64 reference. Usage: node scripts/split-probe.mjs
import { attention, attentionReference, gpuContext, lastGpuStats, randn, setGpuKernelPreference } from '../dist/index.js';
import { setSgmatAblation } from '../dist/kernels/webgpu/sgmat.js';

const ctx = await gpuContext();
const dev = ctx.device;
const xs = new Float32Array([1 / 3, 0.1, 1000.1, -2.7182817, 1e-3, 0.7071068, 12345.678, -3.1e-5]);

async function runWgsl(code, inputs, outLen) {
  dev.pushErrorScope('validation');
  const mod = dev.createShaderModule({ code });
  const info = await mod.getCompilationInfo();
  for (const m of info.messages) if (m.type === 'error') console.log('WGSL error', m.message);
  const pipe = dev.createComputePipeline({ layout: 'auto', compute: { module: mod, entryPoint: 'main' } });
  const inB = dev.createBuffer({ size: inputs.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  dev.queue.writeBuffer(inB, 0, inputs);
  const outB = dev.createBuffer({ size: outLen * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const rb = dev.createBuffer({ size: outLen * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bg = dev.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: inB } }, { binding: 1, resource: { buffer: outB } }] });
  const enc = dev.createCommandEncoder();
  const p = enc.beginComputePass(); p.setPipeline(pipe); p.setBindGroup(0, bg); p.dispatchWorkgroups(1); p.end();
  enc.copyBufferToBuffer(outB, 0, rb, 0, outLen * 4);
  dev.queue.submit([enc.finish()]);
  const err = await dev.popErrorScope();
  if (err) console.log('GPU error', err.message);
  await rb.mapAsync(GPUMapMode.READ);
  const r = new Float32Array(rb.getMappedRange().slice(0));
  rb.unmap();
  return r;
}

// (A)
const a = await runWgsl(`enable f16;
@group(0) @binding(0) var<storage, read> xin: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(${xs.length})
fn main(@builtin(local_invocation_index) i: u32) {
  let x = xin[i];
  let h = f16(x);
  o[i * 6u] = f32(h);
  o[i * 6u + 1u] = f32(f16((x - f32(h)) * 2048.0));
  let hp = unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
  o[i * 6u + 2u] = hp;
  o[i * 6u + 3u] = f32(f16((x - hp) * 2048.0));
  let b = bitcast<u32>(x);
  let hi = bitcast<f32>((b + 0x1000u) & 0xffffe000u);
  o[i * 6u + 4u] = f32(f16(hi));
  o[i * 6u + 5u] = f32(f16((x - hi) * 2048.0));
}`, xs, xs.length * 6);
for (let i = 0; i < xs.length; i++) {
  const x = xs[i];
  const err = (hi, lo) => Math.abs(hi + lo / 2048 - x) / Math.abs(x);
  console.log(`A x=${x}: f16 cast hi ${a[i * 6]} lo ${a[i * 6 + 1]} (rel err ${err(a[i * 6], a[i * 6 + 1]).toExponential(2)}); pack/unpack hi ${a[i * 6 + 2]} lo ${a[i * 6 + 3]} (${err(a[i * 6 + 2], a[i * 6 + 3]).toExponential(2)}); integer hi ${a[i * 6 + 4]} lo ${a[i * 6 + 5]} (${err(a[i * 6 + 4], a[i * 6 + 5]).toExponential(2)})`);
}

// (B)
const vals = Float32Array.from({ length: 256 }, (_, i) => i + 0.5);
const b = await runWgsl(`enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read> xin: array<f32>;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(32)
fn main() {
  let m = subgroupMatrixLoad<subgroup_matrix_result<f32, 16, 16>, col_major>(&xin, 0u, 16u);
  let s = subgroupMatrixScalarMultiply(m, 2048.0);
  subgroupMatrixStore<col_major>(&o, 0u, subgroupMatrixScalarMultiply(s, 0.00048828125), 16u);
  subgroupMatrixStore<col_major>(&o, 256u, s, 16u);
}`, vals, 512);
let bad = 0;
for (let i = 0; i < 256; i++) if (b[i] !== vals[i] || b[256 + i] !== vals[i] * 2048) bad++;
console.log(`B subgroupMatrixScalarMultiply: ${bad} of 256 elements wrong (first: ${b[0]}, ${b[256]})`);

// (C)
setGpuKernelPreference('sgmat');
for (const form of ['', 'lof16']) {
  setSgmatAblation(form);
  for (const [N, d] of [[1, 64], [129, 64], [577, 80]]) {
    const q = randn([1, N, 2, d], 1), k = randn([1, N, 2, d], 2), v = randn([1, N, 2, d], 3);
    const r = await attention(q, k, v, { backend: 'webgpu' });
    const o = (r.out ?? r).toFloat32();
    const ref = attentionReference(q, k, v, {}).out;
    let e = 0;
    for (let i = 0; i < o.length; i++) e = Math.max(e, Math.abs(o[i] - ref[i]));
    console.log(`C form '${form || 'integer'}' N${N} d${d} [${lastGpuStats?.kernel}${lastGpuStats?.key.includes('"split":true') ? ' split' : ''}]: max abs err ${e.toExponential(2)}`);
  }
}
setSgmatAblation('');
process.exit(0);
