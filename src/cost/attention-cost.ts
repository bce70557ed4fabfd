/**
 * FLOPs and minimum HBM bytes of one attention call, counted from the same tile classifier
 * (`planTiles`) the kernels use, so the count is what the kernels do, not what the formula says.
 *
 * Pipeline (as everywhere in the library): options → validated AttentionPlan (the core's own
 * `planAttention` / `planAttentionVarlen`, fed shape-only tensors) → tile plans → counts.
 *
 * What is counted, per visited element e = (query row, key) inside a visited tile, per query head:
 *   QKᵀ      2·headDim        (one multiply-add per dimension)
 *   PV       2·headDimV
 *   softmax  5                (scale, running max, subtract, exp, row sum)
 *            +3 with softcap   (divide, tanh, multiply)
 * and per (query row, visited KV tile) the online-softmax rescale: exp(m − m_new) (2), l update (2)
 * and the accumulator rescale (headDimV); per query row the final 1/l (headDimV). Mask predicates,
 * index arithmetic and padding to SIMD widths are not counted. A top-k mask adds a threshold pass:
 * one more QKᵀ over the tiles of its `within` mask.
 *
 * The "nominal" count is the benchmarks' convention: 4·B·H·Sq·Sk·d (d = (D + Dv)/2), halved for a
 * plain causal mask with Sq = Sk, whatever tiles the kernel visits (`nominalFlops(plan)`).
 */
import { DTypeError, ShapeError, UnsupportedError, checkOptionKeys, optionNames } from '../errors.js';

/** Most tiles a sequence's cost may classify (its tile plan is materialised, as the kernels' is). */
const MAX_COST_TILES = 2 ** 26;
import { type AttentionPlan, type TensorLike, nominalFlops, planAttention, planAttentionVarlen } from '../attention/plan.js';
import { type Mask, Mask as MaskClass, findTopK } from '../masks/mask.js';
import { type TilePlan, planTiles } from '../masks/tiles.js';
import { DTYPES, type DType, bytesPerElement } from '../tensor/dtype.js';
import { checkHeads, dim, dimOr, positive } from './validate.js';
import { decodePath } from '../kernels/cpu/paths.js';

/**
 * Tile sizes of the CPU (WebAssembly) kernels: prefill visits 64×64 tiles; decode packs a GQA group's
 * rows and plans tiles of seqLenQ × 64 per KV head. These mirror PREFILL_TILE_Q / TILE_K in
 * kernels/cpu/wasm-backend.ts (a unit test checks they are equal; the cost model does not import the
 * kernel module so that the static calculator page stays small).
 */
export const CPU_PREFILL_TILE_Q = 64;
/** Keys per KV tile of the CPU kernels, on both paths (see CPU_PREFILL_TILE_Q). */
export const CPU_TILE_K = 64;

/** Softmax FLOPs counted per visited element (scale, max, subtract, exp, sum). */
export const SOFTMAX_FLOPS_PER_ELEMENT = 5;
/** Extra FLOPs per visited element when softcap > 0 (divide, tanh, multiply). */
export const SOFTCAP_FLOPS_PER_ELEMENT = 3;

/**
 * Which tiles a kernel uses: 'cpu' (default) picks the CPU kernels' path as they do; 'cpu-prefill' and
 * 'cpu-decode' force one path; { tileQ, tileK } gives explicit sizes (e.g. WebGPU's, not final yet).
 */
export type TilingSpec = 'cpu' | 'cpu-prefill' | 'cpu-decode' | { readonly tileQ: number; readonly tileK: number };

/** Shapes and options of one attention call, without data. */
export interface AttentionShape {
  /** Default 1. Ignored with cuSeqlensQ (varlen). */
  batch?: number;
  /** Query length (dense). Ignored with cuSeqlensQ. */
  seqLenQ?: number;
  /** Key length (dense); default seqLenQ. */
  seqLenK?: number;
  /** Query heads. */
  numHeads: number;
  /** Default numHeads (MHA); fewer for GQA/MQA (numHeads % numKvHeads == 0). */
  numKvHeads?: number;
  /** Head dim of q and k, 1..256. */
  headDim: number;
  /** Value head dim; default headDim. */
  headDimV?: number;
  /** Storage dtype of q, k, v and out; default 'f16'. */
  dtype?: DType;
  /** Any mask from `masks/`; default null (no mask: every tile visited). */
  mask?: Mask | null;
  /** Shorthand for a bottom-right causal mask (intersected with `mask`). */
  causal?: boolean;
  /** > 0 adds the softcap FLOPs. */
  softcap?: number;
  /** Varlen: cumulative query lengths [numSeqs + 1] (FlashAttention's cu_seqlens_q). */
  cuSeqlensQ?: ArrayLike<number>;
  /** Varlen: cumulative key lengths; default cuSeqlensQ. */
  cuSeqlensK?: ArrayLike<number>;
  /** Count the f32 log-sum-exp output [B, H, Sq] in the bytes. Default false. */
  returnLse?: boolean;
  /** K/V read from a paged cache with this block size: adds the block-table reads (int32 per block). */
  pagedBlockSizeTokens?: number;
}

