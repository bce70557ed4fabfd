/**
 * Validation at the public boundary: options → a frozen AttentionPlan. Kernels see only plans.
 * Every check raises a typed error naming the argument and the dimension.
 */
import { DTypeError, ShapeError, ValueError } from '../errors.js';
import { type Mask, causal as causalMask, checkCuSeqlens, checkMask, validateMask } from '../masks/mask.js';
import type { DType } from '../tensor/dtype.js';
import type { Layout } from '../tensor/tensor.js';

/** What validation needs to know of a tensor (host or GPU). */
export interface TensorLike {
  /** Dimensions in the call's layout, e.g. [batch, seqLen, numHeads, headDim] for BSHD. */
  readonly shape: readonly number[];
  /** Element type; q, k and v must share it. */
  readonly dtype: DType;
}

/**
 * Options of `attention` (all but `layout` also apply to `attentionVarlen`). Scores are
 * q·kᵀ·scale, soft-capped when softcap > 0, then masked. Causal masks align bottom-right when
 * seqLenQ ≠ seqLenK; fully masked rows output 0 (log-sum-exp −∞).
 */
export interface AttentionOptions {
  /** Softmax scale; default 1/√headDim. */
  scale?: number;
  /** If > 0, scores become softcap·tanh(score/softcap) (Gemma-2 / Grok). Default 0 (off). */
  softcap?: number;
  /** Any mask from `masks/`. */
  mask?: Mask | null;
  /** Shorthand for `mask: causal()` (bottom-right aligned). Combined with `mask` by intersection. */
  causal?: boolean;
  /** Layout of q, k, v and out: 'bshd' (default, FlashAttention) or 'bhsd'. */
  layout?: Layout;
  /** Also return the log-sum-exp [batch, numHeads, seqLenQ] (natural log). */
  returnLse?: boolean;
}

/**
 * Options of `attentionVarlen`: AttentionOptions without `layout` (packed tensors are
 * [totalTokens, heads, dim]) plus the sequence boundaries. Masks apply per sequence, each aligned
 * bottom-right on its own lengths; a `documents` mask is refused (the boundaries already separate
 * the sequences).
 */
export interface VarlenOptions extends Omit<AttentionOptions, 'layout'> {
  /** Cumulative query lengths [numSeqs + 1], starting at 0 (FlashAttention's cu_seqlens_q). */
  cuSeqlensQ: ArrayLike<number>;
  /** Cumulative key lengths; defaults to cuSeqlensQ. */
  cuSeqlensK?: ArrayLike<number>;
}

/**
 * A validated, frozen attention call: what `planAttention` / `planAttentionVarlen` return and the
 * only thing backends see. Dense plans describe a uniform batch with the same boundary fields as
 * varlen ones, so kernels address both alike.
 */
export interface AttentionPlan {
  /** Whether q/k/v are packed [totalTokens, heads, dim] (attentionVarlen) rather than 4-D. */
  readonly varlen: boolean;
  /** Dense: batch; varlen: number of sequences. */
  readonly batch: number;
  /** Dense: seqLenQ; varlen: the longest query sequence. */
  readonly seqLenQ: number;
  /** Dense: seqLenK; varlen: the longest key sequence. */
  readonly seqLenK: number;
  /** Query heads. */
  readonly numHeads: number;
  /** K/V heads; divides numHeads (MHA: equal, MQA: 1). */
  readonly numKvHeads: number;
  /** numHeads / numKvHeads: query heads sharing one KV head. */
  readonly groupSize: number;
  /** Channels per head of q and k (1..256). */
  readonly headDim: number;
  /** Channels per head of v and the output (1..256). */
  readonly headDimV: number;
  /** The softmax scale, default applied (1/√headDim). */
  readonly scale: number;
  /** The soft cap; 0 = off. */
  readonly softcap: number;
  /** The effective mask: `mask`, intersected with `causal()` when `causal` was set; null = none. */
  readonly mask: Mask | null;
  /** The dtype q, k and v share; also the output's. */
  readonly dtype: DType;
  /** The layout of the caller's q/k/v/out; 'bshd' for varlen plans. */
  readonly layout: Layout;
  /** Whether the caller asked for the log-sum-exp. */
  readonly returnLse: boolean;
  /** Varlen boundaries (dense plans: [0, Sq, 2Sq, …] for uniform batches). */
  readonly cuSeqlensQ: Int32Array;
  /** Key boundaries, [batch + 1] (dense plans: [0, Sk, 2Sk, …]). */
  readonly cuSeqlensK: Int32Array;
  /** Total rows of q and the output (dense: batch·seqLenQ). */
  readonly totalQ: number;
  /** Total rows of k and v (dense: batch·seqLenK). */
  readonly totalK: number;
}

