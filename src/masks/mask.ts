/**
 * Attention masks as composable predicates over (query i, key j).
 *
 * A mask is an immutable tree of primitive nodes (causal, sliding window, prefix-LM, strided,
 * block-sparse, key subsets, documents, top-k, user predicates) joined by and/or/not. The same tree
 * feeds four consumers, so they cannot disagree:
 *   - `allows` / `denseMask`: the dense predicate (the test oracle's mask);
 *   - `classifyTile`: empty / partial / full per (Q tile, KV tile), which decides what kernels visit;
 *   - the CPU kernel's row-bitmask program and the WGSL element predicate (kernels/);
 *   - `renderMask`: ASCII diagrams for docs and test failures.
 *
 * Alignment: when seqLenQ ≠ seqLenK, query i sits at absolute position i + seqLenK − seqLenQ
 * ("bottom-right", FlashAttention ≥ 2.1). `align: 'top-left'` gives PyTorch's `is_causal` convention
 * (position i). A row with no visible key outputs 0 (and log-sum-exp −∞), never NaN.
 */
import { ShapeError, UnsupportedError, ValueError } from '../errors.js';

/**
 * Where query rows sit against the keys when seqLenQ ≠ seqLenK. `'bottom-right'` (the default,
 * FlashAttention ≥ 2.1): query i is at position i + seqLenK − seqLenQ, so the last query lines up with
 * the last key. `'top-left'` (PyTorch's `is_causal`): query i is at position i.
 */
export type Alignment = 'bottom-right' | 'top-left';

/**
 * One node of a mask tree: a primitive predicate or an and/or/not of nodes. Build masks with the
 * constructors (`causal`, `slidingWindow`, …) rather than by hand; consumers switch on `kind`.
 */
export type MaskNode =
  | { readonly kind: 'all' }
  | { readonly kind: 'none' }
  /** Keys j with lo ≤ j − pos(i) ≤ hi (±Infinity for unbounded). causal = [−∞, 0]. */
  | { readonly kind: 'relative'; readonly lo: number; readonly hi: number; readonly align: Alignment; readonly label: string }
  /** Keys j in [lo, hi), independent of the query. */
  | { readonly kind: 'keyRange'; readonly lo: number; readonly hi: number }
  /** (pos(i) − j) mod stride == 0. */
  | { readonly kind: 'strided'; readonly stride: number; readonly align: Alignment }
  /** layout[⌊i / blockQ⌋ · cols + ⌊j / blockK⌋] != 0. */
  | { readonly kind: 'blockSparse'; readonly layout: Uint8Array; readonly rows: number; readonly cols: number; readonly blockQ: number; readonly blockK: number }
  /** keep[j] != 0 (learned sparsity: keys chosen by an importance score). */
  | { readonly kind: 'keySet'; readonly keep: Uint8Array; readonly prefix: Int32Array }
  /** Block-diagonal over packed documents: doc(i) == doc(j). */
  | { readonly kind: 'documents'; readonly cuSeqlensQ: Int32Array; readonly cuSeqlensK: Int32Array }
  /** Per query row, the k best-scoring keys among those `within` allows (ties at the k-th score kept). */
  | { readonly kind: 'topK'; readonly k: number; readonly within: MaskNode }
  | { readonly kind: 'predicate'; readonly fn: (i: number, j: number) => boolean; readonly name: string }
  | { readonly kind: 'and'; readonly parts: readonly MaskNode[] }
  | { readonly kind: 'or'; readonly parts: readonly MaskNode[] }
  | { readonly kind: 'not'; readonly part: MaskNode };

/** How a mask covers one (Q tile × KV tile) block, which decides what the kernel does with it. */
export enum TileClass {
  /** No visible key: the tile is skipped. */
  Empty = 0,
  /** Some keys visible (or not provably uniform): the element predicate is evaluated. */
  Partial = 1,
  /** Every key visible: the tile runs unmasked. */
  Full = 2,
}

/** The shapes a mask is evaluated against. */
export interface MaskContext {
  /** Query rows the mask is applied to (one sequence's, for varlen). */
  readonly seqLenQ: number;
  /** Keys the mask is applied to (one sequence's, for varlen). */
  readonly seqLenK: number;
}

/** Position of query 0 on the key axis: seqLenK − seqLenQ for `'bottom-right'`, 0 for `'top-left'`. */
export function alignOffset(align: Alignment, ctx: MaskContext): number {
  return align === 'bottom-right' ? ctx.seqLenK - ctx.seqLenQ : 0;
}