/** How `attentionCost` counts: which tiles, and the standard kernel's score dtype. */
export interface CostOptions {
  /** 'cpu' (default): the CPU kernels' prefill/decode tiles; or { tileQ, tileK }. */
  tiling?: TilingSpec;
  /** Element type of the materialised S and P of the standard kernel; default: the call's dtype. */
  scoreDtype?: DType;
  /** K/V come from a paged cache with this block size (adds block-table reads). */
  pagedBlockSizeTokens?: number;
}

/** The tiles a kernel visits, from the same tile classifier (`planTiles`) the kernels use. */
export interface AttentionTiling {
  /** 'prefill' / 'decode' for the CPU kernels' paths, 'custom' for explicit tile sizes. */
  path: 'prefill' | 'decode' | 'custom';
  /** Query rows per tile (decode: seqLenQ, one tile row per sequence). */
  tileQ: number;
  /** Keys per tile. */
  tileK: number;
  /**
   * Tiles the kernel visits, in the kernel's own unit (what `lastKernelStats.visitedTiles` reports):
   * per query head for prefill and custom tiles, per KV head for decode (a GQA group shares a tile).
   */
  visitedTiles: number;
  /** Visited tiles with no masked element (unit of visitedTiles). */
  fullTiles: number;
  /** Visited tiles where the kernel evaluates the mask per element (unit of visitedTiles). */
  partialTiles: number;
  /** All tiles of the Sq×Sk grids in the same unit; visitedTiles / totalTiles is the visited fraction. */
  totalTiles: number;
  /** visitedTiles / totalTiles, 0..1 (0 when there are no tiles). */
  visitedFraction: number;
  /** (query, key) pairs inside visited tiles, summed over sequences, per query head. */
  visitedElements: number;
  /** All Sq·Sk pairs summed over sequences, per query head. */
  denseElements: number;
}

/** Counted FLOPs of one call, all heads and sequences: each visited element of a visited tile, masked or not. */
export interface AttentionFlops {
  /** QKᵀ: 2·headDim per visited element per query head. */
  qk: number;
  /** PV: 2·headDimV per visited element per query head. */
  pv: number;
  /** Elementwise softmax (+softcap) and the online rescale. */
  softmax: number;
  /** Extra QKᵀ pass of a top-k mask (0 otherwise). */
  topkPass: number;
  /** qk + pv + topkPass: work for matrix units. */
  matmul: number;
  /** matmul + softmax. */
  total: number;
  /** Benchmarks' convention: 4·B·H·Sq·Sk·d, halved for plain causal with Sq = Sk. */
  nominal: number;
  /** 4·B·H·Sq·Sk·d with no mask discount (`nominalFlops(plan)`). */
  nominalDense: number;
}

/** Minimum HBM traffic of one kernel, in bytes. */
export interface KernelBytes {
  /** Q read: flash, once per query head for Q tiles with work; standard, every row. */
  q: number;
  /** K read: flash, once per KV head for visited KV tiles; standard, once per query head (as after repeat_kv). */
  k: number;
  /** V read, counted as k (with headDimV). */
  v: number;
  /** O written, every row (fully masked rows write zeros). */
  o: number;
  /** f32 log-sum-exp written, 4·numHeads·totalQ; 0 without returnLse. */
  lse: number;
  /** Paged KV block tables: 4 bytes (int32) per block of each sequence; 0 when not paged. */
  blockTable: number;
  /** Standard kernel only: S written then read, P written then read: 4·numHeads·Sq·Sk elements of scoreDtype (flash: 0). */
  scores: number;
  /** Sum of the fields above. */
  total: number;
}