export const MAX_HEAD_DIM = 256;

/** The option names of AttentionOptions. */
export const ATTENTION_OPTION_KEYS = ['scale', 'softcap', 'mask', 'causal', 'layout', 'returnLse'] as const;

/** ATTENTION_OPTION_KEYS without `layout`, for calls whose tensors have one layout (paged attention, modules). */
export const UNLAID_OPTION_KEYS: readonly string[] = ATTENTION_OPTION_KEYS.filter((k) => k !== 'layout');

function dimNames(layout: Layout): string {
  return layout === 'bshd' ? 'batch, seqLen, numHeads, headDim' : 'batch, numHeads, seqLen, headDim';
}

function checkTensor(t: TensorLike, name: string, rank: number, dims: string): void {
  if (!t || !Array.isArray(t.shape) && !(t.shape && typeof (t.shape as readonly number[]).length === 'number')) {
    throw new ValueError(`${name} must be a tensor`, name);
  }
  if (t.shape.length !== rank) throw new ShapeError(`${name} must be ${rank}-D [${dims}], got [${t.shape.join(', ')}]`, name);
}

/** Whether a nonzero number leaves f32's range (overflows, or underflows to 0): the kernels hold scale and softcap in f32. */
const outsideF32 = (x: number): boolean => !Number.isFinite(Math.fround(x)) || (x !== 0 && Math.fround(x) === 0);

function checkOptions(opts: AttentionOptions, headDim: number): { scale: number; softcap: number } {
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new ValueError(`scale must be a finite number, got ${opts.scale}`, 'scale');
  if (outsideF32(scale)) {
    throw new ValueError(`scale must be 0 or have a magnitude within f32's range (about 1.4e-45 to 3.4e38), got ${scale}`, 'scale');
  }
  const softcap = opts.softcap ?? 0;
  if (typeof softcap !== 'number' || !Number.isFinite(softcap) || softcap < 0) throw new ValueError(`softcap must be a finite number ≥ 0 (0 = off), got ${opts.softcap}`, 'softcap');
  if (outsideF32(softcap)) {
    throw new ValueError(`softcap must be 0 (off) or within f32's range (about 1.4e-45 to 3.4e38), got ${softcap}`, 'softcap');
  }
  return { scale, softcap };
}

function resolveMask(opts: AttentionOptions): Mask | null {
  // A string 'false' (from a form or a flag) is truthy: only booleans mean causal or not.
  for (const key of ['causal', 'returnLse'] as const) {
    const b = opts[key];
    if (b !== undefined && b !== null && typeof b !== 'boolean') throw new ValueError(`${key} must be true or false, got ${JSON.stringify(b) ?? String(b)}`, key);
  }
  let mask = opts.mask ?? null;
  if (mask !== null) checkMask(mask, 'mask');
  if (opts.causal) mask = mask ? causalMask().and(mask) : causalMask();
  return mask;
}

