/**
 * Paged attention: queries against K/V that live in the paged block pool, read through each
 * sequence's block table (vLLM's PagedAttention) with no gather into a contiguous copy, on the
 * WebAssembly backend and on WebGPU (from the storage's device copy, kv-gpu.ts). Prefill and decode,
 * GQA, every mask (aligned bottom-right per sequence), varlen batches of sequences of different lengths (continuous batching), f32/f16 blocks and int8 blocks with
 * per-block-per-head scales dequantised inside the kernel. Rotated int8 caches rotate q and un-rotate
 * the output on the host (quant.ts), which leaves QKᵀ and P·V unchanged.
 *
 * Shapes: q [numSeqs, seqLenQ, numHeads, headDim] (decode: seqLenQ = 1) or, with `cuSeqlensQ`,
 * [totalQ, numHeads, headDim]; the storage holds [numBlocks, blockSizeTokens, numKvHeads, headDim] per
 * layer; seqLens[b] keys of sequence b are visible. Returns out in q's shape and, with returnLse,
 * lse [numSeqs, numHeads, seqLenQ] (varlen: [numHeads, totalQ]).
 */
import { type AttentionOptions, UNLAID_OPTION_KEYS, planAttentionVarlen } from '../attention/plan.js';
import { attentionVarlen, type AttentionResult, type RunOptions } from '../attention/attention.js';
import { getBackend } from '../attention/backend.js';
import { ShapeError, ValueError, checkOptionKeys } from '../errors.js';
import { checkCuSeqlens } from '../masks/mask.js';
import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import { runWasm } from '../kernels/cpu/wasm-backend.js';
import { runPagedHost } from '../kernels/webgpu/attention-gpu.js';
import { gpuKvMirror } from './kv-gpu.js';
import { type BlockTablesInput, type KvStorageLike, checkTable, gatherContiguous, storageOf, tableRows } from './paged-reference.js';
import { rotateQuery, unrotateOutput } from './quant.js';

/** `attentionVarlen`'s options (scale, softcap, mask, causal, returnLse; layout does not apply), plus varlen query boundaries and the backend. */
export interface PagedAttentionOptions extends Omit<AttentionOptions, 'layout'> {
  /** Varlen queries: q is [totalQ, numHeads, headDim] split by these boundaries [numSeqs + 1]. */
  cuSeqlensQ?: ArrayLike<number>;
  /** 'auto'/'wasm' and 'webgpu' read blocks in place; 'cpu-ts' gathers (reference-speed fallback). Default 'auto': WebAssembly, else TypeScript. */
  backend?: RunOptions['backend'];
}

/**
 * Attention of q over the K/V of one layer of a paged cache (a PagedKvCache or its KvBlockStorage),
 * read through each sequence's block table: in place on 'wasm' and 'webgpu', gathered on 'cpu-ts'.
 *
 * Shapes: q [numSeqs, seqLenQ, numHeads, headDim] (decode: seqLenQ = 1) or, with `cuSeqlensQ`,
 * [totalQ, numHeads, headDim]; numHeads a multiple of numKvHeads (query head h reads KV head
 * ⌊h / (numHeads / numKvHeads)⌋). Sequence b sees its first seqLens[b] keys; `blockTables` is one table
 * per sequence or `cache.batch(ids)`'s padded one. Returns out in q's shape and dtype and, with
 * returnLse, lse [numSeqs, numHeads, seqLenQ] (varlen: [numHeads, totalQ]; −∞ on fully masked rows).
 *
 * Masks align bottom-right per sequence when seqLenQ ≠ seqLen; fully masked rows output 0:
 * ```
 * causal, seqLenQ 2, seqLen 4
 * █ █ █ ░
 * █ █ █ █
 * ```
 * Rotated or K-smoothed int8 caches take q and return out in the model's space: q is rotated and
 * the output un-rotated here.
 */