/**
 * An immutable attention mask: a tree of predicates over (query i, key j). Build one with `causal`,
 * `slidingWindow`, `prefixLM`, `strided`, `blockSparse`, `keySubset`, `keyImportance`, `documents`,
 * `topK` or `predicate`, and combine with `and` / `or` / `not`. Position-relative masks align
 * bottom-right when seqLenQ ≠ seqLenK; a query row with no visible key outputs 0 (log-sum-exp −∞).
 */
export class Mask {
  constructor(
    /** The root of the mask tree, read by the kernels, the tile classifier and the renderer. */
    readonly node: MaskNode,
  ) {
    if (!node || typeof node !== 'object' || typeof (node as { kind?: unknown }).kind !== 'string') throw new ValueError('a Mask needs a mask node: build masks with causal(), topK(), … and and / or / not', 'node');
    // Every kernel ranks scores by one topK node (its thresholds are computed once per row); two would silently
    // share the first one's k.
    if (countTopK(node) > 1) throw new UnsupportedError('two topK nodes in one mask', 'one topK node per mask');
    Object.freeze(this);
  }

  /** Intersection: a key is visible only if every mask allows it. */
  and(...others: Mask[]): Mask {
    return new Mask({ kind: 'and', parts: [this.node, ...others.map((m) => m.node)] });
  }

  /** Union: a key is visible if any mask allows it. */
  or(...others: Mask[]): Mask {
    return new Mask({ kind: 'or', parts: [this.node, ...others.map((m) => m.node)] });
  }

  /** Complement: a key is visible exactly where this mask hides it. */
  not(): Mask {
    return new Mask({ kind: 'not', part: this.node });
  }

  /** Whether query i may see key j (not defined for top-k masks, which depend on scores). */
  allows(i: number, j: number, ctx: MaskContext): boolean {
    return evalNode(this.node, i, j, ctx, null);
  }

  /** Whether the mask depends on attention scores (contains topK). */
  get dataDependent(): boolean {
    return findTopK(this.node) !== null;
  }

  /** A one-line description, e.g. `and(causal, window(128,0))`. */
  describe(): string {
    return describeNode(this.node);
  }

  /** `Mask(` + `describe()` + `)`, e.g. `Mask(and(causal, window(128,0)))`. */
  toString(): string {
    return `Mask(${this.describe()})`;
  }
}

// ----------------------------------------------------------------------------------------------
// Constructors

function requireWindow(v: number, argument: string): number {
  if (v === -1 || v === Infinity) return Infinity;
  if (typeof v !== 'number' || Number.isNaN(v) || !Number.isInteger(v) || v < 0) {
    throw new ValueError(`${argument} must be a non-negative integer (or -1 / Infinity for unbounded), got ${v}`, argument);
  }
  return v;
}

/** `opts.align`, checked: 'bottom-right' (default) or 'top-left'; anything else is a ValueError naming `align`. */
function alignOf(opts: { align?: Alignment } | undefined): Alignment {
  const a = opts?.align ?? 'bottom-right';
  if (a !== 'bottom-right' && a !== 'top-left') throw new ValueError(`align must be 'bottom-right' or 'top-left', got ${JSON.stringify(a)}`, 'align');
  return a;
}

/**
 * Causal mask. Query i sees keys j ≤ i + seqLenK − seqLenQ (bottom-right, FlashAttention);
 * with `{ align: 'top-left' }`, keys j ≤ i (PyTorch `is_causal`).
 * ```
 * Sq=2, Sk=5 (bottom-right)    Sq=5, Sk=2
 *   █ █ █ █ ░                  ░ ░   ← fully masked rows output 0
 *   █ █ █ █ █                  ░ ░
 *                              ░ ░
 *                              █ ░
 *                              █ █
 * ```
 */
export function causal(opts: { align?: Alignment } = {}): Mask {
  return new Mask({ kind: 'relative', lo: -Infinity, hi: 0, align: alignOf(opts), label: 'causal' });
}

/**
 * Sliding window: query i sees keys [i + Sk − Sq − left, i + Sk − Sq + right] (inclusive).
 * `-1` or `Infinity` means unbounded on that side; `slidingWindow(w, 0)` is causal local attention.
 */
export function slidingWindow(left: number, right: number, opts: { align?: Alignment } = {}): Mask {
  const l = requireWindow(left, 'left'), r = requireWindow(right, 'right');
  return new Mask({ kind: 'relative', lo: -l, hi: r, align: alignOf(opts), label: `window(${fmtInf(l)},${fmtInf(r)})` });
}

