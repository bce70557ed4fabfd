import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  IMAGE_PAD_TOKEN, OutOfBlocksError, PagedKvCache, ShapeError, StateError, Tensor, UnsupportedError, ValueError, blockHash, gatherContiguous,
  kvCacheSize, noneHash, planKvCache, randn,
} from '../../../src/index.js';
import { kvInput, saltSeed, stepHash, type ToyModel } from './kv-model.js';

const M: ToyModel = { numLayers: 2, numKvHeads: 2, headDim: 3, dtype: 'f32' };

function hashesOf(tokens: number[], salt?: string, imageAt: (p: number) => number = () => -1): number[] {
  let h = saltSeed(salt);
  return tokens.map((t, i) => (h = stepHash(h, t, imageAt(i))));
}

/** Appends tokens with the toy model's K/V, continuing `prefix` (tokens already in the sequence). */
function appendToy(cache: PagedKvCache, id: number, all: number[], from: number, salt?: string, imageAt?: (p: number) => number): void {
  const hashes = hashesOf(all, salt, imageAt).slice(from);
  cache.append(id, all.slice(from), kvInput(M, hashes));
}

function snapshot(cache: PagedKvCache): string {
  return JSON.stringify({
    st: cache.stats(), seqs: cache.sequences().map((id) => [id, cache.length(id), Array.from(cache.blockTable(id)), Array.from(cache.tokenIds(id))]),
    refs: Array.from({ length: cache.plan.numBlocks }, (_, b) => cache.pool.refCount(b)), cached: cache.pool.cachedOrder(),
  });
}

describe('PagedKvCache options', () => {
  it('validates options with typed errors naming the argument', () => {
    expect(() => new PagedKvCache({ numLayers: 0, numKvHeads: 1, headDim: 8, numBlocks: 4 })).toThrow(/numLayers/);
    expect(() => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 8 })).toThrow(ValueError);
    expect(() => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 8, numBlocks: 4, capacityBytes: 1e6 })).toThrow(/exactly one/);
    expect(() => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 8, capacityBytes: 10 })).toThrow(/holds no block/);
    expect(() => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 8, numBlocks: 4, blockSizeTokens: 0 })).toThrow(/blockSizeTokens/);
    expect(() => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 8, numBlocks: 4, dtype: 'f16', rotation: true })).toThrow(UnsupportedError);
    expect(() => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 8, numBlocks: 4, dtype: 'bf16' as 'f16' })).toThrow(UnsupportedError);
  });

  it.each(['f32', 'f16', 'int8'] as const)('sizes the pool from capacityBytes with the cost model’s block bytes (%s)', (dtype) => {
    const shape = { numLayers: 3, numKvHeads: 2, headDim: 40, blockSizeTokens: 16 };
    const blockBytes = kvCacheSize({ ...shape, seqLen: 16, dtype }).paged!.blockBytes;
    const cache = new PagedKvCache({ ...shape, dtype, capacityBytes: blockBytes * 10 + blockBytes - 1 });
    expect(cache.plan.bytesPerBlock).toBe(blockBytes);
    expect(cache.plan.numBlocks).toBe(10);
    const st = cache.storage!.layers[0]!;
    const elems = 10 * 16 * 2 * 40;
    if (st.dtype === 'int8') {
      expect(st.k.length).toBe(elems);
      expect(st.kScales.length).toBe(10 * 2);
    } else {
      expect(st.k.shape).toEqual([10, 16, 2, 40]);
      expect(st.k.dtype).toBe(dtype);
    }
  });
});

