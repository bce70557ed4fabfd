/**
 * A cache allocated in the CPU kernel heap is read in place by attentionPaged (no per-call copy of the
 * pool), with results equal to the gathering oracle.
 */
import { describe, expect, it } from 'vitest';
import { PagedKvCache, attentionPaged, cpuRuntime, pagedAttentionReference, randn } from '../../../src/index.js';
import { errorStats } from '../../helpers/close.js';

describe('paged attention over a heap-resident cache', () => {
  it('decode over 3 sequences reads blocks in place and matches the oracle', async () => {
    const rt = await cpuRuntime();
    const cache = new PagedKvCache({ numLayers: 2, numKvHeads: 2, headDim: 32, blockSizeTokens: 16, numBlocks: 64, dtype: 'f16', heap: rt.heap });
    const lens = [200, 37, 129];
    const ids = lens.map((n, i) => {
      const { id } = cache.addSequence();
      const tokens = Array.from({ length: n }, (_, t) => (t * 7 + i) % 50);
      cache.append(id, tokens, { k: randn([2, n, 2, 32], 10 * i + 1), v: randn([2, n, 2, 32], 10 * i + 2) });
      return id;
    });
    const batch = cache.batch(ids);
    const q = randn([3, 1, 8, 32], 99);
    rt.heap.resetHighWater();
    const before = rt.heap.inUseBytes;
    const got = await attentionPaged(q, cache, 1, batch, batch.seqLens, {});
    const extra = rt.heap.highWaterBytes - before;
    const ref = pagedAttentionReference(q, cache, 1, batch, batch.seqLens);
    expect(errorStats(got.out.toFloat64(), ref.out).maxAbs).toBeLessThan(1e-5);
    // The pool (2 layers × 64 blocks × 16 × 2 × 32 × 2 bytes × K,V = 1 MiB) is not copied per call.
    expect(extra).toBeLessThan(256 * 1024);
  });

  it('int8 blocks in the heap: allocations that grow the memory (here 2 × 4 MiB of codes) still give whole arrays', async () => {
    const rt = await cpuRuntime();
    // Larger than the heap's free space on a fresh runtime, so allocating the codes grows the memory (the old
    // code took the heap's buffer before allocating and failed with "Invalid typed array length").
    const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 8, headDim: 128, blockSizeTokens: 16, numBlocks: 256, dtype: 'int8', rotation: true, smoothK: true, heap: rt.heap });
    const st = cache.storage!.layers[0]!;
    if (st.dtype !== 'int8') throw new Error('int8 expected');
    expect(st.k.length).toBe(256 * 16 * 8 * 128);
    const { id } = cache.addSequence();
    cache.append(id, Array.from({ length: 300 }, (_, t) => t), { k: randn([1, 300, 8, 128], 5), v: randn([1, 300, 8, 128], 6) });
    const batch = cache.batch([id]);
    const q = randn([1, 1, 16, 128], 7);
    const got = await attentionPaged(q, cache, 0, batch, batch.seqLens, { backend: 'wasm' });
    const ref = pagedAttentionReference(q, cache, 0, batch, batch.seqLens);
    expect(errorStats(got.out.toFloat64(), ref.out).maxAbs).toBeLessThan(1e-5);
  });

  it('dispose() returns the blocks to the heap (garbage collection never does); the blocks are then refused', async () => {
    const rt = await cpuRuntime();
    const before = rt.heap.inUseBytes;
    for (let round = 0; round < 3; round++) {
      for (const dtype of ['f32', 'int8'] as const) {
        const cache = new PagedKvCache({ numLayers: 2, numKvHeads: 4, headDim: 64, blockSizeTokens: 16, numBlocks: 64, dtype, heap: rt.heap });
        expect(rt.heap.inUseBytes).toBeGreaterThan(before + 2 * 64 * 16 * 4 * 64 * 2 - 1);
        const { id } = cache.addSequence();
        cache.append(id, [1, 2, 3], { k: randn([2, 3, 4, 64], 1), v: randn([2, 3, 4, 64], 2) });
        cache.dispose();
        cache.dispose(); // idempotent
        expect(rt.heap.inUseBytes).toBe(before);
        expect(cache.storage!.disposed).toBe(true);
        const batch = cache.batch([id]);
        await expect(attentionPaged(randn([1, 1, 8, 64], 3), cache, 0, batch, batch.seqLens)).rejects.toThrow(expect.objectContaining({ name: 'StateError', message: expect.stringMatching(/disposed/) }));
        expect(() => cache.append(id, [4], { k: randn([2, 1, 4, 64], 4), v: randn([2, 1, 4, 64], 5) })).toThrow(/disposed/);
      }
    }
  });
});