/**
 * Prefix-LM (PaliGemma): keys [0, prefixLen) (image + prompt) are visible to every query and attend
 * bidirectionally among themselves; the rest is causal.
 * ```
 * prefixLen=3, N=6
 *   █ █ █ ░ ░ ░
 *   █ █ █ ░ ░ ░
 *   █ █ █ ░ ░ ░
 *   █ █ █ █ ░ ░
 *   █ █ █ █ █ ░
 *   █ █ █ █ █ █
 * ```
 */
export function prefixLM(prefixLen: number, opts: { align?: Alignment } = {}): Mask {
  if (!Number.isInteger(prefixLen) || prefixLen < 0) throw new ValueError(`prefixLen must be a non-negative integer, got ${prefixLen}`, 'prefixLen');
  return new Mask({ kind: 'or', parts: [{ kind: 'keyRange', lo: 0, hi: prefixLen }, causal(opts).node] });
}

/** Strided (Sparse Transformer): query i sees keys j with (i + Sk − Sq − j) mod stride == 0. Compose with causal/window. */
export function strided(stride: number, opts: { align?: Alignment } = {}): Mask {
  if (!Number.isInteger(stride) || stride < 1) throw new ValueError(`stride must be an integer ≥ 1, got ${stride}`, 'stride');
  return new Mask({ kind: 'strided', stride, align: alignOf(opts) });
}

/**
 * Block-sparse: `layout` is a [rows × cols] 0/1 grid over blocks of blockSize queries × blockSize keys
 * (or [blockQ, blockK]); query i sees key j iff layout[⌊i/blockQ⌋][⌊j/blockK⌋] is set.
 */
export function blockSparse(layout: ArrayLike<number> | readonly (readonly (number | boolean)[])[], blockSize: number | readonly [number, number], shape?: readonly [number, number]): Mask {
  const bs = blockSize as unknown;
  if (typeof bs !== 'number' && !(Array.isArray(bs) && bs.length === 2)) {
    throw new ValueError(`blockSize must be an integer ≥ 1 or [blockQ, blockK], got ${bs === undefined ? 'nothing' : JSON.stringify(bs) ?? typeof bs}`, 'blockSize');
  }
  const [bq, bk] = typeof blockSize === 'number' ? [blockSize, blockSize] : blockSize;
  if (!Number.isInteger(bq) || bq < 1 || !Number.isInteger(bk) || bk < 1) throw new ValueError(`blockSize must be integers ≥ 1, got ${JSON.stringify(blockSize)}`, 'blockSize');
  let rows: number, cols: number, flat: Uint8Array;
  if (Array.isArray(layout) && layout.length > 0 && Array.isArray(layout[0])) {
    const grid = layout as readonly (readonly (number | boolean)[])[];
    rows = grid.length;
    cols = grid[0]!.length;
    flat = new Uint8Array(rows * cols);
    grid.forEach((row, r) => {
      if (row.length !== cols) throw new ShapeError(`layout row ${r} has ${row.length} columns, row 0 has ${cols}`, 'layout', 'cols');
      row.forEach((v, c) => { flat[r * cols + c] = v ? 1 : 0; });
    });
  } else {
    if (!shape) throw new ShapeError('a flat layout needs shape [rows, cols]', 'shape');
    [rows, cols] = shape;
    if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) throw new ShapeError(`shape must be two non-negative integers [rows, cols], got [${shape.join(', ')}]`, 'shape');
    const a = layout as ArrayLike<number>;
    if (a.length !== rows * cols) throw new ShapeError(`layout has ${a.length} entries, shape [${rows}, ${cols}] needs ${rows * cols}`, 'layout');
    flat = new Uint8Array(rows * cols);
    for (let i = 0; i < a.length; i++) flat[i] = a[i] ? 1 : 0;
  }
  return new Mask({ kind: 'blockSparse', layout: flat, rows, cols, blockQ: bq, blockK: bk });
}

/** Keys in an explicit subset (keep[j] truthy), for every query. */
export function keySubset(keep: ArrayLike<number | boolean>): Mask {
  const k = new Uint8Array(keep.length);
  for (let i = 0; i < keep.length; i++) k[i] = keep[i] ? 1 : 0;
  const prefix = new Int32Array(k.length + 1);
  for (let i = 0; i < k.length; i++) prefix[i + 1] = prefix[i]! + k[i]!;
  return new Mask({ kind: 'keySet', keep: k, prefix });
}

