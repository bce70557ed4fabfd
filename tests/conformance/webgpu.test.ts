import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError, attention, gpuContext, lastGpuStats, probabilityRows, randn, setGpuKernelPreference, setGpuOutputPoisoning } from '../../src/index.js';
import { portableSource } from '../../src/kernels/webgpu/variants.js';
import { portableUsesV4, setPortableTuning } from '../../src/kernels/webgpu/attention-gpu.js';
import { CASES, type CaseRunner, checkCase, checkTracksNaiveAtScale65, runOn } from './cases.js';

// WebGPU conformance: the same case list as the CPU backends. In CI the adapter is SwiftShader
// (Vulkan on the CPU); under CI=true a missing adapter fails the suite instead of skipping it.
describe('conformance: webgpu backend', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    const ctx = await gpuContext();
    console.log(`WebGPU adapter: ${ctx.caps.vendor} ${ctx.caps.architecture} ${ctx.caps.description}; f16=${ctx.caps.f16} subgroups=${ctx.caps.subgroups} (${ctx.caps.subgroupMinSize}-${ctx.caps.subgroupMaxSize}) subgroupLinear=${ctx.caps.subgroupLinear}`);
  });
  it('probes the subgroup layout only where subgroup matrices exist (GpuCaps.subgroupLinear)', async () => {
    const ctx = await gpuContext();
    expect(typeof ctx.caps.subgroupLinear).toBe('boolean');
    if (!ctx.caps.subgroupMatrix.length) expect(ctx.caps.subgroupLinear).toBe(false);
  });
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c, runOn('webgpu'));
    }, 300_000);
  }
});

// Inputs near ±1000 on 12 more seeds, on the portable kernel. With the scale (and log2 e) folded into Q before the
// product, 4 of these 12 seeds (10 of 64) exceeded 2× the naive f32 error on SwiftShader; with the scale applied
// after the dot product none did at head dim 64 but 3 of 12 at head dim 65 (a scale that is not a power of two).
// Now K is scaled as it is loaded and log2 e multiplies S − m only: the scores are the naive reference's own and the
// error tracks the naive one at both head dims (bench/results/webgpu-accuracy-scale-after-dot-2026-12-02.txt,
// accuracy-fma-naive-2026-12-02.txt).
describe('webgpu portable kernel: inputs near ±1000 on 12 more seeds', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('portable');
  });
  afterAll(() => setGpuKernelPreference('auto'));
  it('each within 2× the naive f32 error + floor', async () => {
    const base = CASES.find((c) => c.name === 'inputs near ±1000')!;
    for (let seed = 3000; seed < 3012; seed++) {
      await checkCase({ ...base, name: `${base.name} #${seed}`, seed }, runOn('webgpu'));
      expect(lastGpuStats?.kernel, `seed ${seed}`).toBe('flash_portable');
    }
  }, 300_000);
  it('at head dim 65 (scale 1/√65) each within 1.01× the naive f32 error + floor', () => checkTracksNaiveAtScale65(runOn('webgpu'), 'yardstick'), 300_000);
});

// The same at decode shapes (few queries, long KV), on both decode kernels: decode_split and decode_warp (its
// shuffles emulated where the adapter has no 32-lane subgroups). Like the portable kernel they scale K as it is
// loaded and keep scores in natural units until exp2((s − m)·log2 e), partials and merge included.
describe.each(['decode-split', 'decode-emulated'] as const)('webgpu %s: inputs near ±1000 at head dim 65', (pref) => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference(pref);
  });
  afterAll(() => setGpuKernelPreference('auto'));
  const run: CaseRunner = async (inp, o) => {
    await runOn('webgpu')(inp, o);
    expect(lastGpuStats?.kernel).toBe('decode');
    expect(lastGpuStats?.key).toContain(pref === 'decode-split' ? 'decode_split' : 'decode_warp');
  };
  // decode_warp reads K/V in fours: head dim 64 with the scale 1/√65 (not a power of two) stands in for d65.
  const dims = pref === 'decode-split' ? {} : { headDim: 64, scale: 1 / Math.sqrt(65) };
  it('Sq 1, Sk 300, GQA 2: each within 1.01× the naive f32 error + floor', () => checkTracksNaiveAtScale65(run, 'yardstick', { seqLenQ: 1, seqLenK: 300, numHeads: 4, numKvHeads: 2, mask: undefined, ...dims }), 300_000);
  it('Sq 3, Sk 200, causal, with LSE: each within 1.01× the naive f32 error + floor', () => checkTracksNaiveAtScale65(run, 'yardstick', { seqLenQ: 3, seqLenK: 200, numHeads: 2, numKvHeads: 1, ...dims }), 300_000);
});

