/**
 * Simulated workloads over a real PagedKvCache (metadata only, so model-sized pools cost no
 * memory): the numbers behind docs/kvcache.md, the tests of the bars and
 * `vlm-attention cache-stats`. Every workload is seeded and deterministic.
 */
import { OutOfBlocksError, ValueError, requireInt } from '../errors.js';
import { mulberry32 } from '../tensor/tensor.js';
import { memoryWaste, type WasteReport } from './calculator.js';
import { sha256, toHex } from './hash.js';
import { type ImageSpan, type KvCacheStats, PagedKvCache, type SeqId } from './kv-cache.js';
import type { KvDType } from './kv-storage.js';

/** Token id used for image placeholder positions (the same for every image, as in real VLMs). */
export const IMAGE_PAD_TOKEN = 151655;

function randInt(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function randTokens(rng: () => number, n: number): number[] {
  return Array.from({ length: n }, () => randInt(rng, 0, 31999));
}

function fakeImageHash(i: number, seed: number): string {
  return toHex(sha256(new TextEncoder().encode(`simulated image ${i} seed ${seed}`)));
}

// ----------------------------------------------------------------------------------------------

/** `simulateWaste`'s result: the waste measured on a live pool beside `memoryWaste`'s arithmetic. */
export interface WasteSimulation {
  /** Measured on the pool after every sequence reached its length. */
  readonly measured: { readonly allocatedSlots: number; readonly filledSlots: number; readonly waste: number; readonly usedBlocks: number };
  /** The arithmetic of calculator.memoryWaste on the same lengths (paged and contiguous). */
  readonly expected: WasteReport;
  /** The drawn sequence lengths in tokens, uniform in 1..maxLength. */
  readonly lengths: Int32Array;
}

/**
 * `numSequences` sequences with lengths uniform in 1..maxLength, all live at once: each gets a
 * prompt (a random part of its length) in one append, then decodes the rest one token per step,
 * round-robin (continuous batching). The pool has the memory contiguous max-length reservation
 * would need, and reports its allocated-but-unused slots.
 */
export function simulateWaste(opts: { numSequences?: number; maxLength?: number; blockSizeTokens?: number; maxDecodeTokens?: number; seed?: number } = {}): WasteSimulation {
  const n = requireInt(opts.numSequences ?? 1000, 'numSequences', 1);
  const maxLength = requireInt(opts.maxLength ?? 4096, 'maxLength', 1);
  const bs = requireInt(opts.blockSizeTokens ?? 16, 'blockSizeTokens', 1);
  const maxDecode = requireInt(opts.maxDecodeTokens ?? 256, 'maxDecodeTokens', 0);
  const rng = mulberry32(requireInt(opts.seed ?? 1, 'seed', 0));
  const lengths = Int32Array.from({ length: n }, () => randInt(rng, 1, maxLength));
  const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 1, headDim: 1, blockSizeTokens: bs, numBlocks: n * Math.ceil(maxLength / bs), allocateStorage: false, prefixCaching: false });
  const ids: SeqId[] = [];
  const remaining = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const L = lengths[i]!;
    const decode = Math.min(L - 1, randInt(rng, 0, maxDecode));
    const { id } = cache.addSequence();
    cache.append(id, randTokens(rng, L - decode));
    ids.push(id);
    remaining[i] = decode;
  }
  for (let active = true; active;) {
    active = false;
    for (let i = 0; i < n; i++) {
      if (remaining[i]! > 0) { cache.append(ids[i]!, [randInt(rng, 0, 31999)]); remaining[i]!--; active = true; }
    }
  }
  const st = cache.stats();
  return {
    measured: { allocatedSlots: st.slotsAllocated, filledSlots: st.slotsFilled, waste: st.fragmentation, usedBlocks: st.usedBlocks },
    expected: memoryWaste(lengths, { blockSizeTokens: bs, maxLength }),
    lengths,
  };
}

// ----------------------------------------------------------------------------------------------

/** Where a simulated request puts its image: before the user prompt ('image-first') or after it ('prompt-first'). */
export type PromptOrder = 'image-first' | 'prompt-first';