/**
 * Learned sparsity: keep the `keep` keys with the highest importance score (one score per key, e.g.
 * from a learned scorer), or every key whose score ≥ `threshold`. Ties at the cut are broken by lower
 * index, so exactly `keep` keys are selected.
 */
export function keyImportance(scores: ArrayLike<number>, opts: { keep?: number; threshold?: number }): Mask {
  if (!scores || typeof scores.length !== 'number') throw new ValueError('scores must be an array of per-key scores', 'scores');
  if (!opts || (opts.keep === undefined) === (opts.threshold === undefined)) throw new ValueError('keyImportance needs one of keep or threshold', 'opts');
  const n = scores.length;
  for (let i = 0; i < n; i++) if (Number.isNaN(scores[i]!)) throw new ValueError(`scores[${i}] is NaN`, 'scores');
  const mark = new Uint8Array(n);
  if (opts.keep !== undefined) {
    if (!Number.isInteger(opts.keep) || opts.keep < 0) throw new ValueError(`keep must be a non-negative integer, got ${opts.keep}`, 'keep');
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
    for (let r = 0; r < Math.min(opts.keep, n); r++) mark[order[r]!] = 1;
  } else if (opts.threshold !== undefined) {
    if (!Number.isFinite(opts.threshold)) throw new ValueError(`threshold must be finite, got ${opts.threshold}`, 'threshold');
    for (let i = 0; i < n; i++) mark[i] = scores[i]! >= opts.threshold ? 1 : 0;
  } else {
    throw new ValueError('keyImportance needs keep or threshold', 'opts');
  }
  return keySubset(mark);
}

/** Validates FlashAttention-style cumulative sequence lengths: int, starts at 0, non-decreasing. */
export function checkCuSeqlens(cu: ArrayLike<number>, argument: string, total?: number): Int32Array {
  if (!cu || typeof cu.length !== 'number' || typeof cu === 'string') throw new ValueError(`${argument} must be an array of offsets [0, …, total]`, argument);
  if (cu.length < 2) throw new ShapeError(`${argument} needs at least 2 entries [0, …, total], got ${cu.length}`, argument);
  const out = new Int32Array(cu.length);
  for (let i = 0; i < cu.length; i++) {
    const v = cu[i]!;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      const got = typeof v === 'bigint' ? `${v}n (a BigInt: pass numbers)` : typeof v === 'number' ? String(v) : `${JSON.stringify(v) ?? String(v)} (a ${typeof v}: pass numbers)`;
      throw new ValueError(`${argument}[${i}] must be a non-negative integer, got ${got}`, argument);
    }
    if (v > 0x7fffffff) throw new ValueError(`${argument}[${i}] = ${v} is over the kernels' int32 offsets (2³¹ − 1)`, argument);
    if (i === 0 && v !== 0) throw new ValueError(`${argument}[0] must be 0, got ${v}`, argument);
    if (i > 0 && v < cu[i - 1]!) throw new ValueError(`${argument} must be non-decreasing: ${argument}[${i}] = ${v} < ${argument}[${i - 1}] = ${cu[i - 1]}`, argument);
    out[i] = v;
  }
  if (total !== undefined && out[out.length - 1] !== total) {
    throw new ValueError(`${argument} ends at ${out[out.length - 1]}, but the packed length is ${total}`, argument);
  }
  return out;
}

/**
 * Packed documents (FlashAttention varlen boundaries): query i sees key j iff they are in the same
 * document. `cuSeqlensK` defaults to `cuSeqlensQ` (self-attention over one packed sequence).
 * Combined with `causal()` on a dense call, causal aligns once over the whole packed sequence (bottom-right
 * when seqLenQ ≠ seqLenK), not per document: for per-document alignment with Sq ≠ Sk use `attentionVarlen`.
 */
export function documents(cuSeqlensQ: ArrayLike<number>, cuSeqlensK: ArrayLike<number> = cuSeqlensQ): Mask {
  const q = checkCuSeqlens(cuSeqlensQ, 'cuSeqlensQ');
  const k = checkCuSeqlens(cuSeqlensK, 'cuSeqlensK');
  if (q.length !== k.length) throw new ShapeError(`cuSeqlensQ has ${q.length - 1} documents, cuSeqlensK has ${k.length - 1}`, 'cuSeqlensK');
  return new Mask({ kind: 'documents', cuSeqlensQ: q, cuSeqlensK: k });
}

