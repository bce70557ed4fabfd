/**
 * KV-cache sizing: contiguous, paged (with the last block's waste), shared image prefixes, int8
 * blocks with scales, and the largest batch that fits a memory size. Bytes, decimal prefixes when
 * printed (1 MB = 10^6 bytes).
 *
 *   contiguous  2 · layers · kvHeads · seqLen · headDim · bytesPerElem · batch      (K and V)
 *   paged       blocks = ⌈tokens / blockSizeTokens⌉ per sequence; the last block's empty slots are
 *               allocated but unused (waste)
 *   shared      a prefix of sharedPrefixTokens (an image and its prompt) stored once for the batch;
 *               paged caches share only full blocks (vLLM hashes and reuses full blocks only), so the
 *               prefix's partial last block is private to every sequence
 *   int8        1 byte per element plus one f32 scale per (block, KV head) for K and for V, per layer
 *               (blocks of blockSizeTokens, default 16)
 * MHA, GQA and MQA differ only in kvHeads (numHeads, numHeads/g, 1).
 */
import { DTypeError, ValueError, checkOptionKeys, optionNames } from '../errors.js';
import { checkHeads, dim, dimOr, oneOf } from './validate.js';
import { parseBytes } from './units.js';

/** Element type of a KV cache: 4, 2, 2 or 1 bytes; int8 adds f32 scales per block and is always paged. */
export type KvCacheDType = 'f32' | 'f16' | 'bf16' | 'int8';
/** The KV-cache dtypes `kvCacheSize` accepts. */
export const KV_CACHE_DTYPES: readonly KvCacheDType[] = ['f32', 'f16', 'bf16', 'int8'];

/** vLLM's default block size (tokens per block). */
export const DEFAULT_KV_BLOCK_SIZE = 16;

/** A KV cache to size: the model's K/V dims, the sequences, and how they are stored. */
export interface KvCacheInput {
  /** Layers, each with its own K and V. */
  numLayers: number;
  /** K/V heads per layer: numHeads for MHA, fewer for GQA, 1 for MQA. */
  numKvHeads: number;
  /** Head dim of K (and of V unless headDimV). */
  headDim: number;
  /** Value head dim; default headDim. */
  headDimV?: number;
  /** Tokens per sequence (visual + text, prompt + generated). */
  seqLen: number;
  /** Sequences; default 1. */
  batch?: number;
  /** Default 'f16'. */
  dtype?: KvCacheDType;
  /** Paged cache with this block size (tokens). int8 defaults to 16; others to contiguous. */
  blockSizeTokens?: number;
  /** Leading tokens identical in every sequence (e.g. a shared image + system prompt), stored once. */
  sharedPrefixTokens?: number;
  /** Only to check GQA divisibility when given. */
  numHeads?: number;
}

/** Bytes of a KV cache (decimal prefixes when printed: 1 MB = 10^6 bytes). */
export interface KvCacheSize {
  /** The dtype used ('f16' when not given). */
  dtype: KvCacheDType;
  /** K + V bytes of one token across all layers, excluding int8 scales. */
  bytesPerToken: number;
  /** K + V bytes of one layer for the whole batch (contiguous, unshared): 2·kvHeads·seqLen·headDim·bpe·batch. */
  perLayerBytes: number;
  /** All layers, contiguous, no sharing: 2·layers·kvHeads·seqLen·headDim·bpe·batch. */
  contiguousBytes: number;
  /** Paging details (absent for a contiguous cache). */
  paged?: {
    blockSizeTokens: number;
    /** Blocks one sequence holds (shared prefix blocks excluded when sharing). */
    blocksPerSequence: number;
    /** Shared full blocks, stored once. */
    sharedBlocks: number;
    /** sharedBlocks + blocksPerSequence · batch. */
    totalBlocks: number;
    /** Bytes of one block across all layers (incl. int8 scales). */
    blockBytes: number;
    /** Allocated but unused token slots (last blocks' waste), over the batch. */
    wasteTokens: number;
    /** wasteTokens · bytesPerToken (int8 scales not included). */
    wasteBytes: number;
  };
  /** Tokens stored once for the batch thanks to prefix sharing. */
  sharedTokens: number;
  /** int8 scale bytes included in totalBytes. */
  scaleBytes: number;
  /** What the cache allocates: paging, waste, sharing and scales included. */
  totalBytes: number;
  /** Bytes each sequence needs beyond the shared part, paging waste and int8 scales included (for batch sizing). */
  perSequenceBytes: number;
  /** Shared bytes (stored once). */
  sharedBytes: number;
}