/** Workload of `simulateImagePrefix`; every field optional. */
export interface ImagePrefixOptions {
  /** Distinct images; default 10. */
  numImages?: number;
  /** Distinct user prompts; default 10. Every (image, prompt) pair is requested once. */
  numPrompts?: number;
  /** Placeholder tokens per image; default 576 (LLaVA-1.5's 24×24 grid). */
  imageTokens?: number;
  /** Shared system-prompt tokens before everything else; default 0. */
  systemTokens?: number;
  /** Tokens of each user prompt; default 40. */
  promptTokens?: number;
  /** Tokens generated per request; default 8. */
  decodeTokens?: number;
  /** 'image-first' (default): [system][image][prompt] (images shared); 'prompt-first': [system][prompt][image]. */
  order?: PromptOrder;
  /** Tokens per block; default 16. */
  blockSizeTokens?: number;
  /** Pool size in blocks; default (numImages · numPrompts + 4) · blocks per request, enough that nothing is evicted. */
  numBlocks?: number;
  /** Seed of the tokens, image hashes and request order; default 1. */
  seed?: number;
  /** The model's KV shape, for the byte figures of the stats only (hits and blocks do not depend on it); default 1 × 1 × 1, f16. */
  numLayers?: number;
  /** See numLayers. */
  numKvHeads?: number;
  /** See numLayers. */
  headDim?: number;
  /** See numLayers. */
  dtype?: KvDType;
}

/** `simulateImagePrefix`'s result. */
export interface ImagePrefixReport {
  readonly order: PromptOrder;
  /** Requests run: numImages · numPrompts. */
  readonly requests: number;
  /** Σ over requests of the full blocks it shares with some earlier request (its longest common prefix, capped at ⌊(len−1)/bs⌋). */
  readonly shareableBlocks: number;
  /** Σ blocks served from the prefix cache. */
  readonly hitBlocks: number;
  /** hitBlocks / shareableBlocks (1 when nothing is shareable). */
  readonly hitRateOfShareable: number;
  /** Full image blocks (entirely inside an image) of every request but the first per image. */
  readonly imageBlocksAfterFirst: number;
  /** Of imageBlocksAfterFirst, those served from the prefix cache. */
  readonly imageBlocksReused: number;
  /** Full blocks of text after the image (image-first) or of the prompt (prompt-first), over all requests. */
  readonly promptBlocksQueried: number;
  /** Of promptBlocksQueried, those served from the prefix cache. */
  readonly promptBlocksHit: number;
  /** Prefill tokens computed / prefill tokens requested (1 = no reuse). */
  readonly computedFraction: number;
  /** Cache statistics at the end, every request freed (its blocks cached or free). */
  readonly stats: KvCacheStats;
}

/**
 * Requests over `numImages` images × `numPrompts` prompts, each combination once, in a seeded
 * random order: prefix lookup, prefill of the uncached rest, a few decode tokens, free.
 */
