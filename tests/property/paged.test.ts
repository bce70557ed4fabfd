/**
 * Paged attention equals contiguous attention (fast-check): random block tables over shuffled physical
 * blocks, mixed sequence lengths (continuous batching), dense and varlen queries, GQA, masks, f32/f16
 * blocks and int8 blocks (uniform and gaussian grids) with and without the Hadamard rotation and K smoothing — on the in-place WASM kernel, the
 * WebGPU kernels (reading the storage's device copy in place) and the gathering TypeScript fallback,
 * against the gathering float64 oracle.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Int8Grid, KvBlockStorage, type KvDType, type Mask, Tensor, attentionPaged, causal, lastGpuStats, makeRotation, mulberry32, pagedAttentionReference, randn,
  slidingWindow, topK, setGpuKernelPreference,
} from '../../src/index.js';
import { decodeWarpCombines, decodeWarpGeometry } from '../../src/kernels/webgpu/decode-warp.js';
import { DECODE_TUNING_DEFAULTS, setDecodeTuning } from '../../src/kernels/webgpu/attention-gpu.js';
import { gpuKvMirror } from '../../src/kvcache/kv-gpu.js';
import { errorStats } from '../helpers/close.js';
import { shuffledPagedStorage } from '../helpers/paged.js';

function randomStorage(seed: number, numBlocks: number, bs: number, Hk: number, D: number, dtype: KvDType, rotate: boolean, smooth = false, grid: Int8Grid = 'uniform'): KvBlockStorage {
  const st = new KvBlockStorage(1, numBlocks, bs, Hk, D, dtype, rotate ? makeRotation(1, Hk, D, seed) : null, undefined, smooth ? 'auto' : null, grid);
  const slots = Array.from({ length: numBlocks * bs }, (_, i) => i);
  // Write block by block (int8 blocks keep one scale per (block, head)).
  for (let b = 0; b < numBlocks; b++) {
    const k = randn([bs, Hk, D], seed * 7 + b, 'f32'), v = randn([bs, Hk, D], seed * 7 + b + 1e5, 'f32');
    st.writeSlots(0, slots.slice(b * bs, (b + 1) * bs), k, v);
  }
  return st;
}

/** Storage for the sequences' blocks (plus 3 spare), and their block tables dealt out of shuffled physical ids. */
function shuffledPaging(seed: number, seqLens: number[], bs: number, Hk: number, D: number, dtype: KvDType, rotate: boolean, smooth = false, grid: Int8Grid = 'uniform'): { st: KvBlockStorage; tables: number[][] } {
  const need = seqLens.map((l) => Math.ceil(l / bs));
  const numBlocks = need.reduce((a, b) => a + b, 0) + 3;
  const st = randomStorage(seed, numBlocks, bs, Hk, D, dtype, rotate, smooth, grid);
  const rng = mulberry32(seed);
  const ids = Array.from({ length: numBlocks }, (_, i) => i).sort(() => rng() - 0.5);
  let at = 0;
  return { st, tables: need.map((n) => ids.slice(at, (at += n))) };
}

/** Output and LSE of a paged call against the float64 paged reference: no NaN/Inf mismatch, max |error| < tol. */
function expectMatch(got: { out: Tensor; lse?: Tensor | null }, ref: { out: Float64Array; lse: Float64Array }, tol: number): void {
  const e = errorStats(got.out.toFloat64(), ref.out);
  expect(e.nonFiniteMismatch).toBe(0);
  expect(e.maxAbs).toBeLessThan(tol);
  const le = errorStats(got.lse!.toFloat64(), ref.lse);
  expect(le.nonFiniteMismatch).toBe(0);
  expect(le.maxAbs).toBeLessThan(tol);
}

