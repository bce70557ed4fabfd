/**
 * KV-cache sizing: bytes per token and per sequence for MHA, GQA and MQA, and the memory waste of
 * paged allocation against contiguous max-length reservation. Pure arithmetic, no allocation.
 *
 *   bytesPerToken = 2 (K and V) · numLayers · numKvHeads · headDim · bytes(dtype)
 *                   [+ int8: 2 · numLayers · numKvHeads · 4 bytes of scale per block, amortised over its tokens]
 *
 * Example (the seed note's, corrected): 32 layers, 32 heads, headDim 128, f16, 2,112 tokens →
 * MHA 2·32·32·128·2 = 524,288 B/token, 1,107,296,256 B (1.11 GB) per sequence; GQA with 8 KV heads
 * 276.8 MB; MQA 34.6 MB.
 */
import { ValueError, requireInt } from '../errors.js';
import type { KvDType } from './kv-storage.js';

export interface KvModelShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  /** f32, f16, bf16 (2 bytes, like f16) or int8. */
  dtype: KvDType | 'bf16';
  /** Tokens per block (default 16); used for paged rounding and int8 scale amortisation. */
  blockSizeTokens?: number;
}

function elemBytes(dtype: KvModelShape['dtype']): number {
  switch (dtype) {
    case 'f32': return 4;
    case 'f16': case 'bf16': return 2;
    case 'int8': return 1;
    default: throw new ValueError(`dtype must be f32, f16, bf16 or int8, got ${String(dtype)}`, 'dtype');
  }
}

function checkShape(s: KvModelShape): { L: number; Hk: number; D: number; bs: number; e: number } {
  return {
    L: requireInt(s.numLayers, 'numLayers', 1), Hk: requireInt(s.numKvHeads, 'numKvHeads', 1), D: requireInt(s.headDim, 'headDim', 1),
    bs: requireInt(s.blockSizeTokens ?? 16, 'blockSizeTokens', 1), e: elemBytes(s.dtype),
  };
}

/** Bytes of K and V per token over all layers (int8 includes its per-block scales, amortised). */
export function kvBytesPerToken(shape: KvModelShape): number {
  const { L, Hk, D, bs, e } = checkShape(shape);
  return 2 * L * Hk * D * e + (shape.dtype === 'int8' ? (2 * L * Hk * 4) / bs : 0);
}

/** Bytes of one block over all layers. */
export function kvBytesPerBlock(shape: KvModelShape): number {
  const { L, Hk, D, bs, e } = checkShape(shape);
  return 2 * L * (bs * Hk * D * e + (shape.dtype === 'int8' ? Hk * 4 : 0));
}

export interface SequenceBytes {
  readonly tokens: number;
  /** Blocks a paged cache allocates (⌈tokens / bs⌉); 0 for contiguous. */
  readonly blocks: number;
  /** Slots reserved: blocks · bs (paged) or the reservation length (contiguous). */
  readonly slots: number;
  readonly bytes: number;
  /** (slots − tokens) / slots. */
  readonly waste: number;
}

/**
 * Bytes one sequence of `seqLen` tokens occupies: paged (rounded up to whole blocks, default) or
 * contiguous with `reserveTokens` slots reserved up front (default seqLen).
 */
export function kvBytesPerSequence(shape: KvModelShape, seqLen: number, opts: { paged?: boolean; reserveTokens?: number } = {}): SequenceBytes {
  const { bs } = checkShape(shape);
  requireInt(seqLen, 'seqLen', 0);
  if (opts.paged ?? true) {
    const blocks = Math.ceil(seqLen / bs);
    return { tokens: seqLen, blocks, slots: blocks * bs, bytes: blocks * kvBytesPerBlock(shape), waste: blocks ? (blocks * bs - seqLen) / (blocks * bs) : 0 };
  }
  const reserve = requireInt(opts.reserveTokens ?? seqLen, 'reserveTokens', seqLen);
  const perToken = kvBytesPerToken({ ...shape, blockSizeTokens: Math.max(1, reserve) });
  return { tokens: seqLen, blocks: 0, slots: reserve, bytes: reserve * perToken, waste: reserve ? (reserve - seqLen) / reserve : 0 };
}

export interface AttentionVariantKv {
  readonly variant: 'MHA' | 'GQA' | 'MQA';
  readonly numKvHeads: number;
  readonly bytesPerToken: number;
  readonly bytesPerSequence: number;
  /** MHA bytes / these bytes. */
  readonly reduction: number;
}

/**
 * KV bytes of the same model as MHA (numKvHeads = numHeads), GQA (the given numKvHeads) and MQA
 * (one KV head), for sequences of `seqLen` tokens (contiguous, exact tokens).
 */
export function kvVariants(opts: { numLayers: number; numHeads: number; numKvHeads: number; headDim: number; dtype: KvModelShape['dtype']; seqLen: number }): AttentionVariantKv[] {
  const H = requireInt(opts.numHeads, 'numHeads', 1);
  const Hk = requireInt(opts.numKvHeads, 'numKvHeads', 1);
  if (H % Hk !== 0) throw new ValueError(`numHeads (${H}) must be a multiple of numKvHeads (${Hk})`, 'numKvHeads');
  const seqLen = requireInt(opts.seqLen, 'seqLen', 0);
  const row = (variant: AttentionVariantKv['variant'], heads: number) => {
    const bpt = kvBytesPerToken({ numLayers: opts.numLayers, numKvHeads: heads, headDim: opts.headDim, dtype: opts.dtype });
    return { variant, numKvHeads: heads, bytesPerToken: bpt, bytesPerSequence: bpt * seqLen, reduction: H / heads };
  };
  return [row('MHA', H), row('GQA', Hk), row('MQA', 1)];
}

export interface WasteReport {
  readonly sequences: number;
  readonly tokens: number;
  readonly paged: { readonly blockSizeTokens: number; readonly allocatedSlots: number; readonly unusedSlots: number; readonly waste: number };
  readonly contiguous: { readonly maxLength: number; readonly allocatedSlots: number; readonly unusedSlots: number; readonly waste: number };
}

/**
 * Memory waste (allocated-but-unused slots / allocated) of a set of sequence lengths, paged with
 * `blockSizeTokens` against contiguous reservation of `maxLength` slots per sequence (the
 * pre-vLLM practice). Arithmetic only; `simulateWaste` measures the same on a live pool.
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
