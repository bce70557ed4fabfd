/**
 * The WebAssembly SIMD backend ('wasm'): builds the kernel plan block, sequence table, tile plans,
 * mask program and job list in the heap, then runs the jobs on the thread pool.
 *
 * Paths:
 *   prefill  one job per (sequence, head, 64-row Q tile), longest first;
 *   decode   few queries: one job per (sequence, split of the visited KV tiles) covering every
 *            head, the GQA group's rows packed together, then one merge job per (sequence, KV head)
 *            combining partials by log-sum-exp (flash-decoding). Taken for any KV length when a KV
 *            head has at most 8 query rows (group · seqLenQ), from 128 keys otherwise (decodePath);
 *   top-k    a threshold pass (k-th best score per row, min-heaps) before the prefill pass.
 */
import { type HostBackend, registerBackend, setAutoOrder } from '../../attention/backend.js';
import type { AttentionPlan } from '../../attention/plan.js';
import { lseView, rowView } from '../../attention/views.js';
import { UnsupportedError, ValueError } from '../../errors.js';
import { Mask, findTopK } from '../../masks/mask.js';
import { type TilePlan, planTiles } from '../../masks/tiles.js';
import { decodePath } from './paths.js';
import { Tensor, copyInto } from '../../tensor/tensor.js';
import {
  JOB_SLOTS, KIND_COLSUM, KIND_DECODE_MERGE, KIND_DECODE_SPLIT, KIND_PREFILL, KIND_TOPK, PLAN_SLOTS, P_DPAD, P_DTYPE, P_DVPAD, P_GROUP,
  P_HEAD_DIM, P_HEAD_DIM_V, P_JOBS, P_K_DATA, P_K_HEAD, P_K_ROW, P_LSE_DATA, P_LSE_HEAD, P_LSE_ROW, P_MASK_PROG,
  P_NUM_HEADS, P_NUM_JOBS, P_NUM_KV_HEADS, P_OUT_DTYPE, P_O_DATA, P_O_HEAD, P_O_ROW, P_PARTIALS, P_PARTIAL_ROWS,
  P_Q_DATA, P_Q_HEAD, P_Q_ROW, P_SCALE, P_SCRATCH, P_SCRATCH_BYTES, P_SEQS, P_SOFTCAP, P_SPLIT_TILES, P_THR_HEAD_STRIDE,
  P_TILE_PLANS, P_TILE_Q, P_TOPK_K, P_VT_ROWS, P_COLSUM, P_COLSUM_STRIDE, P_TOTAL_K, P_Q_START, P_Q_END, P_BLOCK_SIZE, P_K_SCALES, P_V_SCALES, P_KV_DTYPE, P_PANEL_TILES, P_READ_AHEAD_BYTES, P_TOPK_PROG, P_TOPK_THR, P_TOPK_TILE_PLANS, P_V_DATA, P_V_HEAD, P_V_ROW, SEQ_SLOTS,
  S_K_BASE, S_LEN_K, S_LEN_Q, S_LSE_BASE, S_O_BASE, S_Q_BASE, S_ROW_GLOBAL, S_ROW_GLOBAL_K, S_BLOCK_TABLE, S_TILE_PLAN, S_V_BASE, TILEPLAN_SLOTS,
} from './abi.generated.js';
import { compileMaskProgram } from './mask-program.js';
import { READ_AHEAD_MIN_BYTES, type ReadAheadMode, ReadAheadTuner } from './read-ahead.js';
import { ThreadPool } from './thread-pool.js';
import { WasmHeap } from './wasm-heap.js';
import { nodeOs, nodeV8 } from '../../platform/node.js';
import { FLASH_RELAXED_WASM, FLASH_SIMD_WASM, FLASH_SINGLE_WASM } from './wasm-binary.generated.js';

export const TILE_K = 64;
export const PREFILL_TILE_Q = 64;
/** Most bytes of packed K/V one prefill thread keeps across jobs (beyond it, tiles are packed per job). */
const PANEL_MAX_BYTES = 16 * 2 ** 20;
const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;

