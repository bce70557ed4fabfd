/**
 * Attention capture without N×N blow-up. Flash kernels never materialise P = softmax(S); given the
 * forward pass's log-sum-exp, any slice of P is recomputed on demand as P[i, j] = exp(s[i, j] − lse[i])
 * (masked entries 0). Memory is bounded by what is asked for:
 *   - `probabilityRows`: chosen query rows against all keys        [batch, heads, rows, seqLenK]
 *   - `columnSums`: attention received per key, summed over queries [batch, heads, seqLenK]
 *   - `headMeans`: mean over a query range, per head                [batch, heads, seqLenK]
 *   - `topKeys`: the k most attended keys per query row             [batch, heads, rows, min(k, seqLenK)]
 *   - `probabilityMatrix`: the whole P, only under a byte limit.
 * q and k use the layout of `attention` (BSHD default); lse is [batch, numHeads, seqLenQ] as returned by
 * `attention(..., { returnLse: true })`, and is computed here when not given. q, k and lse may be device
 * tensors (GpuTensor): the capture then runs on their device, as `attention` does, and host ones among them are
 * uploaded. Non-finite values follow P = exp(s − lse) on every backend: a row whose lse is NaN (the forward
 * pass's result for a row with a NaN or infinite visible score) gives NaN at every key it sees, masked keys stay 0.
 */
import { DTypeError, ShapeError, ValueError, checkOptionKeys } from '../errors.js';
import { type Mask, TileClass, allowsScored, classifyTile, findTopK, topKThresholds } from '../masks/mask.js';
import { type Layout, Tensor } from '../tensor/tensor.js';
import { attention, checkDeviceBackend } from './attention.js';
import { type BackendName, getBackend, isDeviceTensor } from './backend.js';
import { ATTENTION_OPTION_KEYS, type AttentionPlan, planAttention } from './plan.js';
import { GpuTensor, prepareGpuAttention } from '../kernels/webgpu/attention-gpu.js';
import { type GpuContext, gpuContext } from '../kernels/webgpu/device.js';
import { type WasmCapture, runWasm } from '../kernels/cpu/wasm-backend.js';

/**
 * Options of the capture calls (`probabilityRows`, `columnSums`, `headMeans`, `topKeys`,
 * `probabilityMatrix`). The score options must match the forward pass whose probabilities are wanted.
 */
export interface CaptureOptions {
  /** Softmax scale, as in `attention` (default 1/√headDim). */
  scale?: number;
  /** Soft cap, as in `attention` (default 0, off). */
  softcap?: number;
  /** Mask, as in `attention`; masked entries of P are 0. */
  mask?: Mask | null;
  /** Shorthand for `mask: causal()` (bottom-right aligned), intersected with `mask`. */
  causal?: boolean;
  /** Layout of q and k: 'bshd' (default) or 'bhsd'. Outputs and `lse` have the same shapes either way. */
  layout?: Layout;
  /** The forward pass's log-sum-exp [batch, numHeads, seqLenQ] (host or device tensor); computed when absent. */
  lse?: Tensor | GpuTensor;
  /** Query heads to include (default: all). */
  heads?: readonly number[];
  /**
   * Backend (default 'auto'). It also picks where P is recomputed: 'webgpu' on the GPU, 'wasm' column
   * sums (and head means) in the SIMD kernel, anything else in TypeScript on the host. When `lse` is
   * absent, its forward pass runs on this backend too. Device tensors among q, k and lse run the capture
   * on their device whatever this says.
   */
  backend?: BackendName;
}

/** The option names every capture call takes (misspelt ones are refused with the nearest, as by `attention`). */
const CAPTURE_OPTION_KEYS: readonly string[] = [...ATTENTION_OPTION_KEYS.filter((key) => key !== 'returnLse'), 'lse', 'heads', 'backend'];
/** Those of the calls over a query range (`columnSums`, `headMeans`). */
const RANGE_OPTION_KEYS: readonly string[] = [...CAPTURE_OPTION_KEYS, 'queryStart', 'queryEnd'];

/** A capture input: a host Tensor or a GpuTensor. */
export type CaptureInput = Tensor | GpuTensor;