/** What `attentionCost` returns: FLOPs, minimum bytes and visited tiles of one attention call. */
export interface AttentionCost {
  /**
   * The validated call (dims, dtype, mask description). Varlen: batch is the number of sequences,
   * seqLenQ/seqLenK the longest ones, totalQ/totalK the packed rows; groupSize = numHeads / numKvHeads.
   */
  shape: {
    batch: number; seqLenQ: number; seqLenK: number; numHeads: number; numKvHeads: number; groupSize: number;
    headDim: number; headDimV: number; dtype: DType; mask: string; varlen: boolean; totalQ: number; totalK: number;
  };
  /** Tiles visited, in the kernel's own unit. */
  tiling: AttentionTiling;
  /** Counted FLOPs, plus the benchmarks' nominal count. */
  flops: AttentionFlops;
  /** Minimum HBM traffic: flash (Q, K, V read once, O and LSE written once) and standard (S and P materialised). */
  bytes: { flash: KernelBytes; standard: KernelBytes };
  /** FLOPs per byte (total FLOPs over each kernel's bytes). */
  intensity: { flash: number; standard: number };
}

const shapeOnly = (shape: number[], dtype: DType): TensorLike => ({ shape, dtype });

const SHAPE_KEYS = optionNames<AttentionShape>({
  batch: true, seqLenQ: true, seqLenK: true, numHeads: true, numKvHeads: true, headDim: true, headDimV: true, dtype: true, mask: true, causal: true,
  softcap: true, cuSeqlensQ: true, cuSeqlensK: true, returnLse: true, pagedBlockSizeTokens: true,
});
const COST_OPTION_KEYS = optionNames<CostOptions>({ tiling: true, scoreDtype: true, pagedBlockSizeTokens: true });

/**
 * Validates an attention shape into the core's AttentionPlan (the same checks `attention()` makes),
 * after checking the dimensions themselves: negative or non-integer dims → ShapeError naming the
 * dimension; numHeads not divisible by numKvHeads → ShapeError('numKvHeads').
 */
export function planAttentionShape(s: AttentionShape): AttentionPlan {
  if (!s || typeof s !== 'object') throw new ShapeError('attention shape must be an object', 'shape');
  // A misspelt key (casual, seqLenKV) would silently cost another shape.
  checkOptionKeys(s, SHAPE_KEYS, 'an attention shape');
  const numHeads = dim(s.numHeads, 'numHeads');
  const numKvHeads = dimOr(s.numKvHeads, numHeads, 'numKvHeads');
  checkHeads(numHeads, numKvHeads);
  const headDim = dim(s.headDim, 'headDim');
  const headDimV = dimOr(s.headDimV, headDim, 'headDimV');
  const dtype = s.dtype ?? 'f16';
  if (!DTYPES.includes(dtype)) throw new DTypeError(`dtype must be one of ${DTYPES.join(', ')}, got ${JSON.stringify(dtype)}`, 'dtype');
  if (s.softcap !== undefined) positive(s.softcap, 'softcap', { allowZero: true });
  if (s.pagedBlockSizeTokens !== undefined) dim(s.pagedBlockSizeTokens, 'pagedBlockSizeTokens');
  const opts = { mask: s.mask ?? null, causal: s.causal, softcap: s.softcap, returnLse: s.returnLse };
  if (s.cuSeqlensQ !== undefined) {
    const cuQ = Array.from(s.cuSeqlensQ), cuK = Array.from(s.cuSeqlensK ?? s.cuSeqlensQ);
    const totalQ = cuQ[cuQ.length - 1] ?? 0, totalK = cuK[cuK.length - 1] ?? 0;
    const q = shapeOnly([totalQ, numHeads, headDim], dtype);
    const k = shapeOnly([totalK, numKvHeads, headDim], dtype);
    const v = shapeOnly([totalK, numKvHeads, headDimV], dtype);
    return planAttentionVarlen(q, k, v, { ...opts, cuSeqlensQ: cuQ, cuSeqlensK: cuK });
  }
  const batch = dimOr(s.batch, 1, 'batch', { min: 0 });
  const seqLenQ = dim(s.seqLenQ, 'seqLenQ', { min: 0 });
  const seqLenK = dimOr(s.seqLenK, seqLenQ, 'seqLenK', { min: 0 });
  // Token offsets (cu_seqlens) are 32-bit, as in FlashAttention's varlen API.
  for (const [len, name] of [[seqLenQ, 'seqLenQ'], [seqLenK, 'seqLenK']] as const) {
    if (batch * len > 0x7fffffff) throw new ShapeError(`batch × ${name} = ${batch * len} tokens exceeds 2^31 − 1`, name, 'tokens');
  }
  const q = shapeOnly([batch, seqLenQ, numHeads, headDim], dtype);
  const k = shapeOnly([batch, seqLenK, numKvHeads, headDim], dtype);
  const v = shapeOnly([batch, seqLenK, numKvHeads, headDimV], dtype);
  return planAttention(q, k, v, opts);
}

