/**
 * The oracle for paged attention kernels: gather each sequence's K/V through its block table into a
 * contiguous copy, then run the float64 reference (reference/attention-ref.ts). Slow and obvious
 * on purpose; the kernels (`attentionPaged`) read the blocks in place and must match it.
 *
 * Rotated int8 caches: the reference rotates q with `rotateQuery` (exactly what a kernel does),
 * attends over the stored rotated, dequantised K/V, and un-rotates the output in float64, so its
 * result is comparable with attention on the original f32 K/V.
 */
import { ShapeError, ValueError } from '../errors.js';
import { checkCuSeqlens } from '../masks/mask.js';
import { type ReferenceOptions, attentionReference } from '../reference/attention-ref.js';
import { Tensor } from '../tensor/tensor.js';
import { PagedKvCache } from './kv-cache.js';
import { KvBlockStorage } from './kv-storage.js';
import { rotateQuery, unrotateInPlace } from './quant.js';

/** A storage, or a cache holding one. */
export type KvStorageLike = KvBlockStorage | PagedKvCache;

/** Per-sequence tables, or a padded [numSeqs, maxBlocksPerSeq] table (as `PagedKvCache.batch` returns). */
export type BlockTablesInput = readonly ArrayLike<number>[] | { readonly blockTables: Int32Array; readonly maxBlocksPerSeq: number };

/** `attentionReference`'s options (scale, softcap, mask, precision…) plus varlen query boundaries. */
export interface PagedReferenceOptions extends ReferenceOptions {
  /** Varlen queries: q is [totalQ, numHeads, headDim] split by these boundaries [numSeqs + 1]. */
  cuSeqlensQ?: ArrayLike<number>;
}

/** Output and log-sum-exp of `pagedAttentionReference`, in float64 and in the model's (unrotated) space. */
export interface PagedReferenceResult {
  /** Dense: [numSeqs, seqLenQ, numHeads, headDim]; varlen: [totalQ, numHeads, headDim]. */
  out: Float64Array;
  /** Dense: [numSeqs, numHeads, seqLenQ]; varlen: [numHeads, totalQ]. Natural log; −∞ for fully masked rows. */
  lse: Float64Array;
}

export function storageOf(pool: KvStorageLike): KvBlockStorage {
  if (pool instanceof KvBlockStorage) return pool;
  if (pool instanceof PagedKvCache) {
    if (!pool.storage) throw new ValueError('the cache has no storage (allocateStorage: false)', 'pool');
    return pool.storage;
  }
  throw new ValueError('pool must be a PagedKvCache or a KvBlockStorage', 'pool');
}

/** Pads per-sequence block tables into one [numSeqs, maxBlocksPerSeq] int32 table (0 past each table). */
export function packBlockTables(tables: readonly ArrayLike<number>[]): { blockTables: Int32Array; maxBlocksPerSeq: number } {
  const maxBlocksPerSeq = Math.max(1, ...tables.map((t) => t.length));
  const blockTables = new Int32Array(tables.length * maxBlocksPerSeq);
  tables.forEach((t, i) => blockTables.set(t, i * maxBlocksPerSeq));
  return { blockTables, maxBlocksPerSeq };
}

export function tableRows(input: BlockTablesInput, numSeqs: number): ArrayLike<number>[] {
  if (Array.isArray(input)) {
    if (input.length !== numSeqs) throw new ShapeError(`blockTables has ${input.length} tables, seqLens has ${numSeqs} sequences`, 'blockTables', 'numSeqs');
    return input as ArrayLike<number>[];
  }
  const { blockTables, maxBlocksPerSeq } = input as { blockTables: Int32Array; maxBlocksPerSeq: number };
  if (!(blockTables instanceof Int32Array) || !Number.isInteger(maxBlocksPerSeq) || maxBlocksPerSeq < 1) {
    throw new ValueError('blockTables must be an array of tables or { blockTables: Int32Array, maxBlocksPerSeq }', 'blockTables');
  }
  if (blockTables.length !== numSeqs * maxBlocksPerSeq) {
    throw new ShapeError(`blockTables has ${blockTables.length} entries, expected numSeqs·maxBlocksPerSeq = ${numSeqs}·${maxBlocksPerSeq}`, 'blockTables', 'maxBlocksPerSeq');
  }
  return Array.from({ length: numSeqs }, (_, i) => blockTables.subarray(i * maxBlocksPerSeq, (i + 1) * maxBlocksPerSeq));
}