/** Settings of the WebAssembly CPU runtime, applied with `configureCpu`. */
export interface CpuConfig {
  /**
   * Kernel threads including the caller (default: all cores, at most 16; always 1 without SharedArrayBuffer).
   * At most MAX_CPU_THREADS (256): each thread is a worker with its own module instance and scratch.
   */
  threads?: number;
  /** Use relaxed-SIMD FMA when the runtime supports it (default true). */
  relaxedSimd?: boolean;
  /**
   * Decode over ≥ 8 MiB of f32 K/V a sequence: read each 64-key tile ahead in address order before the
   * micro-kernels use it. Faster where K/V come from DRAM, slower where they stay in the last-level cache;
   * 'auto' (default) times both on the caller's own calls, per thread count and K/V size, and keeps the
   * faster (kernels/cpu/read-ahead.ts). Changing it does not restart the thread pool.
   */
  decodeReadAhead?: ReadAheadMode;
}

/** The running WebAssembly SIMD backend: its heap, threads and kernel build. */
export interface CpuRuntime {
  /** The kernel heap: tensors allocated in it (`cpuTensor`) are read in place, others are copied in for each call. */
  heap: WasmHeap;
  /** The kernel threads (the caller's thread included). */
  pool: ThreadPool;
  /** The kernel build: relaxed-SIMD FMA, plain SIMD128, or SIMD128 single-threaded (no SharedArrayBuffer). */
  variant: 'relaxed-simd' | 'simd128' | 'simd128-single';
  /** Threads that run kernels, the caller included. */
  threads: number;
}

let config: CpuConfig = {};
let runtime: Promise<CpuRuntime> | null = null;
/** Decode read-ahead timings of this process's calls ('auto' mode). */
export const readAheadTuner = new ReadAheadTuner();