/**
 * Top-k: each query sees its k best-scoring keys (scaled, soft-capped logits) among those `within`
 * allows (default: all keys). Keys tied with the k-th score are all kept.
 */
export function topK(k: number, within: Mask = allKeys()): Mask {
  if (!Number.isInteger(k) || k < 1) throw new ValueError(`k must be an integer ≥ 1, got ${k}`, 'k');
  checkMask(within, 'within');
  return new Mask({ kind: 'topK', k, within: within.node });
}

/** A user predicate (i, j) → visible. Evaluated on the host into a bit matrix (Sq·Sk bits). */
export function predicate(fn: (i: number, j: number) => boolean, name = 'predicate'): Mask {
  if (typeof fn !== 'function') throw new ValueError('predicate needs a function (i, j) => boolean', 'fn');
  return new Mask({ kind: 'predicate', fn, name });
}

/** Every key visible (no masking); what `and()` of no masks returns. */
export function allKeys(): Mask {
  return new Mask({ kind: 'all' });
}

/** No key visible: every row outputs 0 (log-sum-exp −∞); what `or()` of no masks returns. */
export function noKeys(): Mask {
  return new Mask({ kind: 'none' });
}

/** Intersection: a key is visible only if every mask allows it (`allKeys()` for no masks). */
export function and(...masks: Mask[]): Mask {
  if (masks.length === 0) return allKeys();
  return new Mask({ kind: 'and', parts: masks.map((m) => m.node) });
}

/** Union: a key is visible if any mask allows it (`noKeys()` for no masks). */
export function or(...masks: Mask[]): Mask {
  if (masks.length === 0) return noKeys();
  return new Mask({ kind: 'or', parts: masks.map((m) => m.node) });
}

/** Complement of a mask (same as `mask.not()`). */
export function not(mask: Mask): Mask {
  return mask.not();
}

// ----------------------------------------------------------------------------------------------
// Evaluation

/** Index of the document holding position p (binary search); cu is non-decreasing. */
export function docOf(cu: Int32Array, p: number): number {
  let lo = 0, hi = cu.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (cu[mid]! <= p) lo = mid; else hi = mid - 1;
  }
  return lo;
}

function mod(a: number, m: number): number {
  const r = a % m;
  return r < 0 ? r + m : r;
}

/** Row thresholds for a top-k node: thr[i] such that key j is in the top-k iff score(i, j) ≥ thr[i]. */
export type TopKThresholds = Float64Array;

function evalNode(n: MaskNode, i: number, j: number, ctx: MaskContext, topk: { thr: TopKThresholds; score: (i: number, j: number) => number } | null): boolean {
  switch (n.kind) {
    case 'all': return true;
    case 'none': return false;
    case 'relative': {
      const d = j - (i + alignOffset(n.align, ctx));
      return d >= n.lo && d <= n.hi;
    }
    case 'keyRange': return j >= n.lo && j < n.hi;
    case 'strided': return mod(i + alignOffset(n.align, ctx) - j, n.stride) === 0;
    case 'blockSparse': {
      const r = Math.floor(i / n.blockQ), c = Math.floor(j / n.blockK);
      return r < n.rows && c < n.cols && n.layout[r * n.cols + c] !== 0;
    }
    case 'keySet': return j < n.keep.length && n.keep[j] !== 0;
    case 'documents': return docOf(n.cuSeqlensQ, i) === docOf(n.cuSeqlensK, j);
    case 'topK': {
      if (!topk) throw new UnsupportedError('a topK mask depends on scores; evaluate it with denseMask(mask, ctx, score)', 'denseMask');
      return evalNode(n.within, i, j, ctx, null) && topk.score(i, j) >= topk.thr[i]!;
    }
    case 'predicate': return !!n.fn(i, j);
    case 'and': return n.parts.every((p) => evalNode(p, i, j, ctx, topk));
    case 'or': return n.parts.some((p) => evalNode(p, i, j, ctx, topk));
    case 'not': return !evalNode(n.part, i, j, ctx, topk);
  }
}

/**
 * The element predicate as kernels evaluate it on partial tiles: `score` is the (scaled, soft-capped)
 * logit of (i, j) and `thresholds` the top-k row thresholds when the mask has a topK node.
 */
export function allowsScored(mask: Mask, i: number, j: number, ctx: MaskContext, thresholds: TopKThresholds | null, score: number): boolean {
  return evalNode(mask.node, i, j, ctx, thresholds ? { thr: thresholds, score: () => score } : null);
}