const BPE: Record<KvCacheDType, number> = { f32: 4, f16: 2, bf16: 2, int8: 1 };

const KV_INPUT_KEYS = optionNames<KvCacheInput>({
  numLayers: true, numKvHeads: true, headDim: true, headDimV: true, seqLen: true, batch: true, dtype: true, blockSizeTokens: true, sharedPrefixTokens: true, numHeads: true,
});

/** Size of a KV cache (see the module comment for the formulas). */
export function kvCacheSize(input: KvCacheInput): KvCacheSize {
  if (!input || typeof input !== 'object') throw new ValueError('kv cache input must be an object', 'kv');
  checkOptionKeys(input, KV_INPUT_KEYS, 'kvCacheSize');
  const layers = dim(input.numLayers, 'numLayers');
  const kvHeads = dim(input.numKvHeads, 'numKvHeads');
  if (input.numHeads !== undefined) checkHeads(dim(input.numHeads, 'numHeads'), kvHeads);
  const headDim = dim(input.headDim, 'headDim');
  const headDimV = dimOr(input.headDimV, headDim, 'headDimV');
  const seqLen = dim(input.seqLen, 'seqLen', { min: 0 });
  const batch = dimOr(input.batch, 1, 'batch', { min: 0 });
  const dtype = input.dtype === undefined ? 'f16' : oneOf(input.dtype, KV_CACHE_DTYPES, 'dtype', DTypeError);
  const bpe = BPE[dtype];
  const shared = dimOr(input.sharedPrefixTokens, 0, 'sharedPrefixTokens', { min: 0 });
  if (shared > seqLen) throw new ValueError(`sharedPrefixTokens (${shared}) exceeds seqLen (${seqLen})`, 'sharedPrefixTokens');
  const blockSize = input.blockSizeTokens !== undefined ? dim(input.blockSizeTokens, 'blockSizeTokens') : dtype === 'int8' ? DEFAULT_KV_BLOCK_SIZE : 0;

  const bytesPerToken = layers * kvHeads * (headDim + headDimV) * bpe;
  const perLayerBytes = kvHeads * (headDim + headDimV) * bpe * seqLen * batch;
  const contiguousBytes = bytesPerToken * seqLen * batch;
  // Byte counts are exact integers below 2^53 (9 PB): past it they would round silently.
  if (!(contiguousBytes <= Number.MAX_SAFE_INTEGER)) {
    throw new ValueError(`the KV cache would hold ${contiguousBytes.toExponential(3)} bytes (numLayers ${layers} × numKvHeads ${kvHeads} × (headDim ${headDim} + headDimV ${headDimV}) × ${bpe} B × seqLen ${seqLen} × batch ${batch}), past 2^53 where byte counts stay exact`, 'seqLen');
  }

  if (!blockSize) {
    const sharedBytes = batch > 0 ? bytesPerToken * shared : 0;
    const perSequenceBytes = bytesPerToken * (seqLen - shared);
    return {
      dtype, bytesPerToken, perLayerBytes, contiguousBytes, sharedTokens: batch > 0 ? shared : 0, scaleBytes: 0,
      totalBytes: sharedBytes + perSequenceBytes * batch, perSequenceBytes, sharedBytes,
    };
  }
  // int8 scales: one f32 per (block, KV head) for K and one for V, per layer.
  const scalePerBlock = dtype === 'int8' ? layers * kvHeads * 2 * 4 : 0;
  const blockBytes = bytesPerToken * blockSize + scalePerBlock;
  const sharedBlocks = batch > 0 ? Math.floor(shared / blockSize) : 0;
  const privateTokens = seqLen - sharedBlocks * blockSize;
  const blocksPerSequence = Math.ceil(privateTokens / blockSize);
  const totalBlocks = sharedBlocks + blocksPerSequence * batch;
  const wasteTokens = (blocksPerSequence * blockSize - privateTokens) * batch;
  const sharedBytes = sharedBlocks * blockBytes;
  const perSequenceBytes = blocksPerSequence * blockBytes;
  if (!(totalBlocks * blockBytes <= Number.MAX_SAFE_INTEGER)) {
    throw new ValueError(`the paged KV cache would hold ${(totalBlocks * blockBytes).toExponential(3)} bytes (${totalBlocks} blocks of ${blockBytes} B), past 2^53 where byte counts stay exact`, 'blockSizeTokens');
  }
  return {
    dtype, bytesPerToken, perLayerBytes, contiguousBytes,
    paged: { blockSizeTokens: blockSize, blocksPerSequence, sharedBlocks, totalBlocks, blockBytes, wasteTokens, wasteBytes: wasteTokens * bytesPerToken },
    sharedTokens: sharedBlocks * blockSize, scaleBytes: totalBlocks * scalePerBlock,
    totalBytes: totalBlocks * blockBytes, perSequenceBytes, sharedBytes,
  };
}