export function simulateImagePrefix(opts: ImagePrefixOptions = {}): ImagePrefixReport {
  const numImages = requireInt(opts.numImages ?? 10, 'numImages', 1);
  const numPrompts = requireInt(opts.numPrompts ?? 10, 'numPrompts', 1);
  const imageTokens = requireInt(opts.imageTokens ?? 576, 'imageTokens', 1);
  const systemTokens = requireInt(opts.systemTokens ?? 0, 'systemTokens', 0);
  const promptTokens = requireInt(opts.promptTokens ?? 40, 'promptTokens', 1);
  const decodeTokens = requireInt(opts.decodeTokens ?? 8, 'decodeTokens', 0);
  const order = opts.order ?? 'image-first';
  if (order !== 'image-first' && order !== 'prompt-first') throw new ValueError(`order must be 'image-first' or 'prompt-first', got ${String(order)}`, 'order');
  const bs = requireInt(opts.blockSizeTokens ?? 16, 'blockSizeTokens', 1);
  const seed = requireInt(opts.seed ?? 1, 'seed', 0);
  const rng = mulberry32(seed);
  const system = randTokens(rng, systemTokens);
  const prompts = Array.from({ length: numPrompts }, () => randTokens(rng, promptTokens));
  const imageHashes = Array.from({ length: numImages }, (_, i) => fakeImageHash(i, seed));
  const perRequestBlocks = Math.ceil((systemTokens + imageTokens + promptTokens + decodeTokens) / bs);
  const numBlocks = opts.numBlocks ?? (numImages * numPrompts + 4) * perRequestBlocks;
  const cache = new PagedKvCache({ numLayers: opts.numLayers ?? 1, numKvHeads: opts.numKvHeads ?? 1, headDim: opts.headDim ?? 1, dtype: opts.dtype, blockSizeTokens: bs, numBlocks, allocateStorage: false });

  const pairs: [number, number][] = [];
  for (let i = 0; i < numImages; i++) for (let p = 0; p < numPrompts; p++) pairs.push([i, p]);
  for (let i = pairs.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [pairs[i], pairs[j]] = [pairs[j]!, pairs[i]!]; }

  // A position's identity: its token id and, inside an image, which image (placeholders are equal tokens).
  type Req = { tokens: number[]; imageAt: Int32Array; image: ImageSpan; imgIdx: number };
  const build = (img: number, p: number): Req => {
    const imgStart = order === 'image-first' ? systemTokens : systemTokens + promptTokens;
    const pad = new Array<number>(imageTokens).fill(IMAGE_PAD_TOKEN);
    const tokens = order === 'image-first' ? [...system, ...pad, ...prompts[p]!] : [...system, ...prompts[p]!, ...pad];
    const imageAt = new Int32Array(tokens.length).fill(-1);
    imageAt.fill(img, imgStart, imgStart + imageTokens);
    return { tokens, imageAt, image: { hash: imageHashes[img]!, offset: imgStart, length: imageTokens }, imgIdx: img };
  };
  const lcp = (a: Req, b: Req) => {
    let i = 0;
    while (i < a.tokens.length && i < b.tokens.length && a.tokens[i] === b.tokens[i] && a.imageAt[i] === b.imageAt[i]) i++;
    return i;
  };

  const done: Req[] = [];
  const seenImage = new Set<number>();
  let shareable = 0, hits = 0, imgAfter = 0, imgReused = 0, promptQ = 0, promptHit = 0, requested = 0, computed = 0;
  for (const [img, p] of pairs) {
    const r = build(img, p);
    const maxBlocks = Math.floor((r.tokens.length - 1) / bs);
    let common = 0;
    for (const d of done) common = Math.max(common, lcp(r, d));
    shareable += Math.min(maxBlocks, Math.floor(common / bs));
    const { id, cachedTokens } = cache.addSequence({ tokenIds: r.tokens, images: [r.image] });
    const hitBlocks = cachedTokens / bs;
    hits += hitBlocks;
    // Per-block bookkeeping: image blocks lie entirely inside the placeholder range.
    for (let blk = 0; blk < maxBlocks; blk++) {
      const s = blk * bs, e = s + bs;
      const inImage = s >= r.image.offset && e <= r.image.offset + r.image.length;
      const textAfterOrPrompt = order === 'image-first' ? s >= r.image.offset + r.image.length : s >= systemTokens && e <= r.image.offset;
      if (inImage && seenImage.has(img)) { imgAfter++; if (blk < hitBlocks) imgReused++; }
      if (textAfterOrPrompt) { promptQ++; if (blk < hitBlocks) promptHit++; }
    }
    seenImage.add(img);
    requested += r.tokens.length;
    computed += r.tokens.length - cachedTokens;
    cache.append(id, r.tokens.slice(cachedTokens));
    for (let t = 0; t < decodeTokens; t++) cache.append(id, [randInt(rng, 0, 31999)]);
    cache.free(id);
    done.push(r);
  }
  return {
    order, requests: pairs.length, shareableBlocks: shareable, hitBlocks: hits, hitRateOfShareable: shareable ? hits / shareable : 1,
    imageBlocksAfterFirst: imgAfter, imageBlocksReused: imgReused, promptBlocksQueried: promptQ, promptBlocksHit: promptHit,
    computedFraction: computed / requested, stats: cache.stats(),
  };
}