describe('sequences', () => {
  it('lays tokens out per the kernel contract: slot = table[p / bs] · bs + p % bs, element (slot · Hk + h) · D + c', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 8 });
    const filler = cache.addSequence().id;
    cache.append(filler, [1, 2, 3, 4, 5]); // takes blocks 0 and 1, so the next sequence does not start at 0
    const { id } = cache.addSequence();
    const k = randn([2, 9, 2, 3], 1), v = randn([2, 9, 2, 3], 2);
    const slots = cache.append(id, [0, 1, 2, 3, 4, 5, 6, 7, 8], { k, v });
    const table = cache.blockTable(id);
    expect(table.length).toBe(3);
    expect(Array.from(table)).not.toContain(0);
    for (let p = 0; p < 9; p++) expect(slots[p]).toBe(table[Math.floor(p / 4)]! * 4 + (p % 4));
    expect(Array.from(cache.slotMapping(id))).toEqual(Array.from(slots));
    const st = cache.storage!.layers[1]!;
    if (st.dtype === 'int8') throw new Error('float expected');
    for (let p = 0; p < 9; p++) for (let h = 0; h < 2; h++) for (let c = 0; c < 3; c++) {
      expect(st.k.data[(slots[p]! * 2 + h) * 3 + c]).toBe(k.get(1, p, h, c));
      expect(st.v.data[(slots[p]! * 2 + h) * 3 + c]).toBe(v.get(1, p, h, c));
    }
    expect(cache.length(id)).toBe(9);
    expect(Array.from(cache.tokenIds(id))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('layer-wise reserve → writeLayer → commit equals append, and f16 writes keep bits', () => {
    const m16 = { ...M, dtype: 'f16' as const };
    const a = new PagedKvCache({ ...m16, blockSizeTokens: 4, numBlocks: 8 });
    const b = new PagedKvCache({ ...m16, blockSizeTokens: 4, numBlocks: 8 });
    const kv = kvInput(m16, hashesOf([5, 6, 7, 8, 9, 10]));
    const ia = a.addSequence().id, ib = b.addSequence().id;
    a.append(ia, [5, 6, 7, 8, 9, 10], kv);
    const slots = b.reserve(ib, [5, 6, 7, 8, 9, 10]);
    expect(b.pending(ib)).toBe(6);
    expect(slots.length).toBe(6);
    for (let l = 0; l < 2; l++) b.writeLayer(ib, l, kv.k.select(0, l), kv.v.select(0, l));
    b.commit(ib);
    expect(b.pending(ib)).toBe(0);
    for (let l = 0; l < 2; l++) {
      const ga = gatherContiguous(a, l, a.blockTable(ia), 6), gb = gatherContiguous(b, l, b.blockTable(ib), 6);
      expect(Array.from(gb.k.data)).toEqual(Array.from(ga.k.data));
      expect(Array.from(ga.k.data)).toEqual(Array.from(kv.k.select(0, l).contiguous().data));
    }
  });

  it('fork shares every block; the first write into the shared partial block copies it (copy-on-write)', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 16 });
    const { id } = cache.addSequence();
    const toks = [1, 2, 3, 4, 5, 6];
    appendToy(cache, id, toks, 0);
    const child = cache.fork(id);
    expect(Array.from(cache.blockTable(child))).toEqual(Array.from(cache.blockTable(id)));
    for (const b of cache.blockTable(id)) expect(cache.pool.refCount(b)).toBe(2);
    expect(cache.stats().sharingSavedBlocks).toBe(2);
    appendToy(cache, child, [...toks, 9], 6);
    const pt = cache.blockTable(id), ct = cache.blockTable(child);
    expect(ct[0]).toBe(pt[0]); // full block still shared
    expect(ct[1]).not.toBe(pt[1]); // partial block copied
    expect(cache.pool.refCount(pt[0]!)).toBe(2);
    expect(cache.pool.refCount(pt[1]!)).toBe(1);
    expect(cache.stats().copyOnWrites).toBe(1);
    // The parent's data is untouched and the child sees the parent's tokens plus its own.
    appendToy(cache, id, [...toks, 7], 6);
    const hp = hashesOf([...toks, 7]), hc = hashesOf([...toks, 9]);
    for (const [sid, h] of [[id, hp], [child, hc]] as const) {
      const want = kvInput(M, h);
      for (let l = 0; l < 2; l++) expect(Array.from(gatherContiguous(cache, l, cache.blockTable(sid), 7).k.data)).toEqual(Array.from(want.k.select(0, l).contiguous().data));
    }
    expect(cache.stats().copyOnWrites).toBe(1); // the parent now owns its partial block alone: no copy
    cache.checkInvariants();
  });

  it('truncate releases blocks past the new end and never rewrites a cached block in place', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 16 });
    const { id } = cache.addSequence();
    const toks = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    appendToy(cache, id, toks, 0);
    const before = cache.blockTable(id);
    cache.truncate(id, 6);
    expect(cache.length(id)).toBe(6);
    expect(cache.blockTable(id).length).toBe(2);
    expect(cache.pool.refCount(before[2]!)).toBe(0);
    // Block 1 (tokens 4..7) was full and registered; writing token 6 again must copy it.
    const registered = before[1]!;
    expect(cache.pool.hashOf(registered)).not.toBeNull();
    appendToy(cache, id, [1, 2, 3, 4, 5, 6, 99, 98], 6);
    expect(cache.blockTable(id)[1]).not.toBe(registered);
    expect(cache.stats().copyOnWrites).toBe(1);
    // A new request with the original prompt still hits the original block 1.
    const r = cache.addSequence({ tokenIds: toks });
    expect(r.cachedTokens).toBe(8);
    expect(cache.blockTable(r.id)[1]).toBe(registered);
    appendToy(cache, r.id, toks, 8);
    expect(Array.from(gatherContiguous(cache, 0, cache.blockTable(r.id), 10).k.data)).toEqual(Array.from(kvInput(M, hashesOf(toks)).k.select(0, 0).contiguous().data));
    cache.truncate(id, 0);
    expect(cache.blockTable(id).length).toBe(0);
    cache.checkInvariants();
  });

  it('batch() pads block tables for the paged kernels', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 2, numBlocks: 16 });
    const a = cache.addSequence().id, b = cache.addSequence().id;
    cache.append(a, [1, 2, 3, 4, 5]);
    cache.append(b, [1]);
    const t = cache.batch([a, b]);
    expect(t.maxBlocksPerSeq).toBe(3);
    expect(Array.from(t.seqLens)).toEqual([5, 1]);
    expect(Array.from(t.blockTables.subarray(0, 3))).toEqual(Array.from(cache.blockTable(a)));
    expect(Array.from(t.blockTables.subarray(3))).toEqual([cache.blockTable(b)[0], 0, 0]);
  });
});

