/**
 * Paged KV cache (vLLM's PagedAttention + automatic prefix caching), the facade over
 * block pool (block-pool.ts) → storage (kv-storage.ts) → sequences and prefix hashing (here).
 *
 * A sequence owns a block table: logical block i holds its tokens [i·bs, (i+1)·bs) in physical
 * block table[i]. Tables grow by appending; full blocks are never written again, so they can be
 * shared by reference count — between forks (parallel sampling, beam search) and, through the
 * prefix cache, between requests with the same prefix. Writing into a partly filled block that is
 * shared or registered in the prefix cache first copies it (copy-on-write).
 *
 * Lifecycle of a request:
 * ```
 * const { id, cachedTokens } = cache.addSequence({ tokenIds: prompt, images });  // prefix hit: cachedTokens reused
 * cache.append(id, prompt.slice(cachedTokens), { k, v });  // prefill the rest: k, v [numLayers, n, numKvHeads, headDim]
 * cache.append(id, [next], { k: k1, v: v1 });               // decode, one token at a time
 * const tables = cache.batch([id, ...]);                    // block tables + lengths for paged attention
 * cache.free(id);                                           // full blocks stay cached (LRU) for later hits
 * ```
 * Layer by layer, use `reserve` → `writeLayer` (once per layer) → `commit` instead of `append`.
 *
 * Prefix hashing follows vLLM V1 (see hash.ts): only full blocks are hashed; a block's hash
 * chains its parent's hash, its token ids and extra keys — every image whose placeholder range
 * overlaps the block contributes (image content hash, image offset − block start), and the tenant
 * salt is mixed into block 0 only. The same placeholder token ids therefore never alias two
 * different images, and a block after an image inherits the image through the chain.
 */
