// Does a workgroup barrier wait for the invocation's global loads still in flight? The tensor-core kernel
// stages each K/V tile global → registers → workgroup memory between barriers, and issuing tile t+1's loads
// before tile t's barriers gained nothing on the H200 (sgmat.ts); this tells whether it can.
// Each form runs ITERS iterations of one 128-invocation workgroup loop (132·OCC workgroups, every load an L2
// hit: a 4 MiB buffer) and prints ns per iteration:
//   load-use      load, then use it (the latency of one load, nothing else);
//   barrier       a barrier alone;
//   load-bar-use  load, barrier, use (the latency of one load plus a barrier: the unprefetched kernel);
//   prefetch      use the load issued one iteration earlier, issue the next, barrier (if the barrier does not
//                 wait for the load in flight: ≈ barrier; if it does: ≈ load-bar-use);
//   prefetch-ul   the same with workgroupUniformLoad in place of the barrier;
//   prefetch-st   the prefetched value stored to workgroup memory before the barrier, read back after (the
//                 kernel's pattern).
// The tex-* forms read the same values through a texture (r32uint, textureLoad) instead of a storage
// buffer: a workgroup barrier's memory semantics cover workgroup (and buffer) memory, not images, so a
// texture fetch in flight may not be waited for.
// Usage (after npm run build): node scripts/barrier-probe.mjs [occupancy=1]
import { gpuContext } from '../dist/index.js';
import { timeProbe } from './lib/gpu-time.mjs';

const ctx = await gpuContext();
const device = ctx.device;
const occ = Number(process.argv[2] ?? 1);
const iters = Number(process.env.ITERS ?? 20000);
const WORDS = 1 << 20;

const addr = (it) => `((${it}) * 1031u + wg.x * 128u + lid) & ${WORDS - 1}u`;
const forms = {
  'load-use': `let x = buf[${addr('it')}]; acc = acc * 3u + x;`,
  barrier: `workgroupBarrier(); acc = acc * 3u + it;`,
  'load-bar-use': `let x = buf[${addr('it')}]; workgroupBarrier(); acc = acc * 3u + x;`,
  prefetch: `let x = nxt; nxt = buf[${addr('it + 1u')}]; workgroupBarrier(); acc = acc * 3u + x;`,
  'prefetch-ul': `let x = nxt; nxt = buf[${addr('it + 1u')}]; let f = workgroupUniformLoad(&flag); acc = acc * 3u + x + f;`,
  'prefetch-st': `sh[lid] = nxt; nxt = buf[${addr('it + 1u')}]; workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
  'load-st-2bar': `sh[lid] = buf[${addr('it')}]; workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
  '2bar': `sh[lid] = it; workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
  // Two and four iterations ahead (two barriers an iteration, ≈ 2bar if the barriers do not wait for the loads in
  // flight; ≈ load-st-2bar if they do). One iteration ahead cannot tell: one load in flight bounds the loop
  // by its latency either way.
  'prefetch2-st': `sh[lid] = nxt; nxt = nx2; nx2 = tld(${addr('it + 2u')}); workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
  'prefetch4-st': `sh[lid] = nxt; nxt = nx2; nx2 = nx3; nx3 = nx4; nx4 = tld(${addr('it + 4u')}); workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
  'prefetch4-nobar': `sh[lid] = nxt; nxt = nx2; nx2 = nx3; nx3 = nx4; nx4 = tld(${addr('it + 4u')}); acc = acc * 3u + sh[(lid + 1u) & 127u];`,
  'tex-load-use': `let x = tld(${addr('it')}); acc = acc * 3u + x;`,
  'tex-load-bar-use': `let x = tld(${addr('it')}); workgroupBarrier(); acc = acc * 3u + x;`,
  'tex-prefetch': `let x = nxt; nxt = tld(${addr('it + 1u')}); workgroupBarrier(); acc = acc * 3u + x;`,
  'tex-prefetch-st': `sh[lid] = nxt; nxt = tld(${addr('it + 1u')}); workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
  'tex-prefetch2-st': `sh[lid] = nxt; nxt = nx2; nx2 = tld(${addr('it + 2u')}); workgroupBarrier(); acc = acc * 3u + sh[(lid + 1u) & 127u]; workgroupBarrier();`,
};

function source(body, tex) {
  return `
@group(0) @binding(0) var<storage, read> buf: array<u32>;
@group(0) @binding(1) var<storage, read_write> sink: array<u32>;
${tex ? '@group(0) @binding(2) var tx: texture_2d<u32>;' : ''}
fn tld(a: u32) -> u32 { return ${tex ? 'textureLoad(tx, vec2<u32>(a & 1023u, a >> 10u), 0).x' : 'buf[a]'}; }
var<workgroup> sh: array<u32, 128>;
var<workgroup> flag: u32;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  var acc = 0u;
  var nxt = tld(${addr('0u')});
  var nx2 = tld(${addr('1u')});
  var nx3 = tld(${addr('2u')});
  var nx4 = tld(${addr('3u')});
  for (var it = 0u; it < ${iters}u; it++) {
    ${body}
  }
  if (acc == 0x12345u) { sink[0] = acc + nxt + nx2 + nx3 + nx4 + buf[0]; }
}`;
}

const buf = device.createBuffer({ size: WORDS * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
device.queue.writeBuffer(buf, 0, Uint32Array.from({ length: WORDS }, (_, i) => (i * 2654435761) >>> 0));
const sink = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
// The same values as a 1024×1024 r32uint texture.
const tex = device.createTexture({ size: [1024, 1024], format: 'r32uint', usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST });
const enc = device.createCommandEncoder();
enc.copyBufferToTexture({ buffer: buf, bytesPerRow: 4096 }, { texture: tex }, [1024, 1024]);
device.queue.submit([enc.finish()]);
console.log(`${iters} iterations, ${132 * occ} workgroups of 128`);
for (const [name, body] of Object.entries(forms)) {
  const t = name.startsWith('tex');
  const ms = await timeProbe(device, source(body, t), t ? [buf, sink, tex.createView()] : [buf, sink], 132 * occ);
  console.log(`${name.padEnd(14)} ${((ms * 1e6) / iters).toFixed(1).padStart(7)} ns an iteration`);
}
