// Per-call GPU time of `encode` (which records one call into a command encoder): command buffers of
// n calls (≥ minMs each), median of `samples`. `warmMs` of back-to-back calls first lets the clock
// ramp up (the H200 idles at 345 MHz and needs ~0.3 s of load to reach 1980 MHz: scripts/gpu-clocks.mjs);
// warmMs 0 times from whatever state the GPU is in; maxIters caps the calls per command buffer.
// bench/gpu.ts times with it too (7 samples, at most 2000 calls).
export async function timeGpu(device, encode, { warmMs = 600, minMs = 20, samples = 5, maxIters = Infinity } = {}) {
  const once = async (n) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < n; i++) encode(enc);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  const batch = (perCall) => Math.max(3, Math.min(maxIters, Math.ceil(minMs / Math.max(0.005, perCall))));
  await once(1);
  let n = batch((await once(3)) / 3);
  for (const end = performance.now() + warmMs; performance.now() < end; ) n = batch((await once(n)) / n);
  const s = [];
  for (let i = 0; i < samples; i++) s.push((await once(n)) / n);
  return s.sort((a, b) => a - b)[samples >> 1];
}

/**
 * Compiles a one-entry-point WGSL probe (compiler errors thrown with their line numbers), binds `buffers`
 * (buffers or texture views) at bindings 0.., and times `groups` workgroups of it with timeGpu: ms per dispatch.
 */
export async function timeProbe(device, code, buffers, groups) {
  const module = device.createShaderModule({ code });
  const errs = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
  if (errs.length) throw new Error(errs.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join(' | '));
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  // A GPUBuffer binds as a buffer; anything else (a texture view) as itself.
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((r, binding) => ({ binding, resource: typeof r.mapAsync === 'function' ? { buffer: r } : r })) });
  return timeGpu(device, (enc) => {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(groups);
    pass.end();
  });
}
