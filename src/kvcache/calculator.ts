/**
 * KV-cache sizing for the cache's users: MHA / GQA / MQA side by side, and the memory waste of
 * paged allocation against contiguous max-length reservation. The byte arithmetic itself is the
 * cost model's (`kvCacheSize` in cost/kv-cache.ts), so the CLI, the planner and the pool agree:
 *
 *   bytesPerToken = 2 (K and V) · numLayers · numKvHeads · headDim · bytes(dtype)
 *   paged block   = bytesPerToken · blockSizeTokens (+ int8: 2 · numLayers · numKvHeads · 4 bytes of scales)
 *
 * Example (the seed note's, corrected): 32 layers, 32 heads, headDim 128, f16, 2,112 tokens →
 * MHA 524,288 B/token and 1,107,296,256 B (1.11 GB) per sequence — not 550 MB; GQA with 8 KV
 * heads 276.8 MB; MQA 34.6 MB.
 */
import { ValueError, requireInt } from '../errors.js';
import { type KvCacheDType, kvCacheSize } from '../cost/kv-cache.js';

/** One row of `kvVariants`: a model's KV bytes under one attention variant. */
export interface AttentionVariantKv {
  /** 'MHA': numKvHeads = numHeads; 'GQA': the given numKvHeads; 'MQA': one KV head. */
  readonly variant: 'MHA' | 'GQA' | 'MQA';
  readonly numKvHeads: number;
  /** K + V bytes per token over all layers (int8 scales excluded). */
  readonly bytesPerToken: number;
  /** Bytes of one sequence of seqLen tokens: contiguous, or whole blocks (scales included) when blockSizeTokens is given or dtype is int8 (blocks of 16 by default). */
  readonly bytesPerSequence: number;
  /** MHA's bytes over these (per sequence; per token when seqLen is 0): 1 for MHA. */
  readonly reduction: number;
}

/**
 * KV bytes of one model as MHA (numKvHeads = numHeads), GQA (the given numKvHeads) and MQA (one
 * KV head), per token and per sequence of `seqLen` tokens.
 */
export function kvVariants(opts: { numLayers: number; numHeads: number; numKvHeads: number; headDim: number; dtype?: KvCacheDType; seqLen: number; blockSizeTokens?: number }): AttentionVariantKv[] {
  const H = requireInt(opts.numHeads, 'numHeads', 1);
  const Hk = requireInt(opts.numKvHeads, 'numKvHeads', 1);
  if (H % Hk !== 0) throw new ValueError(`numHeads (${H}) must be a multiple of numKvHeads (${Hk})`, 'numKvHeads');
  const rows = ([['MHA', H], ['GQA', Hk], ['MQA', 1]] as const).map(([variant, heads]) => {
    const s = kvCacheSize({ numLayers: opts.numLayers, numKvHeads: heads, headDim: opts.headDim, seqLen: opts.seqLen, dtype: opts.dtype, blockSizeTokens: opts.blockSizeTokens });
    return { variant, numKvHeads: heads, bytesPerToken: s.bytesPerToken, bytesPerSequence: s.totalBytes };
  });
  // By bytes per sequence, or per token where a sequence holds none (seqLen 0): MHA's own is 1 either way.
  const per = (r: (typeof rows)[number]) => (rows[0]!.bytesPerSequence > 0 ? r.bytesPerSequence : r.bytesPerToken);
  return rows.map((r) => ({ ...r, reduction: per(rows[0]!) / per(r) }));
}

/** `memoryWaste`'s result: paged allocation against contiguous reservation for the same lengths. */
export interface WasteReport {
  /** Sequence lengths given. */
  readonly sequences: number;
  /** Σ lengths: the slots that hold a token. */
  readonly tokens: number;
  /** ⌈length / blockSizeTokens⌉ blocks per sequence; waste = unusedSlots / allocatedSlots (0 when nothing is allocated). */
  readonly paged: { readonly blockSizeTokens: number; readonly allocatedSlots: number; readonly unusedSlots: number; readonly waste: number };
  /** maxLength slots reserved per sequence; waste as for paged. */
  readonly contiguous: { readonly maxLength: number; readonly allocatedSlots: number; readonly unusedSlots: number; readonly waste: number };
}

/**
 * Memory waste (allocated-but-unused slots / allocated) of a set of sequence lengths, paged with
 * `blockSizeTokens` (only each last block is partly empty) against contiguous reservation of
 * `maxLength` slots per sequence (the pre-vLLM practice). Arithmetic only; `simulateWaste`
 * measures the same on a live pool.
 */
export function memoryWaste(lengths: ArrayLike<number>, opts: { blockSizeTokens?: number; maxLength: number }): WasteReport {
  const bs = requireInt(opts.blockSizeTokens ?? 16, 'blockSizeTokens', 1);
  const maxLength = requireInt(opts.maxLength, 'maxLength', 1);
  let tokens = 0, paged = 0;
  for (let i = 0; i < lengths.length; i++) {
    const n = lengths[i]!;
    if (!Number.isInteger(n) || n < 0 || n > maxLength) throw new ValueError(`lengths[${i}] must be an integer in 0..maxLength (${maxLength}), got ${n}`, 'lengths');
    tokens += n;
    paged += Math.ceil(n / bs) * bs;
  }
  const contiguous = lengths.length * maxLength;
  return {
    sequences: lengths.length, tokens,
    paged: { blockSizeTokens: bs, allocatedSlots: paged, unusedSlots: paged - tokens, waste: paged ? (paged - tokens) / paged : 0 },
    contiguous: { maxLength, allocatedSlots: contiguous, unusedSlots: contiguous - tokens, waste: contiguous ? (contiguous - tokens) / contiguous : 0 },
  };
}