describe('prefix caching', () => {
  it('never publishes blocks whose K/V were not written (append without kv, or commit before every layer)', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 32 });
    const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    // append without kv on a cache with storage: committed, but not hittable.
    const a = cache.addSequence({ tokenIds: prompt });
    cache.append(a.id, prompt);
    cache.free(a.id);
    expect(cache.addSequence({ tokenIds: prompt }).cachedTokens).toBe(0);
    // reserve → writeLayer(layer 0 only) → commit: the same.
    const b = cache.addSequence({ tokenIds: [11, 12, 13, 14, 15] });
    cache.reserve(b.id, [11, 12, 13, 14, 15]);
    const one = randn([5, M.numKvHeads, M.headDim], 1);
    cache.writeLayer(b.id, 0, one, one);
    cache.commit(b.id);
    expect(cache.addSequence({ tokenIds: [11, 12, 13, 14, 15] }).cachedTokens).toBe(0);
    // Written on every layer, the next block of the same sequence is published; a fork keeps the unwritten marks.
    const more = [16, 17, 18, 19];
    cache.reserve(b.id, more);
    const four = randn([4, M.numKvHeads, M.headDim], 2);
    cache.writeLayer(b.id, 0, four, four);
    cache.writeLayer(b.id, 1, four, four);
    cache.commit(b.id);
    // Block 1 held token 15, committed with layer 1 unwritten: still not published once full.
    expect(cache.addSequence({ tokenIds: [11, 12, 13, 14, 15, 16, 17, 18, 19, 0] }).cachedTokens).toBe(0);
    // Fully written sequences hit as before.
    const c = cache.addSequence({ tokenIds: [31, 32, 33, 34, 35] });
    appendToy(cache, c.id, [31, 32, 33, 34, 35], 0);
    expect(cache.addSequence({ tokenIds: [31, 32, 33, 34, 35] }).cachedTokens).toBe(4);
  });

  it('reuses full blocks only, and leaves at least the last prompt token to compute', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 32 });
    const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const a = cache.addSequence({ tokenIds: prompt });
    expect(a.cachedTokens).toBe(0);
    appendToy(cache, a.id, prompt, 0);
    const b = cache.addSequence({ tokenIds: prompt });
    expect(b.cachedTokens).toBe(8);
    expect(Array.from(cache.blockTable(b.id))).toEqual(Array.from(cache.blockTable(a.id)).slice(0, 2));
    const c = cache.addSequence({ tokenIds: prompt.slice(0, 8) });
    expect(c.cachedTokens).toBe(4); // an 8-token prompt would be fully cached: the last block is recomputed
    const d = cache.addSequence({ tokenIds: [1, 2, 3, 4, 5, 6, 0, 8, 9] });
    expect(d.cachedTokens).toBe(4);
    const st = cache.stats();
    expect(st.prefix.queriedBlocks).toBe(2 + 2 + 1 + 2);
    expect(st.prefix.hitBlocks).toBe(0 + 2 + 1 + 1);
    expect(st.prefix.hitRate).toBeCloseTo(4 / 7, 12);
  });

  it('the same pixels with another placeholder length (another resolution) share no block', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 32 });
    const P = IMAGE_PAD_TOKEN, h = 'img-B';
    const p1 = [...Array(8).fill(P), 5, 6, 7];
    const a = cache.addSequence({ tokenIds: p1, images: [{ hash: h, offset: 0, length: 8 }] });
    appendToy(cache, a.id, p1, 0);
    const p2 = [...Array(4).fill(P), 5, 6, 7];
    expect(cache.addSequence({ tokenIds: p2, images: [{ hash: h, offset: 0, length: 4 }] }).cachedTokens).toBe(0);
    expect(cache.addSequence({ tokenIds: p1, images: [{ hash: h, offset: 0, length: 8 }] }).cachedTokens).toBe(8);
  });

  it('hashes block i as H(parent, tokens, extra keys): images by (content hash, offset from block start, length), salt in block 0 only', () => {
    const bs = 4;
    const cache = new PagedKvCache({ ...M, blockSizeTokens: bs, numBlocks: 32, hashSeed: 'deploy-1' });
    const pad = 9;
    const tokens = [1, 2, pad, pad, pad, pad, pad, 3, 4, 5, 6, 7, 8];
    const image = { hash: 'img-A', offset: 2, length: 5 };
    const { id } = cache.addSequence({ tokenIds: tokens, images: [image], salt: 'tenant-1' });
    appendToy(cache, id, tokens, 0, 'tenant-1');
    const table = cache.blockTable(id);
    const h0 = blockHash(noneHash('deploy-1'), tokens, 0, 4, [{ kind: 'image', hash: 'img-A', offsetFromBlockStart: 2, length: 5 }, { kind: 'salt', salt: 'tenant-1' }]);
    const h1 = blockHash(h0, tokens, 4, 8, [{ kind: 'image', hash: 'img-A', offsetFromBlockStart: -2, length: 5 }]);
    const h2 = blockHash(h1, tokens, 8, 12, []);
    expect(cache.pool.hashOf(table[0]!)).toBe(h0);
    expect(cache.pool.hashOf(table[1]!)).toBe(h1);
    expect(cache.pool.hashOf(table[2]!)).toBe(h2);
    expect(cache.pool.hashOf(table[3]!)).toBeNull(); // partial block: not cached
    expect(noneHash('deploy-1')).not.toBe(noneHash(''));
    // Block 0's parent as docs/kvcache.md writes it, recomputed with node:crypto: SHA-256(u32 26 ‖ "vlm-attention/kv-prefix/v1" ‖ u32 n ‖ seed).
    const lp = (x: string) => { const b = Buffer.from(x, 'utf8'), n = Buffer.alloc(4); n.writeUInt32LE(b.length); return Buffer.concat([n, b]); };
    for (const seed of ['', 'deploy-1', 'é✓']) {
      expect(noneHash(seed)).toBe(createHash('sha256').update(Buffer.concat([lp('vlm-attention/kv-prefix/v1'), lp(seed)])).digest('hex'));
    }
  });

  it('never aliases different images behind the same placeholder tokens, nor one image at another offset', () => {
    const bs = 4, pad = 9;
    const cache = new PagedKvCache({ ...M, blockSizeTokens: bs, numBlocks: 64 });
    const tokens = [1, 2, 3, 4, pad, pad, pad, pad, pad, pad, pad, pad, 5, 6, 7];
    const withImage = (hash: string, offset = 4, length = 8) => cache.addSequence({ tokenIds: tokens, images: [{ hash, offset, length }] });
    const a = withImage('A');
    appendToy(cache, a.id, tokens, 0, undefined, (p) => (p >= 4 && p < 12 ? 0 : -1));
    expect(withImage('A').cachedTokens).toBe(12); // same image: image blocks and the block after hit
    expect(withImage('B').cachedTokens).toBe(4); // different image, same placeholders: only the text before it
    // Same image, two placeholders earlier/later inside identical placeholder blocks.
    expect(cache.addSequence({ tokenIds: tokens, images: [{ hash: 'A', offset: 5, length: 7 }] }).cachedTokens).toBe(4);
    // Two images back to back with a moved boundary: the same tokens, a different layout.
    const two = (split: number) => cache.addSequence({ tokenIds: tokens, images: [{ hash: 'A', offset: 4, length: split }, { hash: 'B', offset: 4 + split, length: 8 - split }] });
    const t1 = two(3);
    appendToy(cache, t1.id, tokens, t1.cachedTokens, undefined, (p) => (p >= 4 && p < 7 ? 0 : p >= 7 && p < 12 ? 1 : -1));
    expect(two(3).cachedTokens).toBe(12);
    expect(two(2).cachedTokens).toBe(4);
  });

  it('isolates tenants by salt', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 2, numBlocks: 32 });
    const prompt = [1, 2, 3, 4, 5];
    const a = cache.addSequence({ tokenIds: prompt, salt: 'A' });
    appendToy(cache, a.id, prompt, 0, 'A');
    expect(cache.addSequence({ tokenIds: prompt, salt: 'A' }).cachedTokens).toBe(4);
    expect(cache.addSequence({ tokenIds: prompt, salt: 'B' }).cachedTokens).toBe(0);
    expect(cache.addSequence({ tokenIds: prompt }).cachedTokens).toBe(0);
  });

  it('frees longest suffix first and evicts the least recently released cached block when no free block is left', () => {
    const bs = 2;
    const cache = new PagedKvCache({ ...M, blockSizeTokens: bs, numBlocks: 6 });
    const prompt = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const a = cache.addSequence({ tokenIds: prompt });
    appendToy(cache, a.id, prompt, 0);
    const table = Array.from(cache.blockTable(a.id));
    cache.free(a.id);
    // Full blocks 0..3 stay cached, released last block first; the partial block 4 is free.
    expect(cache.pool.cachedOrder()).toEqual([table[3], table[2], table[1], table[0]]);
    expect(cache.stats()).toMatchObject({ freeBlocks: 2, cachedBlocks: 4, usedBlocks: 0 });
    // Taking 3 blocks: the 2 free ones, then the LRU cached one (the suffix block 3).
    const filler = cache.addSequence().id;
    cache.append(filler, [50, 51, 52, 53, 54, 55]);
    expect(cache.stats().evictions).toBe(1);
    expect(Array.from(cache.blockTable(filler))).toContain(table[3]);
    const again = cache.addSequence({ tokenIds: prompt });
    expect(again.cachedTokens).toBe(6); // blocks 0..2 still hit
    expect(cache.evictCached()).toBe(0); // all referenced now
    cache.free(again.id);
    expect(cache.evictCached(2)).toBe(2);
    expect(cache.stats().cachedBlocks).toBe(1);
    cache.checkInvariants();
  });

  it('can be turned off', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 2, numBlocks: 16, prefixCaching: false });
    const a = cache.addSequence({ tokenIds: [1, 2, 3, 4, 5] });
    cache.append(a.id, [1, 2, 3, 4, 5]);
    cache.free(a.id);
    expect(cache.stats().cachedBlocks).toBe(0);
    expect(cache.addSequence({ tokenIds: [1, 2, 3, 4, 5] }).cachedTokens).toBe(0);
  });
});