// The portable kernel's V-as-vec4 mapping (four consecutive output columns a thread) is the default
// where the value head dim rounds up to a multiple of 64, and the tx + 16t mapping elsewhere; here each
// is forced where the other is the default: value head dims that are and are not multiples of 64,
// masks on partial tiles, GQA packing, NaN propagation.
describe('conformance: webgpu portable kernel, column mappings forced', () => {
  const V4 = ['self N129 d64', 'headDim 128', 'headDimV 111 ≠ headDim 40', 'causal 129x97', 'NaN in v propagates', 'varlen window GQA8'];
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('portable');
  });
  afterAll(() => { setPortableTuning({ v4: 'auto' }); setGpuKernelPreference('auto'); });
  for (const name of V4) {
    const c = CASES.find((x) => x.name === name)!;
    const dv = c.headDimV ?? c.headDim;
    const forced = !portableUsesV4(dv);
    it(`${name} [${forced ? 'v4' : 'no v4'} forced]`, async () => {
      setPortableTuning({ v4: forced });
      try {
        await checkCase(c, runOn('webgpu'));
        expect(lastGpuStats?.key.includes('"v4":true')).toBe(forced);
      } finally { setPortableTuning({ v4: 'auto' }); }
    }, 300_000);
  }
});

// Two rows a thread in 512-thread workgroups: the portable kernel's form where Q/K/V go through scalar loads and
// V is read as vec4, on adapters that allow 512 invocations. SwiftShader allows 256, so CI cannot run it
// (check:gpu does, PORTABLE_ROWS=2); CI compiles it here, so a WGSL error in that form cannot reach a release.
describe('webgpu portable kernel, two rows a thread', () => {
  const NO_MASK = 'fn mask_allows(i: i32, j: i32, lenQ: i32, lenK: i32, thr: u32, s: f32) -> bool { return true; }';
  it('compiles without errors (f32 and f16 storage, with and without subgroups and vector loads, d64 and d128)', async () => {
    const ctx = await gpuContext();
    for (const DV of [64, 128]) {
      for (const sg of [true, false]) {
        for (const fmt of ['f32', 'f16'] as const) {
          for (const vload of [false, true]) {
            const code = portableSource({ kernel: 'flash_portable', fmt, D: DV, DV, G: 1, sg, cap: false, maskKey: 'none', wide: vload, v4: true, r2: true, vload }, NO_MASK);
            expect(code).toContain('const NT: u32 = 512u;');
            const info = await ctx.device.createShaderModule({ code }).getCompilationInfo();
            expect(info.messages.filter((m) => m.type === 'error').map((m) => m.message), `d${DV} ${fmt} sg=${sg} vload=${vload}`).toEqual([]);
          }
        }
      }
    }
  }, 120_000);
});