/**
 * The CPU kernels' path choice (kernels/cpu/paths.ts, shared with the backend; decode: few queries, all
 * heads' rows of a sequence in one tile). A unit test runs the kernel and checks that this
 * agrees with `lastKernelStats.path`.
 */
export function cpuKernelPath(plan: AttentionPlan): 'prefill' | 'decode' {
  const topk = plan.mask ? findTopK(plan.mask.node) : null;
  return !topk && decodePath(plan) ? 'decode' : 'prefill';
}

function isPlainCausal(mask: Mask | null): boolean {
  return !!mask && isCausalNode(mask.node);
}

// `causal: true` with `mask: causal()` arrives as and(causal, causal): still plain causal.
function isCausalNode(n: Mask['node']): boolean {
  if (n.kind === 'and') return n.parts.length > 0 && n.parts.every(isCausalNode);
  return n.kind === 'relative' && n.lo === -Infinity && n.hi === 0;
}

interface SeqTiles { lenQ: number; lenK: number; plan: TilePlan | null; within: TilePlan | null }

/** Row-tile pairs: Σ over Q tiles of (rows in the tile × visited KV tiles in its row). */
function rowTilePairs(tp: TilePlan): number {
  let s = 0;
  for (let qt = 0; qt < tp.numQTiles; qt++) {
    const rows = Math.min(tp.tileQ, tp.seqLenQ - qt * tp.tileQ);
    s += rows * (tp.rowStart[qt + 1]! - tp.rowStart[qt]!);
  }
  return s;
}

/** Rows of Q tiles that visit at least one KV tile, and keys of KV tiles visited by at least one Q tile. */
function touched(tp: TilePlan): { rows: number; keys: number } {
  let rows = 0;
  const seen = new Uint8Array(tp.numKTiles);
  for (let qt = 0; qt < tp.numQTiles; qt++) {
    const e0 = tp.rowStart[qt]!, e1 = tp.rowStart[qt + 1]!;
    if (e1 > e0) rows += Math.min(tp.tileQ, tp.seqLenQ - qt * tp.tileQ);
    for (let e = e0; e < e1; e++) seen[tp.entries[e]! >> 1] = 1;
  }
  let keys = 0;
  for (let kt = 0; kt < tp.numKTiles; kt++) if (seen[kt]) keys += Math.min(tp.tileK, tp.seqLenK - kt * tp.tileK);
  return { rows, keys };
}

/**
 * FLOPs, bytes and tile counts of an attention call described by a validated plan. Tiles come from
 * `planTiles(mask, {seqLenQ, seqLenK}, tileQ, tileK)` per sequence, as in the kernels.
 */
