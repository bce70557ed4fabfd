/**
 * The attention cost model against (a) what the CPU kernel actually visits, on every conformance case,
 * (b) brute force over the dense mask on random masks and odd sizes, (c) hand-computed FLOPs and bytes,
 * (d) bad input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Mask, ShapeError, ValueError, attention, attentionCost, attentionVarlen, blockSparse, causal, denseMask,
  documents, keySubset, lastKernelStats, mulberry32, planAttentionShape, planTiles, prefixLM, randn, slidingWindow, strided,
  CPU_PREFILL_TILE_Q, CPU_TILE_K, cpuKernelPath, SOFTMAX_FLOPS_PER_ELEMENT, attentionRoofline, roofline, kvCacheSize, maxBatchForMemory,
} from '../../../src/index.js';
import { PREFILL_TILE_Q, TILE_K } from '../../../src/kernels/cpu/wasm-backend.js';
import { CASES, makeInputs } from '../../conformance/cases.js';

describe('cost model ↔ CPU kernel', () => {
  it('uses the kernel\'s tile sizes', () => {
    expect(CPU_PREFILL_TILE_Q).toBe(PREFILL_TILE_Q);
    expect(CPU_TILE_K).toBe(TILE_K);
  });

  // Every conformance case: the kernel's own count of visited tiles equals the model's.
  for (const c of CASES) {
    it(`visited tiles = lastKernelStats.visitedTiles: ${c.name}`, async () => {
      const inp = makeInputs(c);
      const mask = c.mask?.() ?? null;
      const shape = {
        numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, headDimV: c.headDimV, dtype: c.dtype ?? 'f32' as const,
        mask, softcap: c.softcap,
      };
      if (inp.cuSeqlensQ) {
        await attentionVarlen(inp.q, inp.k, inp.v, { cuSeqlensQ: inp.cuSeqlensQ, cuSeqlensK: inp.cuSeqlensK, mask, softcap: c.softcap, scale: c.scale, backend: 'wasm' });
      } else {
        await attention(inp.q, inp.k, inp.v, { mask, softcap: c.softcap, scale: c.scale, layout: c.layout, backend: 'wasm' });
      }
      const stats = lastKernelStats;
      const cost = inp.cuSeqlensQ
        ? attentionCost({ ...shape, cuSeqlensQ: inp.cuSeqlensQ, cuSeqlensK: inp.cuSeqlensK })
        : attentionCost({ ...shape, batch: c.batch, seqLenQ: c.seqLenQ, seqLenK: c.seqLenK });
      const anyWork = (inp.cuSeqlensQ ? inp.cuSeqlensQ[inp.cuSeqlensQ.length - 1]! : c.batch * c.seqLenQ) > 0;
      if (!anyWork) return; // the kernel returns before planning; nothing to compare
      expect(stats, 'kernel stats').not.toBeNull();
      expect(cost.tiling.path).toBe(stats!.path);
      expect(cost.tiling.visitedTiles).toBe(stats!.visitedTiles);
    });
  }

  it('follows the kernel into its decode path (few queries: any KV at ≤ 8 rows a KV head, else ≥ 128 keys) and back', async () => {
    for (const [sq, sk, h, hk] of [[1, 517, 8, 2], [4, 300, 16, 4], [3, 127, 8, 8], [17, 600, 4, 4], [1, 2000, 64, 8], [1, 16, 32, 8], [8, 64, 32, 8], [2, 1, 8, 2]] as const) {
      const q = randn([2, sq, h, 32], 11), k = randn([2, sk, hk, 32], 12), v = randn([2, sk, hk, 32], 13);
      await attention(q, k, v, { causal: true, backend: 'wasm' });
      const plan = planAttentionShape({ batch: 2, seqLenQ: sq, seqLenK: sk, numHeads: h, numKvHeads: hk, headDim: 32, causal: true });
      expect(cpuKernelPath(plan), `Sq${sq} Sk${sk} H${h}`).toBe(lastKernelStats!.path);
      expect(attentionCost({ batch: 2, seqLenQ: sq, seqLenK: sk, numHeads: h, numKvHeads: hk, headDim: 32, causal: true }).tiling.visitedTiles).toBe(lastKernelStats!.visitedTiles);
    }
  });
});

describe('structure', () => {
  it('a causal mask visits about half the tiles: n(n+1)/2 of n²', () => {
    for (const n of [1, 2, 7, 16, 64]) {
      const N = 64 * n;
      const t = attentionCost({ seqLenQ: N, numHeads: 1, headDim: 64, causal: true }).tiling;
      expect(t.visitedTiles).toBe((n * (n + 1)) / 2);
      expect(t.partialTiles).toBe(n);
      expect(t.totalTiles).toBe(n * n);
    }
    const big = attentionCost({ seqLenQ: 8192, numHeads: 16, headDim: 128, causal: true });
    expect(big.tiling.visitedFraction).toBeCloseTo(0.5 + 1 / (2 * 128), 12);
    // Counted QKᵀ+PV FLOPs are the visited tiles' elements: within one diagonal of tiles of half.
    expect(big.flops.qk + big.flops.pv).toBe(2 * (128 + 128) * 16 * (128 * 129 / 2) * 64 * 64);
    expect(big.flops.nominal).toBe(big.flops.nominalDense / 2);
    // causal: true with mask: causal() (and(causal, causal)) is still plain causal: FLOPs halved once, not dense.
    const twice = attentionCost({ seqLenQ: 1024, numHeads: 2, headDim: 64, causal: true, mask: causal() });
    expect(twice.flops.nominal).toBe(attentionCost({ seqLenQ: 1024, numHeads: 2, headDim: 64, causal: true }).flops.nominal);
  });

  it('block-sparse with 64×64 blocks visits exactly its layout, all tiles full', () => {
    const rng = mulberry32(99);
    const rows = 9, cols = 13;
    const layout = Array.from({ length: rows }, () => Array.from({ length: cols }, () => (rng() < 0.3 ? 1 : 0)));
    const mask = blockSparse(layout, 64);
    const sq = 64 * rows - 17, sk = 64 * cols - 5; // odd sizes: the last tiles are clipped
    const cost = attentionCost({ seqLenQ: sq, seqLenK: sk, numHeads: 3, numKvHeads: 1, headDim: 48, mask });
    const set = layout.flat().reduce<number>((s, x) => s + x, 0);
    expect(cost.tiling.visitedTiles).toBe(3 * set);
    expect(cost.tiling.partialTiles).toBe(0);
    const tp = planTiles(mask, { seqLenQ: sq, seqLenK: sk }, 64, 64);
    for (let qt = 0; qt < rows; qt++) {
      const visited = new Set(Array.from(tp.entries.subarray(tp.rowStart[qt]!, tp.rowStart[qt + 1]!), (e) => e >> 1));
      for (let kt = 0; kt < cols; kt++) expect(visited.has(kt), `block (${qt}, ${kt})`).toBe(layout[qt]![kt] === 1);
    }
    // Elements: each set block, clipped at the edges.
    let elems = 0;
    layout.forEach((row, r) => row.forEach((x, c) => { if (x) elems += (Math.min(64, sq - 64 * r)) * (Math.min(64, sk - 64 * c)); }));
    expect(cost.tiling.visitedElements).toBe(elems);
    expect(cost.flops.qk).toBe(2 * 48 * 3 * elems);
  });

  it('90% block sparsity costs about a tenth of dense', () => {
    const rng = mulberry32(5);
    const n = 64;
    const layout = Array.from({ length: n }, () => Array.from({ length: n }, () => (rng() < 0.1 ? 1 : 0)));
    const sparse = attentionCost({ seqLenQ: 4096, numHeads: 16, headDim: 64, mask: blockSparse(layout, 64) });
    const dense = attentionCost({ seqLenQ: 4096, numHeads: 16, headDim: 64 });
    const ratio = sparse.flops.matmul / dense.flops.matmul;
    expect(ratio).toBe(layout.flat().reduce<number>((s, x) => s + x, 0) / (n * n));
    expect(ratio).toBeGreaterThan(0.07);
    expect(ratio).toBeLessThan(0.13);
  });

  const primitive = fc.oneof(
    fc.record({ kind: fc.constant('causal'), tl: fc.boolean() }),
    fc.record({ kind: fc.constant('window'), l: fc.integer({ min: 0, max: 70 }), r: fc.integer({ min: -1, max: 70 }) }),
    fc.record({ kind: fc.constant('strided'), s: fc.integer({ min: 1, max: 9 }) }),
    fc.record({ kind: fc.constant('blocks'), bq: fc.integer({ min: 1, max: 50 }), bk: fc.integer({ min: 1, max: 50 }), seed: fc.integer() }),
    fc.record({ kind: fc.constant('keys'), seed: fc.integer() }),
    fc.record({ kind: fc.constant('docs'), seed: fc.integer() }),
  );
  type Prim = { kind: string; tl?: boolean; l?: number; r?: number; s?: number; bq?: number; bk?: number; seed?: number };
  function build(p: Prim, sq: number, sk: number): Mask {
    const rng = mulberry32(p.seed ?? 1);
    switch (p.kind) {
      case 'causal': return causal({ align: p.tl ? 'top-left' : 'bottom-right' });
      case 'window': return slidingWindow(p.l!, p.r!);
      case 'strided': return strided(p.s!);
      case 'blocks': {
        const rows = Math.ceil(sq / p.bq!), cols = Math.ceil(sk / p.bk!);
        return blockSparse(Array.from({ length: rows }, () => Array.from({ length: cols }, () => (rng() < 0.4 ? 1 : 0))), [p.bq!, p.bk!]);
      }
      case 'keys': return keySubset(Array.from({ length: sk }, () => rng() < 0.3));
      default: {
        // self-attention documents: cuts shared by Q and K (needs sq == sk; callers pass sk = sq)
        const cuts = [0, ...Array.from({ length: 3 }, () => Math.floor(rng() * (sq + 1))).sort((a, b) => a - b), sq];
        return documents(cuts);
      }
    }
  }

  it('property: visited tiles and elements equal brute force over the dense mask (exact primitives, odd sizes, any tile size)', () => {
    fc.assert(fc.property(primitive, fc.integer({ min: 1, max: 150 }), fc.integer({ min: 1, max: 150 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 70 }), (p, sq, skIn, tq, tk) => {
      const sk = p.kind === 'docs' ? sq : skIn;
      const mask = build(p as Prim, sq, sk);
      const d = denseMask(mask, { seqLenQ: sq, seqLenK: sk });
      let tiles = 0, elems = 0, allowed = 0;
      for (let q0 = 0; q0 < sq; q0 += tq) for (let k0 = 0; k0 < sk; k0 += tk) {
        const q1 = Math.min(q0 + tq, sq), k1 = Math.min(k0 + tk, sk);
        let any = false;
        for (let i = q0; i < q1 && !any; i++) for (let j = k0; j < k1; j++) if (d[i * sk + j]) { any = true; break; }
        if (any) { tiles++; elems += (q1 - q0) * (k1 - k0); }
      }
      for (const x of d) allowed += x;
      const cost = attentionCost({ seqLenQ: sq, seqLenK: sk, numHeads: 2, numKvHeads: 1, headDim: 24, headDimV: 40, mask }, { tiling: { tileQ: tq, tileK: tk } });
      expect(cost.tiling.visitedTiles).toBe(2 * tiles);
      expect(cost.tiling.visitedElements).toBe(elems);
      expect(cost.tiling.visitedElements).toBeGreaterThanOrEqual(allowed);
      expect(cost.flops.qk).toBe(2 * 24 * 2 * elems);
      expect(cost.flops.pv).toBe(2 * 40 * 2 * elems);
    }), { numRuns: 150, seed: 7 });
  });

  it('property: composite masks are never under-counted (every allowed element lies in a visited tile)', () => {
    fc.assert(fc.property(primitive, primitive, fc.boolean(), fc.integer({ min: 1, max: 120 }), fc.integer({ min: 1, max: 64 }), (a, b, useAnd, n, t) => {
      const ma = build(a as Prim, n, n), mb = build(b as Prim, n, n);
      const mask = useAnd ? ma.and(mb) : ma.or(mb);
      const d = denseMask(mask, { seqLenQ: n, seqLenK: n });
      const tp = planTiles(mask, { seqLenQ: n, seqLenK: n }, t, t);
      const inTile = new Uint8Array(n * n);
      for (let qt = 0; qt < tp.numQTiles; qt++) for (let e = tp.rowStart[qt]!; e < tp.rowStart[qt + 1]!; e++) {
        const kt = tp.entries[e]! >> 1;
        for (let i = qt * t; i < Math.min(n, qt * t + t); i++) for (let j = kt * t; j < Math.min(n, kt * t + t); j++) inTile[i * n + j] = 1;
      }
      for (let x = 0; x < n * n; x++) if (d[x]) expect(inTile[x], `element ${x}`).toBe(1);
      expect(attentionCost({ seqLenQ: n, numHeads: 1, headDim: 8, mask }, { tiling: { tileQ: t, tileK: t } }).tiling.visitedElements).toBe(tp.visitedElements);
    }), { numRuns: 80, seed: 11 });
  });
});

describe('hand-computed counts', () => {
  it('FLOPs of a 3×5 call: QKᵀ, PV, softmax (5 per element + rescale + final 1/l)', () => {
    const c = attentionCost({ seqLenQ: 3, seqLenK: 5, numHeads: 1, headDim: 8, headDimV: 6 });
    expect(c.flops.qk).toBe(2 * 8 * 15);
    expect(c.flops.pv).toBe(2 * 6 * 15);
    expect(SOFTMAX_FLOPS_PER_ELEMENT).toBe(5);
    // 15 elements × 5, one (row, tile) pair per row × (4 + Dv), one final 1/l per row × Dv.
    expect(c.flops.softmax).toBe(15 * 5 + 3 * (4 + 6) + 3 * 6);
    const capped = attentionCost({ seqLenQ: 3, seqLenK: 5, numHeads: 1, headDim: 8, headDimV: 6, softcap: 30 });
    expect(capped.flops.softmax - c.flops.softmax).toBe(15 * 3);
    expect(c.flops.total).toBe(c.flops.qk + c.flops.pv + c.flops.softmax);
  });

  it('bytes: flash reads Q, K, V once (K/V per KV head) and writes O; standard adds S and P', () => {
    const c = attentionCost({ batch: 2, seqLenQ: 3, seqLenK: 5, numHeads: 4, numKvHeads: 2, headDim: 8, headDimV: 6, dtype: 'f16', returnLse: true });
    const f = c.bytes.flash, s = c.bytes.standard;
    expect([f.q, f.k, f.v, f.o, f.lse]).toEqual([2 * 3 * 4 * 8 * 2, 2 * 5 * 2 * 8 * 2, 2 * 5 * 2 * 6 * 2, 2 * 3 * 4 * 6 * 2, 4 * 4 * 6]);
    expect(f.total).toBe(384 + 320 + 240 + 288 + 96);
    // Standard: K/V per query head (repeat_kv), S written + read and P written + read over Sq×Sk.
    expect([s.q, s.k, s.v, s.o, s.scores]).toEqual([384, 2 * 5 * 4 * 8 * 2, 2 * 5 * 4 * 6 * 2, 288, 4 * (2 * 3 * 5) * 4 * 2]);
    expect(c.intensity.flash).toBeCloseTo(c.flops.total / f.total, 12);
    const f32 = attentionCost({ batch: 2, seqLenQ: 3, seqLenK: 5, numHeads: 4, numKvHeads: 2, headDim: 8, headDimV: 6, dtype: 'f32' });
    expect(f32.bytes.flash.q).toBe(2 * f.q);
  });

  it('bytes: only keys some tile visits are read (block-sparse), paged adds int32 block tables', () => {
    const keep = Array.from({ length: 300 }, (_, j) => j < 64 || j >= 256);
    const c = attentionCost({ seqLenQ: 100, seqLenK: 300, numHeads: 2, headDim: 16, dtype: 'f16', mask: keySubset(keep) });
    // Visited KV tiles: [0,64) and [256,300) → 64 + 44 keys.
    expect(c.bytes.flash.k).toBe((64 + 44) * 2 * 16 * 2);
    const paged = attentionCost({ batch: 3, seqLenQ: 1, seqLenK: 1000, numHeads: 8, numKvHeads: 2, headDim: 64, pagedBlockSizeTokens: 16 });
    expect(paged.bytes.flash.blockTable).toBe(3 * Math.ceil(1000 / 16) * 4);
    // An option left undefined keeps the shape's block size.
    expect(attentionCost({ batch: 3, seqLenQ: 1, seqLenK: 1000, numHeads: 8, numKvHeads: 2, headDim: 64, pagedBlockSizeTokens: 16 }, { pagedBlockSizeTokens: undefined }).bytes.flash.blockTable).toBe(paged.bytes.flash.blockTable);
  });

  it('decode path: tiles are per KV head (a GQA group shares one load), FLOPs per query head', () => {
    const c = attentionCost({ batch: 4, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128 });
    expect(c.tiling.path).toBe('decode');
    expect(c.tiling.visitedTiles).toBe(4 * 8 * 64);
    expect(c.flops.qk).toBe(2 * 128 * 32 * 4 * 4096);
    expect(c.bytes.flash.k).toBe(4 * 4096 * 8 * 128 * 2);
    const forced = attentionCost({ batch: 4, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128 }, { tiling: 'cpu-prefill' });
    expect(forced.tiling.visitedTiles).toBe(4 * 32 * 64);
    expect(forced.flops.qk).toBe(c.flops.qk);
  });

  it('prefix-LM (PaliGemma) and varlen sum per sequence', () => {
    const c = attentionCost({ seqLenQ: 128, numHeads: 1, headDim: 32, mask: prefixLM(64) });
    // Tiles: row 0 [full prefix], row 1 [full prefix, partial diagonal] → 3 of 4.
    expect(c.tiling.visitedTiles).toBe(3);
    const v = attentionCost({ cuSeqlensQ: [0, 10, 10, 210], numHeads: 2, headDim: 16, causal: true });
    expect(v.shape.varlen).toBe(true);
    const parts = [10, 200].map((n) => attentionCost({ seqLenQ: n, numHeads: 2, headDim: 16, causal: true }));
    expect(v.tiling.visitedTiles).toBe(parts[0]!.tiling.visitedTiles + parts[1]!.tiling.visitedTiles);
    expect(v.flops.total).toBe(parts[0]!.flops.total + parts[1]!.flops.total);
  });
});

describe('bad input', () => {
  const base = { seqLenQ: 16, numHeads: 4, headDim: 32 };
  const fails = (f: () => unknown, type: new (...a: never[]) => Error, argument: string, dimension?: string) => {
    try { f(); } catch (e) {
      expect(e).toBeInstanceOf(type);
      expect((e as { argument?: string }).argument).toBe(argument);
      if (dimension) expect((e as { dimension?: string }).dimension).toBe(dimension);
      expect((e as Error).message).toContain(argument);
      return;
    }
    throw new Error('expected a throw');
  };
  it('negative or non-integer dimensions name the dimension', () => {
    fails(() => attentionCost({ ...base, seqLenQ: -3 }), ShapeError, 'seqLenQ', 'seqLenQ');
    fails(() => attentionCost({ ...base, seqLenK: 7.5 }), ShapeError, 'seqLenK', 'seqLenK');
    fails(() => attentionCost({ ...base, headDim: 63.5 }), ShapeError, 'headDim', 'headDim');
    fails(() => attentionCost({ ...base, numHeads: 0 }), ShapeError, 'numHeads', 'numHeads');
    fails(() => attentionCost({ ...base, batch: -1 }), ShapeError, 'batch', 'batch');
    fails(() => attentionCost({ ...base, numHeads: Number.NaN }), ShapeError, 'numHeads', 'numHeads');
  });
  it('heads not divisible', () => {
    fails(() => attentionCost({ ...base, numHeads: 6, numKvHeads: 4 }), ShapeError, 'numKvHeads', 'numKvHeads');
  });
  it('bad tiling, softcap, paging', () => {
    fails(() => attentionCost(base, { tiling: { tileQ: 0, tileK: 64 } }), ShapeError, 'tiling.tileQ', 'tileQ');
    fails(() => attentionCost({ ...base, softcap: -1 }), ValueError, 'softcap');
    fails(() => attentionCost({ ...base, pagedBlockSizeTokens: 0 }), ShapeError, 'pagedBlockSizeTokens');
  });
});

describe('attentionCost refuses what it cannot count, naming the argument', () => {
  it('dtypes it does not know (fp32 was counted as 2 bytes; a bad dtype blamed q), lengths past 32-bit token offsets, unsafe integers', () => {
    const base = { numHeads: 8, headDim: 64, seqLenQ: 128 };
    expect(() => attentionCost(base, { scoreDtype: 'fp32' as never })).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'scoreDtype' }));
    expect(() => attentionCost({ ...base, dtype: 'fp16' as never })).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'dtype' }));
    expect(attentionCost(base, { scoreDtype: 'f32' }).bytes).toBeDefined();
    // seqLenQ 2^32 gave 0 FLOPs; batch × length past 2^31 − 1 threw a bare RangeError.
    expect(() => attentionCost({ ...base, seqLenQ: 2 ** 32 })).toThrow(expect.objectContaining({ name: 'ShapeError', argument: 'seqLenQ' }));
    expect(() => attentionCost({ ...base, seqLenQ: 1, seqLenK: 2 ** 20, batch: 2048 })).toThrow(expect.objectContaining({ name: 'ShapeError', argument: 'seqLenK' }));
    expect(() => attentionCost({ ...base, seqLenQ: 1e300 })).toThrow(expect.objectContaining({ name: 'ShapeError', argument: 'seqLenQ' }));
    // A causal 1M-token sequence's tile plan aborted the process (not catchable); now it is refused at once.
    expect(() => attentionCost({ ...base, seqLenQ: 2 ** 20, causal: true })).toThrow(expect.objectContaining({ name: 'UnsupportedError' }));
    expect(() => attentionCost({ ...base, seqLenQ: 2 ** 20 })).toThrow(expect.objectContaining({ name: 'UnsupportedError' }));
    expect(attentionCost({ ...base, seqLenQ: 2 ** 19 }).flops.nominal).toBe(4 * 8 * 2 ** 38 * 64);
  });

  it('misspelt or unknown option names are refused with the nearest one, not costed as another shape', () => {
    const base = { seqLenQ: 128, numHeads: 8, headDim: 64 };
    expect(() => attentionCost({ ...base, casual: true } as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'casual', message: expect.stringMatching(/did you mean 'causal'/) }));
    expect(() => attentionCost({ ...base, seqLenKV: 4096 } as never)).toThrow(/seqLenKV/);
    expect(() => attentionCost(base, { tilling: 'cpu' } as never)).toThrow(/did you mean 'tiling'/);
    const cost = attentionCost(base);
    expect(() => attentionRoofline(cost, 'h200', { kernal: 'standard' } as never)).toThrow(/did you mean 'kernel'/);
    expect(() => roofline({ matmulFlops: 1, bytes: 1, dtype: 'f16', vectorFlop: 2 } as never, 'h200')).toThrow(/did you mean 'vectorFlops'/);
    expect(() => roofline({ matmulFlops: 1, bytes: 1, dtype: 'f16' }, 'h200', { units: 'vector' } as never)).toThrow(/did you mean 'unit'/);
    expect(() => kvCacheSize({ numLayers: 2, numKvHeads: 2, headDim: 8, seqLen: 4, batchSize: 64 } as never)).toThrow(expect.objectContaining({ argument: 'batchSize' }));
    expect(() => maxBatchForMemory({ numLayers: 2, numKvHeads: 2, headDim: 8, seqLen: 4, memoryBytes: '1GB', reserveBytes: '70GB' } as never)).toThrow(/did you mean 'reservedBytes'/);
  });

  it('fully masked Q tiles cost no softmax work, and counts past 2^53 are refused', () => {
    // Causal Sq 4096 > Sk 128 (bottom-right): the first 3,968 rows see nothing.
    const c = attentionCost({ seqLenQ: 4096, seqLenK: 128, numHeads: 8, headDim: 64, causal: true });
    const sq = attentionCost({ seqLenQ: 128, seqLenK: 128, numHeads: 8, headDim: 64, causal: true });
    expect(c.flops.softmax).toBe(sq.flops.softmax);
    expect(attentionCost({ seqLenQ: 10, seqLenK: 0, numHeads: 8, headDim: 64 }).flops.total).toBe(0);
    expect(() => attentionCost({ seqLenQ: 1, seqLenK: 2 ** 31 - 1, numHeads: 2 ** 30, headDim: 256, dtype: 'f32' }, { tiling: 'cpu-prefill' })).toThrow(expect.objectContaining({ name: 'ShapeError', dimension: 'numHeads' }));
    expect(() => kvCacheSize({ numLayers: 2 ** 20, numKvHeads: 2 ** 20, headDim: 128, seqLen: 1, blockSizeTokens: 2 ** 20 })).toThrow(expect.objectContaining({ argument: 'blockSizeTokens' }));
  });

  it('an unsupported compute unit names unit (the CLI maps it to --unit)', () => {
    const cost = attentionCost({ seqLenQ: 128, numHeads: 8, headDim: 64 });
    expect(() => attentionRoofline(cost, 'apple-m2', { unit: 'tensor' })).toThrow(expect.objectContaining({ name: 'UnsupportedError', argument: 'unit' }));
  });
});