// ----------------------------------------------------------------------------------------------

/** Workload of `simulateServing`; every field optional. The cache is metadata-only, so the model geometry only sets the byte figures. */
export interface ServingOptions {
  /** Default 28. */
  numLayers?: number;
  /** Default 4. */
  numKvHeads?: number;
  /** Default 128. */
  headDim?: number;
  /** Default 'f16'. */
  dtype?: KvDType;
  /** Tokens per block; default 16. */
  blockSizeTokens?: number;
  /** Pool size in blocks; default 2048. */
  numBlocks?: number;
  /** Requests arriving over the run (two per step); default 200. */
  numRequests?: number;
  /** Distinct images the requests draw from (image i with weight 1/(i+1), so popular images repeat); default 20. */
  numImages?: number;
  /** Placeholder tokens per image; default 576. */
  imageTokens?: number;
  /** Shared system-prompt tokens before the image; default 32. */
  systemTokens?: number;
  /** Parallel samples per request (forks sharing the prompt's blocks); default 2. */
  samples?: number;
  /** Each sample decodes a random 1..maxNewTokens tokens; default 256. */
  maxNewTokens?: number;
  /** Most sequences running at once, samples included (continuous batching); default 64. */
  maxBatch?: number;
  /** Seed of tokens, images, lengths and rollbacks; default 1. */
  seed?: number;
}

/** `simulateServing`'s result. */
export interface ServingReport {
  /** Steps run (each: arrivals, admissions, one decode token per running sample); the run gives up once it passes 100,000 steps. */
  readonly steps: number;
  /** The numRequests simulated. */
  readonly requests: number;
  /** Requests whose samples all ended, including samples preempted (freed early) when the pool had no block for their next token. */
  readonly completed: number;
  /** Requests that waited at least once because the pool was full. */
  readonly deferred: number;
  /** Highest usedBlocks / totalBlocks at the end of a step. */
  readonly peakUtilisation: number;
  /** Most samples running at the end of a step. */
  readonly peakSequences: number;
  /** Stats at the step of peak utilisation (live sharing and fragmentation). */
  readonly atPeak: KvCacheStats;
  /** Stats at the end of the run. */
  readonly final: KvCacheStats;
  /** Decode tokens appended over all samples (tokens later rolled back included). */
  readonly tokensGenerated: number;
  /** Samples ended early because the pool had no block for their next token (counted in `completed` with their request). */
  readonly samplesCutShort: number;
  /** Prompt tokens of the admitted requests. */
  readonly prefillTokensRequested: number;
  /** Of those, tokens not served from the prefix cache. */
  readonly prefillTokensComputed: number;
}

/**
 * A small continuous-batching server: requests ([system][image][question]) arrive over time, are
 * admitted when the pool has room (prefix lookup, prefill of the rest), fork into `samples`
 * parallel samples, decode one token per step and finish at random lengths; now and then a sample
 * rolls back a few tokens (speculative decoding rejected). Images repeat, so their blocks are
 * reused; under memory pressure cached blocks are evicted LRU.
 */