function decodeBase64(b64: string): Uint8Array {
  if (typeof atob === 'function') {
    const s = atob(b64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

async function defaultThreads(): Promise<number> {
  const os = await nodeOs();
  if (os) {
    return Math.min(16, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  }
  return Math.min(16, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1);
}

/**
 * Node 20's V8 (11.3) implements relaxed SIMD completely but behind a flag (shipped from V8 11.4,
 * Node 22). Setting it before our module is compiled makes relaxed-SIMD FMA available; the module is
 * validated again afterwards, so a V8 that rejects the flag simply keeps the SIMD128 build.
 */
async function enableRelaxedSimdInNode(): Promise<void> {
  try {
    const v8 = await nodeV8();
    v8?.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // not Node, or flags locked: keep SIMD128
  }
}

function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean; process?: unknown };
  return g.crossOriginIsolated !== false || typeof g.process !== 'undefined';
}

async function createRuntime(): Promise<CpuRuntime> {
  if (typeof WebAssembly === 'undefined') throw new UnsupportedError('WebAssembly is not available here', 'cpu-ts');
  const simd = decodeBase64(FLASH_SIMD_WASM), relaxed = decodeBase64(FLASH_RELAXED_WASM), single = decodeBase64(FLASH_SINGLE_WASM);
  const shared = sharedMemoryAvailable();
  if (config.relaxedSimd !== false && !WebAssembly.validate(relaxed as BufferSource)) await enableRelaxedSimdInNode();
  let bytes: Uint8Array, variant: CpuRuntime['variant'];
  if (!shared) { bytes = single; variant = 'simd128-single'; }
  else if (config.relaxedSimd !== false && WebAssembly.validate(relaxed as BufferSource)) { bytes = relaxed; variant = 'relaxed-simd'; }
  else { bytes = simd; variant = 'simd128'; }
  if (!WebAssembly.validate(bytes as BufferSource)) throw new UnsupportedError('this runtime has no WebAssembly SIMD', 'cpu-ts');
  const module = await WebAssembly.compile(bytes as BufferSource);
  const heap = new WasmHeap(shared);
  const threads = Math.max(1, shared ? config.threads ?? (await defaultThreads()) : 1);
  const pool = await ThreadPool.create(heap, module, threads);
  return { heap, pool, variant, threads: pool.size };
}

/** The most kernel threads `configureCpu` accepts. */
export const MAX_CPU_THREADS = 256;

/**
 * Configures the CPU runtime; takes effect at the next call. A change of `threads` or `relaxedSimd` shuts the current
 * pool down (the next call starts a new one); `decodeReadAhead` applies without a restart.
 */
export async function configureCpu(c: CpuConfig): Promise<void> {
  if (!c || typeof c !== 'object') throw new ValueError('configureCpu takes { threads?, relaxedSimd?, decodeReadAhead? }', 'config');
  if (c.threads !== undefined && (!Number.isInteger(c.threads) || c.threads < 1 || c.threads > MAX_CPU_THREADS)) {
    throw new ValueError(`threads must be an integer from 1 to ${MAX_CPU_THREADS}, got ${String(c.threads)}`, 'threads');
  }
  if (c.relaxedSimd !== undefined && typeof c.relaxedSimd !== 'boolean') throw new ValueError(`relaxedSimd must be true or false, got ${String(c.relaxedSimd)}`, 'relaxedSimd');
  if (c.decodeReadAhead !== undefined && !['auto', 'on', 'off'].includes(c.decodeReadAhead)) {
    throw new UnsupportedError(`configureCpu: decodeReadAhead '${String(c.decodeReadAhead)}' is not a mode`, "'auto', 'on' or 'off'");
  }
  const restart = (c.threads !== undefined && c.threads !== config.threads) || (c.relaxedSimd !== undefined && c.relaxedSimd !== config.relaxedSimd);
  config = { ...config, ...c };
  if (runtime && restart) {
    const old = runtime;
    runtime = null;
    await (await old).pool.terminate().catch(() => undefined);
  }
}

/**
 * The WebAssembly SIMD runtime, started on the first call and shared by later ones (a change of
 * `threads` or `relaxedSimd` in `configureCpu` replaces it). Rejects with UnsupportedError where
 * WebAssembly SIMD is unavailable; a failed start is retried on the next call.
 */
export function cpuRuntime(): Promise<CpuRuntime> {
  if (!runtime) {
    runtime = createRuntime();
    runtime.catch(() => { runtime = null; });
  }
  return runtime;
}

/**
 * Allocates a zeroed tensor in the kernel heap: attention reads it in place (no copy). Where the heap's memory is
 * not shared (a browser page without cross-origin isolation) its growth would detach the tensor, so this returns
 * an ordinary tensor there, copied in per call.
 */
export async function cpuTensor(shape: readonly number[], dtype: Tensor['dtype'] = 'f32'): Promise<Tensor> {
  const { heap } = await cpuRuntime();
  if (!heap.shared) return Tensor.zeros(shape, dtype);
  const t = heap.tensor(shape, dtype);
  t.data.fill(0);
  return t;
}

const ceil4 = (x: number) => (x + 3) & ~3;

interface Placed { tensor: Tensor; dataPtr: number; temp: boolean }

function place(heap: WasmHeap, t: Tensor, copyIn: boolean): Placed {
  if (heap.owns(t.data) && t.strides[t.rank - 1] === 1) return { tensor: t, dataPtr: t.data.byteOffset, temp: false };
  const tmp = heap.tensor(t.shape, t.dtype);
  if (copyIn) copyInto(t, tmp);
  return { tensor: tmp, dataPtr: tmp.data.byteOffset, temp: true };
}

/** What the last WebAssembly kernel call did (`lastKernelStats`): its path, jobs and tiles. */
export interface KernelStats {
  /** 'prefill': one job per (sequence, query head, 64-row Q tile); 'decode': flash-decoding, KV split across jobs, for few queries. */
  path: 'prefill' | 'decode';
  /** Jobs run (decode: split jobs plus merge jobs). */
  jobs: number;
  /** (Q tile, 64-key KV tile) pairs visited, summed over query heads (prefill) or KV heads (decode: a KV head's query rows share a tile). */
  visitedTiles: number;
  /** Decode only: number of split jobs. */
  splits?: number;
  /** Decode: whether tiles were read ahead (undefined where no sequence qualifies: see CpuConfig.decodeReadAhead). */
  readAhead?: boolean;
  /** Decode in 'auto' read-ahead mode: the tuner's median ms per visited KV tile each way for this call's class. */
  readAheadMsPerTile?: { off: number; on: number };
}

/** Statistics of the last call (structural tests: which path, how many jobs and tiles). */
export let lastKernelStats: KernelStats | null = null;

/** Capture mode: column sums of P = exp(s − lse) over a query range, per head (see attention/capture.ts). */
export interface WasmCapture {
  /** Query heads to sum (jobs run only for these). */
  heads: readonly number[];
  /** Sequence-local query range [start, end). */
  queryStart: number;
  queryEnd: number;
  /** Filled with Σ_i P[b, h, i, j] laid out [numHeads, totalK] (rows of heads not asked for stay 0). */
  result?: Float32Array;
}

/**
 * Paged K/V: the layer's block storage [numBlocks, blockSizeTokens, numKvHeads, headDim] (f32/f16
 * tensors, or int8 with per-block-per-head scales) and one block table per sequence; the kernel reads
 * key j of sequence b at slot table[b][j / bs]·bs + j % bs (no gather).
 */
export interface WasmPaged {
  blockSize: number;
  tables: readonly ArrayLike<number>[];
  k: Tensor | Int8Array;
  v: Tensor | Int8Array;
  kScales?: Float32Array;
  vScales?: Float32Array;
}

/** Thrown inside runWasmOnce when a non-shared heap grew after the call had taken views of it. */
class HeapGrew extends Error {}

/**
 * Runs one call on the WebAssembly kernel. A non-shared heap (no SharedArrayBuffer: one thread) detaches its buffer
 * when it grows, and with it every view this call took before (the plan block, the sequence table, the temporaries'
 * tensors): a call whose allocations grew it starts again before any kernel runs on stale views, and the second
 * attempt, making the same allocations in the memory the first one grew, does not grow it.
 */
export async function runWasm(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor | null, lse: Tensor | null, capture?: WasmCapture, paged?: WasmPaged): Promise<void> {
  const { heap } = await cpuRuntime();
  // Calls on a non-shared heap take turns (heap.exclusive), so only a call's own allocations can grow it.
  return heap.exclusive(async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await runWasmOnce(plan, q, k, v, out, lse, capture, paged);
      } catch (e) {
        if (!(e instanceof HeapGrew) || attempt >= 2) throw e;
      }
    }
  });
}

