/**
 * The benchmark shapes of issue 2 (and the FLOP convention), shared by the CPU and WebGPU benches.
 *
 * FLOPs: 4·B·H·Sq·Sk·d (2 for QKᵀ, 2 for PV; d = (headDim + headDimV)/2), halved for causal when
 * Sq = Sk. Block-sparse shapes report both the dense-equivalent count and the visible count.
 */
import { type Mask, blockSparse, causal as causalMask, mulberry32 } from '../../src/index.js';

export interface AttentionShape {
  name: string;
  batch: number;
  numHeads: number;
  numKvHeads: number;
  seqLenQ: number;
  seqLenK: number;
  headDim: number;
  headDimV: number;
  causal: boolean;
  /** Block-sparse mask: this fraction of blockSize×blockSize blocks is dropped (diagonal kept), seeded. */
  blockSparse?: { sparsity: number; blockSize: number; seed: number };
  /** What the shape stands for. */
  note: string;
}

function shape(name: string, s: Partial<AttentionShape> & Pick<AttentionShape, 'numHeads' | 'seqLenQ' | 'headDim'>, note: string): AttentionShape {
  return {
    name, batch: s.batch ?? 1, numHeads: s.numHeads, numKvHeads: s.numKvHeads ?? s.numHeads,
    seqLenQ: s.seqLenQ, seqLenK: s.seqLenK ?? s.seqLenQ, headDim: s.headDim, headDimV: s.headDimV ?? s.headDim,
    causal: s.causal ?? false, ...(s.blockSparse ? { blockSparse: s.blockSparse } : {}), note,
  };
}

/** Issue 2's shapes, in its order. */
export const ISSUE2_SHAPES: readonly AttentionShape[] = [
  shape('vitL14-336', { batch: 1, numHeads: 16, seqLenQ: 577, headDim: 64 }, 'CLIP ViT-L/14 at 336 px: 24×24 patches + CLS'),
  shape('siglip-384', { numHeads: 16, seqLenQ: 729, headDim: 72 }, 'SigLIP so400m at 384 px: 27×27 patches'),
  shape('qwen2vl-1024px', { numHeads: 16, seqLenQ: 5329, headDim: 80 }, 'Qwen2-VL vision tower on a 1024-px image: 73×73 patches'),
  shape('prefill-2k-gqa', { numHeads: 32, numKvHeads: 8, seqLenQ: 2048, headDim: 128, causal: true }, 'LLM prefill, 2k tokens, GQA 32/8, causal'),
  shape('decode-kv4k', { numHeads: 32, numKvHeads: 8, seqLenQ: 1, seqLenK: 4096, headDim: 128 }, 'LLM decode step over a 4k KV cache, GQA 32/8'),
  shape('arrcoc-xattn', { numHeads: 8, seqLenQ: 32, seqLenK: 196, headDim: 64 }, 'ARR-COC cross-attention: 32 queries over 14×14 patches'),
  shape('blocksparse-4k', { numHeads: 8, seqLenQ: 4096, headDim: 64, blockSparse: { sparsity: 0.9, blockSize: 64, seed: 2 } }, '90% block-sparse (64-blocks, seeded, diagonal kept), vs our dense speed'),
];

/** Further named shapes, run only when --shapes names them. */
export const EXTRA_SHAPES: readonly AttentionShape[] = [
  shape('decode-kv100', { numHeads: 32, numKvHeads: 8, seqLenQ: 1, seqLenK: 100, headDim: 128 }, 'LLM decode step over a short KV (the first tokens of a generation), GQA 32/8'),
];

/** Dense-equivalent FLOPs by the issue's convention (causal halved when Sq = Sk). */
export function attentionFlops(s: AttentionShape): number {
  const f = 2 * s.batch * s.numHeads * s.seqLenQ * s.seqLenK * (s.headDim + s.headDimV);
  return s.causal && s.seqLenQ === s.seqLenK ? f / 2 : f;
}

/** Bytes of K and V (f32) a pass reads at least once: the decode bandwidth denominator. */
export function kvBytes(s: AttentionShape): number {
  return 4 * s.batch * s.seqLenK * s.numKvHeads * (s.headDim + s.headDimV);
}

/**
 * The block layout of a block-sparse shape: exactly round((1 − sparsity)·blocks²) blocks kept, the
 * diagonal always among them, the rest drawn without replacement by a seeded generator.
 */
export function blockLayout(s: AttentionShape): { layout: Uint8Array; rows: number; cols: number; kept: number } {
  const bs = s.blockSparse!;
  const rows = Math.ceil(s.seqLenQ / bs.blockSize), cols = Math.ceil(s.seqLenK / bs.blockSize);
  const layout = new Uint8Array(rows * cols);
  const diag = Math.min(rows, cols);
  for (let i = 0; i < diag; i++) layout[i * cols + i] = 1;
  const target = Math.max(diag, Math.round((1 - bs.sparsity) * rows * cols));
  const rand = mulberry32(bs.seed);
  const free: number[] = [];
  for (let i = 0; i < rows * cols; i++) if (!layout[i]) free.push(i);
  for (let n = diag; n < target; n++) {
    const pick = Math.floor(rand() * free.length);
    layout[free[pick]!] = 1;
    free[pick] = free[free.length - 1]!;
    free.pop();
  }
  return { layout, rows, cols, kept: target };
}

/** The mask a shape runs with (null: dense, unmasked). */
export function shapeMask(s: AttentionShape): Mask | null {
  if (s.blockSparse) {
    const { layout, rows, cols } = blockLayout(s);
    const m = blockSparse(layout, s.blockSparse.blockSize, [rows, cols]);
    return s.causal ? causalMask().and(m) : m;
  }
  return s.causal ? causalMask() : null;
}

/** Fraction of (query, key) pairs the mask lets through (1 for dense; ~0.5 for causal). */
export function visibleFraction(s: AttentionShape, mask: Mask | null): number {
  if (!mask) return 1;
  const ctx = { seqLenQ: s.seqLenQ, seqLenK: s.seqLenK };
  let n = 0;
  for (let i = 0; i < s.seqLenQ; i++) for (let j = 0; j < s.seqLenK; j++) if (mask.allows(i, j, ctx)) n++;
  return n / (s.seqLenQ * s.seqLenK);
}

/** "B1 H16 Sq577 Sk577 d64" */
export function describeShape(s: AttentionShape): string {
  const h = s.numKvHeads === s.numHeads ? `H${s.numHeads}` : `H${s.numHeads}/${s.numKvHeads}`;
  const n = s.seqLenQ === s.seqLenK ? `N${s.seqLenQ}` : `Sq${s.seqLenQ} Sk${s.seqLenK}`;
  const d = s.headDimV === s.headDim ? `d${s.headDim}` : `d${s.headDim}/${s.headDimV}`;
  return `B${s.batch} ${h} ${n} ${d}${s.causal ? ' causal' : ''}${s.blockSparse ? ` ${Math.round(s.blockSparse.sparsity * 100)}% block-sparse` : ''}`;
}
