import { describe, expect, it } from 'vitest';
import {
  DTypeError, FormatError, type FeatureStore, MemoryFeatureStore, Tensor, ValueError, VisionFeatureCache, decodeTensor, encodeTensor, featureKey,
  imageContentHash, randn,
} from '../../../src/index.js';

function image(seed: number, w = 8, h = 6): Uint8Array {
  const px = new Uint8Array(w * h * 4);
  for (let i = 0; i < px.length; i++) px[i] = (i * 31 + seed * 97) & 255;
  return px;
}

describe('feature keys', () => {
  const base = { pixels: image(1), width: 8, height: 6, encoderId: 'siglip-so400m@1', preprocessing: { resize: 384, mean: [0.5, 0.5, 0.5] } };
  it('depend on pixels, size, encoder and preprocessing — not on key order', () => {
    const k = featureKey(base);
    expect(k).toMatch(/^[0-9a-f]{64}$/);
    const px = image(1); px[17]! ^= 1;
    expect(featureKey({ ...base, pixels: px })).not.toBe(k);
    expect(featureKey({ ...base, width: 6, height: 8 })).not.toBe(k);
    expect(featureKey({ ...base, encoderId: 'siglip-so400m@2' })).not.toBe(k);
    expect(featureKey({ ...base, preprocessing: { resize: 336, mean: [0.5, 0.5, 0.5] } })).not.toBe(k);
    expect(featureKey({ ...base, preprocessing: { mean: [0.5, 0.5, 0.5], resize: 384 } })).toBe(k);
    expect(featureKey({ ...base, pixels: image(1) })).toBe(k); // same content, another buffer
  });
  it('refuse sparse arrays in preprocessing (a hole is not JSON)', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => featureKey({ ...base, preprocessing: { mean: [1, , 3] } })).toThrow(/preprocessing\.mean\[1\] is a hole/);
    expect(featureKey({ ...base, preprocessing: { mean: [1, 2, 3] } })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a pixel count that does not fit width × height names pixels when channels was not given', () => {
    expect(() => imageContentHash(new Uint8Array(12), 5, 1)).toThrow(expect.objectContaining({ argument: 'pixels', message: expect.stringMatching(/not a positive multiple of width·height/) }));
    expect(() => imageContentHash(new Uint8Array(12), 2, 2, 0)).toThrow(expect.objectContaining({ argument: 'channels' }));
  });

  it('reject bad input with typed errors', () => {
    expect(() => featureKey({ ...base, encoderId: '' })).toThrow(expect.objectContaining({ argument: 'encoderId' }));
    expect(() => featureKey({ ...base, width: 7, channels: 4 })).toThrow(expect.objectContaining({ argument: 'pixels' }));
    expect(() => featureKey({ ...base, width: 7 })).toThrow(expect.objectContaining({ argument: 'pixels' }));
    expect(() => featureKey({ ...base, preprocessing: { f: NaN } })).toThrow(ValueError);
    expect(() => featureKey({ ...base, preprocessing: new Map() })).toThrow(/plain JSON/);
    expect(() => imageContentHash(image(1), 0, 6)).toThrow(expect.objectContaining({ argument: 'width' }));
    // A plain array has no bytes to hash (every one of a size once hashed alike); null is named too.
    expect(() => imageContentHash([1, 2, 3, 4] as never, 1, 1)).toThrow(DTypeError);
    expect(() => imageContentHash(null as never, 1, 1)).toThrow(expect.objectContaining({ argument: 'pixels' }));
    expect(() => featureKey({ ...base, pixels: Array.from(image(1)) as never })).toThrow(expect.objectContaining({ argument: 'pixels' }));
  });
  it('hash the same bytes alike in any 8-bit container (Buffer, a canvas\'s Uint8ClampedArray, a subclass)', () => {
    const px = image(3), h = imageContentHash(px, 8, 6);
    class Pixels extends Uint8Array {}
    for (const other of [Buffer.from(px), new Uint8ClampedArray(px), Pixels.from(px), new Uint8Array(px)]) expect(imageContentHash(other, 8, 6)).toBe(h);
    // Other element types are other content.
    expect(imageContentHash(new Uint16Array(px.buffer.slice(0)), 8, 6, 2)).not.toBe(h);
  });
});