import { OutOfBlocksError, ShapeError, StateError, UnsupportedError, ValueError, assert, checkOptionKeys, optionNames, requireInt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { BlockPool } from './block-pool.js';
import { type ExtraKey, blockHash, noneHash } from './hash.js';
import type { WasmHeap } from '../kernels/cpu/wasm-heap.js';
import { KvBlockStorage, type KvDType, STAGED_TAIL_BLOCKS, bytesPerBlock, checkSmoothK } from './kv-storage.js';
import { type HadamardRotation, type Int8GridMode, type KRounding, type RotationSource, makeRotation } from './quant.js';

/** Sequence handle: a positive integer assigned by the cache, never reused. */
export type SeqId = number;

/** An image's placeholder tokens inside a sequence: positions [offset, offset + length). */
export interface ImageSpan {
  /** Content hash of the image (e.g. `imageContentHash`), not its name. */
  readonly hash: string;
  /** Position of the image's first placeholder token in the sequence. */
  readonly offset: number;
  /** Placeholder tokens of the image (≥ 1). */
  readonly length: number;
}

/** Options of `PagedKvCache` (validated by `planKvCache`). Give exactly one of `numBlocks` and `capacityBytes`. */
export interface PagedKvCacheOptions {
  /** Layers whose K/V the cache holds (≥ 1). */
  numLayers: number;
  /** KV heads per layer (≥ 1); fewer than the query heads under GQA/MQA. */
  numKvHeads: number;
  /** Channels per KV head (≥ 1), for K and V alike. */
  headDim: number;
  /** Tokens per block; default 16 (vLLM). Kernels may require a multiple of 16. */
  blockSizeTokens?: number;
  /** Pool size in blocks; or give `capacityBytes` (exactly one of the two). */
  numBlocks?: number;
  /** Pool size in bytes of K and V over all layers; numBlocks = ⌊capacityBytes / bytesPerBlock⌋. */
  capacityBytes?: number;
  /** Element type of the blocks; default 'f32'. */
  dtype?: KvDType;
  /** int8 only: store K and V rotated by a random-sign Hadamard transform (quant.ts). `true` = seed 0. */
  rotation?: boolean | { seed: number };
  /**
   * int8 only: K's channels divided by factors λ before quantising, queries multiplied by them in
   * `rotateQuery` (scores unchanged), so K's outlier channels stop setting the int8 scale (QServe's
   * SmoothAttention). `true`: each layer's λ calibrated from the first K written to it (per KV head,
   * λ_c = √rms_c, geometric mean 1); or λ per layer, [numKvHeads · headDim] positive each. Default false.
   */
  smoothK?: boolean | readonly (Float32Array | readonly number[])[];
  /**
   * int8 only: the value grid of the codes (quant.ts). 'gaussian' (code q stands for q·(½ + ½·q²/127²)
   * scale units) is matched to the near-Gaussian blocks the rotation makes and rounds them about 20 %
   * closer than 'uniform' (q scale units); values spread evenly over their range (rotated K with
   * unsmoothed outlier channels) round better on 'uniform'. Default 'auto': each (block, head) takes the
   * grid with the smaller squared error over the values written to it (chosen again when a later token
   * grows its scale). The grid is kept in the scale's sign, so every choice costs the same bytes.
   */
  int8Grid?: Int8GridMode;
  /**
   * int8 with smoothK and rotation: how K's codes are rounded. 'feedback' (default): each key's channels
   * are coded in order and each rounding error is pushed onto the channels not coded yet (GPTQ's update on
   * one row, quant.ts kFeedback), so that K's error keeps out of the few directions where smoothing puts
   * the queries' size (K's outlier channels); on the outlier-channel designs of docs/kvcache.md this takes
   * K's share of the output error down by about a third. 'nearest': every value to its nearest level.
   * Costs O(headDim · outlier channels) a key; without smoothing or outlier channels the two are the same.
   */
  kRounding?: KRounding;
  /** Automatic prefix caching; default true. */
  prefixCaching?: boolean;
  /** Seed of the block-0 parent hash; default ''. Set a secret one to make block hashes unguessable. */
  hashSeed?: string;
  /** false: metadata only (no K/V arrays), for sizing and simulations; writes then throw. Default true. */
  allocateStorage?: boolean;
  /**
   * Allocate the blocks in the CPU kernel heap (`(await cpuRuntime()).heap`) so paged attention reads them in place.
   * Ignored where the heap's memory is not shared (no cross-origin isolation in a browser): its growth would detach them.
   */
  heap?: WasmHeap;
}

/** The validated, frozen form of PagedKvCacheOptions. */
export interface KvCachePlan {
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly blockSizeTokens: number;
  /** Pool size in blocks (derived from capacityBytes when that was given). */
  readonly numBlocks: number;
  readonly dtype: KvDType;
  /** Seed of the Hadamard rotation's signs; null when K/V are stored unrotated. */
  readonly rotationSeed: number | null;
  /** K smoothing (int8): 'auto' (calibrated at each layer's first write), factors per layer, or null. */
  readonly smoothK: 'auto' | readonly Float32Array[] | null;
  /** How int8 blocks pick their codes' grid; null for float blocks. */
  readonly int8Grid: Int8GridMode | null;
  /** How int8 K is rounded under smoothing (PagedKvCacheOptions.kRounding); null for float blocks. */
  readonly kRounding: KRounding | null;
  readonly prefixCaching: boolean;
  /** Seed of the block-0 parent hash ('' unless set). */
  readonly hashSeed: string;
  /** false: metadata only, no K/V arrays (sizing and simulations). */
  readonly allocateStorage: boolean;
  /** Bytes of one block, K and V over all layers (int8 includes scales). */
  readonly bytesPerBlock: number;
}

/**
 * Most blocks one pool holds: 2²⁴ (16.8 M; at 16 tokens a block, 268 M tokens). The pool keeps per-block
 * bookkeeping in typed arrays, so a pool of 2³¹ blocks would take gigabytes before holding any K/V.
 */
export const MAX_KV_BLOCKS = 2 ** 24;

/** The option names of PagedKvCache / planKvCache (a misspelt `blockSize` or `prefixCache: false` would be ignored). */
const CACHE_OPTION_KEYS = optionNames<PagedKvCacheOptions>({
  numLayers: true, numKvHeads: true, headDim: true, blockSizeTokens: true, numBlocks: true, capacityBytes: true, dtype: true, rotation: true,
  smoothK: true, int8Grid: true, kRounding: true, prefixCaching: true, hashSeed: true, allocateStorage: true, heap: true,
});

/**
 * Validates PagedKvCacheOptions into the frozen plan a PagedKvCache is built from: defaults filled
 * in, numBlocks = ⌊capacityBytes / bytesPerBlock⌋ when sized in bytes. Allocates nothing, so it also
 * sizes a cache without building one. Throws ValueError/UnsupportedError naming the bad option.
 */
export function planKvCache(opts: PagedKvCacheOptions): KvCachePlan {
  if (!opts || typeof opts !== 'object') throw new ValueError('PagedKvCache needs an options object', 'opts');
  checkOptionKeys(opts, CACHE_OPTION_KEYS, 'PagedKvCache');
  const numLayers = requireInt(opts.numLayers, 'numLayers', 1);
  const numKvHeads = requireInt(opts.numKvHeads, 'numKvHeads', 1);
  const headDim = requireInt(opts.headDim, 'headDim', 1);
  const blockSizeTokens = requireInt(opts.blockSizeTokens ?? 16, 'blockSizeTokens', 1);
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'int8') throw new UnsupportedError(`KV dtype '${String(dtype)}' is not supported`, "'f32', 'f16' or 'int8'");
  let rotationSeed: number | null = null;
  if (opts.rotation) {
    if (dtype !== 'int8') throw new UnsupportedError(`rotation is only used with int8 blocks, not ${dtype}`, "dtype: 'int8'");
    rotationSeed = opts.rotation === true ? 0 : requireInt(opts.rotation.seed, 'rotation.seed', 0);
    // The sign generator takes 32 bits: seed 2³² would give seed 0's rotation.
    if (rotationSeed > 0xffffffff) throw new ValueError(`rotation.seed must be an integer in 0..2³²−1, got ${rotationSeed}`, 'rotation.seed');
  }
  if (opts.smoothK && opts.smoothK !== true && !Array.isArray(opts.smoothK)) throw new ValueError('smoothK must be true, false or an array of per-layer factors', 'smoothK');
  const sk = checkSmoothK(!opts.smoothK ? null : opts.smoothK === true ? 'auto' : opts.smoothK, dtype, numLayers, numKvHeads, headDim);
  const smoothK: KvCachePlan['smoothK'] = sk === null || sk === 'auto' ? sk : Object.freeze(sk);
  if (opts.int8Grid !== undefined) {
    if (opts.int8Grid !== 'auto' && opts.int8Grid !== 'uniform' && opts.int8Grid !== 'gaussian') throw new UnsupportedError(`int8Grid '${String(opts.int8Grid)}' is not supported`, "'auto', 'uniform' or 'gaussian'");
    if (dtype !== 'int8') throw new UnsupportedError(`int8Grid is only used with int8 blocks, not ${dtype}`, "dtype: 'int8'");
  }
  const int8Grid: Int8GridMode | null = dtype !== 'int8' ? null : opts.int8Grid ?? 'auto';
  if (opts.kRounding !== undefined) {
    if (opts.kRounding !== 'feedback' && opts.kRounding !== 'nearest') throw new UnsupportedError(`kRounding '${String(opts.kRounding)}' is not supported`, "'feedback' or 'nearest'");
    if (dtype !== 'int8') throw new UnsupportedError(`kRounding is only used with int8 blocks, not ${dtype}`, "dtype: 'int8'");
  }
  const kRounding: KRounding | null = dtype !== 'int8' ? null : opts.kRounding ?? 'feedback';
  const bpb = bytesPerBlock(numLayers, numKvHeads, headDim, blockSizeTokens, dtype);
  if ((opts.numBlocks === undefined) === (opts.capacityBytes === undefined)) {
    throw new ValueError('give exactly one of numBlocks and capacityBytes', opts.numBlocks === undefined ? 'numBlocks' : 'capacityBytes');
  }
  let numBlocks: number;
  if (opts.numBlocks !== undefined) {
    numBlocks = requireInt(opts.numBlocks, 'numBlocks', 1);
    if (numBlocks > MAX_KV_BLOCKS) throw new ValueError(`numBlocks must be at most ${MAX_KV_BLOCKS} (2²⁴), got ${numBlocks}`, 'numBlocks');
  }
  else {
    const cap = opts.capacityBytes!;
    if (typeof cap !== 'number' || !Number.isFinite(cap) || cap < 0) throw new ValueError(`capacityBytes must be a finite number ≥ 0, got ${cap}`, 'capacityBytes');
    numBlocks = Math.floor(cap / bpb);
    if (numBlocks < 1) throw new ValueError(`capacityBytes ${cap} holds no block (one block is ${bpb} bytes)`, 'capacityBytes');
    if (numBlocks > MAX_KV_BLOCKS) throw new ValueError(`capacityBytes ${cap} makes ${numBlocks.toExponential(3)} blocks of ${bpb} bytes; a pool holds at most ${MAX_KV_BLOCKS} (2²⁴)`, 'capacityBytes');
  }
  const hashSeed = opts.hashSeed ?? '';
  if (typeof hashSeed !== 'string') throw new ValueError('hashSeed must be a string', 'hashSeed');
  for (const name of ['prefixCaching', 'allocateStorage'] as const) {
    if (opts[name] !== undefined && typeof opts[name] !== 'boolean') throw new ValueError(`${name} must be true or false, got ${JSON.stringify(opts[name])}`, name);
  }
  return Object.freeze({
    numLayers, numKvHeads, headDim, blockSizeTokens, numBlocks, dtype, rotationSeed, smoothK, int8Grid, kRounding,
    prefixCaching: opts.prefixCaching ?? true, hashSeed, allocateStorage: opts.allocateStorage ?? true, bytesPerBlock: bpb,
  });
}

