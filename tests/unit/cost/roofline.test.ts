/**
 * Device profiles, roofline arithmetic, benchmark JSON → measured profile, predictions vs measured.
 */
import { describe, expect, it } from 'vitest';
import {
  BENCH_SCHEMA, BENCHMARK_SHAPES, DEVICE_PROFILES, predictBenchmarkShapes, UnsupportedError, ValueError, attentionCost, attentionRoofline, comparePredictions, deviceProfile,
  listDevices, measureCpuProfile, profileFromBenchmark, roofline, type Figure,
} from '../../../src/index.js';

const figures = (p: (typeof DEVICE_PROFILES)[string]): [string, Figure][] => {
  const out: [string, Figure][] = [['memoryBandwidth', p.memoryBandwidth], ['memoryBytes', p.memoryBytes], ['onChipBytes', p.onChipBytes]];
  if (p.l2Bytes) out.push(['l2Bytes', p.l2Bytes]);
  for (const [dt, pk] of Object.entries(p.peaks)) {
    if (pk?.tensor) out.push([`${dt}.tensor`, pk.tensor]);
    if (pk?.vector) out.push([`${dt}.vector`, pk.vector]);
  }
  return out;
};

describe('device profiles', () => {
  it('cover A100, H100, H200, L4, RTX 4090, Apple M2/M3/M4, a generic CPU, the measured H200 WebGPU and 2-core CPU', () => {
    for (const n of ['a100', 'h100', 'h200', 'l4', 'rtx4090', 'apple-m2', 'apple-m3', 'apple-m4', 'cpu-generic', 'h200-webgpu', 'cpu-wasm-2core']) {
      expect(listDevices()).toContain(n);
    }
  });

  it('label every figure datasheet / measured / derived, with a source', () => {
    for (const p of Object.values(DEVICE_PROFILES)) {
      for (const [k, f] of figures(p)) {
        expect(['datasheet', 'measured', 'derived'], `${p.name}.${k}`).toContain(f.label);
        expect(f.source.length, `${p.name}.${k} source`).toBeGreaterThan(10);
        expect(f.value, `${p.name}.${k}`).toBeGreaterThan(0);
      }
    }
  });

  it('NVIDIA profiles have tensor and vector peaks for f32, f16, bf16; tensor ≥ vector', () => {
    for (const n of ['a100', 'h100', 'h200', 'l4', 'rtx4090']) {
      for (const dt of ['f32', 'f16', 'bf16'] as const) {
        const pk = deviceProfile(n).peaks[dt]!;
        expect(pk.tensor!.value).toBeGreaterThanOrEqual(pk.vector!.value);
        expect(pk.tensor!.label).toBe('datasheet');
      }
    }
    expect(deviceProfile('h100').peaks.f16!.tensor!.value).toBe(989.5e12);
    expect(deviceProfile('a100').memoryBandwidth.value).toBe(2039e9);
  });

  it('the measured H200 WebGPU profile holds the project\'s measured figures', () => {
    const p = deviceProfile('h200-webgpu');
    expect(p.peaks.f32!.vector).toMatchObject({ value: 65.5e12, label: 'measured' });
    expect(p.peaks.f16!.vector).toMatchObject({ value: 66e12, label: 'measured' });
    expect(p.peaks.f16!.tensor).toMatchObject({ value: 550e12, label: 'measured' });
    expect(p.memoryBandwidth).toMatchObject({ value: 4.15e12, label: 'measured' });
    expect(p.peaks.f32!.tensor).toBeUndefined();
  });

  it('unknown device → ValueError listing the known ones; names are case-insensitive', () => {
    expect(deviceProfile('H200').name).toBe('h200');
    expect(deviceProfile('RTX4090').name).toBe('rtx4090');
    try {
      deviceProfile('tpu-v5');
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(ValueError);
      expect((e as ValueError).argument).toBe('device');
      for (const n of listDevices()) expect((e as Error).message).toContain(n);
    }
  });
});