/** Whether the call runs on the GPU: device inputs decide (as for `attention`), else the backend option. */
async function onGpu(opts: CaptureOptions, ...inputs: (CaptureInput | undefined)[]): Promise<boolean> {
  const dev = inputs.find((t) => isDeviceTensor(t));
  if (dev) { checkDeviceBackend(opts.backend, (dev as GpuTensor).device); return true; }
  return (await getBackend(opts.backend ?? 'auto')).name === 'webgpu';
}

/** A host copy of lse for the host paths (a device lse is read back). */
async function hostLse(lse: CaptureInput | undefined): Promise<Tensor | undefined> {
  return lse && isDeviceTensor(lse) ? (lse as GpuTensor).toTensor() : (lse as Tensor | undefined);
}

function checkLse(lse: CaptureInput, B: number, H: number, Sq: number): void {
  const sh = lse.shape;
  if (sh.length !== 3 || sh[0] !== B || sh[1] !== H || sh[2] !== Sq) {
    throw new ShapeError(`lse must be [batch, numHeads, seqLenQ] = [${B}, ${H}, ${Sq}], got [${sh.join(', ')}]`, 'lse');
  }
  if (lse.dtype !== 'f32') throw new DTypeError(`lse must be f32 (as attention returns it), got ${lse.dtype}`, 'lse');
}

interface Prepared {
  B: number; Sq: number; Sk: number; H: number; Hk: number; D: number; group: number; scale: number; softcap: number;
  mask: Mask | null; heads: number[];
  Q: Float32Array; K: Float32Array; lse: Float32Array;
}

const TILE = 64;

/** The forward log-sum-exp of q·kᵀ under the plan (one attention pass with a 1-wide V of zeros). */
async function forwardLse(plan: AttentionPlan, q: Tensor, k: Tensor, backend: BackendName | undefined): Promise<Tensor> {
  const { batch: B, seqLenK: Sk, numKvHeads: Hk } = plan;
  // V in q's dtype: attention needs one dtype for all three.
  const ones = Tensor.zeros(plan.layout === 'bhsd' ? [B, Hk, Sk, 1] : [B, Sk, Hk, 1], plan.dtype);
  return (await attention(q, k, ones, { scale: plan.scale, softcap: plan.softcap, mask: plan.mask, layout: plan.layout, returnLse: true, backend })).lse!;
}

async function prepare(q: Tensor, k: Tensor, opts: CaptureOptions): Promise<Prepared> {
  // Validation shares the attention plan (v stands in as k with the same shape).
  const plan = planAttention(q, k, k, { scale: opts.scale, softcap: opts.softcap, mask: opts.mask, causal: opts.causal, layout: opts.layout });
  const { batch: B, seqLenQ: Sq, seqLenK: Sk, numHeads: H, numKvHeads: Hk, headDim: D } = plan;
  const heads = checkHeads(opts.heads, H);
  let lse = await hostLse(opts.lse);
  if (lse) checkLse(lse, B, H, Sq);
  else lse = await forwardLse(plan, q, k, opts.backend);
  const qb = q.asBSHD(plan.layout, 'q').contiguous(), kb = k.asBSHD(plan.layout, 'k').contiguous();
  return {
    B, Sq, Sk, H, Hk, D, group: H / Hk, scale: plan.scale, softcap: plan.softcap, mask: plan.mask, heads,
    Q: qb.toFloat32(), K: kb.toFloat32(), lse: lse.contiguous().toFloat32(),
  };
}

/**
 * Streams P[b, h, i, :] for the given rows through `visit(row, p)`, where p holds the probabilities
 * of keys [k0, k0 + n) of one tile. Masked keys and skipped tiles are 0 (never visited).
 */