export function checkTable(st: KvBlockStorage, table: ArrayLike<number>, seqLen: number, which: string): void {
  const bs = st.blockSizeTokens;
  if (!Number.isInteger(seqLen) || seqLen < 0) throw new ValueError(`${which}: seqLen must be an integer ≥ 0, got ${seqLen}`, 'seqLens');
  const need = Math.ceil(seqLen / bs);
  if (need > table.length) throw new ShapeError(`${which}: seqLen ${seqLen} needs ${need} blocks of ${bs} tokens, the block table has ${table.length}`, 'blockTables', 'maxBlocksPerSeq');
  for (let i = 0; i < need; i++) {
    const b = table[i]!;
    if (!Number.isInteger(b) || b < 0 || b >= st.numBlocks) throw new ValueError(`${which}: block table entry ${i} is ${b}, outside 0..${st.numBlocks - 1}`, 'blockTables');
  }
}

/**
 * Copies a sequence's K and V of one layer out of the paged storage: k, v [seqLen, numKvHeads,
 * headDim]. f32/f16 storage gives tensors of that dtype with identical bits; int8 gives f32
 * dequantised values, in the stored (rotated, smoothed) space unless `unrotate` is set, which maps them
 * back to the model's: Rᵀ, and K times its smoothing factors.
 */
export function gatherContiguous(pool: KvStorageLike, layer: number, blockTable: ArrayLike<number>, seqLen: number, opts: { unrotate?: boolean } = {}): { k: Tensor; v: Tensor } {
  const st = storageOf(pool);
  if (!Number.isInteger(layer) || layer < 0 || layer >= st.numLayers) throw new ValueError(`layer must be an integer in 0..${st.numLayers - 1}, got ${layer}`, 'layer');
  checkTable(st, blockTable, seqLen, 'gatherContiguous');
  const Hk = st.numKvHeads, D = st.headDim, bs = st.blockSizeTokens, E = Hk * D;
  const layerSt = st.layers[layer]!;
  const shape = [seqLen, Hk, D];
  if (layerSt.dtype !== 'int8') {
    const out: Tensor[] = [];
    for (const src of [layerSt.k, layerSt.v]) {
      const t = Tensor.zeros(shape, src.dtype);
      for (let p = 0; p < seqLen; p++) {
        const slot = blockTable[Math.floor(p / bs)]! * bs + (p % bs);
        t.data.set(src.data.subarray(slot * E, (slot + 1) * E), p * E);
      }
      out.push(t);
    }
    return { k: out[0]!, v: out[1]! };
  }
  const res: Tensor[] = [];
  for (const which of ['k', 'v'] as const) {
    const x = new Float64Array(seqLen * E);
    for (let p = 0; p < seqLen; p++) st.readSlot(layer, which, blockTable[Math.floor(p / bs)]! * bs + (p % bs), x, p * E);
    if (opts.unrotate && st.rotation) {
      for (let r = 0; r < seqLen * Hk; r++) unrotateInPlace(x, r * D, st.rotation.signs[layer]!, (r % Hk) * D, st.rotation.chunks);
    }
    const lam = opts.unrotate && which === 'k' ? st.smoothing?.[layer] : null;
    if (lam) for (let r = 0; r < seqLen * Hk; r++) for (let c = 0; c < D; c++) x[r * D + c]! *= lam[(r % Hk) * D + c]!;
    res.push(Tensor.fromValues(x, shape, 'f32'));
  }
  return { k: res[0]!, v: res[1]! };
}

/**
 * Paged attention by gathering: for each sequence b, attention of its queries over the seqLens[b]
 * keys its block table names, with per-sequence bottom-right mask alignment.
 *
 * Shapes: q [numSeqs, seqLenQ, numHeads, headDim] (dense; decode is seqLenQ = 1) or
 * [totalQ, numHeads, headDim] with `cuSeqlensQ` (varlen, continuous batching); numHeads a multiple
 * of numKvHeads (query head h reads KV head ⌊h / (numHeads/numKvHeads)⌋). The storage holds
 * [numBlocks, blockSizeTokens, numKvHeads, headDim] per layer. Fully masked rows output 0.
 */