class Sequence {
  blocks = new Int32Array(4);
  numBlocks = 0;
  tokens = new Int32Array(16);
  length = 0;
  /** Tokens whose K/V are written and published; [committed, length) are reserved, pending. */
  committed = 0;
  /** Hash of each full block, chained; length = ⌊committed / bs⌋ once committed. */
  blockHashes: string[] = [];
  images: ImageSpan[] = [];
  /** Layers whose K/V for the pending tokens are written (writeLayer, or append with kv). */
  written = new Set<number>();
  /**
   * Indices of this sequence's blocks holding tokens committed with some layer unwritten (a cache with storage;
   * append without kv, or commit before every writeLayer): they are never published to the prefix cache.
   */
  unwrittenBlocks = new Set<number>();
  /** int8: the blocks whose staged exact values this sequence may still need (PagedKvCache.restage). */
  staged: number[] = [];
  constructor(readonly id: SeqId, readonly salt: string | null) {}

  pushBlock(b: number): void {
    if (this.numBlocks === this.blocks.length) {
      const nb = new Int32Array(this.blocks.length * 2);
      nb.set(this.blocks);
      this.blocks = nb;
    }
    this.blocks[this.numBlocks++] = b;
  }

  pushTokens(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.tokens.length) {
      const nt = new Int32Array(Math.max(this.tokens.length * 2, this.length + ids.length));
      nt.set(this.tokens.subarray(0, this.length));
      this.tokens = nt;
    }
    for (let i = 0; i < ids.length; i++) this.tokens[this.length + i] = ids[i]!;
    this.length += ids.length;
  }
}

/** Arguments of `PagedKvCache.addSequence`; all optional (without tokenIds: an empty sequence, no prefix lookup). */
export interface AddSequenceOptions {
  /** The prompt's token ids, used to find cached prefix blocks. The caller appends the rest. */
  tokenIds?: ArrayLike<number>;
  /** Images of the prompt (placeholder ranges in token positions). */
  images?: readonly ImageSpan[];
  /** Tenant salt: sequences with different salts never share cached blocks. */
  salt?: string;
}

/** What `PagedKvCache.addSequence` returns. */
export interface AddSequenceResult {
  readonly id: SeqId;
  /** Prompt tokens whose K/V came from the prefix cache (a multiple of blockSizeTokens, < tokenIds.length). */
  readonly cachedTokens: number;
}

/** K and V of new tokens for every layer: [numLayers, numTokens, numKvHeads, headDim], f32/f16/bf16. */
export interface KvInput {
  readonly k: Tensor;
  readonly v: Tensor;
}

/** Block tables of a batch, padded: the `block_table` of FlashAttention's paged API. */
export interface BatchTables {
  /** [numSeqs, maxBlocksPerSeq] int32 physical block ids; entries past a sequence's blocks are 0. */
  readonly blockTables: Int32Array;
  /** Row length of blockTables: the longest table in the batch, at least 1. */
  readonly maxBlocksPerSeq: number;
  /** [numSeqs] tokens per sequence. */
  readonly seqLens: Int32Array;
}