// The portable kernel's four-element storage loads (setPortableTuning's vecLoads, on by default): cases that
// take them (head dims multiples of 4; f32, f16 and bf16 storage; GQA packing, varlen, masks on partial
// tiles), ones that must fall back to scalar loads (head dims 59, 111, 1), the vector form without its V
// prefetch, and the scalar form forced on cases that would take the vector one, so all stay checked.
describe('conformance: webgpu portable kernel, four-element and scalar storage loads', () => {
  const VL = ['self N129 d64', 'varlen window GQA8', 'f16 causal GQA', 'bf16 cross', 'headDim 59', 'headDimV 111 ≠ headDim 40', 'headDim 1'];
  const SCALAR = ['self N129 d64', 'causal 129x97', 'f16 causal GQA', 'layout BHSD', 'NaN in v propagates'];
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('portable');
  });
  afterAll(() => { setPortableTuning({ vecLoads: true }); setGpuKernelPreference('auto'); });
  for (const name of VL) {
    const c = CASES.find((x) => x.name === name)!;
    const takes = c.headDim % 4 === 0 && (c.headDimV ?? c.headDim) % 4 === 0;
    it(`${name} [${takes ? 'vector loads' : 'falls back to scalar loads'}]`, async () => {
      setPortableTuning({ vecLoads: true });
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.key.includes('"vload":true')).toBe(takes);
      // The first V chunk of each tile prefetched into registers (vpre) wherever the vector loads are taken.
      expect(lastGpuStats?.key.includes('"vpre":true')).toBe(takes);
    }, 300_000);
  }
  // The vector form without the V prefetch (setPortableTuning({ vpre: false })), so that it stays checked.
  for (const name of ['self N129 d64', 'varlen window GQA8', 'f16 causal GQA']) {
    const c = CASES.find((x) => x.name === name)!;
    it(`${name} [vector loads, no V prefetch]`, async () => {
      setPortableTuning({ vecLoads: true, vpre: false });
      try {
        await checkCase(c, runOn('webgpu'));
        expect(lastGpuStats?.key.includes('"vload":true')).toBe(true);
        expect(lastGpuStats?.key.includes('"vpre"')).toBe(false);
      } finally { setPortableTuning({ vpre: true }); }
    }, 300_000);
  }
  for (const name of SCALAR) {
    const c = CASES.find((x) => x.name === name)!;
    it(`${name} [scalar loads forced]`, async () => {
      setPortableTuning({ vecLoads: false });
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.key.includes('"vload"')).toBe(false);
    }, 300_000);
  }
});

// The portable kernel's non-default V chunk form on ten cases with poisoned outputs (partial tiles, varlen,
// GQA packing, f16 storage, NaN, empty KV, top-k, softcap, a cross-attention tail): further V chunks of a
// tile loaded in place instead of prefetched during the previous chunk's FMAs (setPortableTuning's vnext
// false; the default 'auto' prefetches wherever a tile has two or more chunks, as on SwiftShader, so the
// default path is what the blocks above check).
describe('conformance: webgpu portable kernel, V chunks in place', () => {
  const CASES_X = ['self N129 d64', 'causal 129x97', 'varlen window GQA8', 'f16 causal GQA', 'NaN in v propagates', 'headDim 128', 'empty KV (seqLenK 0)', 'topK(16, causal)', 'softcap 30', 'cross 97x1025'];
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('portable');
    setPortableTuning({ vnext: false });
  });
  afterAll(() => { setPortableTuning({ vnext: 'auto' }); setGpuKernelPreference('auto'); });
  for (const name of CASES_X) {
    const c = CASES.find((x) => x.name === name)!;
    it(`${name} [V chunks in place]`, async () => {
      await checkCase(c, runOn('webgpu'));
      if (lastGpuStats?.kernel === 'flash_portable') expect(lastGpuStats.key.includes('"vnext"')).toBe(false);
    }, 300_000);
  }
});

describe('webgpu portable kernel, vnext auto', () => {
  afterAll(() => { setPortableTuning({ pch: true }); setGpuKernelPreference('auto'); });
  it('prefetches further V chunks where a tile has two or more (headDim 128) and not where it has one (value head dim 32, P by chunk off)', async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('portable');
    setPortableTuning({ pch: false });
    for (const [name, takes] of [['headDim 128', true], ['headDimV 32 ≠ headDim 64', false]] as const) {
      const c = CASES.find((x) => x.name === name)!;
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.kernel).toBe('flash_portable');
      expect(lastGpuStats?.key.includes('"vnext":true'), name).toBe(takes);
    }
  }, 300_000);
});

