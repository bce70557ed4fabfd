/**
 * Mask algebra and tile classification against the dense predicate (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Mask, TileClass, and, blockSparse, causal, classifyTile, denseMask, documents, keySubset, noKeys, not, or, planTiles,
  predicate, prefixLM, slidingWindow, strided, allKeys,
} from '../../src/index.js';

interface Ctx { seqLenQ: number; seqLenK: number }

/** A random primitive mask valid for ctx. */
function primitive(ctx: Ctx): fc.Arbitrary<Mask> {
  const { seqLenQ: sq, seqLenK: sk } = ctx;
  return fc.oneof(
    fc.constantFrom<'bottom-right' | 'top-left'>('bottom-right', 'top-left').map((align) => causal({ align })),
    fc.tuple(fc.integer({ min: -1, max: 20 }), fc.integer({ min: -1, max: 20 })).map(([l, r]) => slidingWindow(l, r)),
    fc.integer({ min: 0, max: sk }).map((p) => prefixLM(p)),
    fc.integer({ min: 1, max: 9 }).map((s) => strided(s)),
    fc.tuple(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 16 }), fc.integer()).map(([bq, bk, seed]) => {
      const rows = Math.ceil(sq / bq), cols = Math.ceil(sk / bk);
      const grid = Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => ((r * 31 + c * 17 + seed) >>> 0) % 3 === 0));
      return blockSparse(grid, [bq, bk]);
    }),
    fc.array(fc.boolean(), { minLength: sk, maxLength: sk }).map((keep) => keySubset(keep)),
    fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }).map((cuts) => {
      // Same number of documents on both sides; boundaries spread over each length.
      const n = cuts.length;
      const cu = (len: number) => [0, ...cuts.map((_, i) => Math.floor(((i + 1) * len) / (n + 1)))].concat([len]).sort((a, b) => a - b);
      return documents(cu(sq), cu(sk));
    }),
    fc.integer({ min: 2, max: 5 }).map((m) => predicate((i, j) => (i * 3 + j) % m === 0, `mod${m}`)),
    fc.constant(allKeys()),
    fc.constant(noKeys()),
  );
}

function expr(ctx: Ctx): fc.Arbitrary<Mask> {
  const leaf = primitive(ctx);
  return fc.letrec<{ m: Mask }>((tie) => ({
    m: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.tuple(tie('m'), tie('m')).map(([a, b]) => and(a, b)),
      fc.tuple(tie('m'), tie('m')).map(([a, b]) => or(a, b)),
      tie('m').map((a) => not(a)),
    ),
  })).m;
}

const ctxArb = fc.record({ seqLenQ: fc.integer({ min: 1, max: 70 }), seqLenK: fc.integer({ min: 1, max: 70 }) });

describe('masks: properties against the dense predicate', () => {
  it('and / or / not equal the elementwise boolean algebra (and De Morgan holds)', () => {
    fc.assert(fc.property(ctxArb.chain((ctx) => fc.tuple(fc.constant(ctx), expr(ctx), expr(ctx))), ([ctx, a, b]) => {
      const da = denseMask(a, ctx), db = denseMask(b, ctx);
      const dand = denseMask(and(a, b), ctx), dor = denseMask(or(a, b), ctx), dnot = denseMask(not(a), ctx);
      const dm = denseMask(not(or(not(a), not(b))), ctx);
      for (let t = 0; t < da.length; t++) {
        expect(dand[t]).toBe(da[t]! & db[t]!);
        expect(dor[t]).toBe(da[t]! | db[t]!);
        expect(dnot[t]).toBe(1 - da[t]!);
        expect(dm[t]).toBe(dand[t]);
      }
    }), { numRuns: 150, seed: 11 });
  });

  it('tile classification is sound for any expression, and exact for primitives', () => {
    fc.assert(fc.property(ctxArb.chain((ctx) => fc.tuple(fc.constant(ctx), fc.oneof(primitive(ctx), expr(ctx)), fc.integer({ min: 1, max: 17 }), fc.integer({ min: 1, max: 17 }))), ([ctx, m, tq, tk]) => {
      const d = denseMask(m, ctx);
      const primitiveKinds = ['relative', 'keyRange', 'strided', 'blockSparse', 'keySet', 'documents', 'predicate', 'all', 'none'];
      const exact = primitiveKinds.includes(m.node.kind);
      for (let q0 = 0; q0 < ctx.seqLenQ; q0 += tq) for (let k0 = 0; k0 < ctx.seqLenK; k0 += tk) {
        const q1 = Math.min(q0 + tq, ctx.seqLenQ), k1 = Math.min(k0 + tk, ctx.seqLenK);
        let any = false, all = true;
        for (let i = q0; i < q1; i++) for (let j = k0; j < k1; j++) { if (d[i * ctx.seqLenK + j]) any = true; else all = false; }
        const c = classifyTile(m, ctx, q0, q1, k0, k1);
        if (c === TileClass.Full) expect(all).toBe(true);
        if (c === TileClass.Empty) expect(any).toBe(false);
        if (exact) expect(c).toBe(all ? TileClass.Full : any ? TileClass.Partial : TileClass.Empty);
      }
    }), { numRuns: 200, seed: 12 });
  });

  it('tile plans list exactly the non-empty tiles, with their elements', () => {
    fc.assert(fc.property(ctxArb.chain((ctx) => fc.tuple(fc.constant(ctx), expr(ctx), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }))), ([ctx, m, tq, tk]) => {
      const plan = planTiles(m, ctx, tq, tk);
      let elems = 0, visited = 0;
      for (let qt = 0; qt < plan.numQTiles; qt++) {
        const listed = new Set<number>();
        for (let e = plan.rowStart[qt]!; e < plan.rowStart[qt + 1]!; e++) listed.add(plan.entries[e]! >> 1);
        for (let kt = 0; kt < plan.numKTiles; kt++) {
          const q0 = qt * tq, q1 = Math.min(q0 + tq, ctx.seqLenQ), k0 = kt * tk, k1 = Math.min(k0 + tk, ctx.seqLenK);
          const c = classifyTile(m, ctx, q0, q1, k0, k1);
          expect(listed.has(kt)).toBe(c !== TileClass.Empty);
          if (c !== TileClass.Empty) { visited++; elems += (q1 - q0) * (k1 - k0); }
        }
      }
      expect(plan.fullTiles + plan.partialTiles).toBe(visited);
      expect(plan.visitedElements).toBe(elems);
    }), { numRuns: 150, seed: 13 });
  });

  it('causal visits about half of the tiles; block-sparse visits exactly its layout', () => {
    const n = 64 * 32;
    const p = planTiles(causal(), { seqLenQ: n, seqLenK: n }, 64, 64);
    expect(p.fullTiles + p.partialTiles).toBe((32 * 33) / 2);
    expect(p.partialTiles).toBe(32);
    const grid = Array.from({ length: 16 }, (_, r) => Array.from({ length: 16 }, (_, c) => (r + c) % 3 === 0));
    const b = planTiles(blockSparse(grid, 64), { seqLenQ: 1024, seqLenK: 1024 }, 64, 64);
    expect(b.fullTiles).toBe(grid.flat().filter(Boolean).length);
    expect(b.partialTiles).toBe(0);
  });
});