/** A snapshot of the cache's accounting (`PagedKvCache.stats()`); freeBlocks + usedBlocks + cachedBlocks = totalBlocks. */
export interface KvCacheStats {
  /** Pool size in blocks. */
  readonly totalBlocks: number;
  /** Unreferenced blocks holding no cached content; allocation takes these before evicting cached ones. */
  readonly freeBlocks: number;
  /** Blocks referenced by at least one live sequence. */
  readonly usedBlocks: number;
  /** Unreferenced blocks kept for prefix hits (evicted LRU when needed). */
  readonly cachedBlocks: number;
  readonly blockSizeTokens: number;
  /** Bytes of one block, K and V over all layers (int8 includes scales). */
  readonly bytesPerBlock: number;
  /** totalBlocks · bytesPerBlock: the pool's K/V bytes (reported the same with allocateStorage: false). */
  readonly totalBytes: number;
  /** usedBlocks · bytesPerBlock (cached blocks not counted). */
  readonly usedBytes: number;
  /** Sequences added and not yet freed. */
  readonly liveSequences: number;
  /** Σ sequence lengths (a shared token counts once per sequence). */
  readonly liveTokens: number;
  /** usedBlocks / totalBlocks. */
  readonly utilisation: number;
  /** Token slots in used blocks (usedBlocks · blockSizeTokens). */
  readonly slotsAllocated: number;
  /** Distinct used slots that hold a live token. */
  readonly slotsFilled: number;
  /** Internal fragmentation: (slotsAllocated − slotsFilled) / slotsAllocated (0 when nothing is allocated). Paging has no external fragmentation: any free block serves any sequence. */
  readonly fragmentation: number;
  /** Σ block-table lengths: the blocks the live sequences would need without sharing. */
  readonly logicalBlocks: number;
  /** Blocks referenced by more than one sequence. */
  readonly sharedBlocks: number;
  /** Blocks sharing saves: logicalBlocks − usedBlocks. */
  readonly sharingSavedBlocks: number;
  /** sharingSavedBlocks · bytesPerBlock. */
  readonly sharingSavedBytes: number;
  /** Prefix-cache lookups by `addSequence`, counted since creation or the last `resetPrefixStats()`. */
  readonly prefix: {
    /** Full prompt blocks looked up in the prefix cache. */
    readonly queriedBlocks: number;
    /** Of those, blocks found cached and attached without recompute. */
    readonly hitBlocks: number;
    /** hitBlocks / queriedBlocks (0 before any query). */
    readonly hitRate: number;
  };
  /** Cached blocks dropped so far, to make room for allocations or by `evictCached` (cumulative). */
  readonly evictions: number;
  /** Partial blocks copied before a write because they were shared or registered (cumulative). */
  readonly copyOnWrites: number;
}

function checkTokenIds(ids: ArrayLike<number>, argument: string): void {
  if (!ids || typeof ids.length !== 'number' || !Number.isInteger(ids.length) || ids.length < 0) throw new ValueError(`${argument} must be an array of token ids`, argument);
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!;
    if (!Number.isInteger(t) || t < -0x80000000 || t > 0x7fffffff) throw new ValueError(`${argument}[${i}] must be an int32 token id, got ${t}`, argument);
  }
}

function checkImages(images: readonly ImageSpan[], minOffset: number, argument: string): ImageSpan[] {
  if (!Array.isArray(images)) throw new ValueError(`${argument} must be an array of { hash, offset, length }`, argument);
  return images.map((im, i) => {
    if (!im || typeof im.hash !== 'string' || im.hash.length === 0) throw new ValueError(`${argument}[${i}].hash must be a non-empty content hash`, argument);
    if (!Number.isInteger(im.offset) || im.offset < minOffset) {
      throw new ValueError(`${argument}[${i}].offset must be an integer ≥ ${minOffset} (images cannot be added to tokens already in the sequence), got ${im.offset}`, argument);
    }
    if (!Number.isInteger(im.length) || im.length < 1) throw new ValueError(`${argument}[${i}].length must be a positive integer, got ${im.length}`, argument);
    return Object.freeze({ hash: im.hash, offset: im.offset, length: im.length });
  });
}

/**
 * Paged KV cache (vLLM's PagedAttention + automatic prefix caching): a fixed pool of blocks, one
 * block table per sequence, prefix hits that tell images apart by content hash, copy-on-write forks
 * and LRU eviction of cached blocks (docs/kvcache.md). K/V go in as [numLayers, numTokens, numKvHeads,
 * headDim] with `append`, or one layer at a time with `reserve` → `writeLayer` → `commit`; the paged
 * kernels read `storage` through the tables of `batch`.
 *
 * Only `reserve` and `append` allocate: when the pool (free plus evictable cached blocks) is too
 * small they throw OutOfBlocksError and change nothing. An unknown or freed id throws StateError.
 *
 * ```ts
 * const cache = new PagedKvCache({ numLayers: 28, numKvHeads: 4, headDim: 128, dtype: 'f16', capacityBytes: 4e9 });
 * const { id, cachedTokens } = cache.addSequence({ tokenIds: prompt, images: [image] });
 * cache.append(id, prompt.slice(cachedTokens), { k, v });  // k, v: [numLayers, n, numKvHeads, headDim]
 * cache.free(id);                                          // full blocks stay cached for later hits
 * ```
 */
export class PagedKvCache implements RotationSource {
  /** The validated options: defaults filled in, numBlocks resolved. */
  readonly plan: KvCachePlan;
  /** The Hadamard rotation of K and V (rotated int8 caches), else null. */
  readonly rotation: HadamardRotation | null;
  /** Block metadata (reference counts, free and cached queues, hash map), for inspection: changing it directly breaks the cache's accounting. */
  readonly pool: BlockPool;
  /** K's smoothing factors per layer (smoothK; null entries: not calibrated yet), else null. */
  get smoothing(): readonly (Float32Array | null)[] | null {
    return this.storage?.smoothing ?? null;
  }
  /** Block contents (null with allocateStorage: false). */
  readonly storage: KvBlockStorage | null;
  private readonly seqs = new Map<SeqId, Sequence>();
  private nextId = 1;
  private readonly rootHash: string;
  private queriedBlocks = 0;
  private hitBlocks = 0;
  private cow = 0;