/** Number of topK nodes in a mask tree (within-masks included). */
function countTopK(n: MaskNode): number {
  switch (n.kind) {
    case 'topK': return 1 + countTopK(n.within);
    case 'and': case 'or': return n.parts.reduce((s, p) => s + countTopK(p), 0);
    case 'not': return countTopK(n.part);
    default: return 0;
  }
}

/** The topK node of a mask tree (searched through and/or/not), or null when the mask does not depend on scores. */
export function findTopK(n: MaskNode): Extract<MaskNode, { kind: 'topK' }> | null {
  switch (n.kind) {
    case 'topK': return n;
    case 'and': case 'or': {
      for (const p of n.parts) { const t = findTopK(p); if (t) return t; }
      return null;
    }
    case 'not': return findTopK(n.part);
    default: return null;
  }
}

/**
 * Per-row top-k thresholds: the k-th largest score among the keys `within` allows (−∞ when fewer
 * than k are visible, so all visible keys are kept; +∞ when none is). NaN scores never qualify.
 */
export function topKThresholds(node: Extract<MaskNode, { kind: 'topK' }>, ctx: MaskContext, score: (i: number, j: number) => number, rows?: readonly number[]): TopKThresholds {
  const thr = new Float64Array(ctx.seqLenQ);
  const vals: number[] = [];
  // `rows`: only these rows' thresholds (the others stay 0, unread): capture asks for a few rows of a long sequence.
  for (const i of rows ?? Array.from({ length: ctx.seqLenQ }, (_, i) => i)) {
    vals.length = 0;
    // NaN scores do not rank (as in the kernels' heaps): never among the k, and comparing them would break the sort.
    for (let j = 0; j < ctx.seqLenK; j++) if (evalNode(node.within, i, j, ctx, null)) { const s = score(i, j); if (!Number.isNaN(s)) vals.push(s); }
    if (vals.length === 0) { thr[i] = Infinity; continue; }
    if (vals.length <= node.k) { thr[i] = -Infinity; continue; }
    vals.sort((a, b) => b - a);
    thr[i] = vals[node.k - 1]!;
  }
  return thr;
}

/**
 * The dense 0/1 mask [seqLenQ × seqLenK]. Masks with topK need `score(i, j)` (the scaled, soft-capped
 * logit) to rank keys.
 */
export function denseMask(mask: Mask, ctx: MaskContext, score?: (i: number, j: number) => number): Uint8Array {
  const { seqLenQ: sq, seqLenK: sk } = ctx;
  const out = new Uint8Array(sq * sk);
  const t = findTopK(mask.node);
  let topk: { thr: TopKThresholds; score: (i: number, j: number) => number } | null = null;
  if (t) {
    if (!score) throw new UnsupportedError('a topK mask depends on scores; pass score(i, j) to denseMask', 'denseMask(mask, ctx, score)');
    topk = { thr: topKThresholds(t, ctx, score), score };
  }
  for (let i = 0; i < sq; i++) for (let j = 0; j < sk; j++) out[i * sk + j] = evalNode(mask.node, i, j, ctx, topk) ? 1 : 0;
  return out;
}

// ----------------------------------------------------------------------------------------------
// Tile classification

/**
 * Classifies the tile [q0, q1) × [k0, k1) (non-empty) as Empty, Partial or Full. Exact for every
 * primitive; and/or/not combine classes, which may report Partial for a tile that is in fact
 * uniform (the kernel then evaluates the element predicate, which is still correct).
 */
export function classifyTile(mask: Mask | MaskNode, ctx: MaskContext, q0: number, q1: number, k0: number, k1: number): TileClass {
  return classifyNode(mask instanceof Mask ? mask.node : mask, ctx, q0, q1, k0, k1);
}