function streamRows(pp: Prepared, b: number, h: number, rows: readonly number[], visit: (r: number, k0: number, p: Float64Array, n: number) => void): void {
  const { Sq, Sk, H, Hk, D, group, scale, softcap, mask } = pp;
  const hk = Math.floor(h / group);
  const ctx = { seqLenQ: Sq, seqLenK: Sk };
  const topk = mask ? findTopK(mask.node) : null;
  const p = new Float64Array(TILE);
  const scoreOf = (i: number, j: number) => {
    const qo = ((b * Sq + i) * H + h) * D, ko = ((b * Sk + j) * Hk + hk) * D;
    let dot = 0;
    for (let c = 0; c < D; c++) dot += pp.Q[qo + c]! * pp.K[ko + c]!;
    const s = Math.fround(dot) * scale;
    return softcap > 0 ? softcap * Math.tanh(s / softcap) : s;
  };
  const thr = topk ? topKThresholds(topk, ctx, scoreOf, rows) : null;
  for (let r = 0; r < rows.length; r++) {
    const i = rows[r]!;
    const lse = pp.lse[(b * H + h) * Sq + i]!;
    // Each asked row's key tiles classified on the spot: a tile plan of every row would take Sq·Sk/64 entries.
    for (let k0 = 0; k0 < Sk; k0 += TILE) {
      const n = Math.min(TILE, Sk - k0);
      const cls = mask ? classifyTile(mask, ctx, i, i + 1, k0, k0 + n) : TileClass.Full;
      if (cls === TileClass.Empty) continue;
      const partial = cls === TileClass.Partial;
      for (let j = 0; j < n; j++) {
        const s = scoreOf(i, k0 + j);
        p[j] = lse === -Infinity || s === -Infinity || (partial && !allowsScored(mask!, i, k0 + j, ctx, thr, s)) ? 0 : Math.exp(s - lse);
      }
      visit(r, k0, p, n);
    }
  }
}

function checkHeads(heads: readonly number[] | undefined, H: number): number[] {
  const list = heads ? [...heads] : Array.from({ length: H }, (_, h) => h);
  for (const h of list) if (!Number.isInteger(h) || h < 0 || h >= H) throw new ShapeError(`heads contains ${h}; numHeads is ${H}`, 'heads', 'numHeads');
  return list;
}

function checkRows(rows: readonly number[], Sq: number): void {
  if (!Array.isArray(rows) && !ArrayBuffer.isView(rows)) throw new ValueError(`rows must be a list of query rows, got ${typeof rows}`, 'rows');
  for (const i of rows) if (!Number.isInteger(i) || i < 0 || i >= Sq) throw new ShapeError(`query row ${i} is out of range 0..${Sq - 1}`, 'rows', 'seqLenQ');
}

/** P for chosen query rows: [batch, heads.length, rows.length, seqLenK] (f32). */
export async function probabilityRows(q: CaptureInput, k: CaptureInput, rows: readonly number[], opts: CaptureOptions = {}): Promise<Tensor> {
  opts ??= {};
  checkOptionKeys(opts, CAPTURE_OPTION_KEYS, 'probabilityRows');
  return rowsOf(q, k, rows, opts);
}

async function rowsOf(q: CaptureInput, k: CaptureInput, rows: readonly number[], opts: CaptureOptions): Promise<Tensor> {
  if (await onGpu(opts, q, k, opts.lse)) return captureGpu(q, k, { ...opts, mode: 2, rows });
  const pp = await prepare(q as Tensor, k as Tensor, opts);
  checkRows(rows, pp.Sq);
  const out = Tensor.zeros([pp.B, pp.heads.length, rows.length, pp.Sk]);
  const o = out.data as Float32Array;
  for (let b = 0; b < pp.B; b++) pp.heads.forEach((h, hi) => {
    streamRows(pp, b, h, rows, (r, k0, p, n) => {
      const base = ((b * pp.heads.length + hi) * rows.length + r) * pp.Sk + k0;
      for (let j = 0; j < n; j++) o[base + j] = p[j]!;
    });
  });
  return out;
}

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

function queryRange(opts: { queryStart?: number; queryEnd?: number }, Sq: number): [number, number] {
  const a = opts.queryStart ?? 0, z = opts.queryEnd ?? Sq;
  if (!Number.isInteger(a) || !Number.isInteger(z) || a < 0 || z > Sq || a > z) throw new ShapeError(`query range [${a}, ${z}) is outside 0..${Sq}`, 'queryStart', 'seqLenQ');
  return [a, z];
}

/**
 * Σ over queries in [queryStart, queryEnd) of P[b, h, i, j]: attention received per key, [batch, heads, seqLenK].
 * On the WebAssembly backend (the default) this is one recompute pass in the SIMD kernel: scores per
 * tile, P = 2^(s − lse₂), column sums per thread, with memory bounded by the output.
 */
export async function columnSums(q: CaptureInput, k: CaptureInput, opts: CaptureOptions & { queryStart?: number; queryEnd?: number } = {}): Promise<Tensor> {
  opts ??= {};
  checkOptionKeys(opts, RANGE_OPTION_KEYS, 'columnSums');
  return columnSumsOf(q, k, opts);
}

