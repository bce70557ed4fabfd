/**
 * Row addressing shared by every host kernel: dense BSHD views and varlen packed tensors both become
 * "sequence b, row i, head h, channel c" → storage offset
 *     seqBase[b] + i·rowStride + h·headStride + c·dimStride.
 */
import { DTypeError, ShapeError, ValueError } from '../errors.js';
import type { Storage } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { AttentionPlan } from './plan.js';

export interface RowView {
  readonly data: Storage;
  readonly seqBase: Float64Array;
  readonly rowStride: number;
  readonly headStride: number;
  readonly dimStride: number;
}

/** A BSHD (dense) or [total, H, D] (varlen) tensor as a RowView over the plan's sequences. */
export function rowView(plan: AttentionPlan, t: Tensor, which: 'q' | 'k' | 'o'): RowView {
  const cu = which === 'k' ? plan.cuSeqlensK : plan.cuSeqlensQ;
  const seqBase = new Float64Array(plan.batch);
  if (plan.varlen) {
    const [sRow, sHead, sDim] = t.strides as [number, number, number];
    for (let b = 0; b < plan.batch; b++) seqBase[b] = t.offset + cu[b]! * sRow;
    return { data: t.data, seqBase, rowStride: sRow, headStride: sHead, dimStride: sDim };
  }
  const [sB, sS, sH, sD] = t.strides as [number, number, number, number];
  for (let b = 0; b < plan.batch; b++) seqBase[b] = t.offset + b * sB;
  return { data: t.data, seqBase, rowStride: sS, headStride: sH, dimStride: sD };
}

/** LSE addressing: dense [B, H, Sq] → (b·H + h)·Sq + i; varlen [H, totalQ] → h·totalQ + cu[b] + i. */
export function lseView(plan: AttentionPlan, lse: Tensor): RowView {
  const seqBase = new Float64Array(plan.batch);
  if (plan.varlen) {
    for (let b = 0; b < plan.batch; b++) seqBase[b] = lse.offset + plan.cuSeqlensQ[b]! * lse.strides[1]!;
    return { data: lse.data, seqBase, rowStride: lse.strides[1]!, headStride: lse.strides[0]!, dimStride: 0 };
  }
  for (let b = 0; b < plan.batch; b++) seqBase[b] = lse.offset + b * lse.strides[0]!;
  return { data: lse.data, seqBase, rowStride: lse.strides[2]!, headStride: lse.strides[1]!, dimStride: 0 };
}

/** BSHD view of q/k/v/out for a dense plan (layout applied); varlen tensors pass through. */
export function canonical(plan: AttentionPlan, t: Tensor, name: string): Tensor {
  if (plan.varlen) return t;
  return t.asBSHD(plan.layout, name);
}

/** Output tensor and LSE shapes for a plan. Output follows the input layout. */
export function outputShapes(plan: AttentionPlan): { out: number[]; lse: number[] } {
  if (plan.varlen) return { out: [plan.totalQ, plan.numHeads, plan.headDimV], lse: [plan.numHeads, plan.totalQ] };
  const out = plan.layout === 'bshd'
    ? [plan.batch, plan.seqLenQ, plan.numHeads, plan.headDimV]
    : [plan.batch, plan.numHeads, plan.seqLenQ, plan.headDimV];
  return { out, lse: [plan.batch, plan.numHeads, plan.seqLenQ] };
}

/** The byte range [lo, hi) of `data.buffer` that a tensor view reaches (null when it has no elements). */
function byteSpan(t: Tensor): [number, number] | null {
  if (t.size === 0) return null;
  let lo = t.offset, hi = t.offset;
  t.shape.forEach((d, i) => { const span = (d - 1) * t.strides[i]!; if (span < 0) lo += span; else hi += span; });
  const bpe = t.data.BYTES_PER_ELEMENT, base = t.data.byteOffset;
  return [base + lo * bpe, base + (hi + 1) * bpe];
}

/**
 * Refuses an output whose storage overlaps an input's (or another output's): the kernels read inputs while
 * they write outputs, so `out: v` would overwrite rows that later tiles still read. Conservative: views
 * that interleave within one range count as overlapping.
 */
export function checkNoOverlap(outputs: readonly [Tensor, string][], inputs: readonly [Tensor, string][]): void {
  const all = [...outputs, ...inputs];
  for (let a = 0; a < outputs.length; a++) {
    const [t, name] = outputs[a]!;
    const sa = byteSpan(t);
    if (!sa) continue;
    for (let b = 0; b < all.length; b++) {
      if (b === a || (b < outputs.length && b < a)) continue;
      const [u, other] = all[b]!;
      if (u.data.buffer !== t.data.buffer) continue;
      const sb = byteSpan(u);
      if (sb && sa[0] < sb[1] && sb[0] < sa[1]) {
        throw new ValueError(`${name} overlaps the storage of ${other}: outputs must not share memory with the inputs or each other (pass a fresh tensor, or copy ${other} first)`, name);
      }
    }
  }
}

export function checkOut(t: Tensor, shape: readonly number[], dtype: string, name: string): void {
  if (!(t instanceof Tensor)) {
    const what = t && typeof (t as { then?: unknown }).then === 'function' ? 'a Promise (cpuTensor is async: await it)' : t === null ? 'null' : typeof t;
    throw new ValueError(`${name} must be a Tensor, got ${what}`, name);
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${name} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`, name);
  }
  if (t.dtype !== dtype) throw new DTypeError(`${name} must have dtype ${dtype}, got ${t.dtype}`, name);
  // An output whose elements alias (a zero stride over a dimension of 2 or more) would keep only the last write.
  if (t.size > 0) t.shape.forEach((d, i) => { if (d > 1 && t.strides[i] === 0) throw new ShapeError(`${name} has stride 0 over dimension ${i} of size ${d}: its elements would overlap`, name, `dim${i}`); });
}