export function attentionCostFromPlan(plan: AttentionPlan, opts: CostOptions = {}): AttentionCost {
  checkOptionKeys(opts ?? {}, COST_OPTION_KEYS, 'attentionCost');
  const tiling = opts.tiling ?? 'cpu';
  if (opts.pagedBlockSizeTokens !== undefined) dim(opts.pagedBlockSizeTokens, 'pagedBlockSizeTokens');
  let path: AttentionTiling['path'], tileQ: number, tileK: number;
  if (tiling === 'cpu' || tiling === 'cpu-prefill' || tiling === 'cpu-decode') {
    path = tiling === 'cpu' ? cpuKernelPath(plan) : tiling === 'cpu-decode' ? 'decode' : 'prefill';
    tileQ = path === 'decode' ? Math.max(1, plan.seqLenQ) : CPU_PREFILL_TILE_Q;
    tileK = CPU_TILE_K;
  } else {
    if (!tiling || typeof tiling !== 'object') throw new ShapeError(`tiling must be 'cpu', 'cpu-prefill', 'cpu-decode' or { tileQ, tileK }, got ${String(tiling)}`, 'tiling');
    path = 'custom';
    tileQ = dim(tiling.tileQ, 'tileQ', { path: 'tiling' });
    tileK = dim(tiling.tileK, 'tileK', { path: 'tiling' });
  }
  const H = plan.numHeads, Hk = plan.numKvHeads, D = plan.headDim, Dv = plan.headDimV;
  const topk = plan.mask ? findTopK(plan.mask.node) : null;
  const withinMask = topk ? new MaskClass(topk.within) : null;

  const unit = path === 'decode' ? Hk : H;
  // The decode path plans one tile row of all lenQ queries per sequence (kernel: tileQ = lenQ).
  const tileQOf = (lenQ: number) => (path === 'decode' ? Math.max(1, lenQ) : tileQ);
  // Checked before any tile is planned. The tile plan lists every visited tile, as the kernels' does: past ~2^26
  // tiles (a causal 1M-token sequence) it would exhaust the JavaScript heap and abort the process, so it is refused;
  // and tile counts are exact integers below 2^53, past which they would round silently.
  let tileCount = 0;
  for (let b = 0; b < plan.batch; b++) {
    const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lenK = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
    const tiles = Math.ceil(lenQ / tileQOf(lenQ)) * Math.ceil(lenK / tileK);
    if (tiles > MAX_COST_TILES) {
      throw new UnsupportedError(`a ${lenQ} × ${lenK} sequence has ${tiles} tiles to classify (limit ${MAX_COST_TILES})`, `sequences of at most ${Math.floor(Math.sqrt(MAX_COST_TILES)) * tileK} tokens (nominalFlops for the plain count)`);
    }
    tileCount += tiles;
  }
  if (!(tileCount * unit <= Number.MAX_SAFE_INTEGER)) {
    throw new ShapeError(`${tileCount} tiles × ${unit} heads is past 2^53, where tile counts stay exact`, 'shape', path === 'decode' ? 'numKvHeads' : 'numHeads');
  }

  // Tile plans per sequence, shared between sequences of one shape (as the kernel does).
  const byShape = new Map<string, SeqTiles>();
  const seqs: SeqTiles[] = [];
  for (let b = 0; b < plan.batch; b++) {
    const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lenK = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
    const key = `${lenQ},${lenK}`;
    let st = byShape.get(key);
    if (!st) {
      const ctx = { seqLenQ: lenQ, seqLenK: lenK };
      const tq = tileQOf(lenQ);
      st = {
        lenQ, lenK,
        plan: lenQ > 0 ? planTiles(plan.mask, ctx, tq, tileK) : null,
        within: lenQ > 0 && withinMask ? planTiles(withinMask, ctx, tq, tileK) : null,
      };
      byShape.set(key, st);
    }
    seqs.push(st);
  }

  let entries = 0, full = 0, partial = 0, total = 0, visited = 0, dense = 0, rowTiles = 0, withinElems = 0;
  let rowsTouched = 0, keysTouched = 0, blocks = 0;
  for (const s of seqs) {
    dense += s.lenQ * s.lenK;
    if (!s.plan) continue;
    entries += s.plan.entries.length;
    full += s.plan.fullTiles;
    partial += s.plan.partialTiles;
    total += s.plan.numQTiles * s.plan.numKTiles;
    visited += s.plan.visitedElements;
    rowTiles += rowTilePairs(s.plan);
    const t = touched(s.plan);
    rowsTouched += t.rows;
    keysTouched += t.keys;
    if (s.within) withinElems += s.within.visitedElements;
  }

  const softmaxPerElem = SOFTMAX_FLOPS_PER_ELEMENT + (plan.softcap > 0 ? SOFTCAP_FLOPS_PER_ELEMENT : 0);
  const qk = 2 * D * visited * H;
  const pv = 2 * Dv * visited * H;
  // The final 1/l per row of a Q tile with work: rows of fully masked tiles only write their zeros.
  const softmax = H * (softmaxPerElem * visited + rowTiles * (4 + Dv) + rowsTouched * Dv);
  const topkPass = topk ? H * withinElems * (2 * D + (plan.softcap > 0 ? SOFTCAP_FLOPS_PER_ELEMENT : 0)) : 0;
  const nominalDense = nominalFlops(plan);
  const squareCausal = isPlainCausal(plan.mask) && seqs.every((s) => s.lenQ === s.lenK);
  const flops: AttentionFlops = {
    qk, pv, softmax, topkPass, matmul: qk + pv + topkPass, total: qk + pv + topkPass + softmax,
    nominal: squareCausal ? nominalDense / 2 : nominalDense, nominalDense,
  };

  const bpe = bytesPerElement(plan.dtype);
  if (opts.scoreDtype !== undefined && !DTYPES.includes(opts.scoreDtype)) throw new DTypeError(`scoreDtype must be one of ${DTYPES.join(', ')}, got ${JSON.stringify(opts.scoreDtype)}`, 'scoreDtype');
  const sbpe = bytesPerElement(opts.scoreDtype ?? plan.dtype);
  const blockSize = opts.pagedBlockSizeTokens;
  if (blockSize) for (const s of seqs) blocks += Math.ceil(s.lenK / blockSize);
  const lse = plan.returnLse ? 4 * H * plan.totalQ : 0;
  const blockTable = 4 * blocks;
  // Flash: each Q row (of a Q tile with work) read once per head, each visited K/V row once per KV
  // head (a GQA group shares the load), O written for every row (masked rows write 0).
  const fq = rowsTouched * H * D * bpe, fk = keysTouched * Hk * D * bpe, fv = keysTouched * Hk * Dv * bpe;
  const fo = plan.totalQ * H * Dv * bpe;
  const flash: KernelBytes = { q: fq, k: fk, v: fv, o: fo, lse, blockTable, scores: 0, total: fq + fk + fv + fo + lse + blockTable };
  // Standard: Q, K, V read (K/V per query head, as after repeat_kv), S = QKᵀ written, read by the
  // softmax, P written, read by PV; the whole Sq×Sk grid whatever the mask.
  const sq = plan.totalQ * H * D * bpe, sk = plan.totalK * H * D * bpe, sv = plan.totalK * H * Dv * bpe;
  const scores = 4 * dense * H * sbpe;
  const standard: KernelBytes = { q: sq, k: sk, v: sv, o: fo, lse, blockTable, scores, total: sq + sk + sv + fo + lse + blockTable + scores };

  return {
    shape: {
      batch: plan.batch, seqLenQ: plan.seqLenQ, seqLenK: plan.seqLenK, numHeads: H, numKvHeads: Hk, groupSize: plan.groupSize,
      headDim: D, headDimV: Dv, dtype: plan.dtype, mask: plan.mask ? plan.mask.describe() : 'none', varlen: plan.varlen,
      totalQ: plan.totalQ, totalK: plan.totalK,
    },
    tiling: {
      path, tileQ, tileK, visitedTiles: entries * unit, fullTiles: full * unit, partialTiles: partial * unit,
      totalTiles: total * unit, visitedFraction: total ? entries / total : 0, visitedElements: visited, denseElements: dense,
    },
    flops,
    bytes: { flash, standard },
    intensity: { flash: flash.total ? flops.total / flash.total : 0, standard: standard.total ? flops.total / standard.total : 0 },
  };
}

/**
 * FLOPs, minimum bytes and visited tiles of one attention call, from its shapes alone.
 *
 * Shapes: q [batch, seqLenQ, numHeads, headDim], k [batch, seqLenK, numKvHeads, headDim],
 * v [batch, seqLenK, numKvHeads, headDimV] (varlen: cuSeqlensQ/K instead of batch and lengths).
 * Masks follow the library's conventions: causal aligns bottom-right when seqLenQ ≠ seqLenK, and fully
 * masked rows cost nothing but still write their zero output.
 * ```
 * causal, Sq = Sk = 256, 64×64 tiles: 10 of 16 tiles visited (4 partial on the diagonal)
 *   ▒ ░ ░ ░
 *   █ ▒ ░ ░
 *   █ █ ▒ ░
 *   █ █ █ ▒
 * ```
 * @example attentionCost({ seqLenQ: 577, numHeads: 16, headDim: 64 }).flops.nominal  // 1.364e9
 */
export function attentionCost(shape: AttentionShape, opts: CostOptions = {}): AttentionCost {
  const plan = planAttentionShape(shape);
  return attentionCostFromPlan(plan, { ...opts, pagedBlockSizeTokens: opts.pagedBlockSizeTokens ?? shape.pagedBlockSizeTokens });
}
