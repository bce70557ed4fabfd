/**
 * Device tensors (GpuTensor) read back as what they hold: a permuted view downloads with its strides, so the output
 * of a BHSD call on device tensors (a BHSD view over a BSHD buffer) matches the host call. Until 2026-12-02
 * toTensor labelled the buffer's storage order with the view's shape and returned it scrambled.
 * Needs a WebGPU adapter (SwiftShader in CI); gpuContext() throws DeviceError without one, so this fails, not skips.
 */
import { describe, expect, it } from 'vitest';
import { GpuTensor, StateError, attention, causal, gpuContext, or, probabilityRows, randn, slidingWindow, strided, topKeys } from '../../../src/index.js';
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

  it('toTensor of a strided view reads the span its strides reach (heads 0-1 of a 4-head buffer)', async () => {
    const ctx = await gpuContext();
    const t = randn([1, 9, 4, 8], 4);
    const g = await GpuTensor.fromTensor(t, ctx);
    const view = new GpuTensor(ctx, g.buffer, [1, 9, 2, 8], 'f32', [288, 32, 8, 1]);
    const back = await view.toTensor();
    expect(Array.from(back.contiguous().toFloat32())).toEqual(Array.from(t.slice(2, 0, 2).contiguous().toFloat32()));
    g.dispose();
  });

  it('a disposed tensor is a StateError, read or used (it read back zeros; attention failed with a device message)', async () => {
    const ctx = await gpuContext();
    const g = await GpuTensor.fromTensor(randn([1, 4, 1, 8], 1), ctx), k = await GpuTensor.fromTensor(randn([1, 4, 1, 8], 2), ctx);
    k.dispose();
    expect(k.isDisposed).toBe(true);
    await expect(k.toTensor()).rejects.toThrow(StateError);
    await expect(attention(g, k, g)).rejects.toMatchObject({ name: 'StateError', message: expect.stringMatching(/^k is a disposed GpuTensor/) });
    g.dispose();
  });

  it('concurrent calls keep their own errors: the failing one rejects, the other succeeds (error scopes were shared)', async () => {
    const ctx = await gpuContext();
    const [gq, gk, gv] = await Promise.all([1, 2, 3].map((s) => GpuTensor.fromTensor(randn([1, 16, 2, 8], s), ctx)));
    // A buffer destroyed behind the tensor's back: only the device can tell, at submit.
    const dead = await GpuTensor.fromTensor(randn([1, 16, 2, 8], 4), ctx);
    dead.buffer.destroy();
    for (let round = 0; round < 3; round++) {
      const [a, b] = await Promise.allSettled([attention(gq, dead, gv), attention(gq, gk, gv)]);
      expect(a.status).toBe('rejected');
      expect((a as PromiseRejectedResult).reason.name).toBe('DeviceError');
      expect(b.status).toBe('fulfilled');
      ((b as PromiseFulfilledResult<{ out: GpuTensor }>).value.out).dispose();
    }
    for (const x of [gq, gk, gv]) x.dispose();
  });

  it('a call that fails after allocating its outputs frees them (host and device calls)', async () => {
    const ctx = await gpuContext();
    let live = 0;
    const orig = ctx.device.createBuffer.bind(ctx.device);
    ctx.device.createBuffer = (d: GPUBufferDescriptor) => {
      const b = orig(d); live++;
      const od = b.destroy.bind(b); let done = false;
      b.destroy = () => { if (!done) { done = true; live--; } od(); };
      return b;
    };
    try {
      const q = randn([1, 20, 2, 16], 1), k = randn([1, 40, 2, 16], 2), v = randn([1, 40, 2, 16], 3);
      // A mask past the kernel's expression limit fails after the outputs are allocated.
      const bigMask = or(...Array.from({ length: 200 }, (_, i) => slidingWindow(i, i + 1).and(strided(i + 2))));
      const [gq, gk, gv] = await Promise.all([q, k, v].map((t) => GpuTensor.fromTensor(t, ctx)));
      const base = live;
      for (let i = 0; i < 3; i++) await expect(attention(gq, gk, gv, { mask: bigMask, returnLse: true })).rejects.toThrow(/too large/);
      for (let i = 0; i < 3; i++) await expect(attention(q, k, v, { mask: bigMask, returnLse: true, backend: 'webgpu' })).rejects.toThrow(/too large/);
      expect(live).toBe(base);
      // A submit that fails (a destroyed K buffer): its outputs are freed too.
      const dead = await GpuTensor.fromTensor(k, ctx);
      dead.buffer.destroy();
      const before = live;
      for (let i = 0; i < 3; i++) await expect(attention(gq, dead, gv, { returnLse: true })).rejects.toThrow();
      expect(live).toBe(before);
      for (const x of [gq, gk, gv]) x.dispose();
    } finally {
      ctx.device.createBuffer = orig;
    }
  }, 120_000);

  it('probabilityRows and topKeys with repeated rows and heads give each copy its values (they were zeros)', async () => {
    const q = randn([1, 6, 2, 8], 1), k = randn([1, 5, 2, 8], 2);
    const rows = [2, 0, 2], heads = [1, 0, 1];
    const gpu = await probabilityRows(q, k, rows, { heads, backend: 'webgpu' });
    const cpu = await probabilityRows(q, k, rows, { heads, backend: 'cpu-ts' });
    expect(gpu.shape).toEqual([1, 3, 3, 5]);
    expectClose(gpu.toFloat32(), cpu.toFloat32(), { atol: 1e-5, rtol: 1e-5 });
    const tg = await topKeys(q, k, rows, 2, { heads, backend: 'webgpu' }), tc = await topKeys(q, k, rows, 2, { heads, backend: 'cpu-ts' });
    expect(Array.from(tg.indices)).toEqual(Array.from(tc.indices));
  }, 120_000);
});
