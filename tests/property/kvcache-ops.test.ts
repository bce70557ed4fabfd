/**
 * 100,000 random operations on paged KV caches (append, layer-wise append, decode, fork, free,
 * truncate, evict, prefix hits with images and tenant salts, deliberate out-of-blocks and state
 * errors), driven by fast-check with a fixed seed. After every operation: exact accounting
 * (free + used + cached = total), reference counts equal table entries (no leak, no double free),
 * and the touched sequences' K/V bit-identical to a contiguous shadow copy; every 50 operations,
 * all live sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OutOfBlocksError, StateError, type ImageSpan, PagedKvCache, Tensor, gatherContiguous } from '../../src/index.js';
import { type ToyModel, kvInput, kvValues, saltSeed, stepHash } from '../unit/kvcache/kv-model.js';

const PLACEHOLDER = 9;
const OPS_PER_RUN = 5000;
const RUNS = 20;

interface Op { kind: number; a: number; b: number; c: number }

interface Prompt { tokens: number[]; images: { id: number; offset: number; length: number }[]; salt?: string }

class Shadow {
  tokens: number[] = [];
  hashes: number[] = [];
  images: { id: number; offset: number; length: number }[] = [];
  k: number[][];
  v: number[][];
  constructor(readonly m: ToyModel, readonly salt: string | undefined) {
    this.k = Array.from({ length: m.numLayers }, () => []);
    this.v = Array.from({ length: m.numLayers }, () => []);
  }
  clone(): Shadow {
    const s = new Shadow(this.m, this.salt);
    s.tokens = this.tokens.slice(); s.hashes = this.hashes.slice(); s.images = this.images.map((x) => ({ ...x }));
    s.k = this.k.map((x) => x.slice()); s.v = this.v.map((x) => x.slice());
    return s;
  }
  imageAt(p: number): number {
    for (const im of this.images) if (p >= im.offset && p < im.offset + im.length) return im.id;
    return -1;
  }
  /** Prefix hashes of new tokens appended at the end. */
  nextHashes(tokens: number[]): number[] {
    let h = this.hashes.length ? this.hashes[this.hashes.length - 1]! : saltSeed(this.salt);
    return tokens.map((t, i) => (h = stepHash(h, t, this.imageAt(this.tokens.length + i))));
  }
  /** Appends tokens whose K/V (input tensors [L, n, Hk, D]) the cache also received. */
  push(tokens: number[], hashes: number[], kv: { k: Tensor; v: Tensor }): void {
    const E = this.m.numKvHeads * this.m.headDim, n = tokens.length;
    for (let l = 0; l < this.m.numLayers; l++) {
      for (let i = 0; i < n * E; i++) { this.k[l]!.push(kv.k.data[l * n * E + i]!); this.v[l]!.push(kv.v.data[l * n * E + i]!); }
    }
    this.tokens.push(...tokens);
    this.hashes.push(...hashes);
  }
  truncate(n: number): void {
    const E = this.m.numKvHeads * this.m.headDim;
    this.tokens.length = n; this.hashes.length = n;
    for (const a of [...this.k, ...this.v]) a.length = n * E;
    this.images = this.images.filter((im) => im.offset < n);
  }
}

function spans(images: Shadow['images']): ImageSpan[] {
  return images.map((im) => ({ hash: `image-content-${im.id}`, offset: im.offset, length: im.length }));
}

function snapshot(cache: PagedKvCache): string {
  const st = cache.stats();
  // Token ids are left out (the shadow comparison after every operation checks them).
  const seqs = cache.sequences().map((id) => [id, cache.length(id), cache.pending(id), Array.from(cache.blockTable(id))]);
  const refs = Array.from({ length: cache.plan.numBlocks }, (_, b) => cache.pool.refCount(b));
  return JSON.stringify({ st, seqs, refs, cached: cache.pool.cachedOrder() });
}

