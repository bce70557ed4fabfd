import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  KvBlockStorage, PagedKvCache, ShapeError, Tensor, ValueError, attentionPaged, attentionReference, causal, gatherContiguous, mulberry32,
  packBlockTables, pagedAttentionReference, randn, slidingWindow,
} from '../../../src/index.js';
import { expectClose } from '../../helpers/close.js';

/** Storage with each sequence's K/V written at a random (shuffled) set of physical blocks. */
function scatter(opts: { lens: number[]; Hk: number; D: number; bs: number; dtype: 'f32' | 'f16'; seed: number; spare?: number }) {
  const { lens, Hk, D, bs, dtype, seed } = opts;
  const rng = mulberry32(seed);
  const need = lens.reduce((a, L) => a + Math.ceil(L / bs), 0);
  const numBlocks = need + (opts.spare ?? 3);
  const perm = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [perm[i], perm[j]] = [perm[j]!, perm[i]!]; }
  const st = new KvBlockStorage(1, numBlocks, bs, Hk, D, dtype, null);
  const tables: Int32Array[] = [], ks: Tensor[] = [], vs: Tensor[] = [];
  let next = 0;
  lens.forEach((L, b) => {
    const table = Int32Array.from({ length: Math.ceil(L / bs) }, () => perm[next++]!);
    const k = randn([L, Hk, D], seed * 31 + b, dtype), v = randn([L, Hk, D], seed * 37 + b, dtype);
    const slots = Array.from({ length: L }, (_, p) => table[Math.floor(p / bs)]! * bs + (p % bs));
    st.writeSlots(0, slots, k, v);
    tables.push(table); ks.push(k); vs.push(v);
  });
  return { st, tables, ks, vs };
}

describe('gatherContiguous', () => {
  it.each(['f32', 'f16'] as const)('returns the exact bits written (%s, shuffled blocks, lengths straddling blocks)', (dtype) => {
    const lens = [1, 15, 16, 17, 97];
    const { st, tables, ks, vs } = scatter({ lens, Hk: 3, D: 33, bs: 16, dtype, seed: 4 });
    lens.forEach((L, b) => {
      const { k, v } = gatherContiguous(st, 0, tables[b]!, L);
      expect(k.dtype).toBe(dtype);
      expect(Array.from(k.data)).toEqual(Array.from(ks[b]!.data));
      expect(Array.from(v.data)).toEqual(Array.from(vs[b]!.data));
    });
  });

  it('rejects tables that are too short or name blocks outside the pool', () => {
    const { st, tables } = scatter({ lens: [20], Hk: 1, D: 4, bs: 8, dtype: 'f32', seed: 1 });
    expect(() => gatherContiguous(st, 0, tables[0]!, 25)).toThrow(ShapeError);
    expect(() => gatherContiguous(st, 0, [0, 1, 999], 20)).toThrow(/outside/);
    expect(() => gatherContiguous(st, 1, tables[0]!, 20)).toThrow(ValueError);
  });
});