async function columnSumsOf(q: CaptureInput, k: CaptureInput, opts: CaptureOptions & { queryStart?: number; queryEnd?: number }): Promise<Tensor> {
  if (await onGpu(opts, q, k, opts.lse)) return captureGpu(q, k, { ...opts, mode: 1 });
  if ((await getBackend(opts.backend ?? 'auto')).name === 'wasm') return columnSumsWasm(q as Tensor, k as Tensor, opts);
  const pp = await prepare(q as Tensor, k as Tensor, opts);
  const [a, z] = queryRange(opts, pp.Sq);
  const out = Tensor.zeros([pp.B, pp.heads.length, pp.Sk]);
  const o = out.data as Float32Array;
  const acc = new Float64Array(pp.Sk);
  for (let b = 0; b < pp.B; b++) pp.heads.forEach((h, hi) => {
    acc.fill(0);
    streamRows(pp, b, h, range(a, z), (_r, k0, p, n) => { for (let j = 0; j < n; j++) acc[k0 + j] += p[j]!; });
    o.set(acc, (b * pp.heads.length + hi) * pp.Sk);
  });
  return out;
}

/** Mean over queries in [queryStart, queryEnd) of P, per head: [batch, heads, seqLenK]. */
export async function headMeans(q: CaptureInput, k: CaptureInput, opts: CaptureOptions & { queryStart?: number; queryEnd?: number } = {}): Promise<Tensor> {
  opts ??= {};
  checkOptionKeys(opts, RANGE_OPTION_KEYS, 'headMeans');
  const sums = await columnSumsOf(q, k, opts);
  const Sq = q.shape[opts.layout === 'bhsd' ? 2 : 1]!;
  const [a, z] = queryRange(opts, Sq);
  const n = z - a;
  const d = sums.data as Float32Array;
  if (n > 0) for (let i = 0; i < d.length; i++) d[i] = d[i]! / n;
  return sums;
}

/**
 * The k most attended keys per query row: indices (Int32Array) and probabilities, [batch, heads, rows, min(k, seqLenK)]
 * (`shape` says which), largest first (ties: lower index first). Only keys with a positive probability count: where a
 * row has fewer (masked or underflowed keys), the rest of its slots hold index −1 and probability 0, on every backend.
 */
export async function topKeys(q: CaptureInput, k: CaptureInput, rows: readonly number[], kk: number, opts: CaptureOptions = {}): Promise<{ indices: Int32Array; values: Float32Array; shape: number[] }> {
  opts ??= {};
  checkOptionKeys(opts, CAPTURE_OPTION_KEYS, 'topKeys');
  if (!Number.isInteger(kk) || kk < 1) throw new ValueError(`k must be an integer ≥ 1, got ${kk}`, 'k');
  if (await onGpu(opts, q, k, opts.lse)) return topKeysGpu(q, k, rows, kk, opts);
  const pp = await prepare(q as Tensor, k as Tensor, opts);
  checkRows(rows, pp.Sq);
  const kEff = Math.min(kk, pp.Sk);
  const shape = [pp.B, pp.heads.length, rows.length, kEff];
  const indices = new Int32Array(shape.reduce((x, y) => x * y, 1)).fill(-1), values = new Float32Array(indices.length);
  for (let b = 0; b < pp.B; b++) pp.heads.forEach((h, hi) => {
    const best: { j: number; p: number }[][] = rows.map(() => []);
    streamRows(pp, b, h, rows, (r, k0, p, n) => {
      const list = best[r]!;
      for (let j = 0; j < n; j++) {
        const v = p[j]!;
        if (!(v > 0)) continue; // masked, underflowed (or NaN): never a top key, as in selectTop
        if (list.length < kEff) { list.push({ j: k0 + j, p: v }); list.sort((x, y) => y.p - x.p || x.j - y.j); }
        else if (v > list[kEff - 1]!.p) { list[kEff - 1] = { j: k0 + j, p: v }; list.sort((x, y) => y.p - x.p || x.j - y.j); }
      }
    });
    best.forEach((list, r) => list.forEach((e, t) => {
      const o = ((b * pp.heads.length + hi) * rows.length + r) * kEff + t;
      indices[o] = e.j; values[o] = e.p;
    }));
  });
  return { indices, values, shape };
}

/** Bytes of probability rows the WebGPU top-k path reads back at a time. */
const TOPK_CHUNK_BYTES = 32 * 2 ** 20;