function verify(cache: PagedKvCache, id: number, sh: Shadow): void {
  const len = cache.length(id);
  if (len !== sh.tokens.length) throw new Error(`sequence ${id}: length ${len}, shadow ${sh.tokens.length}`);
  const toks = cache.tokenIds(id);
  for (let i = 0; i < len; i++) if (toks[i] !== sh.tokens[i]) throw new Error(`sequence ${id}: token ${i} is ${toks[i]}, shadow ${sh.tokens[i]}`);
  const table = cache.blockTable(id);
  for (let l = 0; l < sh.m.numLayers; l++) {
    const { k, v } = gatherContiguous(cache, l, table, len);
    for (const [got, want, name] of [[k.data, sh.k[l]!, 'K'], [v.data, sh.v[l]!, 'V']] as const) {
      if (got.length !== want.length) throw new Error(`sequence ${id} layer ${l} ${name}: ${got.length} elements, shadow ${want.length}`);
      for (let i = 0; i < want.length; i++) {
        if (!Object.is(got[i], want[i])) throw new Error(`sequence ${id} layer ${l} ${name}: element ${i} (token ${Math.floor(i / (sh.m.numKvHeads * sh.m.headDim))}) is ${got[i]}, shadow ${want[i]}`);
      }
    }
  }
}

interface RunConfig { bs: number; numBlocks: number; dtype: 'f32' | 'f16'; prefixCaching: boolean }