describe('roofline', () => {
  it('time = max(flops/peak, bytes/bandwidth); intensity and ridge point', () => {
    const r = roofline({ matmulFlops: 989.5e12, bytes: 2.4e12, dtype: 'f16' }, 'h200');
    expect(r.unit).toBe('tensor');
    expect(r.computeSeconds).toBeCloseTo(1, 12);
    expect(r.memorySeconds).toBeCloseTo(0.5, 12);
    expect(r.seconds).toBeCloseTo(1, 12);
    expect(r.bound).toBe('compute');
    expect(r.intensity).toBeCloseTo(989.5e12 / 2.4e12, 9);
    expect(r.ridgeIntensity).toBeCloseTo(989.5 / 4.8, 9);
    const m = roofline({ matmulFlops: 1e9, bytes: 4.8e12, dtype: 'f16' }, 'h200');
    expect(m.bound).toBe('memory');
    expect(m.seconds).toBeCloseTo(1, 12);
  });

  it('softmax overlaps tensor-unit matmuls (max) but shares vector ALUs (sum)', () => {
    const t = roofline({ matmulFlops: 989.5e12, vectorFlops: 67e12 * 0.5, bytes: 0, dtype: 'f16' }, 'h200');
    expect(t.computeSeconds).toBeCloseTo(1, 12);
    const v = roofline({ matmulFlops: 67e12, vectorFlops: 67e12 * 0.5, bytes: 0, dtype: 'f32' }, 'h200', { unit: 'vector' });
    expect(v.computeSeconds).toBeCloseTo(1.5, 12);
  });

  it('decode-kv4k is memory-bound and 8k-d64 compute-bound on the H200; a standard kernel moves far more bytes', () => {
    const decode = attentionCost({ batch: 16, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16' });
    expect(attentionRoofline(decode, 'h200-webgpu').bound).toBe('memory');
    const big = attentionCost({ seqLenQ: 8192, numHeads: 16, headDim: 64, dtype: 'f16' }, { tiling: { tileQ: 64, tileK: 64 } });
    const flash = attentionRoofline(big, 'h200'), std = attentionRoofline(big, 'h200', { kernel: 'standard' });
    expect(flash.bound).toBe('compute');
    expect(std.bytes / flash.bytes).toBeGreaterThan(100);
    expect(std.seconds).toBeGreaterThan(flash.seconds);
  });

  it('a dtype or unit the device lacks → UnsupportedError naming what it has', () => {
    const c = attentionCost({ seqLenQ: 64, numHeads: 1, headDim: 64, dtype: 'bf16' });
    expect(() => attentionRoofline(c, 'h200-webgpu')).toThrow(UnsupportedError);
    expect(() => attentionRoofline(c, 'h200-webgpu')).toThrow(/f32, f16/);
    expect(() => roofline({ matmulFlops: 1, bytes: 1, dtype: 'f32' }, 'apple-m3', { unit: 'tensor' })).toThrow(UnsupportedError);
    expect(() => roofline({ matmulFlops: -1, bytes: 1, dtype: 'f32' }, 'h200')).toThrow(ValueError);
  });
});

const bench = (results: unknown[] = []) => ({
  schema: BENCH_SCHEMA, device: 'NVIDIA H200 via Dawn/Vulkan', api: 'webgpu', base: 'h200', date: '2026-11-29',
  ceilings: { f32: { vector: 65.5e12 }, f16: { vector: 66e12, tensor: 550e12 }, bandwidth: 4.15e12, sources: { 'f16.tensor': 'subgroup-matrix from registers' } },
  results,
});

describe('benchmark JSON → measured profile', () => {
  it('turns measured ceilings into a measured profile, keeping the base\'s datasheet memory size', () => {
    const p = profileFromBenchmark(JSON.stringify(bench()));
    expect(p.peaks.f16!.tensor).toMatchObject({ value: 550e12, label: 'measured' });
    expect(p.peaks.f16!.tensor!.source).toContain('subgroup-matrix from registers');
    expect(p.memoryBandwidth).toMatchObject({ value: 4.15e12, label: 'measured' });
    expect(p.memoryBytes).toMatchObject({ value: 141 * 2 ** 30, label: 'datasheet' });
    expect(p.name).toBe('nvidia-h200-via-dawn-vulkan-measured');
    // Same numbers as the built-in measured profile → same predictions.
    const c = attentionCost({ seqLenQ: 577, batch: 8, numHeads: 16, headDim: 64 });
    expect(attentionRoofline(c, p).seconds).toBe(attentionRoofline(c, 'h200-webgpu').seconds);
  });

  it('compares measured times with predictions shape by shape', () => {
    const shapes = [
      { name: 'vitL14-336', shape: { batch: 8, seqLenQ: 577, numHeads: 16, headDim: 64, dtype: 'f16' }, factor: 1.5 },
      { name: 'decode-kv4k', shape: { batch: 16, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16' }, factor: 1.2 },
      { name: '8k-d128-causal', shape: { seqLenQ: 8192, numHeads: 16, headDim: 128, dtype: 'f16', causal: true }, factor: 3 },
    ];
    const p = profileFromBenchmark(bench());
    const results = shapes.map((s) => {
      const c = attentionCost({ ...s.shape, dtype: 'f16' } as never, { tiling: { tileQ: 64, tileK: 64 } });
      return { name: s.name, shape: s.shape, ms: attentionRoofline(c, p).seconds * 1e3 * s.factor };
    });
    const rows = comparePredictions(bench(results));
    expect(rows.map((r) => r.name)).toEqual(shapes.map((s) => s.name));
    rows.forEach((r, i) => expect(r.ratio).toBeCloseTo(shapes[i]!.factor, 9));
    expect(rows.map((r) => r.within2x)).toEqual([true, true, false]);
    expect(rows.map((r) => r.bound)).toEqual(['compute', 'memory', 'compute']);
    // Against the CUDA datasheet instead of the measured WebGPU ceilings.
    expect(comparePredictions(bench(results), 'h200')[0]!.predictedMs).toBeLessThan(rows[0]!.predictedMs);
  });

  it('leave-one-out: each compute-bound shape from the median rate of the other shapes of its unit', () => {
    const mk = (name: string, shape: object, ms: number, unit: 'tensor' | 'vector') => ({ name, shape, ms, unit });
    const a = { batch: 8, seqLenQ: 577, numHeads: 16, headDim: 64, dtype: 'f16' };
    const b2 = { seqLenQ: 8192, numHeads: 16, headDim: 64, dtype: 'f16' };
    const c = { seqLenQ: 8192, numHeads: 16, headDim: 128, dtype: 'f16', causal: true };
    const dec = { batch: 16, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16' };
    const results = [mk('a', a, 0.2, 'tensor'), mk('b', b2, 4, 'tensor'), mk('b-paged', b2, 4.4, 'tensor'), mk('c', c, 3.5, 'tensor'), mk('dec', dec, 0.09, 'tensor'), mk('a32', { ...a, dtype: 'f32' }, 1.4, 'vector')];
    const rows = comparePredictions(bench(results), undefined, { calibrate: 'leave-one-out' });
    const matmul = (sh: object) => attentionCost(sh as never, { tiling: { tileQ: 64, tileK: 64 } }).flops.matmul;
    const rate = (sh: object, ms: number) => matmul(sh) / (ms / 1e3);
    // 'a' from the median of b, b-paged and c; 'b' not from its own paged twin.
    const ra = [rate(b2, 4), rate(b2, 4.4), rate(c, 3.5)].sort((x, y) => x - y)[1]!;
    expect(rows[0]!.predictedMs).toBeCloseTo(matmul(a) / ra * 1e3, 9);
    expect(rows[0]!.calibratedFrom).toEqual(['b', 'b-paged', 'c']);
    expect(rows[1]!.calibratedFrom).toEqual(['a', 'c']);
    expect(rows[1]!.predictedMs).toBeCloseTo(matmul(b2) / ((rate(a, 0.2) + rate(c, 3.5)) / 2) * 1e3, 9);
    // Memory-bound decode and the lone f32 row keep the ceiling bound.
    expect(rows[4]).toMatchObject({ bound: 'memory', calibration: 'ceiling' });
    expect(rows[5]).toMatchObject({ calibration: 'ceiling' });
    expect(rows[5]!.predictedMs).toBe(comparePredictions(bench(results))[5]!.predictedMs);
    expect(() => comparePredictions(bench(results), undefined, { calibrate: 'median' as never })).toThrow(/calibrate/);
  });

  it('on the recorded H200 run: the ceilings bound every measured time from below; leave-one-out is within 2× everywhere', async () => {
    const { readFileSync } = await import('node:fs');
    const run = JSON.parse(readFileSync(new URL('../../../bench/results/gpu-h200-profile.json', import.meta.url), 'utf8')) as { results: unknown[] };
    const bounds = comparePredictions(run);
    expect(bounds.length).toBeGreaterThanOrEqual(14);
    for (const r of bounds) expect(r.ratio, r.name).toBeGreaterThanOrEqual(1);
    expect(bounds.filter((r) => r.bound === 'memory').map((r) => r.name.split('/')[0])).toEqual(['decode-kv4k', 'decode-kv4k', 'decode-kv4k', 'decode-kv4k']);
    const loo = comparePredictions(run, undefined, { calibrate: 'leave-one-out' });
    for (const r of loo) expect(r.within2x, `${r.name}: ratio ${r.ratio.toFixed(2)}`).toBe(true);
    expect(loo.filter((r) => r.calibration === 'leave-one-out').length).toBe(12);
  });

  it('rejects unknown keys and a wrong schema, naming the key', () => {
    expect(() => profileFromBenchmark({ ...bench(), gpu: 'x' })).toThrow(/unknown key 'gpu'/);
    expect(() => profileFromBenchmark({ ...bench(), ceilings: { ...bench().ceilings, f64: { vector: 1 } } })).toThrow(/ceilings\.f64/);
    expect(() => profileFromBenchmark(bench([{ name: 'x', ms: 1, shape: { seqlen: 5, numHeads: 1, headDim: 8 } }]))).toThrow(/results\[0\]\.shape\.seqlen/);
    expect(() => profileFromBenchmark({ ...bench(), schema: 'other/1' })).toThrow(ValueError);
    expect(() => profileFromBenchmark({ ...bench(), ceilings: { bandwidth: -1 } })).toThrow(/ceilings.bandwidth/);
    expect(() => profileFromBenchmark('{not json')).toThrow(/does not parse/);
    expect(() => profileFromBenchmark({ ...bench(), base: 'tpu' })).toThrow(/known devices/);
  });
});

describe('benchmark shapes', () => {
  it('on the measured H200 WebGPU profile only decode-kv4k is memory-bound (f16 and f32); the CPU set likewise', () => {
    for (const dtype of ['f16', 'f32'] as const) {
      const rows = predictBenchmarkShapes('gpu', 'h200-webgpu', { dtype });
      expect(rows.map((r) => r.name)).toEqual(BENCHMARK_SHAPES.gpu.map((s) => s.name));
      expect(rows.filter((r) => r.roofline.bound === 'memory').map((r) => r.name)).toEqual(['decode-kv4k']);
      expect(rows[0]!.roofline.unit).toBe(dtype === 'f16' ? 'tensor' : 'vector');
    }
    const cpu = predictBenchmarkShapes('cpu', 'cpu-wasm-2core');
    expect(cpu.filter((r) => r.roofline.bound === 'memory').map((r) => r.name)).toEqual(['decode-kv4k']);
    // decode-kv4k moves K and V once: 16 × 4096 × 8 × 128 × 2 (K, V) × 2 bytes + Q and O.
    const d = predictBenchmarkShapes('gpu', 'h200-webgpu').find((r) => r.name === 'decode-kv4k')!;
    expect(d.roofline.bytes).toBe(16 * 4096 * 8 * 128 * 2 * 2 + 2 * 16 * 32 * 128 * 2);
    expect(d.roofline.seconds).toBeCloseTo(d.roofline.bytes / 4.15e12, 15);
  });
});

describe('measured CPU profile', () => {
  it('measures the WASM SIMD FMA ceiling and copy bandwidth into a measured profile', async () => {
    const p = await measureCpuProfile({ iters: 2_000_000 });
    expect(p.peaks.f32!.vector!.label).toBe('measured');
    expect(p.peaks.f32!.vector!.value).toBeGreaterThan(1e9);
    expect(p.memoryBandwidth.label).toBe('measured');
    expect(p.memoryBandwidth.value).toBeGreaterThan(1e8);
    const r = attentionRoofline(attentionCost({ seqLenQ: 577, numHeads: 16, headDim: 64, dtype: 'f32' }), p);
    expect(r.unit).toBe('vector');
  });
});
