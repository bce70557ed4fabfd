// How many workgroups a GPU keeps resident at once, as a function of a workgroup's workgroup memory and
// its live registers: every workgroup (128 invocations) counts itself in on entry (atomicAdd, then
// atomicMax of the count into a high-water mark), spins for a while on its workgroup memory, and counts
// itself out. With far more workgroups than fit, the high-water mark is the device's resident capacity;
// divided by the compute-unit count it is the occupancy a kernel of that size gets. It answers what
// bounds the tensor-core kernel (scripts/sgmat-profile.mjs 'pad<N>' shows the cost, not the cause).
// Usage (after npm run build): node scripts/occupancy-probe.mjs [units=132]
import { gpuContext } from '../dist/index.js';

const ctx = await gpuContext();
const device = ctx.device;
const units = Number(process.argv[2] ?? 132);
const iters = Number(process.env.ITERS ?? 4000);

function source(kib, regs) {
  const n = Math.max(128, (kib * 1024) / 4);
  const names = Array.from({ length: regs }, (_, i) => `a${i}`);
  return `
@group(0) @binding(0) var<storage, read_write> cnt: array<atomic<u32>, 4>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32, 4>;
var<workgroup> pad: array<u32, ${n}>;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  for (var i = lid; i < ${n}u; i += 128u) { pad[i] = i ^ wg.x; }
  workgroupBarrier();
  if (lid == 0u) { let c = atomicAdd(&cnt[0], 1u) + 1u; atomicMax(&cnt[1], c); }
${names.map((a, i) => `  var ${a} = pad[(lid + ${i * 7}u) % ${n}u];`).join('\n')}
  for (var it = 0u; it < ${iters}u; it++) {
${names.map((a, i) => `    ${a} = ${a} * 1664525u + pad[(it + lid + ${i}u) % ${n}u];`).join('\n')}
  }
  workgroupBarrier();
  if (lid == 0u) { atomicSub(&cnt[0], 1u); }
  let x = ${regs ? names.join(' ^ ') : '0u'};
  if (x == 0x12345u) { sink[0] = x; }
}`;
}

async function resident(kib, regs) {
  const module = device.createShaderModule({ code: source(kib, regs) });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const cnt = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const sink = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: cnt } }, { binding: 1, resource: { buffer: sink } }] });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(units * 40);
  pass.end();
  enc.copyBufferToBuffer(cnt, 0, read, 0, 16);
  const t0 = performance.now();
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const ms = performance.now() - t0;
  const [now, high] = new Uint32Array(read.getMappedRange().slice(0));
  read.unmap();
  for (const b of [cnt, sink, read]) b.destroy();
  return { now, high, ms };
}

console.log(`adapter limit maxComputeWorkgroupStorageSize ${device.limits.maxComputeWorkgroupStorageSize}; ${units} compute units assumed`);
const rows = [];
for (const kib of [1, 4, 8, 9, 9.5, 10, 11, 12, 14, 16, 20, 24, 32, 40, 48]) {
  if (kib * 1024 > device.limits.maxComputeWorkgroupStorageSize) continue;
  rows.push([`${kib} KiB`, 4, await resident(kib, 4)]);
}
for (const regs of [32, 64, 96, 128, 160, 192]) rows.push([`1 KiB`, regs, await resident(1, regs)]);
for (const [mem, regs, r] of rows) {
  console.log(`workgroup memory ${mem.padStart(8)}, ~${String(regs).padStart(3)} live u32 a lane: ${String(r.high).padStart(5)} resident (${(r.high / units).toFixed(2)} a unit), ${r.ms.toFixed(1)} ms${r.now ? ` (count left ${r.now}!)` : ''}`);
}