describe('errors', () => {
  it('out of blocks: OutOfBlocksError says what is held and by whom, and nothing changes', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 5 });
    const a = cache.addSequence().id, b = cache.addSequence().id;
    appendToy(cache, a, [1, 2, 3, 4, 5, 6, 7, 8, 9], 0);
    appendToy(cache, b, [1, 2, 3], 0);
    const before = snapshot(cache);
    let err: OutOfBlocksError | undefined;
    try {
      appendToy(cache, b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 3);
    } catch (e) {
      err = e as OutOfBlocksError;
    }
    expect(err).toBeInstanceOf(OutOfBlocksError);
    expect(err!.requested).toBe(2);
    expect(err!.free).toBe(1);
    expect([...err!.heldBy]).toEqual([[a, 3], [b, 1]]);
    expect(err!.message).toMatch(new RegExp(`sequence ${b}.*needs 2 block.*1 free \\+ 0 cached of 5.*seq ${a}: 3`));
    expect(snapshot(cache)).toBe(before);
    // Copy-on-write counts too: a fork's first write needs a block for the copy.
    const c = cache.fork(b);
    const d = cache.addSequence().id;
    cache.append(d, [1]); // takes the last free block
    const before2 = snapshot(cache);
    expect(() => appendToy(cache, c, [1, 2, 3, 4], 3)).toThrow(/needs 1 block/);
    expect(snapshot(cache)).toBe(before2);
    cache.checkInvariants();
  });

  it('unknown sequence, double free, fork or append of a freed sequence: StateError, state unchanged', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 8 });
    const { id } = cache.addSequence();
    cache.append(id, [1, 2, 3]);
    cache.free(id);
    const before = snapshot(cache);
    expect(() => cache.free(id)).toThrow(StateError);
    expect(() => cache.free(id)).toThrow(/already freed/);
    expect(() => cache.fork(id)).toThrow(StateError);
    expect(() => cache.append(id, [1])).toThrow(StateError);
    expect(() => cache.truncate(id, 0)).toThrow(StateError);
    expect(() => cache.free(12345)).toThrow(/unknown sequence 12345/);
    expect(() => cache.length(-1)).toThrow(StateError);
    expect(snapshot(cache)).toBe(before);
  });

  it('pending tokens: reserve twice or fork before commit is a StateError', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 8 });
    const { id } = cache.addSequence();
    cache.reserve(id, [1, 2]);
    expect(() => cache.reserve(id, [3])).toThrow(/not committed/);
    expect(() => cache.fork(id)).toThrow(StateError);
    cache.truncate(id, 1); // rolling back pending tokens is allowed
    expect(cache.pending(id)).toBe(1);
    cache.commit(id);
    expect(cache.length(id)).toBe(1);
  });

  it('bad input gets typed errors naming the argument and dimension, and changes nothing', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 8 });
    const { id } = cache.addSequence();
    cache.append(id, [1, 2]);
    const before = snapshot(cache);
    // Ids and counts of the wrong type say so (not "unknown sequence 1 … live sequences: 1").
    expect(() => cache.length(String(id) as never)).toThrow(expect.objectContaining({ name: 'ValueError', message: expect.stringMatching(/"1" \(string\)/) }));
    expect(() => cache.truncate(id, '2' as never)).toThrow(/got "2"/);
    expect(() => cache.evictCached('1' as never)).toThrow(/got "1"/);
    expect(() => cache.slotMapping(id, 0, '2' as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'end' }));
    // Sizes: rotation seeds past 32 bits, pools past 2^24 blocks.
    expect(() => new PagedKvCache({ ...M, dtype: 'int8', rotation: { seed: 2 ** 32 }, numBlocks: 4 })).toThrow(expect.objectContaining({ argument: 'rotation.seed' }));
    expect(() => new PagedKvCache({ ...M, numBlocks: 2 ** 31, allocateStorage: false })).toThrow(expect.objectContaining({ argument: 'numBlocks' }));
    expect(() => planKvCache({ ...M, capacityBytes: 1e300 })).toThrow(expect.objectContaining({ argument: 'capacityBytes' }));
    const kv = kvInput(M, [1, 2, 3]);
    expect(() => cache.append(id, [1, 2], kv)).toThrow(expect.objectContaining({ name: 'ShapeError', argument: 'k', dimension: 'numTokens' }));
    expect(() => cache.append(id, [1, 2, 3], { k: randn([2, 3, 1, 3]), v: kv.v })).toThrow(expect.objectContaining({ dimension: 'numKvHeads' }));
    expect(() => cache.append(id, [1, 2, 3], { k: kv.k, v: randn([2, 3, 2, 4]) })).toThrow(expect.objectContaining({ argument: 'v', dimension: 'headDim' }));
    expect(() => cache.append(id, [1, 2, 3], { k: randn([3, 2, 3]), v: kv.v })).toThrow(ShapeError);
    expect(() => cache.append(id, [1, 2.5])).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'tokenIds' }));
    expect(() => cache.append(id, [1], undefined, { images: [{ hash: 'x', offset: 0, length: 1 }] })).toThrow(/cannot be added to tokens already/);
    expect(() => cache.addSequence({ images: [{ hash: '', offset: 0, length: 1 }] })).toThrow(ValueError);
    expect(() => cache.truncate(id, 5)).toThrow(expect.objectContaining({ argument: 'length' }));
    expect(() => cache.writeLayer(id, 2, randn([0, 2, 3]), randn([0, 2, 3]))).toThrow(/layer/);
    expect(snapshot(cache).replace(/"id":\d+/g, '')).toBe(before.replace(/"id":\d+/g, '')); // (the rejected addSequence consumed no id either way)
  });

  it('int8: a non-finite value is rejected before anything is written', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 8, dtype: 'int8' });
    const { id } = cache.addSequence();
    const k = Tensor.fromValues([...new Array(2 * 2 * 2 * 3 - 1).fill(1), NaN], [2, 2, 2, 3]);
    const before = snapshot(cache);
    expect(() => cache.append(id, [1, 2], { k, v: k })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'k' }));
    expect(snapshot(cache)).toBe(before);
  });

  it('append on a disposed cache fails before reserving anything (all-or-nothing)', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 8 });
    const { id } = cache.addSequence();
    cache.append(id, [1, 2, 3, 4], kvInput(M, [1, 2, 3, 4]));
    cache.dispose();
    const before = snapshot(cache);
    expect(() => cache.append(id, [5, 6, 7, 8, 9], kvInput(M, [5, 6, 7, 8, 9]))).toThrow(StateError);
    expect(snapshot(cache)).toBe(before);
    expect(cache.length(id)).toBe(4);
    expect(cache.pending(id)).toBe(0);
  });

  it('misspelt option names are refused with the nearest one (constructor and addSequence)', () => {
    expect(() => new PagedKvCache({ ...M, numBlocks: 8, blockSize: 32 } as never)).toThrow(/did you mean 'blockSizeTokens'/);
    expect(() => new PagedKvCache({ ...M, numBlocks: 8, prefixCache: false } as never)).toThrow(/did you mean 'prefixCaching'/);
    expect(() => planKvCache({ ...M, numBlocks: 8, dtpye: 'f16' } as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'dtpye' }));
    const cache = new PagedKvCache({ ...M, numBlocks: 8 });
    expect(() => cache.addSequence({ tokenIDs: [1, 2] } as never)).toThrow(/did you mean 'tokenIds'/);
  });

  it('int8: after a truncate, new tokens in the partial block are not rounded to the dropped tokens\' scale', () => {
    const D = 16;
    const mk = () => new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: D, blockSizeTokens: 16, numBlocks: 4, dtype: 'int8' });
    const kv = (n: number, s: number, seed: number) => ({ k: randn([1, n, 1, D], seed), v: Tensor.fromValues(Array.from(randn([1, n, 1, D], seed + 1).toFloat32(), (x) => x * s), [1, n, 1, D]) });
    const good = kv(8, 1, 10);
    const errs: number[] = [];
    for (const rollback of [false, true, 'shared'] as const) {
      const c = mk(), { id } = c.addSequence();
      c.append(id, [1], kv(1, 1, 1));
      if (rollback) {
        c.append(id, [2, 3], kv(2, 100, 3)); // a rejected draft, 100× larger
        if (rollback === 'shared') c.fork(id); // the partial block is shared: the next write copies it first
        c.truncate(id, 1);
      }
      c.append(id, new Array(8).fill(4), good);
      const got = gatherContiguous(c, 0, c.blockTable(id), 9);
      for (const [x, ref] of [[got.k, good.k], [got.v, good.v]] as const) {
        const a = x.toFloat32().subarray(D), r = ref.toFloat32();
        let e = 0, n = 0;
        r.forEach((y, i) => { e += (a[i]! - y) ** 2; n += y * y; });
        errs.push(Math.sqrt(e / n));
      }
    }
    // [k, v] without and with the rollback: V's error was 50× larger after it (the draft's scale kept).
    expect(errs[2]!).toBeLessThan(2 * errs[0]! + 1e-3);
    expect(errs[3]!).toBeLessThan(2 * errs[1]! + 1e-3);
    expect(errs[3]!).toBeLessThan(1.5e-2);
    expect(errs[5]!).toBeLessThan(2 * errs[1]! + 1e-3); // the copy-on-write copy is re-scaled too
  });

  it('int8: a rejected draft leaves the kept tokens of its block as precise as without it (within a block and across one)', () => {
    const D = 32;
    const kv = (n: number, s: number, seed: number) => {
      const f = (sd: number) => Tensor.fromValues(Array.from(randn([1, n, 1, D], sd).toFloat32(), (x) => x * s), [1, n, 1, D]);
      return { k: f(seed), v: f(seed + 1) };
    };
    const relErr = (got: Tensor, ref: Tensor, from: number, to: number) => {
      const a = got.toFloat32(), r = ref.toFloat32();
      let e = 0, n = 0;
      for (let i = from * D; i < to * D; i++) { e += (a[i]! - r[i]!) ** 2; n += r[i]! ** 2; }
      return Math.sqrt(e / n);
    };
    for (const rotate of [false, true]) {
      for (const draftLen of [4, 12]) { // 8 kept + 4 stays in the block; + 12 fills it and spills into the next
        const errs: number[] = [];
        for (const rollback of [false, true]) {
          const c = new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: D, blockSizeTokens: 16, numBlocks: 8, dtype: 'int8', rotation: rotate });
          const { id } = c.addSequence();
          const kept = kv(8, 1, 1);
          c.append(id, Array.from({ length: 8 }, (_, i) => i), kept);
          if (rollback) {
            c.append(id, new Array(draftLen).fill(9), kv(draftLen, 100, 5)); // a rejected draft, 100× larger
            c.truncate(id, 8);
          }
          c.append(id, [20], kv(1, 1, 9));
          const got = gatherContiguous(c, 0, c.blockTable(id), 9);
          errs.push(relErr(got.k, kept.k, 0, 8), relErr(got.v, kept.v, 0, 8));
        }
        // The kept tokens' K and V errors with the rollback, against without it: 60–90× before (requantised codes).
        expect(errs[2]!, `K rotate ${rotate} draft ${draftLen}`).toBeLessThan(1.5 * errs[0]! + 1e-4);
        expect(errs[3]!, `V rotate ${rotate} draft ${draftLen}`).toBeLessThan(1.5 * errs[1]! + 1e-4);
      }
    }
  });

  it('int8: a sequence\'s last two blocks stay staged; others are settled, and staged values go with their blocks', () => {
    const D = 8;
    const c = new PagedKvCache({ numLayers: 2, numKvHeads: 1, headDim: D, blockSizeTokens: 4, numBlocks: 16, dtype: 'int8' });
    const kv = (n: number, seed: number) => ({ k: randn([2, n, 1, D], seed), v: randn([2, n, 1, D], seed + 1) });
    const per = 2 * 2; // layers × (K, V)
    const { id } = c.addSequence();
    c.append(id, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], kv(12, 1)); // three blocks: the last two staged
    expect(c.storage!.stagedBlocks).toBe(2 * per);
    c.append(id, [13], kv(1, 3)); // a fourth block: the first two of the last three settle
    expect(c.storage!.stagedBlocks).toBe(2 * per);
    const child = c.fork(id);
    c.append(child, [14], kv(1, 5)); // copy-on-write copies the staged values with the block
    expect(c.storage!.stagedBlocks).toBe(3 * per);
    c.free(child);
    expect(c.storage!.stagedBlocks).toBe(2 * per);
    c.truncate(id, 8); // the two staged blocks go; the new last two had settled already
    expect(c.storage!.stagedBlocks).toBe(0);
    c.free(id);
    expect(c.storage!.stagedBlocks).toBe(0);
    // Copy-on-write of a prefix-cached block releases the old block's staged values (they leaked before).
    const c2 = new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: D, blockSizeTokens: 4, numBlocks: 8, dtype: 'int8' });
    const kv1 = (n: number, seed: number) => ({ k: randn([1, n, 1, D], seed), v: randn([1, n, 1, D], seed + 1) });
    const s2 = c2.addSequence().id;
    c2.append(s2, [1, 2], kv1(2, 1)); c2.append(s2, [3, 4], kv1(2, 3)); c2.truncate(s2, 3); c2.append(s2, [5], kv1(1, 5));
    c2.free(s2); c2.evictCached();
    expect(c2.storage!.stagedBlocks).toBe(0);
    expect(c.storage!.stagedBlocks).toBe(0);
    // A long-lived sequence whose blocks others share for a while (forks, prefix hits): staged values stay bounded.
    for (const via of ['fork', 'prefix'] as const) {
      const c3 = new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: D, blockSizeTokens: 4, numBlocks: 64, dtype: 'int8' });
      const a = c3.addSequence().id;
      const toks: number[] = [1, 2];
      c3.append(a, toks, kv1(2, 1));
      for (let r = 0; r < 10; r++) {
        const b = via === 'fork' ? c3.fork(a) : c3.addSequence({ tokenIds: toks }).id;
        const more = Array.from({ length: 8 }, (_, i) => 100 * r + i + 10);
        c3.append(a, more, kv1(8, 10 + r));
        toks.push(...more);
        c3.free(b);
        expect(c3.storage!.stagedBlocks, `${via} round ${r}`).toBeLessThanOrEqual(3 * 2);
      }
      c3.free(a);
      c3.evictCached();
      expect(c3.storage!.stagedBlocks).toBe(0);
    }
  });

  it('int8: rejected drafts stay harmless across forks, block boundaries, one-token appends and smoothing calibration', () => {
    const D = 16, bs = 16;
    const mk = (extra: object = {}) => new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: D, blockSizeTokens: bs, numBlocks: 16, dtype: 'int8', ...extra });
    const kv = (n: number, s: number, seed: number) => {
      const f = (sd: number) => Tensor.fromValues(Array.from(randn([1, n, 2, D], sd).toFloat32(), (x) => x * s), [1, n, 2, D]);
      return { k: f(seed), v: f(seed + 1) };
    };
    const relErr = (c: PagedKvCache, id: number, ref: { k: Tensor; v: Tensor }, from: number, to: number) => {
      const got = gatherContiguous(c, 0, c.blockTable(id), c.length(id), { unrotate: true });
      const e = (g: Tensor, r: Tensor) => {
        const a = g.toFloat32(), x = r.toFloat32();
        let num = 0, den = 0;
        for (let i = from * 2 * D; i < to * 2 * D; i++) { num += (a[i]! - x[i - from * 2 * D]!) ** 2; den += x[i - from * 2 * D]! ** 2; }
        return Math.sqrt(num / den);
      };
      return Math.max(e(got.k, ref.k), e(got.v, ref.v));
    };
    const LIMIT = 1.5e-2; // plain int8 is about 6e-3 here; a kept draft scale gave 0.3–0.6
    // A verify append starting at a block boundary: 5 accepted + 15 rejected 100× tokens in one append.
    {
      const c = mk(), { id } = c.addSequence();
      c.append(id, Array.from({ length: 16 }, (_, i) => i), kv(16, 1, 1));
      const acc = kv(5, 1, 3), rej = kv(15, 100, 5);
      c.append(id, new Array(20).fill(7), { k: Tensor.fromValues([...acc.k.toFloat32(), ...rej.k.toFloat32()], [1, 20, 2, D]), v: Tensor.fromValues([...acc.v.toFloat32(), ...rej.v.toFloat32()], [1, 20, 2, D]) });
      c.truncate(id, 21);
      c.append(id, [8], kv(1, 1, 9));
      expect(relErr(c, id, acc as never, 16, 21), 'verify at a block boundary').toBeLessThan(LIMIT);
    }
    // A draft model's own cache: 100× draft tokens one at a time, crossing a block boundary, then rolled back.
    {
      const c = mk(), { id } = c.addSequence();
      const kept = kv(10, 1, 11);
      c.append(id, Array.from({ length: 10 }, (_, i) => i), kept);
      for (let i = 0; i < 9; i++) c.append(id, [99], kv(1, 100, 20 + 2 * i));
      c.truncate(id, 10);
      c.append(id, [5], kv(1, 1, 13));
      expect(relErr(c, id, kept as never, 0, 10), 'one-token draft across a boundary').toBeLessThan(LIMIT);
    }
    // The next turn appended as one chunk spanning several blocks after a rollback inside the last block: the
    // write re-scales the rolled-back block from its staged values (it was unstaged before the write).
    {
      const c = mk(), { id } = c.addSequence();
      const kept = kv(20, 1, 51);
      c.append(id, Array.from({ length: 20 }, (_, i) => i), kept);
      c.append(id, new Array(5).fill(99), kv(5, 100, 53));
      c.truncate(id, 20);
      c.append(id, new Array(40).fill(3), kv(40, 1, 55));
      expect(relErr(c, id, kept as never, 0, 20), 'a long chunk after a rollback').toBeLessThan(LIMIT);
    }
    // A draft spanning three blocks from a partly filled one, rolled back into that block.
    {
      const c = new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: D, blockSizeTokens: 4, numBlocks: 16, dtype: 'int8' });
      const { id } = c.addSequence();
      const kept = kv(10, 1, 61);
      c.append(id, Array.from({ length: 10 }, (_, i) => i), kept);
      c.append(id, new Array(8).fill(99), kv(8, 100, 63));
      c.truncate(id, 10);
      c.append(id, [7], kv(1, 1, 65));
      expect(relErr(c, id, kept as never, 0, 10), 'a draft over three blocks').toBeLessThan(LIMIT);
    }
    // A fork: one branch keeps the draft, the other rolls it back; the first branch's append must not unstage the
    // block the second one needs.
    {
      const c = mk(), x = c.addSequence().id;
      const base = kv(20, 1, 31);
      c.append(x, Array.from({ length: 20 }, (_, i) => i), base);
      c.append(x, new Array(15).fill(9), kv(15, 100, 33));
      const y = c.fork(x);
      c.truncate(y, 20);
      c.append(x, [1], kv(1, 100, 35));
      c.append(y, new Array(11).fill(2), kv(11, 1, 37));
      const tail = { k: Tensor.fromValues(base.k.toFloat32().subarray(16 * 2 * D), [1, 4, 2, D]), v: Tensor.fromValues(base.v.toFloat32().subarray(16 * 2 * D), [1, 4, 2, D]) };
      expect(relErr(c, y, tail as never, 16, 20), 'fork, then rollback on one side').toBeLessThan(LIMIT);
    }
    // smoothK (calibrated on the first 16 tokens): another sequence's write calibrates the smoothing and replays every logged write, the draft
    // included: the replayed truncation keeps the rolled-back sequence's re-scale.
    {
      const c = mk({ rotation: true, smoothK: true }), a = c.addSequence().id;
      const kept = kv(5, 1, 41);
      c.append(a, [1, 2, 3, 4, 5], kept);
      c.append(a, [6, 7, 8, 9], kv(4, 100, 43));
      c.truncate(a, 5);
      c.append(a, [10], kv(1, 1, 45));
      const b = c.addSequence().id;
      c.append(b, Array.from({ length: 16 }, (_, i) => 100 + i), kv(16, 1, 47)); // reaches calibration
      expect(relErr(c, a, kept as never, 0, 5), 'smoothing calibrated after a rollback').toBeLessThan(LIMIT);
      c.free(a); c.free(b); c.evictCached();
      expect(c.storage!.stagedBlocks, 'calibration re-stages nothing freed').toBe(0);
    }
  });

  it('metadata-only caches refuse K/V writes', () => {
    const cache = new PagedKvCache({ ...M, numBlocks: 4, allocateStorage: false });
    const { id } = cache.addSequence();
    expect(() => cache.append(id, [1], kvInput(M, [1]))).toThrow(UnsupportedError);
    cache.append(id, [1]);
    expect(cache.length(id)).toBe(1);
  });
});

describe('stats', () => {
  it('reports utilisation, fragmentation and sharing exactly', () => {
    const cache = new PagedKvCache({ ...M, blockSizeTokens: 4, numBlocks: 10 });
    const a = cache.addSequence().id;
    cache.append(a, [1, 2, 3, 4, 5, 6]); // 2 blocks, 6 of 8 slots
    const b = cache.fork(a);
    cache.append(b, [7]); // copy-on-write: 3 blocks used
    const st = cache.stats();
    expect(st).toMatchObject({
      totalBlocks: 10, usedBlocks: 3, freeBlocks: 7, cachedBlocks: 0, liveSequences: 2, liveTokens: 13,
      slotsAllocated: 12, slotsFilled: 4 + 2 + 3, logicalBlocks: 4, sharedBlocks: 1, sharingSavedBlocks: 1, copyOnWrites: 1,
    });
    expect(st.utilisation).toBeCloseTo(0.3, 12);
    expect(st.fragmentation).toBeCloseTo(3 / 12, 12);
    expect(st.sharingSavedBytes).toBe(cache.plan.bytesPerBlock);
    expect(st.usedBytes).toBe(3 * cache.plan.bytesPerBlock);
  });
});