describe('tensor wire format', () => {
  it.each(['f32', 'f16', 'bf16'] as const)('round-trips %s tensors exactly (views included)', (dtype) => {
    const t = randn([3, 5, 7], 4, dtype);
    const back = decodeTensor(encodeTensor(t));
    expect(back.dtype).toBe(dtype);
    expect(back.shape).toEqual([3, 5, 7]);
    expect(Array.from(back.data)).toEqual(Array.from(t.data));
    const view = t.slice(1, 1, 4);
    expect(Array.from(decodeTensor(encodeTensor(view)).data)).toEqual(Array.from(view.contiguous().data));
  });
  it('rejects corrupt entries with FormatError', () => {
    const bytes = encodeTensor(randn([4]));
    expect(() => decodeTensor(bytes.subarray(0, bytes.length - 1))).toThrow(FormatError);
    const bad = bytes.slice(); bad[0] = 0;
    expect(() => decodeTensor(bad)).toThrow(/magic/);
  });
});

describe('MemoryFeatureStore', () => {
  it('is an LRU bounded in bytes', () => {
    const s = new MemoryFeatureStore(100);
    const t = (n: number) => Tensor.zeros([n]); // 4 bytes per element
    s.setSync('a', t(10)); s.setSync('b', t(10)); s.setSync('c', t(5));
    expect(s.bytes).toBe(100);
    s.getSync('a'); // a is now most recent
    s.setSync('d', t(5)); // evicts b (LRU), not a
    expect(s.keys()).toEqual(['c', 'a', 'd']);
    expect(s.bytes).toBe(80);
    expect(s.evictions).toBe(1);
    expect(s.setSync('huge', t(26))).toBe(false);
    expect(s.has('huge')).toBe(false);
    s.setSync('a', t(1)); // replace updates the byte count
    expect(s.bytes).toBe(44);
  });
});