  constructor(opts: PagedKvCacheOptions) {
    this.plan = planKvCache(opts);
    const p = this.plan;
    this.pool = new BlockPool(p.numBlocks);
    this.rotation = p.rotationSeed === null ? null : makeRotation(p.numLayers, p.numKvHeads, p.headDim, p.rotationSeed);
    this.storage = p.allocateStorage ? new KvBlockStorage(p.numLayers, p.numBlocks, p.blockSizeTokens, p.numKvHeads, p.headDim, p.dtype, this.rotation, opts.heap, p.smoothK, p.int8Grid ?? 'auto', p.kRounding ?? 'feedback') : null;
    this.rootHash = noneHash(p.hashSeed);
  }

  /**
   * Frees the block memory: in the CPU kernel heap when the cache was given one (`heap`), which garbage collection
   * does not reclaim, and any GPU copy. Reading or writing K/V afterwards throws StateError; sequence bookkeeping
   * without K/V still answers. Idempotent.
   */
  dispose(): void {
    this.storage?.dispose();
  }

  /** Tokens per block (plan.blockSizeTokens). */
  get blockSizeTokens(): number {
    return this.plan.blockSizeTokens;
  }

  /** Layers held (plan.numLayers). */
  get numLayers(): number {
    return this.plan.numLayers;
  }

  /** KV heads per layer (plan.numKvHeads). */
  get numKvHeads(): number {
    return this.plan.numKvHeads;
  }

  /** Channels per KV head (plan.headDim). */
  get headDim(): number {
    return this.plan.headDim;
  }

  // ------------------------------------------------------------------------------------------
  // Sequences

  private seq(id: SeqId, argument = 'id'): Sequence {
    const s = this.seqs.get(id);
    if (s) return s;
    if (typeof id !== 'number') throw new ValueError(`${argument} must be a sequence id (a number from addSequence), got ${JSON.stringify(id)} (${typeof id})`, argument);
    if (Number.isInteger(id) && id >= 1 && id < this.nextId) throw new StateError(`sequence ${id} was already freed (${argument})`);
    throw new StateError(`unknown sequence ${String(id)} (${argument}); live sequences: ${this.seqs.size}`);
  }

  /** Live sequence ids, in creation order. */
  sequences(): SeqId[] {
    return [...this.seqs.keys()];
  }

  /** Whether `id` is a live sequence (added and not freed); never throws. */
  has(id: SeqId): boolean {
    return this.seqs.has(id);
  }

  /**
   * Starts a sequence. With `tokenIds` and prefix caching on, the longest run of cached full
   * blocks of the prompt is attached (no recompute); at least the last prompt token is left to
   * compute so the model has logits. Returns the id and how many prompt tokens are already cached:
   * append `tokenIds.slice(cachedTokens)` with their K/V next.
   */
  addSequence(opts: AddSequenceOptions = {}): AddSequenceResult {
    if (!opts || typeof opts !== 'object') throw new ValueError(`addSequence takes an options object ({ tokenIds?, images?, salt? }), got ${opts === null ? 'null' : typeof opts}`, 'opts');
    checkOptionKeys(opts, optionNames<AddSequenceOptions>({ tokenIds: true, images: true, salt: true }), 'addSequence');
    const tokenIds = opts.tokenIds ?? [];
    checkTokenIds(tokenIds, 'tokenIds');
    const images = checkImages(opts.images ?? [], 0, 'images');
    const salt = opts.salt ?? null;
    if (salt !== null && typeof salt !== 'string') throw new ValueError('salt must be a string', 'salt');
    const s = new Sequence(this.nextId++, salt);
    s.images = images.sort((a, b) => a.offset - b.offset);
    const bs = this.plan.blockSizeTokens;
    if (this.plan.prefixCaching && tokenIds.length > 0) {
      const maxBlocks = Math.floor((tokenIds.length - 1) / bs);
      this.queriedBlocks += maxBlocks;
      const hits: number[] = [];
      let parent = this.rootHash;
      for (let i = 0; i < maxBlocks; i++) {
        const h = blockHash(parent, tokenIds, i * bs, (i + 1) * bs, this.extraKeys(s, i));
        const b = this.pool.lookup(h);
        if (b < 0) break;
        hits.push(b);
        s.blockHashes.push(h);
        parent = h;
      }
      this.hitBlocks += hits.length;
      for (const b of hits) { this.pool.incRef(b); s.pushBlock(b); }
      this.restage(s);
      s.pushTokens(Array.prototype.slice.call(tokenIds, 0, hits.length * bs) as number[]);
      s.committed = s.length;
    }
    this.seqs.set(s.id, s);
    return { id: s.id, cachedTokens: s.length };
  }

  private extraKeys(s: Sequence, block: number): ExtraKey[] {
    const bs = this.plan.blockSizeTokens, start = block * bs, end = start + bs;
    const out: ExtraKey[] = [];
    for (const im of s.images) {
      if (im.offset >= end) break;
      if (im.offset + im.length > start) out.push({ kind: 'image', hash: im.hash, offsetFromBlockStart: im.offset - start, length: im.length });
    }
    if (block === 0 && s.salt !== null) out.push({ kind: 'salt', salt: s.salt });
    return out;
  }

  /** Tokens in the sequence (committed and pending). */
  length(id: SeqId): number {
    return this.seq(id).length;
  }

  /** A copy of the sequence's block table (physical block ids of logical blocks 0, 1, …). */
  blockTable(id: SeqId): Int32Array {
    const s = this.seq(id);
    return s.blocks.slice(0, s.numBlocks);
  }

  /** A copy of the sequence's token ids. */
  tokenIds(id: SeqId): Int32Array {
    const s = this.seq(id);
    return s.tokens.slice(0, s.length);
  }

