/**
 * KV-cache sizing against hand values and a brute-force block allocator (token by token).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError, formatBytesSI, kvCacheSize, maxBatchForMemory, parseByteSize } from '../../../src/index.js';

/** Allocates blocks token by token; the first ⌊shared/bs⌋ blocks of every sequence are one shared set. */
function simulate(seqLen: number, batch: number, bs: number, shared: number): { blocks: number; waste: number } {
  const sharedFull = Math.floor(shared / bs);
  const table = new Map<string, number>();
  let next = 0, used = 0;
  for (let b = 0; b < batch; b++) {
    let block = -1, fill = bs;
    for (let t = 0; t < seqLen; t++) {
      if (fill === bs) {
        const logical = Math.floor(t / bs);
        const key = logical < sharedFull ? `shared:${logical}` : `seq${b}:${logical}`;
        if (!table.has(key)) table.set(key, next++);
        block = table.get(key)!;
        fill = 0;
      }
      fill++;
      if (Math.floor(t / bs) >= sharedFull || b === 0) used++;
    }
    void block;
  }
  return { blocks: next, waste: next * bs - used };
}

describe('kv cache', () => {
  it('formula: 2·layers·kvHeads·seqLen·headDim·bytes·batch, MHA/GQA/MQA', () => {
    for (const [l, hk, s, d, b, dt, bpe] of [[32, 32, 768, 128, 1, 'f16', 2], [28, 4, 1401, 128, 3, 'bf16', 2], [1, 1, 97, 72, 5, 'f32', 4]] as const) {
      const k = kvCacheSize({ numLayers: l, numKvHeads: hk, seqLen: s, headDim: d, batch: b, dtype: dt });
      expect(k.totalBytes).toBe(2 * l * hk * s * d * bpe * b);
      expect(k.contiguousBytes).toBe(k.totalBytes);
      expect(k.bytesPerToken).toBe(2 * l * hk * d * bpe);
      expect(k.paged).toBeUndefined();
    }
  });

  it('paged: the last block\'s waste (2112 tokens in 16-token blocks: 132 blocks, no waste; 2113: 133 blocks, 15 wasted)', () => {
    const a = kvCacheSize({ numLayers: 32, numKvHeads: 8, seqLen: 2112, headDim: 128, blockSizeTokens: 16 });
    expect(a.paged!.blocksPerSequence).toBe(132);
    expect(a.paged!.wasteTokens).toBe(0);
    expect(a.totalBytes).toBe(a.contiguousBytes);
    const b = kvCacheSize({ numLayers: 32, numKvHeads: 8, seqLen: 2113, headDim: 128, blockSizeTokens: 16, batch: 3 });
    expect(b.paged!.blocksPerSequence).toBe(133);
    expect(b.paged!.wasteTokens).toBe(3 * 15);
    expect(b.paged!.wasteBytes).toBe(3 * 15 * b.bytesPerToken);
    expect(b.totalBytes).toBe(b.contiguousBytes + b.paged!.wasteBytes);
  });

  it('shared image prefix: the seed\'s "one image, 10 queries" example', () => {
    // 32 heads × d128 fp16, one layer: image 768 tokens = 12.58 MB; each query adds 128 text tokens.
    const unshared = kvCacheSize({ numLayers: 1, numKvHeads: 32, headDim: 128, seqLen: 768 + 128, batch: 10 });
    const shared = kvCacheSize({ numLayers: 1, numKvHeads: 32, headDim: 128, seqLen: 768 + 128, batch: 10, sharedPrefixTokens: 768 });
    expect(formatBytesSI(shared.sharedBytes)).toBe('12.58 MB');
    expect(shared.totalBytes).toBe(12_582_912 + 10 * 2 * 32 * 128 * 128 * 2);
    expect(unshared.totalBytes / shared.totalBytes).toBeCloseTo(146.8 / 33.55, 2);
  });

  it('paged sharing reuses only full blocks (vLLM hashes full blocks only)', () => {
    const k = kvCacheSize({ numLayers: 2, numKvHeads: 2, headDim: 64, seqLen: 100, batch: 4, blockSizeTokens: 16, sharedPrefixTokens: 40 });
    expect(k.paged!.sharedBlocks).toBe(2); // 32 of the 40 shared tokens
    expect(k.sharedTokens).toBe(32);
    expect(k.paged!.blocksPerSequence).toBe(Math.ceil((100 - 32) / 16));
  });

  it('property: paged block and waste counts equal a token-by-token allocator', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 300 }), (seqLen, batch, bs, sharedIn) => {
      const shared = Math.min(sharedIn, seqLen);
      const k = kvCacheSize({ numLayers: 3, numKvHeads: 2, headDim: 24, seqLen, batch, blockSizeTokens: bs, sharedPrefixTokens: shared });
      const sim = simulate(seqLen, batch, bs, shared);
      expect(k.paged!.totalBlocks).toBe(sim.blocks);
      expect(k.paged!.wasteTokens).toBe(sim.waste);
      expect(k.totalBytes).toBe(sim.blocks * k.paged!.blockBytes);
    }), { numRuns: 300, seed: 3 });
  });

  it('int8 blocks: 1 byte per element + an f32 scale per (block, KV head) for K and V, per layer', () => {
    const k = kvCacheSize({ numLayers: 32, numKvHeads: 8, headDim: 128, seqLen: 2112, dtype: 'int8' });
    expect(k.paged!.blockSizeTokens).toBe(16);
    const blocks = 132;
    expect(k.scaleBytes).toBe(blocks * 32 * 8 * 2 * 4);
    expect(k.totalBytes).toBe(2 * 32 * 8 * 2112 * 128 * 1 + k.scaleBytes);
    const f16 = kvCacheSize({ numLayers: 32, numKvHeads: 8, headDim: 128, seqLen: 2112, dtype: 'f16' });
    expect(f16.totalBytes / k.totalBytes).toBeCloseTo(2 / (1 + 4 / (16 * 128)), 6);
  });

  it('largest batch that fits a memory size', () => {
    // Llama-3-8B-like GQA-8, 2,112 tokens: 276.8 MB per sequence; 80 GB minus 16 GB of weights.
    const r = maxBatchForMemory({ numLayers: 32, numKvHeads: 8, headDim: 128, seqLen: 2112, memoryBytes: '80GB', reservedBytes: 16e9 });
    expect(r.perSequenceBytes).toBe(276_824_064);
    expect(r.batch).toBe(Math.floor(64e9 / 276_824_064));
    expect(r.usedBytes).toBeLessThanOrEqual(r.availableBytes);
    expect(r.usedBytes + r.perSequenceBytes).toBeGreaterThan(r.availableBytes);
    // With a shared 1,600-token image prefix in 16-token blocks, many more sequences fit.
    const s = maxBatchForMemory({ numLayers: 32, numKvHeads: 8, headDim: 128, seqLen: 2112, blockSizeTokens: 16, sharedPrefixTokens: 1600, memoryBytes: 64e9 });
    expect(s.batch).toBe(Math.floor((64e9 - s.sharedBytes) / s.perSequenceBytes));
    expect(s.batch).toBeGreaterThan(4 * r.batch);
    expect(maxBatchForMemory({ numLayers: 32, numKvHeads: 8, headDim: 128, seqLen: 2112, memoryBytes: '100MB' }).batch).toBe(0);
    // Every token a shared prefix: any batch fits and holds the prefix's bytes alone.
    const all = maxBatchForMemory({ numLayers: 2, numKvHeads: 2, headDim: 64, seqLen: 32, blockSizeTokens: 16, sharedPrefixTokens: 32, memoryBytes: '1GB' });
    expect(all.batch).toBe(Number.MAX_SAFE_INTEGER);
    expect(all.usedBytes).toBe(all.sharedBytes);
    expect(parseByteSize('24GiB')).toBe(24 * 2 ** 30);
  });

  it('bad input: typed errors naming the argument', () => {
    expect(() => kvCacheSize({ numLayers: -1, numKvHeads: 8, headDim: 128, seqLen: 10 })).toThrow(ShapeError);
    expect(() => kvCacheSize({ numLayers: 2, numKvHeads: 8, headDim: 12.5, seqLen: 10 })).toThrow(/headDim/);
    expect(() => kvCacheSize({ numLayers: 2, numHeads: 12, numKvHeads: 8, headDim: 64, seqLen: 10 })).toThrow(/divisible/);
    expect(() => kvCacheSize({ numLayers: 2, numKvHeads: 8, headDim: 64, seqLen: 10, dtype: 'fp8' as 'f16' })).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'dtype' }));
    expect(() => kvCacheSize({ numLayers: 2, numKvHeads: 8, headDim: 64, seqLen: 10, sharedPrefixTokens: 11 })).toThrow(/sharedPrefixTokens/);
    expect(() => maxBatchForMemory({ numLayers: 2, numKvHeads: 8, headDim: 64, seqLen: 10, memoryBytes: 'lots' })).toThrow(/memoryBytes/);
    expect(() => maxBatchForMemory({ numLayers: 2, numKvHeads: 8, headDim: 64, seqLen: 10, memoryBytes: '1GB', reservedBytes: '2GB' })).toThrow(expect.objectContaining({ argument: 'reservedBytes' }));
    expect(() => maxBatchForMemory({ numLayers: 2, numKvHeads: 8, headDim: 64, seqLen: 10, memoryBytes: '1e400GB' })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'memoryBytes' }));
    // Past 2^53 bytes the counts would round silently: refused, with the product spelled out.
    expect(() => kvCacheSize({ numLayers: 1e6, numKvHeads: 1e4, headDim: 256, seqLen: 1e9 })).toThrow(/past 2\^53/);
    // A string or bigint size says what it got (it read as a number: "got 128").
    expect(() => kvCacheSize({ numLayers: '128' as unknown as number, numKvHeads: 8, headDim: 64, seqLen: 10 })).toThrow(/got "128" \(a string\)/);
    expect(() => kvCacheSize({ numLayers: 2, numKvHeads: 8, headDim: 64, seqLen: 10n as unknown as number })).toThrow(/got 10n \(a bigint\)/);
  });
});