function classifyNode(n: MaskNode, ctx: MaskContext, q0: number, q1: number, k0: number, k1: number): TileClass {
  switch (n.kind) {
    case 'all': return TileClass.Full;
    case 'none': return TileClass.Empty;
    case 'relative': {
      const off = alignOffset(n.align, ctx);
      const dmin = k0 - (q1 - 1 + off), dmax = k1 - 1 - (q0 + off);
      if (dmax < n.lo || dmin > n.hi) return TileClass.Empty;
      if (dmin >= n.lo && dmax <= n.hi) return TileClass.Full;
      return TileClass.Partial;
    }
    case 'keyRange': {
      if (k1 <= n.lo || k0 >= n.hi) return TileClass.Empty;
      if (k0 >= n.lo && k1 <= n.hi) return TileClass.Full;
      return TileClass.Partial;
    }
    case 'strided': {
      if (n.stride === 1) return TileClass.Full;
      const off = alignOffset(n.align, ctx);
      const lo = q0 + off - (k1 - 1), hi = q1 - 1 + off - k0;
      const first = lo + mod(-lo, n.stride); // smallest multiple of stride ≥ lo
      if (first > hi) return TileClass.Empty;
      return lo === hi ? TileClass.Full : TileClass.Partial;
    }
    case 'blockSparse': {
      let any = false, all = true;
      const r0 = Math.floor(q0 / n.blockQ), r1 = Math.floor((q1 - 1) / n.blockQ);
      const c0 = Math.floor(k0 / n.blockK), c1 = Math.floor((k1 - 1) / n.blockK);
      for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) {
        const v = r < n.rows && c < n.cols && n.layout[r * n.cols + c] !== 0;
        if (v) any = true; else all = false;
      }
      return all ? TileClass.Full : any ? TileClass.Partial : TileClass.Empty;
    }
    case 'keySet': {
      const len = n.keep.length;
      const a = Math.min(k0, len), b = Math.min(k1, len);
      const kept = n.prefix[b]! - n.prefix[a]!;
      if (kept === 0) return TileClass.Empty;
      return kept === k1 - k0 ? TileClass.Full : TileClass.Partial;
    }
    case 'documents': {
      const cq = n.cuSeqlensQ, ck = n.cuSeqlensK;
      const dq0 = docOf(cq, q0), dq1 = docOf(cq, q1 - 1), dk0 = docOf(ck, k0), dk1 = docOf(ck, k1 - 1);
      if (dq0 === dq1 && dk0 === dk1 && dq0 === dk0) return TileClass.Full;
      for (let d = Math.max(dq0, dk0); d <= Math.min(dq1, dk1); d++) {
        if (cq[d + 1]! > cq[d]! && ck[d + 1]! > ck[d]!) return TileClass.Partial;
      }
      return TileClass.Empty;
    }
    case 'topK':
      return classifyNode(n.within, ctx, q0, q1, k0, k1) === TileClass.Empty ? TileClass.Empty : TileClass.Partial;
    case 'predicate': {
      let any = false, all = true;
      for (let i = q0; i < q1; i++) for (let j = k0; j < k1; j++) {
        if (n.fn(i, j)) any = true; else all = false;
        if (any && !all) return TileClass.Partial;
      }
      return all ? TileClass.Full : TileClass.Empty;
    }
    case 'and': {
      let cls = TileClass.Full;
      for (const p of n.parts) {
        const c = classifyNode(p, ctx, q0, q1, k0, k1);
        if (c === TileClass.Empty) return TileClass.Empty;
        if (c === TileClass.Partial) cls = TileClass.Partial;
      }
      return cls;
    }
    case 'or': {
      let cls = TileClass.Empty;
      for (const p of n.parts) {
        const c = classifyNode(p, ctx, q0, q1, k0, k1);
        if (c === TileClass.Full) return TileClass.Full;
        if (c === TileClass.Partial) cls = TileClass.Partial;
      }
      return cls;
    }
    case 'not': {
      const c = classifyNode(n.part, ctx, q0, q1, k0, k1);
      return c === TileClass.Full ? TileClass.Empty : c === TileClass.Empty ? TileClass.Full : TileClass.Partial;
    }
  }
}

/** `mask` is a Mask (ValueError naming `argument` otherwise: a plain object, or a bare function meant for predicate()). */
export function checkMask(mask: unknown, argument = 'mask'): asserts mask is Mask {
  if (!(mask instanceof Mask)) throw new ValueError(`${argument} must be a Mask (causal(), topK(), …) or null, got ${mask === null ? 'null' : typeof mask === 'function' ? 'a function (wrap it in predicate(fn))' : typeof mask}`, argument);
}

/**
 * Checks the mask's data against the shapes it is applied to (ShapeError naming the argument and the dimension);
 * `where` prefixes the message (default `argument`, e.g. 'mask (sequence 2)').
 */