/** Top-k on WebGPU: probability rows recomputed on the GPU in chunks (bounded memory), selected on the host. */
async function topKeysGpu(q: CaptureInput, k: CaptureInput, rows: readonly number[], kk: number, opts: CaptureOptions): Promise<{ indices: Int32Array; values: Float32Array; shape: number[] }> {
  const layout = opts.layout ?? 'bshd';
  const B = q.shape[0]!, Sq = q.shape[layout === 'bshd' ? 1 : 2]!, Sk = k.shape[layout === 'bshd' ? 1 : 2]!;
  const nh = opts.heads?.length ?? q.shape[layout === 'bshd' ? 2 : 1]!;
  checkRows(rows, Sq);
  const kEff = Math.min(kk, Sk);
  const shape = [B, nh, rows.length, kEff];
  const indices = new Int32Array(shape.reduce((x, y) => x * y, 1)).fill(-1), values = new Float32Array(indices.length);
  const chunk = Math.max(1, Math.floor(TOPK_CHUNK_BYTES / Math.max(1, B * nh * Sk * 4)));
  // Several chunks share one forward pass: its LSE is computed once, on the device.
  const lse = !opts.lse && rows.length > chunk ? await gpuForwardLse(q, k, opts) : undefined;
  try {
    if (lse) opts = { ...opts, lse };
    for (let r0 = 0; r0 < rows.length; r0 += chunk) {
      const part = rows.slice(r0, r0 + chunk);
      const P = (await captureGpu(q, k, { ...opts, mode: 2, rows: part })).data as Float32Array;
      for (let bh = 0; bh < B * nh; bh++) for (let r = 0; r < part.length; r++) {
        const row = P.subarray((bh * part.length + r) * Sk, (bh * part.length + r + 1) * Sk);
        const best = selectTop(row, kEff);
        const o = (bh * rows.length + r0 + r) * kEff;
        best.forEach((j, t) => { indices[o + t] = j; values[o + t] = row[j]!; });
      }
    }
  } finally {
    lse?.dispose();
  }
  return { indices, values, shape };
}

/** Indices of the k largest positive entries (ties: lower index first), largest first. */
function selectTop(row: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let j = 0; j < row.length; j++) {
    const v = row[j]!;
    if (!(v > 0)) continue;
    if (best.length === k && v <= row[best[k - 1]!]!) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && row[best[at - 1]!]! < v) at--;
    best.splice(at, 0, j);
    if (best.length > k) best.pop();
  }
  return best;
}

/** The whole P [batch, heads, seqLenQ, seqLenK], only when it fits `maxBytes` (ShapeError otherwise). */
export async function probabilityMatrix(q: CaptureInput, k: CaptureInput, opts: CaptureOptions & { maxBytes: number }): Promise<Tensor> {
  if (!opts || typeof opts !== 'object') throw new ValueError('probabilityMatrix needs { maxBytes } (the bound on the N² matrix it may allocate)', 'maxBytes');
  checkOptionKeys(opts, [...CAPTURE_OPTION_KEYS, 'maxBytes'], 'probabilityMatrix');
  if (!Number.isFinite(opts.maxBytes) || opts.maxBytes <= 0) throw new ValueError(`maxBytes must be a positive number, got ${opts.maxBytes}`, 'maxBytes');
  const layout = opts.layout ?? 'bshd';
  const B = q.shape[0]!, Sq = q.shape[layout === 'bshd' ? 1 : 2]!, Sk = k.shape[layout === 'bshd' ? 1 : 2]!;
  const H = opts.heads?.length ?? q.shape[layout === 'bshd' ? 2 : 1]!;
  const bytes = B * H * Sq * Sk * 4;
  if (bytes > opts.maxBytes) throw new ShapeError(`the full probability matrix needs ${bytes} bytes, over maxBytes = ${opts.maxBytes}; capture rows, column sums or top-k instead`, 'maxBytes');
  const { maxBytes: _bound, ...rest } = opts;
  return rowsOf(q, k, range(0, Sq), rest);
}