export function pagedAttentionReference(q: Tensor, pool: KvStorageLike, layer: number, blockTables: BlockTablesInput, seqLens: ArrayLike<number>, opts: PagedReferenceOptions = {}): PagedReferenceResult {
  const st = storageOf(pool);
  if (!(q instanceof Tensor)) throw new ValueError('q must be a Tensor', 'q');
  if (!seqLens || typeof seqLens.length !== 'number') throw new ValueError('seqLens must be an array of lengths', 'seqLens');
  const numSeqs = seqLens.length;
  const varlen = opts.cuSeqlensQ !== undefined;
  if (varlen && q.rank !== 3) throw new ShapeError(`q must be 3-D [totalQ, numHeads, headDim] with cuSeqlensQ, got [${q.shape.join(', ')}]`, 'q');
  if (!varlen && q.rank !== 4) throw new ShapeError(`q must be 4-D [numSeqs, seqLenQ, numHeads, headDim], got [${q.shape.join(', ')}]`, 'q');
  const H = q.shape[q.rank - 2]!, D = q.shape[q.rank - 1]!;
  if (D !== st.headDim) throw new ShapeError(`q has headDim ${D}, the cache has ${st.headDim}`, 'q', 'headDim');
  if (H % st.numKvHeads !== 0) throw new ShapeError(`q has ${H} heads, not a multiple of numKvHeads ${st.numKvHeads}`, 'q', 'numHeads');
  let cuQ: Int32Array;
  if (varlen) {
    cuQ = checkCuSeqlens(opts.cuSeqlensQ!, 'cuSeqlensQ', q.shape[0]!);
    if (cuQ.length !== numSeqs + 1) throw new ShapeError(`cuSeqlensQ has ${cuQ.length - 1} sequences, seqLens has ${numSeqs}`, 'cuSeqlensQ', 'numSeqs');
  } else {
    if (q.shape[0] !== numSeqs) throw new ShapeError(`q has batch ${q.shape[0]}, seqLens has ${numSeqs} sequences`, 'q', 'batch');
    cuQ = Int32Array.from({ length: numSeqs + 1 }, (_, b) => b * q.shape[1]!);
  }
  const tables = tableRows(blockTables, numSeqs);
  for (let b = 0; b < numSeqs; b++) checkTable(st, tables[b]!, seqLens[b]!, `sequence ${b}`);
  const qr = rotateQuery(q, st, layer);
  const qFlat = qr.reshape([cuQ[numSeqs]!, H, D]);
  const totalQ = cuQ[numSeqs]!;
  const out = new Float64Array(totalQ * H * D);
  const lseVarlen = new Float64Array(H * totalQ);
  const { cuSeqlensQ: _drop, ...refOpts } = opts;
  for (let b = 0; b < numSeqs; b++) {
    const q0 = cuQ[b]!, q1 = cuQ[b + 1]!;
    if (q1 === q0) continue;
    const { k, v } = gatherContiguous(st, layer, tables[b]!, seqLens[b]!);
    const Sk = seqLens[b]!;
    const r = attentionReference(qFlat.slice(0, q0, q1).reshape([1, q1 - q0, H, D]), k.reshape([1, Sk, st.numKvHeads, D]), v.reshape([1, Sk, st.numKvHeads, D]), refOpts);
    out.set(r.out, q0 * H * D);
    for (let h = 0; h < H; h++) for (let i = 0; i < q1 - q0; i++) lseVarlen[h * totalQ + q0 + i] = r.lse[h * (q1 - q0) + i]!;
  }
  if (st.rotation) {
    const group = H / st.numKvHeads;
    for (let row = 0; row < totalQ * H; row++) unrotateInPlace(out, row * D, st.rotation.signs[layer]!, Math.floor((row % H) / group) * D, st.rotation.chunks);
  }
  if (varlen) return { out, lse: lseVarlen };
  const Sq = q.shape[1]!;
  const lse = new Float64Array(numSeqs * H * Sq);
  for (let b = 0; b < numSeqs; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Sq; i++) lse[(b * H + h) * Sq + i] = lseVarlen[h * totalQ + b * Sq + i]!;
  return { out, lse };
}