  /** Physical slot (block · bs + offset) of each token in [start, end) of the sequence (default: all), in order. */
  slotMapping(id: SeqId, start = 0, end?: number): Int32Array {
    const s = this.seq(id);
    const e = end ?? s.length;
    if (!Number.isInteger(start) || !Number.isInteger(e) || start < 0 || e > s.length || start > e) {
      if (!Number.isInteger(start) || !Number.isInteger(e)) throw new ValueError(`slot range bounds must be integers, got start ${JSON.stringify(start)}, end ${JSON.stringify(e)}`, Number.isInteger(start) ? 'end' : 'start');
      throw new ShapeError(`slot range [${start}, ${e}) is outside sequence ${id} of length ${s.length}`, 'start', 'seqLen');
    }
    const bs = this.plan.blockSizeTokens;
    const out = new Int32Array(e - start);
    for (let p = start; p < e; p++) out[p - start] = s.blocks[Math.floor(p / bs)]! * bs + (p % bs);
    return out;
  }

  /** Blocks held per live sequence (a shared block counts for each holder). */
  heldBy(): Map<SeqId, number> {
    const m = new Map<SeqId, number>();
    for (const [id, s] of this.seqs) m.set(id, s.numBlocks);
    return m;
  }

  private outOfBlocks(id: SeqId, need: number, tokens: number, what: string): OutOfBlocksError {
    const held = this.heldBy();
    const top = [...held].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([s, n]) => `seq ${s}: ${n}`).join(', ');
    const more = held.size > 8 ? `, … ${held.size - 8} more` : '';
    return new OutOfBlocksError(
      `${what} for sequence ${id} needs ${need} block(s) (${tokens} token(s)), but only ${this.pool.numFree} free + ${this.pool.numCached} cached of ${this.pool.numBlocks} blocks are available; ${this.pool.numUsed} used, held by ${held.size} sequence(s) [${top}${more}]`,
      need, this.pool.numAvailable, held,
    );
  }

  /**
   * Reserves slots for `tokenIds` at the end of the sequence and returns their physical slots
   * (block · bs + offset). The sequence grows now; write each layer's K/V with `writeLayer`, then
   * `commit` to publish full blocks to the prefix cache. All-or-nothing: when the pool cannot hold
   * the tokens, OutOfBlocksError is thrown and nothing changes.
   */
  reserve(id: SeqId, tokenIds: ArrayLike<number>, opts: { images?: readonly ImageSpan[] } = {}): Int32Array {
    const s = this.seq(id);
    if (s.committed !== s.length) throw new StateError(`sequence ${id} has ${s.length - s.committed} reserved token(s) not committed; commit (or truncate) before reserving more`);
    checkTokenIds(tokenIds, 'tokenIds');
    const images = checkImages(opts.images ?? [], s.length, 'images');
    const n = tokenIds.length;
    const bs = this.plan.blockSizeTokens;
    const L = s.length;
    const lastPartial = L % bs !== 0;
    const last = lastPartial ? s.blocks[s.numBlocks - 1]! : -1;
    const cow = lastPartial && n > 0 && (this.pool.refCount(last) > 1 || this.pool.hashOf(last) !== null);
    const fresh = Math.ceil((L + n) / bs) - Math.ceil(L / bs);
    const need = fresh + (cow ? 1 : 0);
    if (need > this.pool.numAvailable) throw this.outOfBlocks(id, need, n, `reserving ${n} token(s)`);
    if (images.length) s.images = [...s.images, ...images].sort((a, b) => a.offset - b.offset);
    s.written.clear();
    if (n === 0) return new Int32Array(0);
    if (cow) {
      const [nb] = this.pool.allocate(1);
      this.storage?.copyBlock(last, nb!);
      s.blocks[s.numBlocks - 1] = nb!;
      this.pool.decRef(last);
      this.cow++;
    }
    const partial = lastPartial ? s.blocks[s.numBlocks - 1]! : -1;
    const newBlocks = this.pool.allocate(fresh);
    for (const b of newBlocks) s.pushBlock(b);
    // int8: this write re-scales the partly filled block from its staged values, and a rollback to inside it may
    // follow (a rejected draft spanning further than two blocks): it stays staged with the new last two.
    this.restage(s, partial);
    s.pushTokens(tokenIds);
    return this.slotMapping(id, L, L + n);
  }

  /** Pending (reserved, uncommitted) tokens of a sequence. */
  pending(id: SeqId): number {
    const s = this.seq(id);
    return s.length - s.committed;
  }

  /**
   * Writes one layer's K and V for the sequence's pending tokens: k, v [numPending, numKvHeads,
   * headDim] (f32, f16 or bf16; same-dtype writes copy bits).
   */
  writeLayer(id: SeqId, layer: number, k: Tensor, v: Tensor): void {
    const s = this.seq(id);
    if (!this.storage) throw new UnsupportedError('this cache has no storage (allocateStorage: false)', 'allocateStorage: true');
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.plan.numLayers) throw new ValueError(`layer must be an integer in 0..${this.plan.numLayers - 1}, got ${layer}`, 'layer');
    this.storage.writeSlots(layer, this.slotMapping(id, s.committed, s.length), k, v);
    s.written.add(layer);
  }

  /**
   * Publishes the pending tokens: blocks that became full get their chained hash and, with prefix
   * caching, are registered for other sequences to hit. Call after every layer was written: on a cache
   * with storage, blocks holding tokens committed with a layer unwritten are never registered, so no other
   * sequence can hit K/V that were not written (a freed sequence's stale values).
   */
  commit(id: SeqId): void {
    const s = this.seq(id);
    const bs = this.plan.blockSizeTokens;
    if (this.storage && s.length > s.committed && s.written.size < this.plan.numLayers) {
      for (let b = Math.floor(s.committed / bs); b <= Math.floor((s.length - 1) / bs); b++) s.unwrittenBlocks.add(b);
    }
    const full = Math.floor(s.length / bs);
    for (let i = s.blockHashes.length; i < full; i++) {
      const parent = i === 0 ? this.rootHash : s.blockHashes[i - 1]!;
      const h = blockHash(parent, s.tokens, i * bs, (i + 1) * bs, this.extraKeys(s, i));
      s.blockHashes.push(h);
      if (this.plan.prefixCaching && !s.unwrittenBlocks.has(i)) this.pool.register(s.blocks[i]!, h);
    }
    s.committed = s.length;
    s.written.clear();
  }

  /**
   * Appends tokens with their K/V for every layer ([numLayers, n, numKvHeads, headDim]):
   * reserve → write each layer → commit. Without `kv` (metadata-only caches or simulations) the
   * slots are reserved and committed unwritten; on a cache with storage their blocks are then never
   * published to the prefix cache. All-or-nothing on OutOfBlocksError and bad shapes.
   */
  append(id: SeqId, tokenIds: ArrayLike<number>, kv?: KvInput, opts: { images?: readonly ImageSpan[] } = {}): Int32Array {
    const p = this.plan;
    if (kv) {
      for (const [t, name] of [[kv.k, 'k'], [kv.v, 'v']] as const) {
        if (!(t instanceof Tensor)) throw new ValueError(`${name} must be a Tensor`, name);
        const want = [p.numLayers, tokenIds?.length ?? 0, p.numKvHeads, p.headDim];
        const dims = ['numLayers', 'numTokens', 'numKvHeads', 'headDim'];
        if (t.rank !== 4) throw new ShapeError(`${name} must be 4-D [numLayers, numTokens, numKvHeads, headDim], got [${t.shape.join(', ')}]`, name);
        for (let d = 0; d < 4; d++) if (t.shape[d] !== want[d]) throw new ShapeError(`${name} has ${dims[d]} ${t.shape[d]}, expected ${want[d]}`, name, dims[d]);
      }
      if (!this.storage) throw new UnsupportedError('this cache has no storage (allocateStorage: false)', 'allocateStorage: true');
      // Before anything is reserved: a write that then failed would leave the tokens reserved and uncommitted.
      if (this.storage.disposed) throw new StateError('the KV cache was disposed: its blocks can no longer be written');
      if (p.dtype === 'int8') {
        for (const [t, name] of [[kv.k, 'k'], [kv.v, 'v']] as const) {
          const x = t.toFloat32();
          for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) throw new ValueError(`${name} has a non-finite value ${x[i]} at flat index ${i}; int8 KV needs finite values`, name);
        }
      }
    }
    const slots = this.reserve(id, tokenIds, opts);
    if (kv) {
      const s = this.seq(id);
      for (let l = 0; l < p.numLayers; l++) { this.storage!.writeSlots(l, slots, kv.k.select(0, l), kv.v.select(0, l)); s.written.add(l); }
    }
    this.commit(id);
    return slots;
  }

  /**
   * Forks a sequence (parallel sampling, beam search): the child shares every block (reference
   * counts +1) and copies on its first write into the shared partial block. Cannot run out of blocks.
   */
  fork(id: SeqId): SeqId {
    const s = this.seq(id);
    if (s.committed !== s.length) throw new StateError(`sequence ${id} has ${s.length - s.committed} reserved token(s) not committed; commit before forking`);
    const c = new Sequence(this.nextId++, s.salt);
    c.blocks = s.blocks.slice();
    c.numBlocks = s.numBlocks;
    c.tokens = s.tokens.slice();
    c.length = s.length;
    c.committed = s.committed;
    c.blockHashes = s.blockHashes.slice();
    c.images = s.images.slice();
    c.unwrittenBlocks = new Set(s.unwrittenBlocks);
    this.restage(c, ...s.staged);
    for (let i = 0; i < c.numBlocks; i++) this.pool.incRef(c.blocks[i]!);
    this.seqs.set(c.id, c);
    return c.id;
  }

  /**
   * Rolls the sequence back to `length` tokens (speculative decoding, beam pruning). Blocks past
   * the new end are released, last first. Cached content of a now-partial block is not modified:
   * the next write copies it first.
   */
  truncate(id: SeqId, length: number): void {
    const s = this.seq(id);
    if (!Number.isInteger(length) || length < 0 || length > s.length) throw new ValueError(`length must be an integer in 0..${s.length} (sequence ${id}), got ${JSON.stringify(length)}`, 'length');
    const bs = this.plan.blockSizeTokens;
    const keep = Math.ceil(length / bs);
    const released: number[] = [];
    for (let i = s.numBlocks - 1; i >= keep; i--) { this.pool.decRef(s.blocks[i]!); released.push(s.blocks[i]!); }
    // int8: the kept part of the last block may carry a scale that dropped tokens set; its next write checks.
    if (length % bs !== 0 && length < s.length) this.storage?.markTruncated(s.blocks[keep - 1]!);
    s.numBlocks = keep;
    // int8: blocks kept keep their staged values (the rollback may have ended inside any of them).
    this.restage(s, ...s.staged.filter((b) => !released.includes(b)));
    s.length = length;
    s.committed = Math.min(s.committed, length);
    s.blockHashes.length = Math.min(s.blockHashes.length, Math.floor(s.committed / bs));
    s.images = s.images.filter((im) => im.offset < length);
    for (const b of s.unwrittenBlocks) if (b >= keep) s.unwrittenBlocks.delete(b);
    if (s.committed === s.length) s.written.clear();
  }

  /**
   * Frees a sequence. Its blocks are released last block first, so among blocks that stay cached
   * the longest suffix is evicted first (vLLM). A second free throws StateError.
   */
  free(id: SeqId): void {
    const s = this.seq(id);
    for (let i = s.numBlocks - 1; i >= 0; i--) this.pool.decRef(s.blocks[i]!);
    s.numBlocks = 0;
    this.restage(s);
    this.seqs.delete(id);
  }

  /**
   * int8: how many sequences may still need each block's staged exact values (their last STAGED_TAIL_BLOCKS blocks,
   * and the partly filled block their latest write started in). A block's staged values are dropped when the count
   * reaches 0, so they live only while some sequence can still grow or roll back into the block.
   */
  private readonly stagedRefs = new Map<number, number>();

  /** Sets the blocks `s` keeps staged to its last STAGED_TAIL_BLOCKS blocks plus `extra` (int8; a no-op otherwise). */
  private restage(s: Sequence, ...extra: number[]): void {
    if (!this.storage || this.plan.dtype !== 'int8') return;
    const now = new Set<number>(extra.filter((b) => b >= 0));
    for (let i = Math.max(0, s.numBlocks - STAGED_TAIL_BLOCKS); i < s.numBlocks; i++) now.add(s.blocks[i]!);
    for (const b of now) this.stagedRefs.set(b, (this.stagedRefs.get(b) ?? 0) + 1);
    const settled: number[] = [];
    for (const b of s.staged) {
      const n = this.stagedRefs.get(b)! - 1;
      if (n > 0) this.stagedRefs.set(b, n); else { this.stagedRefs.delete(b); settled.push(b); }
    }
    s.staged = [...now];
    if (settled.length && !this.storage.disposed) this.storage.unstage(settled);
  }

  /** Drops up to `count` least recently released cached blocks (all by default). Returns how many. */
  evictCached(count = Infinity): number {
    if (!(count >= 0) || (count !== Infinity && !Number.isInteger(count))) throw new ValueError(`count must be an integer ≥ 0 (or Infinity), got ${typeof count === 'number' ? count : JSON.stringify(count)}`, 'count');
    return this.pool.evict(count);
  }

  /**
   * Block tables and lengths of a batch of sequences, padded to the longest table:
   * blockTables [numSeqs, maxBlocksPerSeq] int32 (0 past a sequence's blocks), seqLens [numSeqs].
   */
  batch(ids: readonly SeqId[]): BatchTables {
    if (!Array.isArray(ids)) throw new ValueError('ids must be an array of sequence ids', 'ids');
    const seqs = ids.map((id, i) => this.seq(id, `ids[${i}]`));
    const maxBlocksPerSeq = Math.max(1, ...seqs.map((s) => s.numBlocks));
    const blockTables = new Int32Array(seqs.length * maxBlocksPerSeq);
    const seqLens = new Int32Array(seqs.length);
    seqs.forEach((s, i) => {
      blockTables.set(s.blocks.subarray(0, s.numBlocks), i * maxBlocksPerSeq);
      seqLens[i] = s.length;
    });
    return { blockTables, maxBlocksPerSeq, seqLens };
  }

  // ------------------------------------------------------------------------------------------
  // Accounting

  /** A snapshot of the accounting (blocks, bytes, fragmentation, sharing, prefix hits); O(numBlocks + Σ table lengths). */
  stats(): KvCacheStats {
    const p = this.plan, pool = this.pool, bs = p.blockSizeTokens;
    const fill = new Int32Array(p.numBlocks);
    let logical = 0, liveTokens = 0;
    for (const s of this.seqs.values()) {
      logical += s.numBlocks;
      liveTokens += s.length;
      for (let i = 0; i < s.numBlocks; i++) {
        const f = Math.min(bs, s.length - i * bs), b = s.blocks[i]!;
        if (f > fill[b]!) fill[b] = f;
      }
    }
    let filled = 0, shared = 0;
    for (let b = 0; b < p.numBlocks; b++) {
      filled += fill[b]!;
      if (pool.refCount(b) > 1) shared++;
    }
    const used = pool.numUsed;
    const allocated = used * bs;
    return {
      totalBlocks: p.numBlocks, freeBlocks: pool.numFree, usedBlocks: used, cachedBlocks: pool.numCached,
      blockSizeTokens: bs, bytesPerBlock: p.bytesPerBlock, totalBytes: p.numBlocks * p.bytesPerBlock, usedBytes: used * p.bytesPerBlock,
      liveSequences: this.seqs.size, liveTokens, utilisation: used / p.numBlocks,
      slotsAllocated: allocated, slotsFilled: filled, fragmentation: allocated ? (allocated - filled) / allocated : 0,
      logicalBlocks: logical, sharedBlocks: shared, sharingSavedBlocks: logical - used, sharingSavedBytes: (logical - used) * p.bytesPerBlock,
      prefix: { queriedBlocks: this.queriedBlocks, hitBlocks: this.hitBlocks, hitRate: this.queriedBlocks ? this.hitBlocks / this.queriedBlocks : 0 },
      evictions: pool.evictions, copyOnWrites: this.cow,
    };
  }

  /** Resets the prefix hit counters (not the cache). */
  resetPrefixStats(): void {
    this.queriedBlocks = 0;
    this.hitBlocks = 0;
  }

  /**
   * Verifies every invariant (O(blocks + Σ table lengths)): the pool's own checks (free + used +
   * cached = total, queues, hash map), each block's reference count equals the number of table
   * entries naming it, and tables cover exactly ⌈length / bs⌉ blocks. Throws on violation; for
   * tests and debugging.
   */
  checkInvariants(): { free: number; used: number; cached: number } {
    const acc = this.pool.checkInvariants();
    const refs = new Int32Array(this.plan.numBlocks);
    const bs = this.plan.blockSizeTokens;
    for (const s of this.seqs.values()) {
      assert(s.numBlocks === Math.ceil(s.length / bs), `sequence ${s.id}: ${s.numBlocks} blocks for ${s.length} tokens`);
      assert(s.blockHashes.length <= Math.floor(s.committed / bs), `sequence ${s.id}: hashes past its committed tokens`);
      for (let i = 0; i < s.numBlocks; i++) refs[s.blocks[i]!]!++;
    }
    for (let b = 0; b < this.plan.numBlocks; b++) {
      assert(refs[b] === this.pool.refCount(b), `block ${b}: refCount ${this.pool.refCount(b)} but ${refs[b]} table entries`);
    }
    return acc;
  }
}