describe('paged == contiguous', () => {
  for (const backend of ['wasm', 'webgpu', 'cpu-ts'] as const) {
    it(`${backend}: random tables, lengths, GQA, masks, dtypes`, async () => {
      await fc.assert(fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 1, max: 1e6 }),
          numSeqs: fc.integer({ min: 1, max: 4 }),
          bs: fc.constantFrom(4, 16, 32),
          Hk: fc.integer({ min: 1, max: 2 }), G: fc.constantFrom(1, 2, 4), D: fc.constantFrom(8, 24, 40),
          dtype: fc.constantFrom<KvDType>('f32', 'f16', 'int8'), rotate: fc.boolean(), smooth: fc.boolean(),
          grid: fc.constantFrom<Int8Grid>('uniform', 'gaussian'),
          varlen: fc.boolean(), maskKind: fc.constantFrom('none', 'causal', 'window'),
          lens: fc.array(fc.integer({ min: 0, max: 150 }), { minLength: 4, maxLength: 4 }),
          qlens: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 4, maxLength: 4 }),
        }),
        async (c) => {
          const rotate = c.dtype === 'int8' && c.rotate;
          const seqLens = c.lens.slice(0, c.numSeqs);
          // int8 K smoothing (calibrated at the first write) changes what is stored and how queries are mapped, not the kernels.
          const { st, tables } = shuffledPaging(c.seed, seqLens, c.bs, c.Hk, c.D, c.dtype, rotate, c.dtype === 'int8' && c.smooth, c.grid);
          const H = c.Hk * c.G;
          const mask: Mask | null = c.maskKind === 'causal' ? causal() : c.maskKind === 'window' ? slidingWindow(9, 0) : null;
          let q: Tensor, cuSeqlensQ: number[] | undefined;
          if (c.varlen) {
            cuSeqlensQ = [0];
            for (const l of c.qlens.slice(0, c.numSeqs)) cuSeqlensQ.push(cuSeqlensQ[cuSeqlensQ.length - 1]! + l);
            q = randn([cuSeqlensQ[c.numSeqs]!, H, c.D], c.seed + 3);
          } else {
            q = randn([c.numSeqs, c.qlens[0]!, H, c.D], c.seed + 3);
          }
          const ref = pagedAttentionReference(q, st, 0, tables, seqLens, { mask, cuSeqlensQ });
          const got = await attentionPaged(q, st, 0, tables, seqLens, { mask, cuSeqlensQ, backend, returnLse: true });
          // f32 arithmetic on identical (dequantised) values: f32-level agreement.
          expectMatch(got, ref, 2e-5);
        },
      ), { numRuns: backend === 'webgpu' ? 16 : 60, seed: 31 });
    }, 300_000);
  }
});

/** One paged decode call on WebGPU (shuffled block tables), checked against the paged float64 reference. */
async function pagedDecodeCase(c: { seed: number; bs: number; Hk: number; G: number; D: number; dtype: KvDType; maskKind: string }, seqLens: number[], sq: number): Promise<void> {
  const { st, tables } = shuffledPaging(c.seed, seqLens, c.bs, c.Hk, c.D, c.dtype, false);
  const mask: Mask | null = c.maskKind === 'causal' ? causal() : c.maskKind === 'window' ? slidingWindow(40, 0) : null;
  const q = randn([seqLens.length, sq, c.Hk * c.G, c.D], c.seed + 3);
  const ref = pagedAttentionReference(q, st, 0, tables, seqLens, { mask });
  const got = await attentionPaged(q, st, 0, tables, seqLens, { mask, backend: 'webgpu', returnLse: true });
  expect(lastGpuStats?.kernel).toBe('decode');
  expectMatch(got, ref, 2e-5);
}

const decodeShape = {
  seed: fc.integer({ min: 1, max: 1e6 }),
  numSeqs: fc.integer({ min: 1, max: 3 }),
  bs: fc.constantFrom(3, 16, 32),
  Hk: fc.integer({ min: 1, max: 2 }), D: fc.constantFrom(32, 64, 128),
  dtype: fc.constantFrom<KvDType>('f32', 'f16'), maskKind: fc.constantFrom('none', 'causal', 'window'),
};