export async function attentionPaged(q: Tensor, pool: KvStorageLike, layer: number, blockTables: BlockTablesInput, seqLens: ArrayLike<number>, opts: PagedAttentionOptions = {}): Promise<AttentionResult> {
  const st = storageOf(pool);
  opts ??= {}; // null reads as no options
  checkOptionKeys(opts, [...UNLAID_OPTION_KEYS, 'cuSeqlensQ', 'backend'], 'attentionPaged');
  if (!(q instanceof Tensor)) throw new ValueError('q must be a Tensor', 'q');
  if (!Number.isInteger(layer) || layer < 0 || layer >= st.numLayers) throw new ValueError(`layer must be an integer in 0..${st.numLayers - 1}, got ${layer}`, 'layer');
  if (!seqLens || typeof seqLens.length !== 'number') throw new ValueError('seqLens must be an array of lengths', 'seqLens');
  const numSeqs = seqLens.length;
  const varlen = opts.cuSeqlensQ !== undefined;
  if (varlen && q.rank !== 3) throw new ShapeError(`q must be 3-D [totalQ, numHeads, headDim] with cuSeqlensQ, got [${q.shape.join(', ')}]`, 'q');
  if (!varlen && q.rank !== 4) throw new ShapeError(`q must be 4-D [numSeqs, seqLenQ, numHeads, headDim], got [${q.shape.join(', ')}]`, 'q');
  const H = q.shape[q.rank - 2]!, D = q.shape[q.rank - 1]!, Hk = st.numKvHeads;
  if (D !== st.headDim) throw new ShapeError(`q has headDim ${D}, the cache has ${st.headDim}`, 'q', 'headDim');
  if (!varlen && q.shape[0] !== numSeqs) throw new ShapeError(`q has batch ${q.shape[0]}, seqLens has ${numSeqs} sequences`, 'q', 'batch');
  const Sq = varlen ? 0 : q.shape[1]!;
  if (!varlen && numSeqs === 0) {
    // An empty batch (cache.batch([])): an empty output, as the reference gives.
    return { out: Tensor.zeros([0, Sq, H, D], q.dtype), ...(opts.returnLse ? { lse: Tensor.zeros([0, H, Sq]) } : {}) };
  }
  const cuQ = varlen ? checkCuSeqlens(opts.cuSeqlensQ!, 'cuSeqlensQ', q.shape[0]!) : Int32Array.from({ length: numSeqs + 1 }, (_, b) => b * Sq);
  if (cuQ.length !== numSeqs + 1) throw new ShapeError(`cuSeqlensQ has ${cuQ.length - 1} sequences, seqLens has ${numSeqs}`, 'cuSeqlensQ', 'numSeqs');
  const tables = tableRows(blockTables, numSeqs);
  for (let b = 0; b < numSeqs; b++) checkTable(st, tables[b]!, seqLens[b]!, `sequence ${b}`);
  const cuK = new Int32Array(numSeqs + 1);
  for (let b = 0; b < numSeqs; b++) cuK[b + 1] = cuK[b]! + seqLens[b]!;
  const totalQ = cuQ[numSeqs]!;
  // Rotated or K-smoothed int8 caches: attend in the stored space (queries R·(λ ⊙ q); V is only rotated, so only R comes off the output).
  const qRot = rotateQuery(q, st, layer);
  const qFlat = (qRot.dtype === q.dtype ? qRot : qRot.to(q.dtype)).reshape([totalQ, H, D]);
  const backend = await getBackend(opts.backend ?? 'auto');
  const { cuSeqlensQ: _q, backend: _b, ...attnOpts } = opts;
  let out: Tensor, lse: Tensor | undefined;
  if (backend.name === 'wasm') {
    const kvLike = { shape: [cuK[numSeqs]!, Hk, D], dtype: q.dtype } as const;
    const plan = planAttentionVarlen(qFlat, kvLike, kvLike, { ...attnOpts, cuSeqlensQ: cuQ, cuSeqlensK: cuK });
    out = Tensor.zeros([totalQ, H, D], q.dtype);
    lse = opts.returnLse ? Tensor.zeros([H, totalQ]) : undefined;
    const L = st.layers[layer]!;
    const paged = L.dtype === 'int8'
      ? { blockSize: st.blockSizeTokens, tables, k: L.k, v: L.v, kScales: L.kScales, vScales: L.vScales }
      : { blockSize: st.blockSizeTokens, tables, k: L.k, v: L.v };
    await runWasm(plan, qFlat, qFlat, qFlat, out, lse ?? null, undefined, paged);
  } else if (backend.name === 'webgpu') {
    // The storage's device copy (uploaded once, then kept in step with writes), read in place.
    const kvLike = { shape: [cuK[numSeqs]!, Hk, D], dtype: q.dtype } as const;
    const plan = planAttentionVarlen(qFlat, kvLike, kvLike, { ...attnOpts, cuSeqlensQ: cuQ, cuSeqlensK: cuK });
    out = Tensor.zeros([totalQ, H, D], q.dtype);
    lse = opts.returnLse ? Tensor.zeros([H, totalQ]) : undefined;
    const G = (await gpuKvMirror(st)).layers[layer]!;
    await runPagedHost(plan, qFlat, { blockSize: st.blockSizeTokens, tables, kvFmt: G.kvFmt, k: G.k, v: G.v, kScales: G.kScales, vScales: G.vScales }, out, lse ?? null);
  } else {
    // Gathering fallback (TypeScript backend): one contiguous copy per sequence. K/V keep the cache's precision
    // as the other backends read it: in the query's dtype when they match, else everything in f32 (an f32 cache
    // rounded to a bf16 query's dtype lost ~400× the accuracy of the WASM path).
    const ks: Tensor[] = [], vs: Tensor[] = [];
    let cd: DType | null = null;
    for (let b = 0; b < numSeqs; b++) {
      const g = gatherContiguous(st, layer, tables[b]!, seqLens[b]!);
      cd ??= g.k.dtype === q.dtype ? q.dtype : 'f32';
      ks.push(g.k.to(cd)); vs.push(g.v.to(cd));
    }
    cd ??= q.dtype;
    const cat = (ts: Tensor[]) => {
      const total = Tensor.zeros([cuK[numSeqs]!, Hk, D], cd!);
      let o = 0;
      for (const t of ts) { total.data.set(t.contiguous().data, o); o += t.size; }
      return total;
    };
    const r = await attentionVarlen(qFlat.to(cd), cat(ks), cat(vs), { ...attnOpts, cuSeqlensQ: cuQ, cuSeqlensK: cuK, backend: opts.backend });
    out = r.out.to(q.dtype); lse = r.lse;
  }
  let o4 = varlen ? out : out.reshape([numSeqs, Sq, H, D]);
  if (st.rotation) o4 = unrotateOutput(o4, st, layer).to(q.dtype);
  if (!lse) return { out: o4 };
  if (varlen) return { out: o4, lse };
  const l = Tensor.zeros([numSeqs, H, Sq]);
  const src = lse.data as Float32Array, dst = l.data as Float32Array;
  for (let b = 0; b < numSeqs; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Sq; i++) dst[(b * H + h) * Sq + i] = src[h * totalQ + b * Sq + i]!;
  return { out: o4, lse: l };
}
