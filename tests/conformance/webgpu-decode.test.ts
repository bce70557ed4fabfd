import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuContext, lastGpuStats, setGpuKernelPreference, setGpuOutputPoisoning } from '../../src/index.js';
import { DECODE_TUNING_DEFAULTS, setDecodeTuning } from '../../src/kernels/webgpu/attention-gpu.js';
import { decodeWarpCombines, decodeWarpGeometry } from '../../src/kernels/webgpu/decode-warp.js';
import { CASES_DECODE, checkCase, runOn } from './cases.js';

// decode_split forced on CASES_DECODE (cases.ts), then decode_warp with emulated shuffles.

describe('webgpu decode kernel (split + merge), forced', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('decode-split');
  });
  afterAll(() => setGpuKernelPreference('auto'));
  for (const c of CASES_DECODE) {
    it(c.name, async () => {
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.kernel).toBe('decode');
      expect(lastGpuStats?.dispatches, 'split + merge (+ convert_out for an odd 16-bit value head dim)').toBe(outDispatches(c));
    }, 300_000);
  }
});

/** Dispatches of a decode call: split and merge; decode_merge writes 16-bit outputs as whole words of two
 * itself, so only an odd value head dim in f16/bf16 adds the convert pass. */
function outDispatches(c: (typeof CASES_DECODE)[number]): number {
  return c.dtype && c.dtype !== 'f32' && (c.headDimV ?? c.headDim) % 2 === 1 ? 3 : 2;
}

// The subgroup decode kernel (decode-warp.ts) with its shuffles emulated in workgroup memory, on the
// cases whose shapes it takes (4-element K/V loads, rows ≤ the lanes per key): one to sixteen lanes
// per key group (KPW 1 and 2), reduce-scatters that end with copies (V < LPK) and without, packed GQA
// rows, varlen, masks on partial tiles, softcap, NaN. On GPUs with 32-lane subgroups ('decode' in
// check:gpu) the same kernel runs with real shuffles.
describe('webgpu decode kernel on subgroups (decode_warp), emulated shuffles', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('decode-emulated');
  });
  afterAll(() => setGpuKernelPreference('auto'));
  for (const c of CASES_DECODE.filter((x) => x.headDim % 4 === 0 && x.headDim >= 64)) {
    it(c.name, async () => {
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.kernel).toBe('decode');
      expect(lastGpuStats?.key).toContain('decode_warp');
      expect(lastGpuStats?.dispatches).toBe(outDispatches(c));
    }, 300_000);
  }
  // 16-bit K/V as f16, with eight elements per lane chunk (16-byte loads, the default) and with four
  // (8-byte loads, the tuning knob off).
  for (const c0 of CASES_DECODE.filter((x) => x.headDim % 8 === 0 && (x.headDimV ?? x.headDim) % 8 === 0)) {
    const c = c0.dtype && c0.dtype !== 'f32' ? c0 : { ...c0, dtype: 'f16' as const, name: `${c0.name} [f16]` };
    // Cases whose rows leave a K/V row too few lanes at eight elements each fall back to four.
    if (decodeWarpGeometry(c.headDim, c.headDimV ?? c.headDim, (c.numHeads / c.numKvHeads) * Math.max(c.seqLenQ, ...(c.varlen ?? []).map((x) => x[0])), 'f16', 16, true)?.E !== 8) continue;
    it(`${c.name}, 16-byte loads`, async () => {
      await checkCase(c, runOn('webgpu'));
      expect(lastGpuStats?.key).toContain('"wide":true');
    }, 300_000);
    it(`${c.name}, 8-byte loads`, async () => {
      setDecodeTuning({ wide: false });
      try {
        await checkCase(c, runOn('webgpu'));
      } finally {
        setDecodeTuning({ wide: true });
      }
      expect(lastGpuStats?.key).toContain('"wide":false');
    }, 300_000);
  }
  // Prefetch two batches ahead.
  for (const c of CASES_DECODE.filter((x) => x.headDim % 4 === 0 && x.headDim >= 64).slice(0, 2)) {
    it(`${c.name}, prefetch depth 2`, async () => {
      setDecodeTuning({ pipe: 2 });
      try {
        await checkCase(c, runOn('webgpu'));
      } finally {
        setDecodeTuning({ pipe: 1 });
      }
      expect(lastGpuStats?.key).toContain('"pipe":2');
    }, 300_000);
  }
  // Without the one-batch-ahead prefetch and without combining the subgroups' partials in the workgroup
  // (tuning knobs; both on by default; the 16-row case never combines: its partials exceed 16 KiB).
  for (const c of CASES_DECODE.filter((x) => x.headDim % 4 === 0 && x.headDim >= 64).slice(0, 3)) {
    it(`${c.name}, no prefetch, no combine`, async () => {
      setDecodeTuning({ pipe: 0, combine: false });
      try {
        await checkCase(c, runOn('webgpu'));
      } finally {
        setDecodeTuning({ pipe: 1, combine: true });
      }
      expect(lastGpuStats?.key).toContain('"pipe":0,"combine":false');
    }, 300_000);
  }
});