async function columnSumsWasm(q: Tensor, k: Tensor, opts: CaptureOptions & { queryStart?: number; queryEnd?: number }): Promise<Tensor> {
  const plan = planAttention(q, k, k, { scale: opts.scale, softcap: opts.softcap, mask: opts.mask, causal: opts.causal, layout: opts.layout });
  const { batch: B, seqLenQ: Sq, seqLenK: Sk, numHeads: H } = plan;
  const heads = checkHeads(opts.heads, H);
  const [a, z] = queryRange(opts, Sq);
  let lse = await hostLse(opts.lse);
  if (lse) checkLse(lse, B, H, Sq);
  else lse = await forwardLse(plan, q, k, 'wasm');
  const cap: WasmCapture = { heads, queryStart: a, queryEnd: z };
  await runWasm(plan, q.asBSHD(plan.layout, 'q'), k.asBSHD(plan.layout, 'k'), k.asBSHD(plan.layout, 'k'), null, lse, cap);
  const out = Tensor.zeros([B, heads.length, Sk]);
  const o = out.data as Float32Array, r = cap.result!;
  for (let b = 0; b < B; b++) heads.forEach((h, hi) => o.set(r.subarray(h * plan.totalK + b * Sk, h * plan.totalK + (b + 1) * Sk), (b * heads.length + hi) * Sk));
  return out;
}

/** Bytes of column-sum partials (64 floats per Q tile and K tile) a WebGPU capture pass writes: heads go in passes under it. */
let colsumPartialBytes = 64 * 2 ** 20;

/** Tests: sets the WebGPU column-sum pass budget (bytes of partials a pass; default 64 MiB) and returns the old one. */
export function setCapturePassBytes(bytes: number): number {
  const old = colsumPartialBytes;
  colsumPartialBytes = bytes;
  return old;
}

/** q and k on the GPU as BSHD views: device inputs as they are, host ones uploaded (listed in `owned`, for the caller to free). */
async function gpuInputs(plan: AttentionPlan, q: CaptureInput, k: CaptureInput): Promise<{ ctx: GpuContext; gq: GpuTensor; gk: GpuTensor; owned: GpuTensor[] }> {
  const ctx = q instanceof GpuTensor ? q.ctx : k instanceof GpuTensor ? k.ctx : await gpuContext();
  const owned: GpuTensor[] = [];
  const place = async (t: CaptureInput, name: 'q' | 'k'): Promise<GpuTensor> => {
    if (t instanceof GpuTensor) return plan.layout === 'bshd' ? t : t.permute([0, 2, 1, 3]);
    const g = await GpuTensor.fromTensor(t.asBSHD(plan.layout, name), ctx);
    owned.push(g);
    return g;
  };
  try {
    return { ctx, gq: await place(q, 'q'), gk: await place(k, 'k'), owned };
  } catch (e) {
    for (const t of owned) t.dispose();
    throw e;
  }
}

/** The forward log-sum-exp on the GPU, from BSHD device views (V is one zero column). The caller frees it. */
async function forwardLseGpu(plan: AttentionPlan, gq: GpuTensor, gk: GpuTensor): Promise<GpuTensor> {
  const zeros = await GpuTensor.fromTensor(Tensor.zeros([plan.batch, plan.seqLenK, plan.numKvHeads, 1], plan.dtype), gq.ctx);
  try {
    const r = await attention(gq, gk, zeros, { scale: plan.scale, softcap: plan.softcap, mask: plan.mask, returnLse: true });
    (r.out as GpuTensor).dispose();
    return r.lse as GpuTensor;
  } finally {
    zeros.dispose();
  }
}

/** The forward log-sum-exp of a capture's q and k on the GPU (top-k's chunks share it). The caller frees it. */
async function gpuForwardLse(q: CaptureInput, k: CaptureInput, opts: CaptureOptions): Promise<GpuTensor> {
  const plan = planAttention(q, k, k, { scale: opts.scale, softcap: opts.softcap, mask: opts.mask, causal: opts.causal, layout: opts.layout });
  const { gq, gk, owned } = await gpuInputs(plan, q, k);
  try {
    return await forwardLseGpu(plan, gq, gk);
  } finally {
    for (const t of owned) t.dispose();
  }
}

/**
 * Capture on WebGPU: the forward LSE (given, or computed there), then recompute passes on the GPU. Column sums
 * take the heads in passes whose partials (B·⌈Sq/64⌉·⌈Sk/64⌉·64 floats a head) stay under colsumPartialBytes
 * (one head a pass at least), summed over Q tiles on the host.
 */
