/**
 * The GPU's ceilings measured in the same run as a benchmark (the method of shared/gpu/probe.mjs):
 * f32 and f16 FMA rates from register-resident loops, device copy bandwidth (read + write bytes) over
 * 1 GiB, and the subgroup-matrix f16→f32 rate from registers (the tensor-core ceiling WebGPU exposes).
 */
import type { GpuContext } from '../../src/index.js';

export interface GpuCeilings {
  f32FmaFlops: number;
  f16FmaFlops: number | null;
  copyBytesPerSecond: number;
  sgmatFlops: number | null;
  sgmatConfig: string | null;
}

const SB = 0x80 | 0x8 | 0x4;

/**
 * Seconds per dispatch: the best of `samples` command buffers of `reps` dispatches, after warming up for
 * `warmMs` (the H200 raises its clocks only under sustained load; one decode-only run measured a 1 GiB
 * copy at 1.00 TB/s from a single cold sample where probe.mjs had 4.15 minutes earlier).
 */
async function timeKernel(ctx: GpuContext, code: string, buffers: GPUBuffer[], groups: [number, number], reps = 10, samples = 5, warmMs = 300): Promise<number> {
  const device = ctx.device;
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  const errs = info.messages.filter((m) => m.type === 'error');
  if (errs.length) throw new Error(errs.map((e) => `${e.lineNum}:${e.message}`).join('; '));
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: buffers.map((b, i) => ({ binding: i, resource: { buffer: b } })) });
  const run = async (n: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < n; i++) {
      const p = enc.beginComputePass();
      p.setPipeline(pipe); p.setBindGroup(0, bg); p.dispatchWorkgroups(groups[0], groups[1]); p.end();
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / n / 1e3;
  };
  const t0 = performance.now();
  do await run(2); while (performance.now() - t0 < warmMs);
  let best = Infinity;
  for (let i = 0; i < samples; i++) best = Math.min(best, await run(reps));
  return best;
}

export async function measureGpuCeilings(ctx: GpuContext): Promise<GpuCeilings> {
  const device = ctx.device;
  const sw = ctx.caps.architecture === 'swiftshader';
  const n = sw ? 256 * 64 : 132 * 2048 * 16;
  const iters = sw ? 64 : 4096;
  const out = device.createBuffer({ size: n * 4, usage: SB });
  const fma = (t: string, one: string) => `${t === 'f16' ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
  var a = vec4<${t}>(${t}(g.x & 7u) * ${one}, 1.0, 0.5, 0.25); let b = vec4<${t}>(0.999); let c = vec4<${t}>(0.001);
  var a2 = a + ${t}(0.1); var a3 = a + ${t}(0.2); var a4 = a + ${t}(0.3);
  for (var i = 0u; i < ${iters}u; i++) { a = fma(a, b, c); a2 = fma(a2, b, c); a3 = fma(a3, b, c); a4 = fma(a4, b, c); }
  o[g.x] = f32(dot(a + a2 + a3 + a4, vec4<${t}>(1.0))); }`;
  const s32 = await timeKernel(ctx, fma('f32', '1e-3'), [out], [n / 256, 1]);
  const f32FmaFlops = n * iters * 16 * 2 / s32;
  let f16FmaFlops: number | null = null;
  if (ctx.caps.f16) f16FmaFlops = n * iters * 16 * 2 / (await timeKernel(ctx, fma('f16', '0.001h'), [out], [n / 256, 1]));
  out.destroy();
  const bytes = sw ? 1 << 24 : 1 << 30;
  const a = device.createBuffer({ size: bytes, usage: SB }), b = device.createBuffer({ size: bytes, usage: SB });
  const nvec = bytes / 16;
  const gx = Math.min(32768, nvec / 256);
  const copy = `@group(0) @binding(0) var<storage, read> a: array<vec4f>; @group(0) @binding(1) var<storage, read_write> b: array<vec4f>;
@compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) { let i = g.x + g.y * nw.x * 256u; b[i] = a[i]; }`;
  const sc = await timeKernel(ctx, copy, [a, b], [gx, nvec / 256 / gx]);
  a.destroy(); b.destroy();
  let sgmatFlops: number | null = null, sgmatConfig: string | null = null;
  const cfg = ctx.caps.subgroupMatrix.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16)
    ?? ctx.caps.subgroupMatrix.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32');
  if (cfg) {
    const { M, N, K } = cfg;
    const code = `enable f16; enable chromium_experimental_subgroup_matrix;
@group(0) @binding(0) var<storage, read> A: array<f16>; @group(0) @binding(1) var<storage, read> B: array<f16>; @group(0) @binding(2) var<storage, read_write> C: array<f32>;
@compute @workgroup_size(${ctx.caps.subgroupMaxSize}) fn main() {
  var acc: subgroup_matrix_result<f32, ${N}, ${M}>;
  let l = subgroupMatrixLoad<subgroup_matrix_left<f16, ${K}, ${M}>>(&A, 0u, false, ${K}u);
  let r = subgroupMatrixLoad<subgroup_matrix_right<f16, ${N}, ${K}>>(&B, 0u, false, ${N}u);
  for (var k = 0u; k < 4096u; k++) { acc = subgroupMatrixMultiplyAccumulate(l, r, acc); }
  subgroupMatrixStore(&C, 0u, acc, false, ${N}u);
}`;
    const A = device.createBuffer({ size: 4096, usage: SB }), B = device.createBuffer({ size: 4096, usage: SB }), C = device.createBuffer({ size: 4096, usage: SB });
    const wgs = 132 * 64;
    try {
      const s = await timeKernel(ctx, code, [A, B, C], [wgs, 1]);
      sgmatFlops = wgs * 4096 * 2 * M * N * K / s;
      sgmatConfig = `f16→f32 ${M}×${N}×${K}`;
    } catch { /* not compiled on this adapter */ }
    A.destroy(); B.destroy(); C.destroy();
  }
  return { f32FmaFlops, f16FmaFlops, copyBytesPerSecond: 2 * bytes / sc, sgmatFlops, sgmatConfig };
}