// Fused decode (decode_warp's SS and fin): when the split target asks for at most four workgroups of four
// subgroups per (sequence, KV head), one workgroup of 4·SS subgroups takes the sequence's whole KV, sub-split
// su reading every SS-th tile, combines its 4·SS partials in workgroup memory (SS rounds of four) and writes
// the output and LSE itself: one dispatch, no merge (plus convert_out only for an odd 16-bit value head dim).
// The split target is set per case to SS workgroups per (sequence, KV head) to force each SS.
describe('webgpu decode_warp fused (one workgroup per sequence and KV head, no merge pass), emulated shuffles', () => {
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
    setGpuKernelPreference('decode-emulated');
  });
  afterAll(() => {
    setGpuKernelPreference('auto');
    setDecodeTuning({ target: DECODE_TUNING_DEFAULTS.target });
  });
  const fusable = CASES_DECODE.filter((x) => x.headDim % 4 === 0 && x.headDim >= 64 && !x.varlen && decodeWarpCombines((x.numHeads / x.numKvHeads) * x.seqLenQ, x.headDimV ?? x.headDim));
  for (const c0 of fusable) {
    for (const SS of [1, 2, 3]) {
      // 16-bit K/V (f16 for the f32 cases at SS 1, so that fin writes f16 words too).
      const c = SS === 1 && (!c0.dtype || c0.dtype === 'f32') ? { ...c0, dtype: 'f16' as const, name: `${c0.name} [f16]` } : c0;
      // Eight 16-bit elements a lane (E = 8) fuse at SS 1 and 3 only (attention-gpu.ts: SS 2 and 4 leave part
      // of a compute unit idle there); SS 2 then keeps split + merge, which this checks.
      const wide = c.dtype && c.dtype !== 'f32' && decodeWarpGeometry(c.headDim, c.headDimV ?? c.headDim, (c.numHeads / c.numKvHeads) * c.seqLenQ, 'f16', 16, true)?.E === 8;
      it(`${c.name}, SS ${SS}`, async () => {
        setDecodeTuning({ target: SS * c.batch * c.numKvHeads });
        try {
          await checkCase(c, runOn('webgpu'));
        } finally {
          setDecodeTuning({ target: DECODE_TUNING_DEFAULTS.target });
        }
        // Workgroups of 128·SS invocations need the adapter's limit (SwiftShader: 256, so SS ≤ 2 there;
        // SS 3 then keeps the split and merge, which this checks too).
        const ssMax = Math.min(4, Math.floor((await gpuContext()).caps.maxInvocations / 128));
        if (SS > ssMax || (wide && SS % 2 === 0)) {
          expect(lastGpuStats?.key).not.toContain('"fin"');
          expect(lastGpuStats?.dispatches).toBe(outDispatches(c));
          return;
        }
        expect(lastGpuStats?.key).toContain('"fin"');
        if (SS > 1) expect(lastGpuStats?.key).toContain(`"SS":${SS}`);
        else expect(lastGpuStats?.key).not.toContain('"SS"');
        expect(lastGpuStats?.dispatches).toBe(outDispatches(c) - 1);
      }, 300_000);
    }
  }
  it('sequences of very different lengths (varlen) keep the split and merge', async () => {
    const c = CASES_DECODE.find((x) => x.varlen)!;
    setDecodeTuning({ target: 2 * c.varlen!.length * c.numKvHeads });
    try {
      await checkCase(c, runOn('webgpu'));
    } finally {
      setDecodeTuning({ target: DECODE_TUNING_DEFAULTS.target });
    }
    expect(lastGpuStats?.key).not.toContain('"fin"');
    expect(lastGpuStats?.dispatches).toBe(2);
  }, 300_000);
});

// Inputs near ±1000 (q ±1000 + N(0,1), v ×1000) on 12 seeds through both decode kernels: the scale multiplies
// each score after the Q·K dot product, as a naive implementation's does (over 64 seeds, 1 exceeds 2× the
// naive f32 error on decode_split and none on decode_warp: with four query rows, mostly one-hot, the
// maximum is one row's luck; bench/results/accuracy-fma-naive-2026-12-02.txt).
describe('webgpu decode kernels: inputs near ±1000 on 12 seeds', () => {
  const base = { name: 'f32 inputs near ±1000 Sq1', batch: 1, seqLenQ: 1, seqLenK: 300, numHeads: 4, numKvHeads: 2, headDim: 64, inputs: 'large' as const, seed: 0 };
  beforeAll(async () => {
    setGpuOutputPoisoning(true);
    await gpuContext();
  });
  afterAll(() => setGpuKernelPreference('auto'));
  for (const [pref, key] of [['decode-split', 'decode_split'], ['decode-emulated', 'decode_warp']] as const) {
    it(`${key}: each within 2× the naive f32 error + floor`, async () => {
      setGpuKernelPreference(pref);
      for (let seed = 3000; seed < 3012; seed++) {
        await checkCase({ ...base, name: `${base.name} [${key}] #${seed}`, seed }, runOn('webgpu'));
        expect(lastGpuStats?.key, `seed ${seed}`).toContain(key);
      }
    }, 300_000);
  }
});