async function runWasmOnce(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor | null, lse: Tensor | null, capture?: WasmCapture, paged?: WasmPaged): Promise<void> {
  const rt = await cpuRuntime();
  const { heap, pool } = rt;
  // Every kernel run checks that the heap has not grown since this call began (see runWasm).
  const grown = heap.growths;
  const run: ThreadPool['run'] = (...args) => {
    if (!heap.shared && heap.growths !== grown) throw new HeapGrew();
    return pool.run(...args);
  };
  const allocs: number[] = [];
  const alloc = (bytes: number) => { const p = heap.alloc(bytes); allocs.push(p); return p; };
  const placed: Placed[] = [];
  try {
    const placeRaw = (a: Int8Array | Float32Array): number => {
      if (heap.owns(a)) return a.byteOffset;
      const ptr = alloc(a.byteLength);
      new Uint8Array(heap.buffer(), ptr, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      return ptr;
    };
    const pagedKV = (x: Tensor | Int8Array): Placed => (x instanceof Int8Array ? { tensor: k, dataPtr: placeRaw(x), temp: false } : place(heap, x, true));
    const Q = place(heap, q, true);
    const K = paged ? pagedKV(paged.k) : place(heap, k, true);
    const V = paged ? pagedKV(paged.v) : capture ? K : place(heap, v, true);
    const O = out ? place(heap, out, false) : null, L = lse ? place(heap, lse, capture !== undefined) : null;
    placed.push(Q, K);
    if (!capture && V !== K) placed.push(V);
    if (O) placed.push(O);
    if (L) placed.push(L);
    const qv = rowView(plan, Q.tensor, 'q'), ov = O ? rowView(plan, O.tensor, 'o') : qv;
    // Paged storage rows are [slot, head, dim]: row stride numKvHeads·headDim, head stride headDim.
    const pagedView = { seqBase: new Float64Array(plan.batch), rowStride: plan.numKvHeads * plan.headDim, headStride: plan.headDim };
    const kv = paged ? pagedView : rowView(plan, K.tensor, 'k'), vv = paged ? { ...pagedView, rowStride: plan.numKvHeads * plan.headDimV, headStride: plan.headDimV } : rowView(plan, V.tensor, 'k');
    const lv = L ? lseView(plan, L.tensor) : null;
    const D = plan.headDim, Dv = plan.headDimV, dpad = ceil4(D), dvpad = ceil4(Dv);
    const topk = plan.mask ? findTopK(plan.mask.node) : null;
    // Decode: every head's rows of a sequence in one tile (rows = numHeads·seqLenQ), KV split across jobs.
    const decode = !capture && !topk && decodePath(plan);
    const tileQ = decode ? Math.max(4, ceil4(plan.numHeads * plan.seqLenQ)) : PREFILL_TILE_Q;
    const vtRows = decode ? plan.numKvHeads * TILE_K : TILE_K;
    const topkK = topk ? Math.min(topk.k, Math.max(1, plan.seqLenK)) : 0;
    const withinMask = topk ? new Mask(topk.within) : null;

    // Sequences and their tile plans (deduplicated by shape).
    const seqs = heap.i32(alloc(Math.max(1, plan.batch) * SEQ_SLOTS * 4), Math.max(1, plan.batch) * SEQ_SLOTS);
    seqs.fill(0);
    const shapeIndex = new Map<string, number>();
    const plans: TilePlan[] = [], withinPlans: TilePlan[] = [];
    const seqPlans: (TilePlan | null)[] = [];
    for (let b = 0; b < plan.batch; b++) {
      const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lenK = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
      const key = `${lenQ},${lenK}`;
      let idx = shapeIndex.get(key);
      if (idx === undefined && lenQ > 0) {
        idx = plans.length;
        shapeIndex.set(key, idx);
        const ctx = { seqLenQ: lenQ, seqLenK: lenK };
        plans.push(planTiles(plan.mask, ctx, decode ? lenQ : tileQ, TILE_K));
        if (topk) withinPlans.push(planTiles(withinMask!, ctx, tileQ, TILE_K));
      }
      seqPlans.push(idx === undefined ? null : plans[idx]!);
      const o = b * SEQ_SLOTS;
      seqs[o + S_Q_BASE] = qv.seqBase[b]!; seqs[o + S_K_BASE] = kv.seqBase[b]!; seqs[o + S_V_BASE] = vv.seqBase[b]!;
      seqs[o + S_O_BASE] = ov.seqBase[b]!; seqs[o + S_LSE_BASE] = lv ? lv.seqBase[b]! : 0;
      seqs[o + S_LEN_Q] = lenQ; seqs[o + S_LEN_K] = lenK; seqs[o + S_TILE_PLAN] = idx ?? 0; seqs[o + S_ROW_GLOBAL] = plan.cuSeqlensQ[b]!;
      seqs[o + S_ROW_GLOBAL_K] = plan.cuSeqlensK[b]!;
      if (paged) {
        const t = paged.tables[b]!;
        const tp = alloc(Math.max(1, t.length) * 4);
        heap.i32(tp, t.length).set(t);
        seqs[o + S_BLOCK_TABLE] = tp;
      }
    }
    const writePlans = (list: TilePlan[]) => {
      const table = heap.i32(alloc(Math.max(1, list.length) * TILEPLAN_SLOTS * 4), Math.max(1, list.length) * TILEPLAN_SLOTS);
      const ptr = table.byteOffset;
      list.forEach((tp, i) => {
        const rs = alloc(tp.rowStart.length * 4), en = alloc(Math.max(1, tp.entries.length) * 4);
        heap.i32(rs, tp.rowStart.length).set(tp.rowStart);
        heap.i32(en, tp.entries.length).set(tp.entries);
        const t = heap.i32(ptr, list.length * TILEPLAN_SLOTS);
        t[i * TILEPLAN_SLOTS] = rs; t[i * TILEPLAN_SLOTS + 1] = en; t[i * TILEPLAN_SLOTS + 2] = tp.numQTiles;
      });
      return ptr;
    };
    const tilePlansPtr = writePlans(plans);
    const withinPlansPtr = topk ? writePlans(withinPlans) : 0;

    // Mask programs.
    let maskProg = 0, topkProg = 0;
    if (plan.mask) {
      const mp = compileMaskProgram(plan.mask.node, heap, plan.seqLenQ, plan.seqLenK);
      allocs.push(...mp.allocations);
      maskProg = mp.ptr;
      if (topk) {
        const tp = compileMaskProgram(topk.within, heap, plan.seqLenQ, plan.seqLenK);
        allocs.push(...tp.allocations);
        topkProg = tp.ptr;
      }
    }

    // Plan block.
    const planPtr = alloc(PLAN_SLOTS * 4);
    const P = heap.i32(planPtr, PLAN_SLOTS), PF = heap.f32(planPtr, PLAN_SLOTS);
    P.fill(0);
    P[P_Q_DATA] = Q.dataPtr; P[P_K_DATA] = K.dataPtr; P[P_V_DATA] = V.dataPtr; P[P_O_DATA] = O ? O.dataPtr : 0; P[P_LSE_DATA] = L ? L.dataPtr : 0;
    P[P_DTYPE] = DTYPE_CODE[q.dtype]; P[P_OUT_DTYPE] = DTYPE_CODE[out?.dtype ?? plan.dtype];
    P[P_KV_DTYPE] = paged ? (paged.k instanceof Int8Array ? 3 : DTYPE_CODE[paged.k.dtype]) : DTYPE_CODE[plan.dtype];
    if (paged) {
      P[P_BLOCK_SIZE] = paged.blockSize;
      if (paged.kScales) { P[P_K_SCALES] = placeRaw(paged.kScales); P[P_V_SCALES] = placeRaw(paged.vScales!); }
    }
    P[P_NUM_HEADS] = plan.numHeads; P[P_NUM_KV_HEADS] = plan.numKvHeads; P[P_GROUP] = plan.groupSize;
    P[P_HEAD_DIM] = D; P[P_HEAD_DIM_V] = Dv; P[P_DPAD] = dpad; P[P_DVPAD] = dvpad;
    P[P_Q_ROW] = qv.rowStride; P[P_Q_HEAD] = qv.headStride; P[P_K_ROW] = kv.rowStride; P[P_K_HEAD] = kv.headStride;
    P[P_V_ROW] = vv.rowStride; P[P_V_HEAD] = vv.headStride; P[P_O_ROW] = ov.rowStride; P[P_O_HEAD] = ov.headStride;
    P[P_LSE_ROW] = lv ? lv.rowStride : 0; P[P_LSE_HEAD] = lv ? lv.headStride : 0;
    P[P_SEQS] = seqs.byteOffset; P[P_TILE_PLANS] = tilePlansPtr;
    PF[P_SCALE] = plan.scale; PF[P_SOFTCAP] = plan.softcap;
    P[P_MASK_PROG] = maskProg; P[P_TOPK_PROG] = topkProg; P[P_TOPK_TILE_PLANS] = withinPlansPtr; P[P_TOPK_K] = topkK;
    P[P_TILE_Q] = tileQ; P[P_VT_ROWS] = vtRows;
    // Prefill threads keep the packed K/V tiles of the (sequence, KV head) they work on across jobs
    // (jobs are ordered to follow one another), when a panel for the longest sequence fits the limit.
    let panelTiles = 0;
    if (!decode) {
      let maxK = 0;
      for (let b = 0; b < plan.batch; b++) maxK = Math.max(maxK, plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!);
      const tiles = Math.ceil(maxK / TILE_K);
      if (tiles * TILE_K * (dpad + dvpad) * 4 <= PANEL_MAX_BYTES) panelTiles = tiles;
    }
    P[P_PANEL_TILES] = panelTiles;
    const scratchBytes = pool.exports.scratchBytes(tileQ, dpad, dvpad, topkK, vtRows, panelTiles);
    P[P_SCRATCH_BYTES] = scratchBytes;
    P[P_SCRATCH] = alloc(scratchBytes * pool.size);
    const counter = alloc(4);

    if (topk) {
      const thr = alloc(plan.numHeads * Math.max(1, plan.totalQ) * 4);
      P[P_TOPK_THR] = thr; P[P_THR_HEAD_STRIDE] = plan.totalQ;
    }

    if (!decode) {
      // Prefill jobs in groups of one (sequence, KV head), so that a thread's consecutive jobs reuse
      // its packed K/V panel; groups most expensive first, and in a group the Q tiles most expensive
      // first (the cheap ones balance the threads at the end), each for the group's query heads.
      // (Plain loops over flat number lists: with flatMap, filter and tuples this bookkeeping was about half
      // of the call's JavaScript time on small calls.)
      // Capture: which query heads to run (each once, however often the caller lists it).
      let wanted: Uint8Array | null = null;
      if (capture) { wanted = new Uint8Array(plan.numHeads); for (const h of capture.heads) wanted[h] = 1; }
      const groups: { jobs: number[]; cost: number }[] = [];
      let numJobs = 0, visitedTiles = 0, flops = 0;
      for (let b = 0; b < plan.batch; b++) {
        const tp = seqPlans[b];
        if (!tp) continue;
        const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lenK = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
        const qts: number[] = [];   // (qt, cost) pairs
        for (let qt = 0; qt < tp.numQTiles; qt++) {
          if (capture && (qt * PREFILL_TILE_Q >= Math.min(capture.queryEnd, lenQ) || (qt + 1) * PREFILL_TILE_Q <= capture.queryStart)) continue;
          qts.push(qt, tp.rowStart[qt + 1]! - tp.rowStart[qt]!);
        }
        const order = Array.from({ length: qts.length / 2 }, (_, x) => x).sort((x, y) => qts[2 * y + 1]! - qts[2 * x + 1]!);
        for (let hk = 0; hk < plan.numKvHeads; hk++) {
          const g = { jobs: [] as number[], cost: 0 };
          for (const x of order) {
            const qt = qts[2 * x]!, cost = qts[2 * x + 1]!;
            // Work estimate: the Q tile's rows × visited tiles × 64 keys × 2·(D + Dv) FLOPs.
            const work = Math.min(PREFILL_TILE_Q, lenQ - qt * PREFILL_TILE_Q) * Math.min(cost * TILE_K, lenK) * 2 * (D + Dv);
            const h0 = hk * plan.groupSize;
            for (let h = h0; h < h0 + plan.groupSize; h++) {
              if (wanted && !wanted[h]) continue;
              g.jobs.push(b, h, qt);
              g.cost += cost; numJobs++; visitedTiles += cost; flops += work;
            }
          }
          if (g.jobs.length > 0) groups.push(g);
        }
      }
      groups.sort((a, z) => z.cost - a.cost);
      const jobsPtr = alloc(Math.max(1, numJobs) * JOB_SLOTS * 4);
      const J = heap.i32(jobsPtr, Math.max(1, numJobs) * JOB_SLOTS);
      let i = 0;
      for (const g of groups) {
        for (let x = 0; x < g.jobs.length; x += 3, i++) { J[i * JOB_SLOTS] = g.jobs[x]!; J[i * JOB_SLOTS + 1] = g.jobs[x + 1]!; J[i * JOB_SLOTS + 2] = g.jobs[x + 2]!; J[i * JOB_SLOTS + 3] = 0; }
      }
      P[P_JOBS] = jobsPtr; P[P_NUM_JOBS] = numJobs;
      if (topk) await run(planPtr, KIND_TOPK, jobsPtr, numJobs, counter);
      if (capture) {
        // Per-thread column-sum rows, reduced here: threads never write the same word.
        const stride = plan.numHeads * plan.totalK;
        const cs = alloc(Math.max(1, stride * pool.size) * 4);
        heap.f32(cs, stride * pool.size).fill(0);
        P[P_COLSUM] = cs; P[P_COLSUM_STRIDE] = stride; P[P_TOTAL_K] = plan.totalK;
        P[P_Q_START] = capture.queryStart; P[P_Q_END] = capture.queryEnd;
        await run(planPtr, KIND_COLSUM, jobsPtr, numJobs, counter);
        const all = heap.f32(cs, stride * pool.size);
        const result = capture.result ?? new Float32Array(stride);
        result.fill(0);
        for (let t = 0; t < pool.size; t++) for (let x = 0; x < stride; x++) result[x] += all[t * stride + x]!;
        capture.result = result;
      } else {
        await run(planPtr, KIND_PREFILL, jobsPtr, numJobs, counter, { flops });
      }
      lastKernelStats = { path: 'prefill', jobs: numJobs, visitedTiles };
    } else {
      // Split each sequence's visited KV tiles so there are a few jobs per thread; a split job covers
      // every head (K/V stream in memory order), a merge job one (sequence, KV head).
      let total = 0;
      for (let b = 0; b < plan.batch; b++) total += seqPlans[b] ? seqPlans[b]!.entries.length : 0;
      const target = pool.size * 4;
      const splitTiles = Math.max(1, Math.ceil(total / target));
      const split: number[] = [], merge: number[] = [];
      for (let b = 0; b < plan.batch; b++) {
        const tp = seqPlans[b];
        if (!tp) continue;
        const n = Math.max(1, Math.ceil(tp.entries.length / splitTiles));
        const first = split.length / JOB_SLOTS;
        for (let s = 0; s < n; s++) split.push(b, 0, 0, s);
        for (let hk = 0; hk < plan.numKvHeads; hk++) merge.push(b, hk, first, n);
      }
      const rows = plan.numHeads * plan.seqLenQ;
      const nSplit = split.length / JOB_SLOTS, nMerge = merge.length / JOB_SLOTS;
      const sp = alloc(Math.max(1, split.length) * 4), mp = alloc(Math.max(1, merge.length) * 4);
      heap.i32(sp, split.length).set(split);
      heap.i32(mp, merge.length).set(merge);
      P[P_SPLIT_TILES] = splitTiles; P[P_PARTIAL_ROWS] = rows;
      P[P_PARTIALS] = alloc(Math.max(1, nSplit) * rows * (dvpad + 2) * 4);
      // Read-ahead (see CpuConfig.decodeReadAhead) applies to sequences with ≥ READ_AHEAD_MIN_BYTES of f32 K/V
      // that the kernel reads in place (contiguous, or in blocks of a multiple of 8 tokens).
      const kvBytesPerKey = plan.numKvHeads * (D + Dv) * 4;
      const inPlace = P[P_KV_DTYPE] === 0 && (!paged || paged.blockSize % 8 === 0) && (D & 3) === 0 && Dv === dvpad;
      let kvBytes = 0, qualifies = false;
      for (let b = 0; b < plan.batch; b++) {
        const bytes = (plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!) * kvBytesPerKey;
        kvBytes += bytes;
        if (bytes >= READ_AHEAD_MIN_BYTES) qualifies = true;
      }
      qualifies &&= inPlace;
      const mode = config.decodeReadAhead ?? 'auto';
      // Timed per thread count, K/V size (power-of-two buckets) and storage (paged blocks read through a table).
      const tuneKey = qualifies && mode === 'auto' ? `${pool.size} threads, 2^${Math.round(Math.log2(kvBytes))} bytes${paged ? `, paged ${paged.blockSize}` : ''}` : null;
      const readAhead = qualifies && (mode === 'on' || (tuneKey !== null && readAheadTuner.choose(tuneKey)));
      P[P_READ_AHEAD_BYTES] = readAhead ? READ_AHEAD_MIN_BYTES : 0;
      const t0 = performance.now();
      await run(planPtr, KIND_DECODE_SPLIT, sp, nSplit, counter, { flops: total * plan.numKvHeads * 2 * TILE_K * Math.max(1, rows / plan.numKvHeads) * (D + Dv) });
      if (tuneKey !== null) readAheadTuner.record(tuneKey, readAhead, (performance.now() - t0) / Math.max(1, total));
      await run(planPtr, KIND_DECODE_MERGE, mp, nMerge, counter, { flops: 0 });
      const tuned = tuneKey !== null ? readAheadTuner.medians(tuneKey) : null;
      lastKernelStats = {
        path: 'decode', jobs: nSplit + nMerge, visitedTiles: total * plan.numKvHeads, splits: nSplit,
        ...(qualifies ? { readAhead } : {}), ...(tuned ? { readAheadMsPerTile: { off: tuned.off, on: tuned.on } } : {}),
      };
    }
    if (O?.temp) copyInto(O.tensor, out!);
    if (L?.temp && !capture) copyInto(L.tensor, lse!);
  } finally {
    for (const p of allocs) heap.release(p);
    for (const p of placed) if (p.temp) heap.release(p.dataPtr); // by pointer: growth may have detached the view
  }
}

export const wasmBackend: HostBackend = { name: 'wasm', run: runWasm };
registerBackend('wasm', async () => { await cpuRuntime(); return wasmBackend; });
setAutoOrder(['wasm', 'cpu-ts']);
