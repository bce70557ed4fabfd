/**
 * Device tensors (GpuTensor) read back as what they hold: a permuted view downloads with its strides, so the output
 * of a BHSD call on device tensors (a BHSD view over a BSHD buffer) matches the host call. Until 2026-12-02
 * toTensor labelled the buffer's storage order with the view's shape and returned it scrambled.
 * Needs a WebGPU adapter (SwiftShader in CI); gpuContext() throws DeviceError without one, so this fails, not skips.
 */
import { describe, expect, it } from 'vitest';
import { GpuTensor, attention, causal, gpuContext, randn } from '../../../src/index.js';
import { expectClose } from '../../helpers/close.js';

describe('GpuTensor views', () => {
  it('toTensor keeps a permuted view\'s strides', async () => {
    const ctx = await gpuContext();
    const t = randn([2, 5, 3, 4], 1);
    const g = await GpuTensor.fromTensor(t, ctx);
    const view = g.permute([0, 2, 1, 3]);
    const back = await view.toTensor();
    expect(back.shape).toEqual([2, 3, 5, 4]);
    expect(Array.from(back.contiguous().toFloat32())).toEqual(Array.from(t.permute([0, 2, 1, 3]).contiguous().toFloat32()));
    g.dispose();
  });

  for (const dtype of ['f32', 'f16'] as const) {
    it(`attention on device tensors with layout 'bhsd' (${dtype}, GQA 2, causal) reads back as the host call`, async () => {
      // f16 storage runs on adapters without shader-f16 too (SwiftShader): the kernels convert on load.
      const ctx = await gpuContext();
      const q = randn([1, 4, 33, 16], 1).to(dtype), k = randn([1, 2, 40, 16], 2).to(dtype), v = randn([1, 2, 40, 16], 3).to(dtype);
      const host = await attention(q, k, v, { layout: 'bhsd', mask: causal(), returnLse: true, backend: 'cpu-ts' });
      const [gq, gk, gv] = await Promise.all([q, k, v].map((x) => GpuTensor.fromTensor(x, ctx)));
      const dev = await attention(gq, gk, gv, { layout: 'bhsd', mask: causal(), returnLse: true });
      const out = await (dev.out as GpuTensor).toTensor(), lse = await (dev.lse as GpuTensor).toTensor();
      expect(out.shape).toEqual([1, 4, 33, 16]);
      const tol = dtype === 'f32' ? { atol: 1e-5, rtol: 1e-5 } : { atol: 2e-3, rtol: 2e-3 };
      expectClose(out.contiguous().toFloat32(), host.out.contiguous().toFloat32(), tol);
      expectClose(lse.contiguous().toFloat32(), host.lse!.contiguous().toFloat32(), { atol: 1e-4, rtol: 1e-4 });
      for (const x of [gq, gk, gv, dev.out as GpuTensor, dev.lse as GpuTensor]) x.dispose();
    }, 120_000);
  }
});