describe('paged == contiguous, decode on subgroups (decode_warp, shuffles emulated)', () => {
  it('webgpu: random decode shapes (queries, GQA, head dims, block sizes, masks, dtypes)', async () => {
    setGpuKernelPreference('decode-emulated');
    try {
      await fc.assert(fc.asyncProperty(
        fc.record({ ...decodeShape, G: fc.constantFrom(1, 2, 4, 8), sq: fc.integer({ min: 1, max: 3 }), lens: fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 3, maxLength: 3 }) }),
        async (c) => {
          const seqLens = c.lens.slice(0, c.numSeqs);
          seqLens[0] = Math.max(seqLens[0]!, 128);   // the decode kernels take ≥ 128 keys
          const sq = c.G === 8 ? 1 : c.sq;   // packed rows ≤ 12: every case fits a decode kernel here
          await pagedDecodeCase(c, seqLens, sq);
          const warp = decodeWarpGeometry(c.D, c.D, c.G * sq, c.dtype === 'f16' ? 'f16' : 'f32') !== null;
          expect(lastGpuStats?.key.includes('decode_warp')).toBe(warp);
        },
      ), { numRuns: 16, seed: 37 });
    } finally {
      setGpuKernelPreference('auto');
    }
  }, 300_000);

  // Fused (one workgroup of 4·SS subgroups per sequence and KV head, no merge pass), SS forced through the
  // split target.
  it('webgpu: fused decode, sequences of similar length, SS 1 or 2', async () => {
    setGpuKernelPreference('decode-emulated');
    try {
      await fc.assert(fc.asyncProperty(
        fc.record({ ...decodeShape, G: fc.constantFrom(1, 2, 4), sq: fc.integer({ min: 1, max: 2 }), SS: fc.constantFrom(1, 2), len: fc.integer({ min: 128, max: 400 }), jitter: fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 3, maxLength: 3 }) }),
        async (c) => {
          // Lengths within 15 keys of each other: the same number of 64-key tiles ± 1, so the plan fuses.
          const seqLens = c.jitter.slice(0, c.numSeqs).map((j) => c.len + j);
          setDecodeTuning({ target: c.SS * c.numSeqs * c.Hk });
          try {
            await pagedDecodeCase(c, seqLens, c.sq);
          } finally {
            setDecodeTuning({ target: DECODE_TUNING_DEFAULTS.target });
          }
          // Eight 16-bit elements a lane (f16 here) fuse at SS 1 only of these (SS 2 keeps split + merge).
          const wide = c.dtype === 'f16' && decodeWarpGeometry(c.D, c.D, c.G * c.sq, 'f16', 16, true)?.E === 8;
          const fused = decodeWarpGeometry(c.D, c.D, c.G * c.sq, c.dtype === 'f16' ? 'f16' : 'f32') !== null && decodeWarpCombines(c.G * c.sq, c.D) && !(wide && c.SS === 2);
          expect(lastGpuStats?.key.includes('"fin"')).toBe(fused);
          if (fused) expect(lastGpuStats?.dispatches).toBe(1);
        },
      ), { numRuns: 12, seed: 41 });
    } finally {
      setGpuKernelPreference('auto');
    }
  }, 300_000);
});