export function simulateServing(opts: ServingOptions = {}): ServingReport {
  const bs = requireInt(opts.blockSizeTokens ?? 16, 'blockSizeTokens', 1);
  const numRequests = requireInt(opts.numRequests ?? 200, 'numRequests', 1);
  const numImages = requireInt(opts.numImages ?? 20, 'numImages', 1);
  const imageTokens = requireInt(opts.imageTokens ?? 576, 'imageTokens', 1);
  const systemTokens = requireInt(opts.systemTokens ?? 32, 'systemTokens', 0);
  const samples = requireInt(opts.samples ?? 2, 'samples', 1);
  const maxNew = requireInt(opts.maxNewTokens ?? 256, 'maxNewTokens', 1);
  const maxBatch = requireInt(opts.maxBatch ?? 64, 'maxBatch', 1);
  const seed = requireInt(opts.seed ?? 1, 'seed', 0);
  const rng = mulberry32(seed);
  const cache = new PagedKvCache({
    numLayers: opts.numLayers ?? 28, numKvHeads: opts.numKvHeads ?? 4, headDim: opts.headDim ?? 128, dtype: opts.dtype ?? 'f16',
    blockSizeTokens: bs, numBlocks: opts.numBlocks ?? 2048, allocateStorage: false,
  });
  const system = randTokens(rng, systemTokens);
  const imageHashes = Array.from({ length: numImages }, (_, i) => fakeImageHash(i, seed));
  // Zipf-like popularity: image i drawn with weight 1/(i+1).
  const weights = imageHashes.map((_, i) => 1 / (i + 1));
  const wsum = weights.reduce((a, b) => a + b, 0);
  const pickImage = () => { let u = rng() * wsum; for (let i = 0; i < weights.length; i++) { u -= weights[i]!; if (u <= 0) return i; } return weights.length - 1; };

  type Running = { id: SeqId; left: number; group: { live: number } };
  const queue: { tokens: number[]; image: ImageSpan; deferred: boolean }[] = [];
  const running: Running[] = [];
  let arrived = 0, completed = 0, deferred = 0, steps = 0, generated = 0, requested = 0, computed = 0, cutShort = 0;
  let peak = -1, peakSeqs = 0, atPeak = cache.stats();
  while (completed < numRequests) {
    steps++;
    // Arrivals: about two per step until all arrived.
    for (let a = 0; a < 2 && arrived < numRequests; a++, arrived++) {
      const img = pickImage();
      const question = randTokens(rng, randInt(rng, 8, 64));
      const pad = new Array<number>(imageTokens).fill(IMAGE_PAD_TOKEN);
      queue.push({ tokens: [...system, ...pad, ...question], image: { hash: imageHashes[img]!, offset: systemTokens, length: imageTokens }, deferred: false });
    }
    // Admission, FIFO, while the batch has room.
    while (queue.length && running.length + samples <= maxBatch) {
      const r = queue[0]!;
      const { id, cachedTokens } = cache.addSequence({ tokenIds: r.tokens, images: [r.image] });
      try {
        cache.append(id, r.tokens.slice(cachedTokens));
      } catch (e) {
        if (!(e instanceof OutOfBlocksError)) throw e;
        cache.free(id);
        if (running.length === 0) throw e; // the pool cannot hold even one request
        if (!r.deferred) { r.deferred = true; deferred++; }
        break;
      }
      requested += r.tokens.length;
      computed += r.tokens.length - cachedTokens;
      queue.shift();
      const group = { live: samples };
      running.push({ id, left: randInt(rng, 1, maxNew), group });
      for (let s = 1; s < samples; s++) running.push({ id: cache.fork(id), left: randInt(rng, 1, maxNew), group });
    }
    // One decode step for every running sequence; a sequence that cannot get a block is preempted (freed and counted done).
    for (let i = running.length - 1; i >= 0; i--) {
      const r = running[i]!;
      try {
        cache.append(r.id, [randInt(rng, 0, 31999)]);
        generated++;
        r.left--;
        if (r.left > 4 && rng() < 0.02) { cache.truncate(r.id, cache.length(r.id) - 2); r.left += 2; }
      } catch (e) {
        if (!(e instanceof OutOfBlocksError)) throw e;
        r.left = 0;
        cutShort++;
      }
      if (r.left <= 0) {
        cache.free(r.id);
        running.splice(i, 1);
        if (--r.group.live === 0) completed++;
      }
    }
    const st = cache.stats();
    if (st.utilisation > peak) { peak = st.utilisation; atPeak = st; }
    peakSeqs = Math.max(peakSeqs, running.length);
    if (steps > 100_000) break;
  }
  return {
    steps, requests: numRequests, completed, deferred, peakUtilisation: peak, peakSequences: peakSeqs,
    atPeak, final: cache.stats(), tokensGenerated: generated, samplesCutShort: cutShort, prefillTokensRequested: requested, prefillTokensComputed: computed,
  };
}