async function captureGpu(q: CaptureInput, k: CaptureInput, opts: CaptureOptions & { queryStart?: number; queryEnd?: number; mode: 1 | 2; rows?: readonly number[] }): Promise<Tensor> {
  const plan = planAttention(q, k, k, { scale: opts.scale, softcap: opts.softcap, mask: opts.mask, causal: opts.causal, layout: opts.layout });
  const { batch: B, seqLenQ: Sq, seqLenK: Sk, numHeads: H } = plan;
  const heads = checkHeads(opts.heads, H);
  if (opts.rows) checkRows(opts.rows, Sq);
  const [a, z] = opts.mode === 1 ? queryRange(opts, Sq) : [0, Sq];
  if (opts.lse) checkLse(opts.lse, B, H, Sq);
  const { ctx, gq, gk, owned } = await gpuInputs(plan, q, k);
  try {
    let gl: GpuTensor;
    if (!opts.lse) owned.push(gl = await forwardLseGpu(plan, gq, gk));
    else if (opts.lse instanceof GpuTensor) gl = opts.lse;
    else owned.push(gl = await GpuTensor.fromTensor(opts.lse, ctx));
    const bshdPlan = { ...plan, layout: 'bshd' as const };
    // The kernel writes each (head, row) once: repeated heads or rows are computed once and copied below.
    const uHeads = [...new Set(heads)], uRows = opts.rows ? [...new Set(opts.rows)] : undefined;
    const hIdx = heads.map((h) => uHeads.indexOf(h)), rIdx = opts.rows?.map((r) => uRows!.indexOf(r));
    const pass = async (hs: number[]): Promise<Float32Array> => {
      const prepared = await prepareGpuAttention(bshdPlan, gq, gk, gk, undefined, null, { mode: opts.mode, heads: hs, queryStart: a, queryEnd: z, rows: uRows, lse: gl });
      try {
        await ctx.checked('capture (WebGPU)', async () => {
          const enc = ctx.device.createCommandEncoder();
          prepared.encode(enc);
          ctx.device.queue.submit([enc.finish()]);
          await ctx.device.queue.onSubmittedWorkDone();
        });
        return (await prepared.out.toTensor()).data as Float32Array;
      } finally {
        prepared.destroy();
        prepared.out.dispose();
      }
    };
    const UH = uHeads.length;
    if (opts.mode === 2) {
      // raw: [B, UH, UR, Sk] → [B, heads, rows, Sk].
      const raw = await pass(uHeads);
      const R = rIdx!.length, UR = uRows!.length;
      const out = new Float32Array(B * heads.length * R * Sk);
      for (let b = 0; b < B; b++) for (let hi = 0; hi < heads.length; hi++) for (let ri = 0; ri < R; ri++) {
        const src = ((b * UH + hIdx[hi]!) * UR + rIdx![ri]!) * Sk;
        out.set(raw.subarray(src, src + Sk), ((b * heads.length + hi) * R + ri) * Sk);
      }
      return new Tensor(out, [B, heads.length, R, Sk]);
    }
    // Column sums: partials [job = (b, head of the pass, Q tile)][K tile][64] summed over Q tiles.
    const nQT = Math.ceil(Sq / 64), nKT = Math.ceil(Sk / 64);
    const perPass = Math.max(1, Math.floor(colsumPartialBytes / (B * nQT * nKT * 64 * 4)));
    const sums = new Float32Array(B * UH * Sk);
    for (let h0 = 0; h0 < UH; h0 += perPass) {
      const hs = uHeads.slice(h0, h0 + perPass);
      const raw = await pass(hs);
      for (let b = 0; b < B; b++) for (let x = 0; x < hs.length; x++) {
        const dst = (b * UH + h0 + x) * Sk;
        for (let qt = 0; qt < nQT; qt++) {
          const base = ((b * hs.length + x) * nQT + qt) * nKT * 64;
          for (let j = 0; j < Sk; j++) sums[dst + j] += raw[base + j]!;
        }
      }
    }
    const out = Tensor.zeros([B, heads.length, Sk]);
    const o = out.data as Float32Array;
    for (let b = 0; b < B; b++) for (let hi = 0; hi < heads.length; hi++) o.set(sums.subarray((b * UH + hIdx[hi]!) * Sk, (b * UH + hIdx[hi]! + 1) * Sk), (b * heads.length + hi) * Sk);
    return out;
  } finally {
    for (const t of owned) t.dispose();
  }
}