/** What `maxBatchForMemory` returns; bytes. */
export interface MaxBatchResult {
  /** Largest batch whose KV cache fits (0 if not even one sequence fits). */
  batch: number;
  /** Bytes available to the KV cache (memory − reserved). */
  availableBytes: number;
  /** KV bytes at that batch. */
  usedBytes: number;
  /** Bytes each sequence adds (KvCacheSize.perSequenceBytes). */
  perSequenceBytes: number;
  /** Shared-prefix bytes, stored once whatever the batch. */
  sharedBytes: number;
}

/**
 * The largest batch whose KV cache fits `memoryBytes` after `reservedBytes` (weights, activations).
 * `memoryBytes` may be a number or a size string (`80GB`, `24GiB`).
 */
export function maxBatchForMemory(input: Omit<KvCacheInput, 'batch'> & { memoryBytes: number | string; reservedBytes?: number | string }): MaxBatchResult {
  if (!input || typeof input !== 'object') throw new ValueError('maxBatchForMemory input must be an object', 'input');
  checkOptionKeys(input, [...KV_INPUT_KEYS.filter((k) => k !== 'batch'), 'memoryBytes', 'reservedBytes'], 'maxBatchForMemory');
  const memory = parseBytes(input.memoryBytes, 'memoryBytes');
  const reserved = input.reservedBytes === undefined ? 0 : parseBytes(input.reservedBytes, 'reservedBytes');
  const { memoryBytes: _m, reservedBytes: _r, ...kv } = input;
  const one = kvCacheSize({ ...kv, batch: 1 });
  if (reserved > memory) throw new ValueError(`reservedBytes (${reserved}) exceeds memoryBytes (${memory})`, 'reservedBytes');
  const available = memory - reserved;
  const per = one.perSequenceBytes, sharedBytes = one.sharedBytes;
  let batch = 0;
  if (available >= sharedBytes + per) batch = per > 0 ? Math.floor((available - sharedBytes) / per) : Number.MAX_SAFE_INTEGER;
  // With nothing per sequence (all of it a shared prefix) every batch holds the same bytes: batch 1's.
  const used = batch > 0 ? kvCacheSize({ ...kv, batch: per > 0 ? batch : 1 }).totalBytes : 0;
  return { batch, availableBytes: available, usedBytes: used, perSequenceBytes: per, sharedBytes };
}