function checkHeads(q: TensorLike, k: TensorLike, v: TensorLike, headAxis: number, dimAxis: number) {
  const numHeads = q.shape[headAxis]!, numKvHeads = k.shape[headAxis]!;
  const headDim = q.shape[dimAxis]!, headDimV = v.shape[dimAxis]!;
  if (k.shape[dimAxis] !== headDim) throw new ShapeError(`k has headDim ${k.shape[dimAxis]}, q has headDim ${headDim}; they must match`, 'k', 'headDim');
  if (v.shape[headAxis] !== numKvHeads) throw new ShapeError(`v has ${v.shape[headAxis]} heads, k has ${numKvHeads}; they must match`, 'v', 'numKvHeads');
  if (numKvHeads < 1) throw new ShapeError(`k must have at least one head, got ${numKvHeads}`, 'k', 'numKvHeads');
  if (numHeads % numKvHeads !== 0) throw new ShapeError(`numHeads (${numHeads}) must be divisible by numKvHeads (${numKvHeads}) for MQA/GQA`, 'k', 'numKvHeads');
  if (headDim < 1 || headDim > MAX_HEAD_DIM) throw new ShapeError(`headDim must be in 1..${MAX_HEAD_DIM}, got ${headDim}`, 'q', 'headDim');
  if (headDimV < 1 || headDimV > MAX_HEAD_DIM) throw new ShapeError(`headDimV (v's last dimension) must be in 1..${MAX_HEAD_DIM}, got ${headDimV}`, 'v', 'headDimV');
  return { numHeads, numKvHeads, headDim, headDimV };
}

function checkDtypes(q: TensorLike, k: TensorLike, v: TensorLike): DType {
  for (const [t, n] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    if (t.dtype !== 'f32' && t.dtype !== 'f16' && t.dtype !== 'bf16') throw new DTypeError(`${n} has dtype ${String(t.dtype)}; supported: f32, f16, bf16`, n);
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) throw new DTypeError(`q, k and v must share a dtype, got q=${q.dtype} k=${k.dtype} v=${v.dtype}`, k.dtype !== q.dtype ? 'k' : 'v');
  return q.dtype;
}

function uniformCu(batch: number, len: number): Int32Array {
  const cu = new Int32Array(batch + 1);
  for (let b = 0; b <= batch; b++) cu[b] = b * len;
  return cu;
}

/** Dense attention: q [B, Sq, H, D], k [B, Sk, Hk, D], v [B, Sk, Hk, Dv] (BSHD; BHSD with layout). */
export function planAttention(q: TensorLike, k: TensorLike, v: TensorLike, opts: AttentionOptions | null = {}): AttentionPlan {
  opts ??= {};
  if (typeof opts !== 'object') throw new ValueError(`options must be an object, got ${typeof opts}`, 'opts');
  const layout = opts.layout ?? 'bshd';
  if (layout !== 'bshd' && layout !== 'bhsd') throw new ValueError(`layout must be 'bshd' or 'bhsd', got ${String(layout)}`, 'layout');
  const dims = dimNames(layout);
  checkTensor(q, 'q', 4, dims);
  checkTensor(k, 'k', 4, dims);
  checkTensor(v, 'v', 4, dims);
  const dtype = checkDtypes(q, k, v);
  const [sAx, hAx] = layout === 'bshd' ? [1, 2] : [2, 1];
  const batch = q.shape[0]!;
  if (k.shape[0] !== batch) throw new ShapeError(`k has batch ${k.shape[0]}, q has batch ${batch}`, 'k', 'batch');
  if (v.shape[0] !== batch) throw new ShapeError(`v has batch ${v.shape[0]}, q has batch ${batch}`, 'v', 'batch');
  const seqLenQ = q.shape[sAx]!, seqLenK = k.shape[sAx]!;
  if (v.shape[sAx] !== seqLenK) throw new ShapeError(`v has seqLen ${v.shape[sAx]}, k has seqLen ${seqLenK}`, 'v', 'seqLenK');
  const heads = checkHeads(q, k, v, hAx, 3);
  const { scale, softcap } = checkOptions(opts, heads.headDim);
  const mask = resolveMask(opts);
  if (mask) validateMask(mask, { seqLenQ, seqLenK });
  return Object.freeze({
    varlen: false, batch, seqLenQ, seqLenK, ...heads, groupSize: heads.numHeads / heads.numKvHeads,
    scale, softcap, mask, dtype, layout, returnLse: !!opts.returnLse,
    cuSeqlensQ: uniformCu(batch, seqLenQ), cuSeqlensK: uniformCu(batch, seqLenK),
    totalQ: batch * seqLenQ, totalK: batch * seqLenK,
  });
}