// P by chunk (setPortableTuning's pch, PortableFlashVariant.pch) is the forward default and runs every case
// above; the layout without it (P for the whole tile in workgroup memory, 32-dim slices: the capture
// passes' form, and the forward pass with pch off) on a subset here.
describe('conformance: webgpu portable kernel, P by chunk on and off', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('portable');
  });
  afterAll(() => { setPortableTuning({ pch: true }); setGpuKernelPreference('auto'); });
  for (const name of ['self N129 d64', 'causal 129x97', 'headDim 128', 'headDimV 111 ≠ headDim 40', 'varlen window GQA8', 'NaN in v propagates']) {
    for (const pch of [true, false]) {
      const c0 = CASES.find((x) => x.name === name)!;
      it(`${name} [pch ${pch}]`, async () => {
        setPortableTuning({ pch });
        await checkCase(c0, runOn('webgpu'));
        expect(lastGpuStats?.kernel).toBe('flash_portable');
        expect(lastGpuStats?.key.includes('"pch":true')).toBe(pch);
      }, 300_000);
    }
  }
  // The smaller V chunks that adapters with 16 KiB of workgroup memory get (portableFit), forced here.
  for (const name of ['causal 129x97', 'headDim 111', 'varlen window GQA8']) {
    for (const pcap of [16, 8] as const) {
      const c0 = CASES.find((x) => x.name === name)!;
      it(`${name} [pch, V chunks of ≤ ${pcap} keys]`, async () => {
        setPortableTuning({ pch: true, pcap });
        try {
          await checkCase(c0, runOn('webgpu'));
        } finally {
          setPortableTuning({ pcap: 32 });
        }
        expect(lastGpuStats?.key.includes(`"pcap":${pcap}`)).toBe(true);
      }, 300_000);
    }
  }
});

// An adapter with only WebGPU's default 16 KiB of workgroup memory (the context's limit lowered for the
// test): the forward pass takes the small form portableFit picks and still matches the reference; capture,
// whose whole-tile P cannot fit, fails with a typed error that names the limit.
describe('webgpu portable kernel on a 16 KiB adapter', () => {
  afterAll(() => setGpuKernelPreference('auto'));
  it('runs the forward pass in 16 KiB and refuses capture with UnsupportedError', async () => {
    setGpuOutputPoisoning(true);
    const ctx = await gpuContext();
    setGpuKernelPreference('portable');
    const saved = ctx.caps.maxWorkgroupStorage;
    ctx.caps.maxWorkgroupStorage = 16384;
    try {
      for (const name of ['causal 129x97', 'headDim 128']) {
        await checkCase(CASES.find((x) => x.name === name)!, runOn('webgpu'));
        expect(lastGpuStats?.kernel).toBe('flash_portable');
        expect(lastGpuStats?.key.includes('"wide":false'), name).toBe(true);
      }
      const q = randn([1, 20, 2, 32], 3), k = randn([1, 30, 2, 32], 4), v = randn([1, 30, 2, 32], 5);
      const { lse } = await attention(q, k, v, { returnLse: true, backend: 'webgpu' });
      const err = await probabilityRows(q, k, [0], { lse, backend: 'webgpu' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsupportedError);
      expect(String((err as Error).message)).toMatch(/16384/);
    } finally {
      ctx.caps.maxWorkgroupStorage = saved;
    }
  }, 300_000);
});

// The whole V tile in one chunk (setPortableTuning's vfull, on by default where workgroup memory allows: value
// head dims 72–112 take two chunks a tile otherwise): it needs more workgroup memory than SwiftShader's 32 KiB
// wherever it changes anything, so CI compiles its WGSL here and check:gpu runs it on the H200 (cases with
// those value head dims take it there by default).
describe('webgpu portable kernel, whole V tile in one chunk', () => {
  const NO_MASK = 'fn mask_allows(i: i32, j: i32, lenQ: i32, lenK: i32, thr: u32, s: f32) -> bool { return true; }';
  it('compiles without errors (d72–d112; f32/f16; subgroups or not; vector loads or not)', async () => {
    const ctx = await gpuContext();
    for (const DV of [72, 80, 96, 111]) {
      for (const fmt of ['f32', 'f16'] as const) {
        for (const [sg, vload] of [[true, true], [true, false], [false, true]] as const) {
          const code = portableSource({ kernel: 'flash_portable', fmt, D: DV, DV, G: 1, sg, cap: false, maskKey: 'none', wide: true, vload, vfull: true }, NO_MASK);
          expect(code).toContain(`const BCV: u32 = 64u;`);
          const info = await ctx.device.createShaderModule({ code }).getCompilationInfo();
          expect(info.messages.filter((m) => m.type === 'error').map((m) => m.message), `d${DV} ${fmt} sg=${sg} vload=${vload}`).toEqual([]);
        }
      }
    }
  }, 120_000);
});
