import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { causal, gpuContext, lastGpuStats, setGpuKernelPreference, setGpuOutputPoisoning, slidingWindow } from '../../src/index.js';
import { type ConformanceCase, checkCase, runOn } from './cases.js';

// The split-KV decode kernel (decode_split + decode_merge) forced on cases chosen to reach each of
// its paths: K/V loaded four elements at a time from f32 (16-byte), f16 and bf16 (8-byte) storage,
// and element by element when the head dim is not a multiple of 4; softmax rows from 1 (64 threads a
// row) to 64 (2 threads a row); a last tile of fewer than 32 keys; masks on partial tiles; softcap;
// NaN; a separate value head dim; varlen sequences of different lengths.
const CASES_DECODE: ConformanceCase[] = [
  { name: 'f32 MHA Sq1 d64 (1 row)', batch: 2, seqLenQ: 1, seqLenK: 300, numHeads: 4, numKvHeads: 4, headDim: 64, seed: 71 },
  { name: 'f16 GQA4 Sq1 d128', batch: 2, seqLenQ: 1, seqLenK: 517, numHeads: 8, numKvHeads: 2, headDim: 128, dtype: 'f16', seed: 72 },
  { name: 'bf16 GQA4 Sq2 d64 causal', batch: 1, seqLenQ: 2, seqLenK: 333, numHeads: 8, numKvHeads: 2, headDim: 64, dtype: 'bf16', mask: () => causal(), seed: 73 },
  { name: 'f16 d59 (scalar loads) Sq3 window', batch: 1, seqLenQ: 3, seqLenK: 261, numHeads: 2, numKvHeads: 1, headDim: 59, dtype: 'f16', mask: () => slidingWindow(40, 0), seed: 74 },
  { name: 'f32 GQA8 Sq8 (64 rows) causal', batch: 1, seqLenQ: 8, seqLenK: 200, numHeads: 8, numKvHeads: 1, headDim: 32, mask: () => causal(), seed: 75 },
  { name: 'f32 headDimV 48 ≠ headDim 80, softcap', batch: 1, seqLenQ: 1, seqLenK: 1030, numHeads: 4, numKvHeads: 2, headDim: 80, headDimV: 48, softcap: 20, seed: 76 },
  { name: 'f32 NaN in k', batch: 1, seqLenQ: 1, seqLenK: 257, numHeads: 2, numKvHeads: 2, headDim: 64, inputs: 'nan-k', seed: 77 },
  { name: 'f16 varlen decode', batch: 0, seqLenQ: 0, seqLenK: 0, numHeads: 4, numKvHeads: 2, headDim: 64, dtype: 'f16', varlen: [[1, 130], [1, 700], [2, 129]], mask: () => causal(), seed: 78 },
];

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
    }, 300_000);
  }
});

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
    }, 300_000);
  }
});