/** A store whose availability the test controls. */
class FlakyStore implements FeatureStore {
  readonly name = 'flaky';
  readonly inner = new MemoryFeatureStore(1e9);
  down = false;
  calls = 0;
  private check() { this.calls++; if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6390'); }
  async get(k: string) { this.check(); return this.inner.get(k); }
  async set(k: string, v: Tensor) { this.check(); return this.inner.set(k, v); }
  async delete(k: string) { this.check(); return this.inner.delete(k); }
}

describe('VisionFeatureCache', () => {
  it('computes once per key, then serves memory hits; concurrent misses share one computation', async () => {
    const cache = new VisionFeatureCache({ maxBytes: 1 << 20 });
    let computes = 0;
    const compute = async () => { computes++; await new Promise((r) => setTimeout(r, 5)); return randn([4, 8], 1); };
    const key = { pixels: image(2), width: 8, height: 6, encoderId: 'enc' };
    const [a, b, c] = await Promise.all([cache.getOrCompute(key, compute), cache.getOrCompute(key, compute), cache.getOrCompute(featureKey(key), compute)]);
    expect(computes).toBe(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(await cache.getOrCompute(key, compute)).toBe(a);
    expect(cache.stats()).toMatchObject({ computes: 1, coalesced: 2, memoryHits: 1, entries: 1, bytes: 4 * 8 * 4 });
    await expect(cache.getOrCompute('other', async () => { throw new Error('encoder failed'); })).rejects.toThrow('encoder failed');
    await expect(cache.getOrCompute('bad', () => 42 as unknown as Tensor)).rejects.toThrow(ValueError);
  });

  it('delete() during a computation: its callers get the value, but it is not cached and the next call recomputes', async () => {
    const shared = new FlakyStore();
    const cache = new VisionFeatureCache({ store: shared });
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const old = randn([2, 2], 1), fresh = randn([2, 2], 2);
    const pending = cache.getOrCompute('img', async () => { await gate; return old; });
    await new Promise((r) => setTimeout(r, 1));
    await cache.delete('img');
    // A call after the delete does not join the stale computation.
    let computes = 0;
    const after = cache.getOrCompute('img', async () => { computes++; return fresh; });
    release();
    expect(await pending).toBe(old);
    expect(await after).toBe(fresh);
    expect(computes).toBe(1);
    expect(await cache.getOrCompute('img', () => randn([2, 2], 3))).toBe(fresh);
    expect(Array.from((await shared.get('img'))!.data)).toEqual(Array.from(fresh.data));
    // Deleted with nothing after it: neither level keeps the old value.
    let release2!: () => void;
    const gate2 = new Promise<void>((r) => { release2 = r; });
    const p2 = cache.getOrCompute('img2', async () => { await gate2; return old; });
    await new Promise((r) => setTimeout(r, 1));
    await cache.delete('img2');
    release2();
    await p2;
    expect(await shared.get('img2')).toBeUndefined();
    let recomputed = false;
    await cache.getOrCompute('img2', () => { recomputed = true; return fresh; });
    expect(recomputed).toBe(true);
  });

  it('delete() while a store read is on its way: the read value is not cached, in memory or anywhere', async () => {
    // A store whose reads wait for a gate: the entry was written earlier (by another process, say).
    class SlowStore extends FlakyStore { gate: Promise<void> | null = null; override async get(k: string) { const v = await super.get(k); await this.gate; return v; } }
    const store = new SlowStore();
    await store.set('k1', Tensor.fromValues([1, 2, 3], [3]));
    const cache = new VisionFeatureCache({ store });
    for (const read of [(c: VisionFeatureCache) => c.getOrCompute('k1', () => Tensor.fromValues([7, 7, 7], [3])), (c: VisionFeatureCache) => c.get('k1')]) {
      let open!: () => void;
      store.gate = new Promise<void>((r) => { open = r; });
      const p = read(cache);
      await new Promise((r) => setTimeout(r, 1));
      await cache.delete('k1');
      open();
      expect(Array.from((await p)!.toFloat32())).toEqual([1, 2, 3]); // the read's caller gets what it read
      expect(cache.memory.has('k1')).toBe(false);
      store.gate = null;
      expect(Array.from((await cache.getOrCompute('k1', () => Tensor.fromValues([7, 7, 7], [3]))).toFloat32())).toEqual([7, 7, 7]);
      await cache.delete('k1');
      await store.set('k1', Tensor.fromValues([1, 2, 3], [3]));
    }
  });

  it('a store that refuses writes but serves reads (Redis at maxmemory, noeviction) warns once, not per request', async () => {
    class FullStore extends FlakyStore { override async set(): Promise<void> { throw new Error("OOM command not allowed when used memory > 'maxmemory'"); } }
    const warnings: string[] = [];
    const cache = new VisionFeatureCache({ store: new FullStore(), onWarning: (m) => warnings.push(m) });
    for (let i = 0; i < 20; i++) await cache.getOrCompute(`k${i}`, () => randn([2], i));
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/set failed .*OOM/);
    expect(cache.stats()).toMatchObject({ computes: 20, storeErrors: 20 });
  });

  it('fills and reads the shared store: a second cache (another process) gets a store hit without computing', async () => {
    const shared = new FlakyStore();
    const p1 = new VisionFeatureCache({ store: shared }), p2 = new VisionFeatureCache({ store: shared });
    const t = await p1.getOrCompute('k1', () => randn([3, 3], 7));
    let computed = false;
    const u = await p2.getOrCompute('k1', () => { computed = true; return randn([3, 3], 8); });
    expect(computed).toBe(false);
    expect(Array.from(u.data)).toEqual(Array.from(t.data));
    expect(p2.stats()).toMatchObject({ storeHits: 1, computes: 0 });
  });

  it('store down: warns once, computes, never throws, keeps in-memory entries; recovers when it is back', async () => {
    const store = new FlakyStore();
    const warnings: string[] = [];
    const cache = new VisionFeatureCache({ store, onWarning: (m) => warnings.push(m) });
    const kept = await cache.getOrCompute('kept', () => randn([2], 1));
    store.down = true;
    expect(await cache.getOrCompute('kept', () => randn([2], 99))).toBe(kept); // memory hit, store not even asked
    const a = await cache.getOrCompute('a', () => randn([2], 2));
    const b = await cache.getOrCompute('b', () => randn([2], 3));
    expect(a.shape).toEqual([2]);
    expect(b.shape).toEqual([2]);
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/feature store 'flaky' get failed .*ECONNREFUSED.*computing locally/);
    expect(cache.stats()).toMatchObject({ computes: 3, storeErrors: 4, entries: 3 });
    await cache.delete('a'); // best-effort too
    expect(cache.memory.has('a')).toBe(false);
    store.down = false;
    await cache.getOrCompute('c', () => randn([2], 4));
    expect(await store.inner.get('c')).toBeDefined();
    store.down = true;
    await cache.getOrCompute('d', () => randn([2], 5));
    expect(warnings.length).toBe(2); // a new outage warns again
  });
});
