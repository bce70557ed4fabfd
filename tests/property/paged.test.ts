/**
 * Paged attention equals contiguous attention (fast-check): random block tables over shuffled physical
 * blocks, mixed sequence lengths (continuous batching), dense and varlen queries, GQA, masks, f32/f16
 * blocks and int8 blocks with and without the Hadamard rotation — on the in-place WASM kernel and the
 * gathering TypeScript fallback, against the gathering float64 oracle.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  KvBlockStorage, type KvDType, type Mask, Tensor, attentionPaged, causal, makeRotation, mulberry32, pagedAttentionReference, randn, slidingWindow,
} from '../../src/index.js';
import { errorStats } from '../helpers/close.js';

function randomStorage(seed: number, numBlocks: number, bs: number, Hk: number, D: number, dtype: KvDType, rotate: boolean): KvBlockStorage {
  const st = new KvBlockStorage(1, numBlocks, bs, Hk, D, dtype, rotate ? makeRotation(1, Hk, D, seed) : null);
  const slots = Array.from({ length: numBlocks * bs }, (_, i) => i);
  // Write block by block (int8 blocks keep one scale per (block, head)).
  for (let b = 0; b < numBlocks; b++) {
    const k = randn([bs, Hk, D], seed * 7 + b, 'f32'), v = randn([bs, Hk, D], seed * 7 + b + 1e5, 'f32');
    st.writeSlots(0, slots.slice(b * bs, (b + 1) * bs), k, v);
  }
  return st;
}

describe('paged == contiguous', () => {
  for (const backend of ['wasm', 'cpu-ts'] as const) {
    it(`${backend}: random tables, lengths, GQA, masks, dtypes`, async () => {
      await fc.assert(fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 1, max: 1e6 }),
          numSeqs: fc.integer({ min: 1, max: 4 }),
          bs: fc.constantFrom(4, 16, 32),
          Hk: fc.integer({ min: 1, max: 2 }), G: fc.constantFrom(1, 2, 4), D: fc.constantFrom(8, 24, 40),
          dtype: fc.constantFrom<KvDType>('f32', 'f16', 'int8'), rotate: fc.boolean(),
          varlen: fc.boolean(), maskKind: fc.constantFrom('none', 'causal', 'window'),
          lens: fc.array(fc.integer({ min: 0, max: 150 }), { minLength: 4, maxLength: 4 }),
          qlens: fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 4, maxLength: 4 }),
        }),
        async (c) => {
          const rotate = c.dtype === 'int8' && c.rotate;
          const seqLens = c.lens.slice(0, c.numSeqs);
          const need = seqLens.map((l) => Math.ceil(l / c.bs));
          const numBlocks = need.reduce((a, b) => a + b, 0) + 3;
          const st = randomStorage(c.seed, numBlocks, c.bs, c.Hk, c.D, c.dtype, rotate);
          // Shuffle physical block ids and deal them out.
          const rng = mulberry32(c.seed);
          const ids = Array.from({ length: numBlocks }, (_, i) => i).sort(() => rng() - 0.5);
          let at = 0;
          const tables = need.map((n) => ids.slice(at, (at += n)));
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
          const e = errorStats(got.out.toFloat64(), ref.out);
          expect(e.nonFiniteMismatch).toBe(0);
          // f32 arithmetic on identical (dequantised) values: f32-level agreement.
          expect(e.maxAbs).toBeLessThan(2e-5);
          const le = errorStats(got.lse!.toFloat64(), ref.lse);
          expect(le.nonFiniteMismatch).toBe(0);
          expect(le.maxAbs).toBeLessThan(2e-5);
        },
      ), { numRuns: 60, seed: 31 });
    }, 300_000);
  }
});