function runOps(cfg: RunConfig, ops: Op[], totals: Record<string, number>): void {
  const m: ToyModel = { numLayers: 2, numKvHeads: 2, headDim: 3, dtype: cfg.dtype };
  const cache = new PagedKvCache({ ...m, blockSizeTokens: cfg.bs, numBlocks: cfg.numBlocks, prefixCaching: cfg.prefixCaching });
  const shadows = new Map<number, Shadow>();
  const history: Prompt[] = [];
  const freed: number[] = [];
  const bs = cfg.bs;
  const count = (k: string) => { totals[k] = (totals[k] ?? 0) + 1; };
  const live = () => [...shadows.keys()];

  // Appends tokens to a sequence through `append` or layer-wise reserve/writeLayer/commit. On
  // OutOfBlocksError checks that nothing changed and returns false.
  const appendTokens = (id: number, tokens: number[], layerwise: boolean, newImages: Shadow['images'] = []): boolean => {
    const sh = shadows.get(id)!;
    const before = snapshot(cache);
    const trial = sh.clone();
    trial.images.push(...newImages);
    const hashes = trial.nextHashes(tokens);
    const kv = kvInput(m, hashes);
    try {
      if (layerwise) {
        cache.reserve(id, tokens, { images: spans(newImages) });
        for (let l = 0; l < m.numLayers; l++) cache.writeLayer(id, l, kv.k.select(0, l), kv.v.select(0, l));
        cache.commit(id);
      } else {
        cache.append(id, tokens, kv, { images: spans(newImages) });
      }
    } catch (e) {
      if (!(e instanceof OutOfBlocksError)) throw e;
      if (snapshot(cache) !== before) throw new Error('state changed by a failed append');
      count('outOfBlocks');
      return false;
    }
    trial.push(tokens, hashes, kv);
    shadows.set(id, trial);
    return true;
  };

  const randomTokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (Math.imul(seed + i, 2654435761) >>> 29) % 4);

  for (let step = 0; step < ops.length; step++) {
    const { kind, a, b, c } = ops[step]!;
    const ids = live();
    const pick = ids.length ? ids[a % ids.length]! : -1;
    const touched: number[] = [];
    let k = kind % 100;
    if (ids.length === 0 && k >= 12) k = 0; // nothing live: create
    if (ids.length >= 12 && k < 12) k = 60; // too many live: free one
    if (k < 12) {
      // Create: a fresh prompt, or a prefix of an earlier one (prefix hit), maybe another tenant.
      let p: Prompt;
      if (history.length && b % 2 === 0) {
        const d = history[b % history.length]!;
        const cut = 1 + (c % d.tokens.length);
        const extra = randomTokens(c % 3, step);
        const salt = c % 7 === 0 ? (d.salt === 'A' ? 'B' : 'A') : d.salt;
        const images = d.images.filter((im) => im.offset < cut).map((im) => ({ ...im }));
        if (images.length === 2 && images[0]!.length > 1 && c % 3 !== 2) {
          // Move the boundary between two adjacent images by one token: identical tokens, different image layout.
          images[0]!.length--;
          images[1]!.offset--;
          images[1]!.length++;
        }
        p = { tokens: [...d.tokens.slice(0, cut), ...extra], images, salt };
      } else {
        const n = 1 + (c % (4 * bs + 3));
        const tokens = randomTokens(n, step * 7 + c);
        const images: Prompt['images'] = [];
        if (b % 3 === 0 && n > 1) {
          const off = b % n, len = 1 + (c % (n - off));
          tokens.fill(PLACEHOLDER, off, off + len);
          images.push({ id: (b >> 2) % 3, offset: off, length: len });
        } else if (b % 3 === 1 && n > 2) {
          // Two images back to back: the same placeholder tokens, told apart only by (image, offset) keys.
          const off = b % (n - 2), len1 = 1 + (c % (n - off - 1)), len2 = 1 + ((c >> 4) % (n - off - len1));
          tokens.fill(PLACEHOLDER, off, off + len1 + len2);
          images.push({ id: (b >> 2) % 3, offset: off, length: len1 }, { id: (b >> 4) % 3, offset: off + len1, length: len2 });
        }
        p = { tokens, images, salt: b % 5 === 1 ? 'A' : b % 5 === 2 ? 'B' : undefined };
      }
      history.push(p);
      if (history.length > 24) history.shift();
      const { id, cachedTokens } = cache.addSequence({ tokenIds: p.tokens, images: spans(p.images), salt: p.salt });
      if (cachedTokens % bs !== 0 || cachedTokens > Math.max(0, p.tokens.length - 1)) throw new Error(`bad cachedTokens ${cachedTokens}`);
      if (!cfg.prefixCaching && cachedTokens !== 0) throw new Error('prefix hit with prefix caching off');
      if (cachedTokens > 0) count('prefixHit');
      const sh = new Shadow(m, p.salt);
      sh.images = p.images.map((x) => ({ ...x }));
      const cachedToks = p.tokens.slice(0, cachedTokens);
      const hashes = sh.nextHashes(cachedToks);
      sh.push(cachedToks, hashes, kvInput(m, hashes)); // what the model would have computed
      shadows.set(id, sh);
      appendTokens(id, p.tokens.slice(cachedTokens), c % 2 === 0);
      touched.push(id);
      count('create');
    } else if (k < 45) {
      // Decode one token (placeholder inside a pending image span).
      const sh = shadows.get(pick)!;
      const tok = sh.imageAt(sh.tokens.length) >= 0 ? PLACEHOLDER : b % 4;
      appendTokens(pick, [tok], false);
      touched.push(pick);
      count('decode');
    } else if (k < 58) {
      // Prefill chunk, maybe with a new image, through either API.
      const sh = shadows.get(pick)!;
      const n = 1 + (b % (3 * bs));
      const tokens = randomTokens(n, step);
      const imgs: Shadow['images'] = [];
      if (c % 4 === 0) {
        const off = c % n, len = 1 + (b % (2 * n));
        imgs.push({ id: (c >> 3) % 3, offset: sh.tokens.length + off, length: len });
        for (let i = off; i < Math.min(n, off + len); i++) tokens[i] = PLACEHOLDER;
      }
      appendTokens(pick, tokens, c % 2 === 1, imgs);
      touched.push(pick);
      count('append');
    } else if (k < 60) {
      // Deliberately too large: must fail with OutOfBlocksError and change nothing.
      const before = snapshot(cache);
      const need = (cache.pool.numAvailable + 1) * bs;
      let threw = false;
      try {
        cache.append(pick, new Array<number>(need).fill(1));
      } catch (e) {
        threw = true;
        expect(e).toBeInstanceOf(OutOfBlocksError);
        const err = e as OutOfBlocksError;
        expect(err.free).toBe(cache.pool.numAvailable);
        expect(err.requested).toBeGreaterThan(err.free);
        expect([...err.heldBy]).toEqual([...cache.heldBy()]);
      }
      if (!threw || snapshot(cache) !== before) throw new Error('oversized append did not fail cleanly');
      touched.push(pick);
      count('outOfBlocks');
    } else if (k < 72) {
      cache.free(pick);
      shadows.delete(pick);
      freed.push(pick);
      count('free');
    } else if (k < 82) {
      const child = cache.fork(pick);
      shadows.set(child, shadows.get(pick)!.clone());
      touched.push(child, pick);
      count('fork');
    } else if (k < 92) {
      const sh = shadows.get(pick)!;
      const n = a % (sh.tokens.length + 1);
      cache.truncate(pick, n);
      sh.truncate(n);
      touched.push(pick);
      count('truncate');
    } else if (k < 96) {
      const n = cache.evictCached(b % 8);
      if (n > 0) count('evict');
      count('evictCall');
    } else {
      // State errors: double free, fork / append / truncate of a freed or unknown sequence.
      const before = snapshot(cache);
      const target = freed.length && b % 3 !== 0 ? freed[b % freed.length]! : 1_000_000 + b;
      const attempts = [() => cache.free(target), () => cache.fork(target), () => cache.append(target, [1]), () => cache.truncate(target, 0), () => cache.length(target)];
      expect(attempts[c % attempts.length]!).toThrow(StateError);
      if (snapshot(cache) !== before) throw new Error('state changed by a rejected call');
      count('stateError');
    }
    const acc = cache.checkInvariants();
    if (acc.free + acc.used + acc.cached !== cfg.numBlocks) throw new Error('accounting');
    for (const id of touched) if (shadows.has(id)) verify(cache, id, shadows.get(id)!);
    if (step % 50 === 49) for (const [id, sh] of shadows) verify(cache, id, sh);
    count('ops');
  }
  for (const [id, sh] of shadows) verify(cache, id, sh);
  // Free everything: every block must come back (free or cached), nothing referenced.
  for (const id of live()) cache.free(id);
  const acc = cache.checkInvariants();
  if (acc.used !== 0 || acc.free + acc.cached !== cfg.numBlocks) throw new Error(`leak after freeing all: ${JSON.stringify(acc)}`);
}

