/**
 * WebGPU argument checks found by probing: permute orders, dispose shared between a tensor and its views,
 * configureWebGpu's settings and the kernel setters are checked where they are given (they failed later, as raw
 * Dawn errors or silently wrong reads), and a tensor from a replaced device is named correctly.
 * Needs a WebGPU adapter (SwiftShader in CI); gpuContext() throws DeviceError without one, so this fails, not skips.
 */
import { describe, expect, it } from 'vitest';
import {
  GpuTensor, ShapeError, StateError, ValueError, attention, columnSums, configureWebGpu, gpuContext, randn, setGpuF32Policy, setGpuKernelPreference,
} from '../../../src/index.js';

describe('WebGPU argument checks', () => {
  it('permute refuses an order that is not a permutation (the view read past its buffer)', async () => {
    const g = await GpuTensor.fromTensor(randn([1, 40, 4, 32], 1));
    for (const order of [[0, 1, 1, 3], [0, 1], [0, 1, 2, 4], [0, 1, 2, 3.5]]) expect(() => g.permute(order)).toThrow(ShapeError);
    expect(g.permute([0, 2, 1, 3]).shape).toEqual([1, 4, 40, 32]);
    g.dispose();
  });

  it('a tensor and its views die together, whichever is disposed: StateError, not a raw Dawn error', async () => {
    const k = await GpuTensor.fromTensor(randn([1, 8, 2, 16], 2)), v = await GpuTensor.fromTensor(randn([1, 8, 2, 16], 3));
    for (const which of ['base', 'view'] as const) {
      const g = await GpuTensor.fromTensor(randn([1, 8, 2, 16], 1));
      const p = g.permute([0, 1, 2, 3]);
      (which === 'base' ? g : p).dispose();
      expect(g.isDisposed && p.isDisposed).toBe(true);
      for (const t of [g, p]) {
        await expect(t.toTensor()).rejects.toThrow(StateError);
        await expect(attention(t, k, v)).rejects.toThrow(StateError);
      }
    }
    k.dispose(); v.dispose();
  });

  it('fromTensor takes a host Tensor: anything else is a ValueError naming it', async () => {
    for (const bad of [null, undefined, { shape: [1], dtype: 'f32', data: new Float32Array(1) }]) {
      await expect(GpuTensor.fromTensor(bad as never)).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'tensor' }));
    }
  });

  it('configureWebGpu checks its settings when given, and a refused one changes nothing', async () => {
    const before = await gpuContext();
    const cases: [object, string][] = [
      [{ powerPreference: 'bogus' }, 'powerPreference'], [{ dawnFlags: ['not_a_toggle'] }, 'dawnFlags'], [{ dawnFlags: 'x=y' }, 'dawnFlags'],
      [{ gpu: {} }, 'gpu'], [{ gpu: null }, 'gpu'], [{ dawnFlgs: [] }, 'dawnFlgs'], [{ robustness: 'no' }, 'robustness'], [{ disable: ['nope'] }, 'disable'],
    ];
    for (const [init, argument] of cases) expect(() => configureWebGpu(init as never), JSON.stringify(init)).toThrow(expect.objectContaining({ name: 'ValueError', argument }));
    expect(() => configureWebGpu({ dawnFlgs: [] } as never)).toThrow(/did you mean 'dawnFlags'/);
    expect(await gpuContext()).toBe(before); // the device was not replaced
    const q = randn([1, 5, 2, 8], 1);
    expect((await attention(q, q, q, { backend: 'webgpu' })).out.shape).toEqual([1, 5, 2, 8]);
  });

  it('the kernel setters refuse values they do not know', () => {
    expect(() => setGpuKernelPreference('fast' as never)).toThrow(ValueError);
    expect(() => setGpuF32Policy('quick' as never)).toThrow(ValueError);
    setGpuKernelPreference('auto');
    setGpuF32Policy('split');
  });

  it('after configureWebGpu, the error names the tensor from the replaced device (q), not a fresh one', async () => {
    const gq = await GpuTensor.fromTensor(randn([1, 6, 2, 8], 1));
    configureWebGpu({});
    const gk = await GpuTensor.fromTensor(randn([1, 6, 2, 8], 2));
    await expect(attention(gq, gk, gk)).rejects.toThrow(expect.objectContaining({ name: 'ValueError', argument: 'q' }));
    // Reading it back: its data went with the device (a DeviceError said the device was lost, as if transiently).
    await expect(gq.toTensor()).rejects.toThrow(expect.objectContaining({ name: 'ValueError', message: expect.stringMatching(/configureWebGpu replaced.*upload it again/) }));
    gk.dispose();
  }, 60_000);

  it('device tensors: an explicit other backend is refused (not silently overridden); GpuTensor.empty checks its arguments', async () => {
    const gq = await GpuTensor.fromTensor(randn([1, 5, 2, 8], 1)), gk = await GpuTensor.fromTensor(randn([1, 5, 2, 8], 2));
    try {
      await expect(attention(gq, gk, gk, { backend: 'cpu-ts' } as never)).rejects.toThrow(expect.objectContaining({ name: 'UnsupportedError', argument: 'backend' }));
      await expect(columnSums(gq, gk, { backend: 'wasm' })).rejects.toThrow(expect.objectContaining({ name: 'UnsupportedError', argument: 'backend' }));
      const { out } = await attention(gq, gk, gk, { backend: 'webgpu' } as never);
      expect(out.shape).toEqual([1, 5, 2, 8]);
      (out as GpuTensor).dispose();
      const ctx = await gpuContext();
      expect(() => GpuTensor.empty(ctx, [1, 4, 2, -2], 'f32')).toThrow(expect.objectContaining({ name: 'ShapeError', argument: 'shape' }));
      expect(() => GpuTensor.empty(ctx, [1, 4.5, 2, 8], 'f32')).toThrow(expect.objectContaining({ name: 'ShapeError' }));
      expect(() => GpuTensor.empty(ctx, [1, 4, 2, 8], 'f64' as never)).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'dtype' }));
    } finally {
      gq.dispose(); gk.dispose();
    }
  }, 60_000);
});
