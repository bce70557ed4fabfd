/**
 * The memory bars, measured on live pools: paged waste vs contiguous max-length
 * reservation on 1,000 sequences, and shared image prefixes over 10 images × 10 prompts.
 */
import { describe, expect, it } from 'vitest';
import { kvCacheSize, kvVariants, memoryWaste, mulberry32, simulateImagePrefix, simulateServing, simulateWaste } from '../../../src/index.js';

describe('calculator', () => {
  it('MHA / GQA / MQA bytes (the seed note’s example, corrected: 1.11 GB, not 550 MB)', () => {
    const rows = kvVariants({ numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16', seqLen: 2112 });
    expect(rows.map((r) => [r.variant, r.numKvHeads, r.bytesPerToken, r.bytesPerSequence])).toEqual([
      ['MHA', 32, 2 * 32 * 32 * 128 * 2, 1_107_296_256],
      ['GQA', 8, 2 * 32 * 8 * 128 * 2, 276_824_064],
      ['MQA', 1, 2 * 32 * 1 * 128 * 2, 34_603_008],
    ]);
    expect(rows.map((r) => r.reduction)).toEqual([1, 4, 32]);
    // Paged with int8: whole blocks plus scales, from the same cost model.
    const paged = kvVariants({ numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, dtype: 'int8', seqLen: 17, blockSizeTokens: 16 });
    expect(paged[1]!.bytesPerSequence).toBe(2 * (2 * 2 * 16 * 2 * 8 + 2 * 2 * 2 * 4));
    expect(paged[1]!.bytesPerSequence).toBe(kvCacheSize({ numLayers: 2, numKvHeads: 2, headDim: 8, seqLen: 17, dtype: 'int8', blockSizeTokens: 16 }).totalBytes);
    expect(() => kvVariants({ numLayers: 1, numHeads: 6, numKvHeads: 4, headDim: 8, seqLen: 1 })).toThrow(/multiple/);
    // An empty sequence: the reductions by bytes per token (MHA's own 1, not 0).
    expect(kvVariants({ numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16', seqLen: 0 }).map((r) => r.reduction)).toEqual([1, 4, 32]);
  });

  it('memoryWaste matches a brute-force count', () => {
    const rng = mulberry32(2);
    const lens = Array.from({ length: 57 }, () => Math.floor(rng() * 300));
    const r = memoryWaste(lens, { blockSizeTokens: 7, maxLength: 300 });
    let alloc = 0, used = 0;
    for (const L of lens) { let s = 0; while (s < L) s += 7; alloc += s; used += L; }
    expect(r.paged.allocatedSlots).toBe(alloc);
    expect(r.paged.waste).toBeCloseTo((alloc - used) / alloc, 12);
    expect(r.contiguous.allocatedSlots).toBe(57 * 300);
    expect(() => memoryWaste([301], { maxLength: 300 })).toThrow(/lengths\[0\]/);
  });
});

describe('bar: memory waste < 4 % on 1,000 sequences with lengths uniform in 1..4,096', () => {
  it('measured on the pool after prefill + round-robin decode', () => {
    const sim = simulateWaste({ numSequences: 1000, maxLength: 4096, blockSizeTokens: 16, seed: 1 });
    const { measured, expected } = sim;
    console.log(`waste: paged ${(measured.waste * 100).toFixed(3)} % (${measured.allocatedSlots - measured.filledSlots} of ${measured.allocatedSlots} slots), contiguous max-length ${(expected.contiguous.waste * 100).toFixed(2)} % (${expected.contiguous.unusedSlots} of ${expected.contiguous.allocatedSlots})`);
    expect(measured.allocatedSlots).toBe(expected.paged.allocatedSlots);
    expect(measured.filledSlots).toBe(expected.tokens);
    expect(measured.waste).toBeCloseTo(expected.paged.waste, 12);
    expect(measured.waste).toBeLessThan(0.04);
    expect(expected.contiguous.waste).toBeGreaterThan(0.4);
    expect(Math.min(...sim.lengths)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...sim.lengths)).toBeLessThanOrEqual(4096);
  });
});

describe('bar: shared image prefix, 100 requests over 10 images × 10 prompts', () => {
  it('image-first: every full image block is reused after the first request per image', () => {
    const r = simulateImagePrefix({ numImages: 10, numPrompts: 10, imageTokens: 576, systemTokens: 0, promptTokens: 40, seed: 3 });
    console.log(`image-first: hit rate over shareable blocks ${(r.hitRateOfShareable * 100).toFixed(1)} % (${r.hitBlocks}/${r.shareableBlocks}); image blocks reused ${r.imageBlocksReused}/${r.imageBlocksAfterFirst}; text-after-image blocks hit ${r.promptBlocksHit}/${r.promptBlocksQueried}; prefill computed ${(r.computedFraction * 100).toFixed(1)} %`);
    expect(r.requests).toBe(100);
    expect(r.imageBlocksAfterFirst).toBe(90 * 36);
    expect(r.imageBlocksReused).toBe(r.imageBlocksAfterFirst);
    expect(r.hitRateOfShareable).toBeGreaterThanOrEqual(0.9);
    expect(r.hitBlocks).toBe(r.shareableBlocks);
    // The pitfall: text after an image never hits, even though every prompt repeats 10 times.
    expect(r.promptBlocksHit).toBe(0);
    expect(r.promptBlocksQueried).toBeGreaterThan(0);
  });

  it('with a shared system prompt in front, its blocks hit for every request after the first', () => {
    const r = simulateImagePrefix({ numImages: 10, numPrompts: 10, imageTokens: 576, systemTokens: 64, promptTokens: 40, seed: 4 });
    expect(r.hitBlocks).toBe(r.shareableBlocks);
    expect(r.imageBlocksReused).toBe(r.imageBlocksAfterFirst);
    expect(r.shareableBlocks).toBe(99 * 4 + 90 * 36);
  });

  it('prompt-first layout shares prompts but recomputes every image (the reverse trade-off)', () => {
    const r = simulateImagePrefix({ numImages: 10, numPrompts: 10, imageTokens: 576, promptTokens: 48, order: 'prompt-first', seed: 5 });
    console.log(`prompt-first: hit rate over shareable ${(r.hitRateOfShareable * 100).toFixed(1)} %; prompt blocks hit ${r.promptBlocksHit}/${r.promptBlocksQueried}; prefill computed ${(r.computedFraction * 100).toFixed(1)} %`);
    expect(r.hitBlocks).toBe(r.shareableBlocks);
    expect(r.promptBlocksHit).toBe(90 * 3);
    expect(r.computedFraction).toBeGreaterThan(0.9);
  });

  it('under memory pressure LRU eviction lowers the hit rate but nothing breaks', () => {
    const r = simulateImagePrefix({ numImages: 10, numPrompts: 10, imageTokens: 576, promptTokens: 40, numBlocks: 120, seed: 3 });
    expect(r.stats.evictions).toBeGreaterThan(0);
    expect(r.hitRateOfShareable).toBeLessThan(1);
    expect(r.stats.usedBlocks).toBe(0);
  });
});

describe('serving simulation', () => {
  it('runs a continuous-batching workload to completion with sharing, copy-on-write and evictions', () => {
    const r = simulateServing({ numRequests: 60, numBlocks: 600, maxNewTokens: 64, seed: 2 });
    expect(r.completed).toBe(60);
    expect(r.final.usedBlocks).toBe(0);
    expect(r.atPeak.sharedBlocks).toBeGreaterThan(0);
    expect(r.final.copyOnWrites).toBeGreaterThan(0);
    expect(r.prefillTokensComputed).toBeLessThan(r.prefillTokensRequested);
    expect(r.final.prefix.hitRate).toBeGreaterThan(0.3);
    // A pool too small for every sample's tokens: some end early, and the report says how many.
    const tight = simulateServing({ numRequests: 20, numBlocks: 90, maxNewTokens: 256, maxBatch: 16, seed: 3 });
    expect(tight.completed).toBe(20);
    expect(tight.samplesCutShort).toBeGreaterThan(0);
  });
});