describe('paged KV cache under random operations (fast-check, seeded)', () => {
  it(`${RUNS * OPS_PER_RUN} operations keep accounting exact and K/V bit-identical to a shadow copy`, () => {
    const totals: Record<string, number> = {};
    const opArb = fc.record({ kind: fc.nat(), a: fc.nat(), b: fc.nat(), c: fc.nat() });
    const cfgArb = fc.record({
      bs: fc.constantFrom(1, 2, 3, 4, 16),
      numBlocks: fc.constantFrom(24, 40, 64),
      dtype: fc.constantFrom<'f32' | 'f16'>('f32', 'f16'),
      prefixCaching: fc.constantFrom(true, true, true, false),
    });
    // fc.check + a short message: the default report would print all 5,000 operations.
    const details = fc.check(
      fc.property(cfgArb, fc.array(opArb, { minLength: OPS_PER_RUN, maxLength: OPS_PER_RUN, size: 'max' }), (cfg, ops) => {
        runOps(cfg, ops, totals);
      }),
      { seed: 20240607, numRuns: RUNS, endOnFailure: true },
    );
    if (details.failed) {
      const [cfg] = details.counterexample ?? [];
      throw new Error(`failed on run ${details.numRuns} (seed ${details.seed}, path ${details.counterexamplePath}, config ${JSON.stringify(cfg)}): ${(details.errorInstance as Error)?.stack ?? String(details.errorInstance)}`);
    }
    console.log('kvcache random ops:', JSON.stringify(totals));
    expect(totals.ops).toBe(RUNS * OPS_PER_RUN);
    for (const kind of ['create', 'decode', 'append', 'fork', 'free', 'truncate', 'evict', 'prefixHit', 'outOfBlocks', 'stateError']) expect(totals[kind] ?? 0).toBeGreaterThan(50);
  }, 180_000);
});