export function validateMask(mask: Mask, ctx: MaskContext, argument = 'mask', where = argument): void {
  checkMask(mask, argument);
  const visit = (n: MaskNode): void => {
    switch (n.kind) {
      case 'blockSparse': {
        const needR = Math.ceil(ctx.seqLenQ / n.blockQ), needC = Math.ceil(ctx.seqLenK / n.blockK);
        if (n.rows < needR || n.cols < needC) {
          throw new ShapeError(`${where}: block-sparse layout is ${n.rows}×${n.cols} blocks, seqLenQ=${ctx.seqLenQ} and seqLenK=${ctx.seqLenK} need ${needR}×${needC} blocks of ${n.blockQ}×${n.blockK}`, argument, n.rows < needR ? 'seqLenQ' : 'seqLenK');
        }
        return;
      }
      case 'keySet':
        if (n.keep.length !== ctx.seqLenK) throw new ShapeError(`${where}: key subset has ${n.keep.length} entries, seqLenK is ${ctx.seqLenK}`, argument, 'seqLenK');
        return;
      case 'documents': {
        const tq = n.cuSeqlensQ[n.cuSeqlensQ.length - 1]!, tk = n.cuSeqlensK[n.cuSeqlensK.length - 1]!;
        if (tq !== ctx.seqLenQ) throw new ShapeError(`${where}: cuSeqlensQ ends at ${tq}, seqLenQ is ${ctx.seqLenQ}`, argument, 'seqLenQ');
        if (tk !== ctx.seqLenK) throw new ShapeError(`${where}: cuSeqlensK ends at ${tk}, seqLenK is ${ctx.seqLenK}`, argument, 'seqLenK');
        return;
      }
      case 'topK': visit(n.within); return;
      case 'and': case 'or': n.parts.forEach(visit); return;
      case 'not': visit(n.part); return;
      default: return;
    }
  };
  visit(mask.node);
}

// ----------------------------------------------------------------------------------------------
// Description and rendering

function fmtInf(v: number): string {
  return v === Infinity ? '∞' : String(v);
}

function describeNode(n: MaskNode): string {
  switch (n.kind) {
    case 'all': return 'all';
    case 'none': return 'none';
    case 'relative': return n.align === 'top-left' ? `${n.label}[top-left]` : n.label;
    case 'keyRange': return `keys[${n.lo},${n.hi})`;
    case 'strided': return `strided(${n.stride})`;
    case 'blockSparse': return `blockSparse(${n.rows}×${n.cols}, ${n.blockQ}×${n.blockK})`;
    case 'keySet': return `keySubset(${n.prefix[n.prefix.length - 1]}/${n.keep.length})`;
    case 'documents': return `documents(${n.cuSeqlensQ.length - 1})`;
    case 'topK': return n.within.kind === 'all' ? `topK(${n.k})` : `topK(${n.k}, ${describeNode(n.within)})`;
    case 'predicate': return n.name;
    case 'and': return `and(${n.parts.map(describeNode).join(', ')})`;
    case 'or': return `or(${n.parts.map(describeNode).join(', ')})`;
    case 'not': return `not(${describeNode(n.part)})`;
  }
}

/**
 * ASCII rendering. Masks of at most `maxCells` (default 64) rows and columns are drawn per element (█ visible,
 * ░ masked); larger ones per square tile, sized so that at most `maxCells` cells fit across (█ full, ▒ partial,
 * ░ empty). A score-dependent mask (topK) ranks keys by `opts.score`, by default −|i − j| (nearest keys first), for
 * the picture only.
 */
export function renderMask(mask: Mask, ctx: MaskContext, opts: { maxCells?: number; score?: (i: number, j: number) => number } = {}): string {
  const maxCells = opts.maxCells ?? 64;
  const { seqLenQ: sq, seqLenK: sk } = ctx;
  if (sq <= maxCells && sk <= maxCells) {
    const d = denseMask(mask, ctx, opts.score ?? (mask.dataDependent ? (i, j) => -Math.abs(i - j) : undefined));
    const lines: string[] = [];
    for (let i = 0; i < sq; i++) {
      let s = '';
      for (let j = 0; j < sk; j++) s += d[i * sk + j] ? '█' : '░';
      lines.push(s);
    }
    return lines.join('\n');
  }
  const tile = Math.ceil(Math.max(sq, sk) / maxCells);
  const lines: string[] = [`(${sq}×${sk}, one cell per ${tile}×${tile} tile: █ full, ▒ partial, ░ empty)`];
  for (let q0 = 0; q0 < sq; q0 += tile) {
    let s = '';
    for (let k0 = 0; k0 < sk; k0 += tile) {
      const c = classifyTile(mask, ctx, q0, Math.min(q0 + tile, sq), k0, Math.min(k0 + tile, sk));
      s += c === TileClass.Full ? '█' : c === TileClass.Partial ? '▒' : '░';
    }
    lines.push(s);
  }
  return lines.join('\n');
}