/** Packed (varlen) attention: q [totalQ, H, D], k [totalK, Hk, D], v [totalK, Hk, Dv]. */
export function planAttentionVarlen(q: TensorLike, k: TensorLike, v: TensorLike, opts: VarlenOptions): AttentionPlan {
  const dims = 'totalTokens, numHeads, headDim';
  checkTensor(q, 'q', 3, dims);
  checkTensor(k, 'k', 3, dims);
  checkTensor(v, 'v', 3, dims);
  const dtype = checkDtypes(q, k, v);
  if (!opts || opts.cuSeqlensQ === undefined) throw new ValueError('attentionVarlen needs cuSeqlensQ', 'cuSeqlensQ');
  // Packed tensors have one layout, [totalTokens, heads, dim]: a layout option would be silently ignored.
  const layout = (opts as { layout?: unknown }).layout;
  if (layout !== undefined && layout !== 'bshd') throw new ValueError(`attentionVarlen takes packed [totalTokens, numHeads, headDim] tensors and no layout option, got layout ${JSON.stringify(layout)}`, 'layout');
  const totalQ = q.shape[0]!, totalK = k.shape[0]!;
  if (v.shape[0] !== totalK) throw new ShapeError(`v has ${v.shape[0]} tokens, k has ${totalK}`, 'v', 'totalTokens');
  const cuQ = checkCuSeqlens(opts.cuSeqlensQ, 'cuSeqlensQ', totalQ);
  // Without cuSeqlensK the keys split as the queries do: say so when that does not fit the keys.
  const cuK = opts.cuSeqlensK !== undefined ? checkCuSeqlens(opts.cuSeqlensK, 'cuSeqlensK', totalK) : checkCuSeqlens(opts.cuSeqlensQ, 'cuSeqlensK', undefined);
  if (opts.cuSeqlensK === undefined && cuK[cuK.length - 1] !== totalK) {
    throw new ShapeError(`cuSeqlensK not given, so the keys split as cuSeqlensQ does (ending at ${cuK[cuK.length - 1]}), but k packs ${totalK} keys: pass cuSeqlensK`, 'cuSeqlensK', 'totalK');
  }
  if (cuK.length !== cuQ.length) throw new ShapeError(`cuSeqlensK has ${cuK.length - 1} sequences, cuSeqlensQ has ${cuQ.length - 1}`, 'cuSeqlensK', 'numSeqs');
  const heads = checkHeads(q, k, v, 1, 2);
  const { scale, softcap } = checkOptions(opts, heads.headDim);
  const mask = resolveMask(opts);
  // Documents first: checked per sequence below, its cuSeqlens would fail with a less useful length error.
  if (mask) {
    const visit = (n: Mask['node']): void => {
      if (n.kind === 'documents') throw new ValueError('a documents mask cannot be used on packed sequences (attentionVarlen, attentionPaged): the cuSeqlens or the block tables already separate them', 'mask');
      if (n.kind === 'and' || n.kind === 'or') n.parts.forEach(visit);
      if (n.kind === 'not') visit(n.part);
      if (n.kind === 'topK') visit(n.within);
    };
    visit(mask.node);
  }
  let maxQ = 0, maxK = 0;
  for (let b = 0; b + 1 < cuQ.length; b++) {
    const lq = cuQ[b + 1]! - cuQ[b]!, lk = cuK[b + 1]! - cuK[b]!;
    maxQ = Math.max(maxQ, lq);
    maxK = Math.max(maxK, lk);
    if (mask) validateMask(mask, { seqLenQ: lq, seqLenK: lk }, 'mask', `mask (sequence ${b})`);
  }
  return Object.freeze({
    varlen: true, batch: cuQ.length - 1, seqLenQ: maxQ, seqLenK: maxK, ...heads, groupSize: heads.numHeads / heads.numKvHeads,
    scale, softcap, mask, dtype, layout: 'bshd' as Layout, returnLse: !!opts.returnLse,
    cuSeqlensQ: cuQ, cuSeqlensK: cuK, totalQ, totalK,
  });
}

/** FLOPs by the convention of the benchmarks: 4·B·H·Sq·Sk·d (2 for QKᵀ, 2 for PV; d = (D + Dv)/2). */
export function nominalFlops(plan: AttentionPlan): number {
  let pairs = 0;
  for (let b = 0; b < plan.batch; b++) pairs += (plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!) * (plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!);
  return 2 * pairs * plan.numHeads * (plan.headDim + plan.headDimV);
}