describe('WebGPU paged kernels (each kernel family through the block tables)', () => {
  // Dyadic values (multiples of 1/4 in [-1, 1]) and a power-of-two scale: scores are exact in f32, so
  // top-k selections (ties included) agree with the float64 oracle.
  const dyadic = (shape: number[], seed: number) => {
    const r = mulberry32(seed);
    const n = shape.reduce((a, b) => a * b, 1);
    return Tensor.fromValues(Float32Array.from({ length: n }, () => (Math.floor(r() * 9) - 4) / 4), shape);
  };
  const build = (dtype: KvDType, rotate: boolean, lens: number[], bs: number, Hk: number, D: number, seed: number, exact: boolean, grid: Int8Grid = 'uniform') =>
    shuffledPagedStorage(dtype, lens, bs, Hk, D, seed, { rotate, grid, ...(exact ? { values: dyadic } : {}) });
  const check = async (q: Tensor, st: KvBlockStorage, tables: number[][], lens: number[], mask: Mask | null, kernel: string, cuSeqlensQ?: number[], scale?: number, tol = 2e-5) => {
    const ref = pagedAttentionReference(q, st, 0, tables, lens, { mask, cuSeqlensQ, scale });
    const got = await attentionPaged(q, st, 0, tables, lens, { mask, cuSeqlensQ, scale, backend: 'webgpu', returnLse: true });
    expect(lastGpuStats?.kernel).toBe(kernel);
    expectMatch(got, ref, tol);
  };

  for (const [dtype, grid] of [['f32'], ['f16'], ['int8', 'uniform'], ['int8', 'gaussian']] as const) {
    it(`decode kernel (split + merge), ${dtype}${grid ? ` rotated, ${grid} grid` : ''}: GQA 4, lengths 300/1/129/0/257, 16-token blocks`, async () => {
      const lens = [300, 1, 129, 0, 257], Hk = 2, D = 32;
      const { st, tables } = build(dtype, dtype === 'int8', lens, 16, Hk, D, 7, false, grid);
      await check(randn([lens.length, 1, Hk * 4, D], 8), st, tables, lens, null, 'decode');
      await check(randn([lens.length, 1, Hk * 4, D], 9), st, tables, lens, slidingWindow(40, 0), 'decode');
    }, 120_000);
  }

  for (const [dtype, bs] of [['f32', 16], ['f16', 3]] as const) {
    it(`decode kernel on subgroups (decode_warp, emulated shuffles), ${dtype}: GQA 4, lengths 300/1/129/0/257, ${bs}-token blocks`, async () => {
      // 16-token blocks: one block-table lookup per batch of keys; 3-token blocks: one per key.
      const lens = [300, 1, 129, 0, 257], Hk = 2, D = 32;
      const { st, tables } = build(dtype, false, lens, bs, Hk, D, 17, false);
      setGpuKernelPreference('decode-emulated');
      try {
        await check(randn([lens.length, 1, Hk * 4, D], 18), st, tables, lens, null, 'decode');
        expect(lastGpuStats?.key).toContain('decode_warp');
        await check(randn([lens.length, 1, Hk * 4, D], 19), st, tables, lens, slidingWindow(40, 0), 'decode');
      } finally {
        setGpuKernelPreference('auto');
      }
    }, 120_000);
  }

  it('portable kernel: varlen prefill chunks, causal, 8-token blocks; top-k threshold pass through the tables', async () => {
    const lens = [70, 150, 5], Hk = 1, D = 24;
    const { st, tables } = build('f32', false, lens, 8, Hk, D, 11, true);
    const cu = [0, 20, 83, 88];
    await check(dyadic([88, 2, D], 12), st, tables, lens, causal(), 'flash_portable', cu);
    await check(dyadic([88, 2, D], 13), st, tables, lens, topK(5, causal()), 'flash_portable', cu, 0.125);
  }, 120_000);

  for (const [dtype, grid] of [['f16'], ['int8', 'uniform'], ['int8', 'gaussian']] as const) {
    it(`tensor-core kernel (emulated matrices), ${dtype} blocks${grid ? ` (${grid} grid)` : ''}: varlen prefill chunks, GQA 2, causal and window, 16-token blocks`, async () => {
      const lens = [70, 150, 5], Hk = 2, D = 32;
      const { st, tables } = build(dtype, false, lens, 16, Hk, D, 31, false, grid);
      const cu = [0, 20, 83, 88];
      setGpuKernelPreference('sgmat-emulated');
      try {
        // K, V and P pass through f16 on the tensor-core path: f16-level agreement.
        for (const mask of [causal(), slidingWindow(24, 0)]) await check(randn([88, Hk * 2, D], 32).to('f16'), st, tables, lens, mask, 'flash_sgmat', cu, undefined, 1e-2);
      } finally {
        setGpuKernelPreference('auto');
      }
    }, 300_000);
  }

  it('writes after the first call reach the device copy (appends, copy-on-write block copies)', async () => {
    const lens = [40], Hk = 1, D = 16;
    const { st, tables } = build('f16', false, [64], 16, Hk, D, 21, false);
    const q = randn([1, 1, 2, D], 22);
    await check(q, st, tables, lens, null, 'flash_portable');
    // Overwrite keys 16..39 and copy block tables[0][1] onto a fresh block used by a second table.
    const slots = Array.from({ length: 24 }, (_, j) => tables[0]![Math.floor((16 + j) / 16)]! * 16 + ((16 + j) % 16));
    st.writeSlots(0, slots, randn([24, Hk, D], 23), randn([24, Hk, D], 24));
    const spare = [...Array(st.numBlocks).keys()].find((b) => !tables[0]!.includes(b))!;
    st.copyBlock(tables[0]![1]!, spare);
    await check(q, st, tables, lens, null, 'flash_portable');
    await check(q, st, [[tables[0]![0]!, spare, tables[0]![2]!]], lens, null, 'flash_portable');
  }, 120_000);

  it('disposing the storage destroys its device copy; the next storage gets its own', async () => {
    const { st } = build('f16', false, [32], 16, 1, 16, 25, false);
    const mirror = await gpuKvMirror(st);
    expect(mirror.bytes).toBeGreaterThan(0);
    st.dispose();
    expect((mirror as unknown as { disposed: boolean }).disposed).toBe(true);
    await expect(gpuKvMirror(st).then((m) => m.upload(0, [0]))).rejects.toThrow(/disposed/);
  }, 60_000);
});

// The CPU decode job reads each tile's K and V in address order first (touchRows) when a sequence's K/V are
// ≥ 8 MiB; through a block table it follows the table key by key. Sequence 0 here holds 9 MB of f32 K/V.
describe('paged == contiguous, CPU decode over ≥ 8 MiB of K/V a sequence', () => {
  it('wasm: f32 16-token blocks, GQA 4, d128, lengths 1100 and 40, window', async () => {
    const seqLens = [1100, 40];
    const { st, tables } = shuffledPaging(77, seqLens, 16, 8, 128, 'f32', false);
    const q = randn([2, 1, 32, 128], 80);
    const mask = slidingWindow(900, 0);
    const ref = pagedAttentionReference(q, st, 0, tables, seqLens, { mask });
    const got = await attentionPaged(q, st, 0, tables, seqLens, { mask, backend: 'wasm', returnLse: true });
    expectMatch(got, ref, 2e-5);
  }, 120_000);
});
