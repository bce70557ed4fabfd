import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockPool, PagedKvCache, ValueError, simulateServing } from '../../../src/index.js';
import { BlockQueue } from '../../../src/kvcache/free-queue.js';

describe('intrusive block queue', () => {
  it('pushes, pops and removes from the middle in O(1) against an array model', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.nat({ max: 15 })), { maxLength: 200 }), (ops) => {
      const n = 16;
      const prev = new Int32Array(n), next = new Int32Array(n), where = new Uint8Array(n);
      const q = new BlockQueue(prev, next, where, 1);
      const model: number[] = [];
      for (const [kind, b] of ops) {
        if (kind === 0 && !model.includes(b)) { q.pushBack(b); model.push(b); }
        else if (kind === 1) expect(q.popFront()).toBe(model.length ? model.shift() : -1);
        else if (kind === 2 && model.includes(b)) { q.remove(b); model.splice(model.indexOf(b), 1); }
        expect(q.toArray()).toEqual(model);
        expect(q.size).toBe(model.length);
        for (let i = 0; i < n; i++) expect(q.has(i)).toBe(model.includes(i));
      }
    }), { seed: 3, numRuns: 200 });
  });

  it('refuses to queue a block twice (internal invariant)', () => {
    const q = new BlockQueue(new Int32Array(2), new Int32Array(2), new Uint8Array(2), 1);
    q.pushBack(0);
    expect(() => q.pushBack(0)).toThrow(/already queued/);
    expect(() => q.remove(1)).toThrow(/not in queue/);
  });
});

describe('BlockPool', () => {
  it('allocates free blocks first, then evicts cached ones LRU; accounting stays exact', () => {
    const pool = new BlockPool(4);
    const [a, b, c, d] = pool.allocate(4);
    expect(pool.numAvailable).toBe(0);
    expect(pool.register(a!, 'ha')).toBe(true);
    expect(pool.register(b!, 'ha')).toBe(false); // duplicate content stays private
    pool.register(c!, 'hc');
    pool.decRef(c!);
    pool.decRef(a!);
    pool.decRef(b!);
    expect(pool.numFree).toBe(1); // b: no hash
    expect(pool.cachedOrder()).toEqual([c, a]);
    expect(pool.checkInvariants()).toEqual({ free: 1, used: 1, cached: 2 });
    expect(pool.allocate(1)).toEqual([b]); // the free block, no eviction
    expect(pool.evictions).toBe(0);
    expect(pool.allocate(1)).toEqual([c]); // then the least recently released cached block
    expect(pool.evictions).toBe(1);
    expect(pool.lookup('hc')).toBe(-1);
    expect(pool.lookup('ha')).toBe(a);
    pool.incRef(a!); // a prefix hit takes it out of the LRU queue
    expect(pool.numCached).toBe(0);
    expect(pool.refCount(a!)).toBe(1);
    expect(pool.checkInvariants()).toEqual({ free: 0, used: 4, cached: 0 });
    expect(() => pool.allocate(1)).toThrow(/internal/);
    pool.decRef(d!);
    expect(() => pool.decRef(d!)).toThrow(/released twice/);
    // Ids outside the pool are a typed error, not undefined.
    for (const b of [-1, 4, 1.5, NaN]) {
      expect(() => pool.refCount(b)).toThrow(ValueError);
      expect(() => pool.hashOf(b)).toThrow(ValueError);
    }
  });

  it('options and arguments of the wrong kind are typed errors', () => {
    const opts = { numLayers: 1, numKvHeads: 1, headDim: 4, blockSizeTokens: 2, numBlocks: 8 };
    expect(() => new PagedKvCache({ ...opts, prefixCaching: 'no' as never })).toThrow(expect.objectContaining({ argument: 'prefixCaching' }));
    expect(() => new PagedKvCache({ ...opts, allocateStorage: 0 as never })).toThrow(expect.objectContaining({ argument: 'allocateStorage' }));
    const cache = new PagedKvCache({ ...opts, allocateStorage: false });
    expect(() => cache.addSequence({ tokenIds: { length: -1 } as never })).toThrow(expect.objectContaining({ argument: 'tokenIds' }));
    expect(() => cache.batch(1 as never)).toThrow(expect.objectContaining({ argument: 'ids' }));
    expect(() => simulateServing({ numRequests: 2, seed: Number.NaN })).toThrow(expect.objectContaining({ argument: 'seed' }));
  });

  it('evictCached takes a whole count', () => {
    const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 4, blockSizeTokens: 2, numBlocks: 8, allocateStorage: false });
    expect(() => cache.evictCached(1.5)).toThrow(ValueError);
    expect(() => cache.evictCached(-1)).toThrow(ValueError);
    expect(cache.evictCached()).toBe(0);
  });
});