describe('pagedAttentionReference equals contiguous attention', () => {
  const cases = [
    { name: 'decode, MHA, mixed lengths', H: 4, Hk: 4, D: 32, bs: 16, lens: [1, 17, 97, 129], Sq: 1, mask: null },
    { name: 'decode, GQA 4, odd headDim', H: 8, Hk: 2, D: 59, bs: 16, lens: [33, 5, 128], Sq: 1, mask: null },
    { name: 'prefill chunk, causal (bottom-right), MQA', H: 6, Hk: 1, D: 40, bs: 4, lens: [13, 31], Sq: 7, mask: causal() },
    { name: 'sliding window, GQA 2, block size 3', H: 4, Hk: 2, D: 16, bs: 3, lens: [10, 23, 2], Sq: 2, mask: slidingWindow(5, 0) },
  ];
  for (const c of cases) {
    for (const dtype of ['f32', 'f16'] as const) {
      it(`${c.name} (${dtype})`, () => {
        const { st, tables, ks, vs } = scatter({ lens: c.lens, Hk: c.Hk, D: c.D, bs: c.bs, dtype, seed: c.lens.length + c.D });
        const q = randn([c.lens.length, c.Sq, c.H, c.D], 77, dtype);
        const r = pagedAttentionReference(q, st, 0, tables, c.lens, { mask: c.mask });
        const packed = packBlockTables(tables);
        const r2 = pagedAttentionReference(q, st, 0, packed, Int32Array.from(c.lens), { mask: c.mask });
        expect(Array.from(r2.out)).toEqual(Array.from(r.out));
        c.lens.forEach((L, b) => {
          const ref = attentionReference(q.slice(0, b, b + 1), ks[b]!.reshape([1, L, c.Hk, c.D]), vs[b]!.reshape([1, L, c.Hk, c.D]), { mask: c.mask });
          const n = c.Sq * c.H * c.D;
          // Same inputs, same float64 oracle: identical results.
          expect(Array.from(r.out.subarray(b * n, (b + 1) * n))).toEqual(Array.from(ref.out));
          expect(Array.from(r.lse.subarray(b * c.H * c.Sq, (b + 1) * c.H * c.Sq))).toEqual(Array.from(ref.lse));
        });
      });
    }
  }

  it('varlen queries (continuous batching: prefill, decode and an idle sequence in one batch)', () => {
    const lens = [40, 9, 0, 17], qLens = [8, 1, 0, 3], H = 4, Hk = 2, D = 24;
    const { st, tables, ks, vs } = scatter({ lens, Hk, D, bs: 8, dtype: 'f32', seed: 9 });
    const cu = [0];
    for (const n of qLens) cu.push(cu[cu.length - 1]! + n);
    const q = randn([cu[cu.length - 1]!, H, D], 5);
    const r = pagedAttentionReference(q, st, 0, tables, lens, { cuSeqlensQ: cu, mask: causal() });
    lens.forEach((L, b) => {
      if (qLens[b] === 0) return;
      const qb = q.slice(0, cu[b]!, cu[b + 1]!).reshape([1, qLens[b]!, H, D]);
      const ref = attentionReference(qb, ks[b]!.reshape([1, L, Hk, D]), vs[b]!.reshape([1, L, Hk, D]), { mask: causal() });
      expect(Array.from(r.out.subarray(cu[b]! * H * D, cu[b + 1]! * H * D))).toEqual(Array.from(ref.out));
      for (let h = 0; h < H; h++) for (let i = 0; i < qLens[b]!; i++) expect(r.lse[h * cu[cu.length - 1]! + cu[b]! + i]).toBe(ref.lse[h * qLens[b]! + i]);
    });
  });

  it('property: random block tables, shuffled physical ids, mixed lengths, GQA ratios 1/2/4/8', () => {
    fc.assert(
      fc.property(
        fc.record({
          lens: fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 4 }),
          bs: fc.constantFrom(1, 3, 8, 16),
          Hk: fc.constantFrom(1, 2),
          group: fc.constantFrom(1, 2, 4, 8),
          D: fc.integer({ min: 1, max: 40 }),
          Sq: fc.integer({ min: 1, max: 3 }),
          causal: fc.boolean(),
          seed: fc.integer({ min: 1, max: 1e6 }),
        }),
        (c) => {
          const H = c.Hk * c.group;
          const { st, tables, ks, vs } = scatter({ lens: c.lens, Hk: c.Hk, D: c.D, bs: c.bs, dtype: 'f32', seed: c.seed, spare: c.seed % 5 });
          const q = randn([c.lens.length, c.Sq, H, c.D], c.seed + 1);
          const mask = c.causal ? causal() : null;
          const r = pagedAttentionReference(q, st, 0, tables, c.lens, { mask });
          c.lens.forEach((L, b) => {
            const ref = attentionReference(q.slice(0, b, b + 1), ks[b]!.reshape([1, L, c.Hk, c.D]), vs[b]!.reshape([1, L, c.Hk, c.D]), { mask });
            const n = c.Sq * H * c.D;
            expectClose(r.out.subarray(b * n, (b + 1) * n), ref.out, { atol: 0, label: `sequence ${b}` });
          });
        },
      ),
      { seed: 7, numRuns: 150 },
    );
  });

  it('reads through a PagedKvCache built by appends, forks and copy-on-write', () => {
    const Hk = 2, D = 16, H = 4, bs = 4;
    const cache = new PagedKvCache({ numLayers: 2, numKvHeads: Hk, headDim: D, blockSizeTokens: bs, numBlocks: 32 });
    const { id } = cache.addSequence();
    const base = { k: randn([2, 10, Hk, D], 1), v: randn([2, 10, Hk, D], 2) };
    cache.append(id, Array.from({ length: 10 }, (_, i) => i), base);
    const child = cache.fork(id);
    const extra = { k: randn([2, 3, Hk, D], 3), v: randn([2, 3, Hk, D], 4) };
    cache.append(child, [7, 7, 7], extra);
    expect(cache.stats().copyOnWrites).toBe(1);
    const q = randn([2, 1, H, D], 5);
    const t = cache.batch([id, child]);
    const r = pagedAttentionReference(q, cache, 1, t, t.seqLens);
    const kParent = base.k.select(0, 1), vParent = base.v.select(0, 1);
    const kChild = Tensor.zeros([13, Hk, D]), vChild = Tensor.zeros([13, Hk, D]);
    kChild.data.set(kParent.contiguous().data, 0); kChild.data.set(extra.k.select(0, 1).contiguous().data, 10 * Hk * D);
    vChild.data.set(vParent.contiguous().data, 0); vChild.data.set(extra.v.select(0, 1).contiguous().data, 10 * Hk * D);
    const refP = attentionReference(q.slice(0, 0, 1), kParent.contiguous().reshape([1, 10, Hk, D]), vParent.contiguous().reshape([1, 10, Hk, D]));
    const refC = attentionReference(q.slice(0, 1, 2), kChild.reshape([1, 13, Hk, D]), vChild.reshape([1, 13, Hk, D]));
    expect(Array.from(r.out.subarray(0, H * D))).toEqual(Array.from(refP.out));
    expect(Array.from(r.out.subarray(H * D))).toEqual(Array.from(refC.out));
  });

  it('rotated int8: the rotation is undone (output close to f32 attention on the original K/V)', () => {
    const Hk = 2, H = 4, D = 64, L = 50;
    const cache = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, blockSizeTokens: 16, numBlocks: 8, dtype: 'int8', rotation: { seed: 2 } });
    const k = randn([1, L, Hk, D], 1), v = randn([1, L, Hk, D], 2);
    const { id } = cache.addSequence();
    cache.append(id, Array.from({ length: L }, (_, i) => i), { k, v });
    const { k: kBack } = gatherContiguous(cache, 0, cache.blockTable(id), L, { unrotate: true });
    expectClose(kBack.toFloat32(), k.toFloat32(), { atol: 0.05, label: 'unrotated K' });
    const q = randn([1, 2, H, D], 3);
    const t = cache.batch([id]);
    const r = pagedAttentionReference(q, cache, 0, t, t.seqLens, { mask: causal() });
    const ref = attentionReference(q, k.reshape([1, L, Hk, D]), v.reshape([1, L, Hk, D]), { mask: causal() });
    expectClose(r.out, ref.out, { atol: 0.03, label: 'rotated int8 vs f32' });
  });

  it('a 16-bit query against an f32 cache: every CPU backend reads K/V at the cache\'s precision', async () => {
    const Hk = 2, H = 4, D = 64, n = 200;
    const c = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, blockSizeTokens: 16, numBlocks: 16, dtype: 'f32' });
    const a = c.addSequence().id;
    c.append(a, Array(n).fill(1), { k: randn([1, n, Hk, D], 1), v: randn([1, n, Hk, D], 2) });
    const t = c.batch([a]);
    for (const qd of ['f16', 'bf16'] as const) {
      const q = randn([1, 1, H, D], 5).to(qd);
      const ref = pagedAttentionReference(q, c, 0, t, t.seqLens);
      for (const backend of ['wasm', 'cpu-ts'] as const) {
        const { out, lse } = await attentionPaged(q, c, 0, t, t.seqLens, { backend, returnLse: true });
        expect(out.dtype).toBe(qd);
        const l = lse!.toFloat32();
        const err = Math.max(...Array.from(l, (x, i) => Math.abs(x - ref.lse[i]!)));
        expect(err, `${qd} ${backend}`).toBeLessThan(5e-6);
      }
    }
  });

  it('an empty batch (cache.batch([])) gives an empty output on every CPU backend, as the reference does', async () => {
    const c = new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 4, blockSizeTokens: 4, numBlocks: 4 });
    const t = c.batch([]), q = randn([0, 1, 2, 4]);
    expect(pagedAttentionReference(q, c, 0, t, t.seqLens).out.length).toBe(0);
    for (const backend of ['wasm', 'cpu-ts'] as const) {
      const r = await attentionPaged(q, c, 0, t, t.seqLens, { backend, returnLse: true });
      expect(r.out.shape).toEqual([0, 1, 2, 4]);
      expect(r.lse!.shape).toEqual([0, 2, 1]);
    }
    expect(() => c.addSequence(null as never)).toThrow(ValueError);
  });

  it('rejects bad input with typed errors naming the argument', () => {
    const { st, tables } = scatter({ lens: [10, 12], Hk: 2, D: 8, bs: 4, dtype: 'f32', seed: 3 });
    const q = randn([2, 1, 4, 8]);
    expect(() => pagedAttentionReference(q, st, 0, tables, [10])).toThrow(/seqLens has 1/);
    expect(() => pagedAttentionReference(randn([2, 1, 3, 8]), st, 0, tables, [10, 12])).toThrow(ShapeError);
    expect(() => pagedAttentionReference(randn([2, 1, 4, 9]), st, 0, tables, [10, 12])).toThrow(/headDim/);
    expect(() => pagedAttentionReference(q, st, 0, tables, [10, 13])).toThrow(/needs 4 blocks/);
    expect(() => pagedAttentionReference(q, st, 0, { blockTables: new Int32Array(5), maxBlocksPerSeq: 3 }, [10, 12])).toThrow(/maxBlocksPerSeq/);
    expect(() => pagedAttentionReference(randn([3, 4, 8]), st, 0, tables, [10, 12], { cuSeqlensQ: [0, 1, 2, 3] })).toThrow(/cuSeqlensQ/);
    expect(() => pagedAttentionReference(q, new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: 8, numBlocks: 4, allocateStorage: false }), 0, tables, [10, 12])).toThrow(/no storage/);
  });
});
