/** Linear layers on WebGPU (shaders/linear.wgsl), for the attention modules on the 'webgpu' backend. */
import { Tensor } from '../../tensor/tensor.js';
import { GpuTensor } from './attention-gpu.js';
import { gpuContext } from './device.js';
import { SHADERS } from './shaders.generated.js';

export async function gpuLinear(a: Tensor, w: Tensor, b: Tensor | null, M: number, N: number, K: number): Promise<Tensor> {
  const ctx = await gpuContext();
  const ga = await GpuTensor.fromTensor(a, ctx), gw = await GpuTensor.fromTensor(w, ctx);
  const gb = await GpuTensor.fromTensor(b ?? Tensor.zeros([1]), ctx);
  const gc = GpuTensor.empty(ctx, [M, N], 'f32');
  const pipe = await ctx.pipeline('linear', SHADERS['linear']!);
  const params = ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  try {
    ctx.device.queue.writeBuffer(params, 0, new Uint32Array([M, N, K, b ? 1 : 0]));
    await ctx.checked('linear (WebGPU)', async () => {
      const bind = ctx.device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [params, ga.buffer, gw.buffer, gb.buffer, gc.buffer].map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(Math.ceil(N / 16), Math.ceil(M / 16));
      pass.end();
      ctx.device.queue.submit([enc.finish()]);
    });
    return await gc.toTensor();
  } finally {
    params.destroy();
    for (const t of [ga, gw, gb, gc]) t.dispose();
  }
}
