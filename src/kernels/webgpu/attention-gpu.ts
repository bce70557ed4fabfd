/**
 * The WebGPU attention backend: plan → kernel choice → meta buffer (sequence table, tile plans, jobs,
 * mask data) → dispatches. `prepareGpuAttention` records a call once (for benchmarks, encoded many
 * times); `attentionGpu` runs on device tensors; the host backend uploads, runs and downloads.
 *
 * Kernels (shaders/):
 *   flash_portable  f32 arithmetic, any adapter, f32/f16/bf16 storage (unpacked), GQA group packed;
 *   flash_sgmat     f16 on tensor cores (subgroup matrices), f32 accumulate;
 *   decode_split + decode_merge  flash-decoding for few queries against a long KV;
 *   topk_threshold  the per-row k-th score for top-k masks (before the main kernel);
 *   convert_out     f32 → f16/bf16 outputs of the f32-arithmetic kernels.
 */
import type { HostBackend } from '../../attention/backend.js';
import type { AttentionPlan } from '../../attention/plan.js';
import { DTypeError, ShapeError, StateError, UnsupportedError, ValueError } from '../../errors.js';
import { Mask, findTopK } from '../../masks/mask.js';
import { type TilePlan, planTiles } from '../../masks/tiles.js';
import type { DType } from '../../tensor/dtype.js';
import { Tensor, contiguousStrides, copyInto, numel } from '../../tensor/tensor.js';
import { type GpuContext, gpuContext, isRetiredContext } from './device.js';
import { compileMaskWgsl } from './mask-wgsl.js';
import {
  type DecodeVariant, type InFormat, type KvPaging, type PortableFlashVariant, type TopKVariant, convertSource,
  decodeMergeSource, decodeSharedBytes, decodeSource, portableBytes, portableFit, portableGeometry, portableSharedBytes, portableSource, topkSource, variantKey,
} from './variants.js';
import { type SgmatVariant, rangeSource, sgmatAblation, sgmatGeometry, sgmatLinear, sgmatOutVec, sgmatPf1, sgmatSource, sgmatVLate } from './sgmat.js';
import { type DecodeWarpVariant, decodeWarpCombines, decodeWarpGeometry, decodeWarpSource } from './decode-warp.js';

export const GPU_TILE_K = 64;
/** The largest k of a `topK(k)` mask the WebGPU threshold kernel takes (its per-row heap of scores); larger k raise UnsupportedError. */
export const TOPK_MAX = 512;
const STORAGE = 0x80 | 0x8 | 0x4; // STORAGE | COPY_DST | COPY_SRC (GPUBufferUsage values)

/** Whether a buffer was destroyed through a GpuTensor: shared by every tensor over it (permute views, wrappers of one buffer). */
const BUFFER_LIVES = new WeakMap<GPUBuffer, { disposed: boolean }>();

/** A tensor resident in a GPU storage buffer: contiguous elements (f16/bf16 packed two per word). */
export class GpuTensor {
  /** Element strides per dimension (contiguous unless given, e.g. by permute). */
  readonly strides: readonly number[];
  /** First element's index in the buffer: always 0. */
  readonly offset = 0;
  /** Where the data lives: always 'webgpu' (how backends tell device tensors from host ones). */
  readonly device = 'webgpu';
  /** Whether `dispose` was called on this tensor or on any other over its buffer (a view, or the tensor it views). */
  get isDisposed(): boolean { return this.life.disposed; }
  private readonly life: { disposed: boolean };
  /**
   * Wraps an existing buffer (no copy); fromTensor and empty allocate one.
   * @param ctx - The context whose device owns `buffer`.
   * @param buffer - Storage buffer holding the elements (16-bit dtypes two per 32-bit word).
   * @param shape - Dimensions, e.g. [batch, seqLenQ, numHeads, headDim] (BSHD).
   * @param dtype - Element type of the stored data.
   * @param strides - Element strides per dimension (default contiguous).
   */
  constructor(readonly ctx: GpuContext, readonly buffer: GPUBuffer, readonly shape: readonly number[], readonly dtype: DType, strides?: readonly number[]) {
    this.strides = strides ?? contiguousStrides(shape);
    let life = BUFFER_LIVES.get(buffer);
    if (!life) BUFFER_LIVES.set(buffer, life = { disposed: false });
    this.life = life;
  }
  /** Number of elements. */
  get size(): number { return numel(this.shape); }
  /** Bytes of data: size × 4 for f32, × 2 for f16 and bf16 (the buffer itself is padded to 16 bytes). */
  get bytes(): number { return this.size * (this.dtype === 'f32' ? 4 : 2); }

  /** Uploads a host tensor (any strides; stored contiguously). */
  static async fromTensor(t: Tensor, ctx?: GpuContext): Promise<GpuTensor> {
    if (!(t instanceof Tensor)) throw new ValueError(`GpuTensor.fromTensor takes a host Tensor, got ${t === null ? 'null' : (t as object)?.constructor?.name ?? typeof t}`, 'tensor');
    const c = ctx ?? (await gpuContext());
    const cont = t.contiguous();
    const elem = t.dtype === 'f32' ? 4 : 2;
    const bytes = new Uint8Array(cont.data.buffer, cont.data.byteOffset + cont.offset * elem, cont.size * elem);
    const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
    if (size > c.caps.maxStorageBinding) {
      throw new ShapeError(`a tensor of ${bytes.byteLength} bytes exceeds this adapter's maxStorageBufferBindingSize (${c.caps.maxStorageBinding} bytes); split the batch or the heads into several calls`, 'tensor');
    }
    const buffer = c.device.createBuffer({ size, usage: STORAGE });
    const padded = bytes.byteLength % 4 === 0 ? bytes : (() => { const p = new Uint8Array(size); p.set(bytes); return p; })();
    c.device.queue.writeBuffer(buffer, 0, padded as Uint8Array<ArrayBuffer>);
    return new GpuTensor(c, buffer, t.shape, t.dtype);
  }

  /** An uninitialised device tensor. */
  static empty(ctx: GpuContext, shape: readonly number[], dtype: DType): GpuTensor {
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new ShapeError(`shape must be non-negative integers, got [${Array.isArray(shape) ? shape.join(', ') : String(shape)}]`, 'shape');
    if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') throw new DTypeError(`dtype must be f32, f16 or bf16, got ${JSON.stringify(dtype)}`, 'dtype');
    const bytes = numel(shape) * (dtype === 'f32' ? 4 : 2);
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    if (size > ctx.caps.maxStorageBinding) throw new ShapeError(`an output of ${bytes} bytes exceeds this adapter's maxStorageBufferBindingSize (${ctx.caps.maxStorageBinding})`, 'out');
    return new GpuTensor(ctx, ctx.device.createBuffer({ size, usage: STORAGE }), shape, dtype);
  }

  /**
   * Downloads into a new host tensor with this view's strides (a permuted view, such as the output of a BHSD call,
   * stays permuted: `.contiguous()` packs it).
   */
  async toTensor(): Promise<Tensor> {
    if (this.life.disposed) throw new StateError('toTensor: this GpuTensor (or the tensor it views, or a view of it) was disposed');
    if (isRetiredContext(this.ctx)) throw new ValueError('toTensor: this GpuTensor lives on a GPU device that configureWebGpu replaced, and its data went with it: upload it again', 'tensor');
    // The elements the view's strides reach (a view of some heads of a wider buffer reaches past its own size).
    let span = this.size > 0 ? 1 : 0;
    if (span) for (let d = 0; d < this.shape.length; d++) span += (this.shape[d]! - 1) * this.strides[d]!;
    const raw = await readBuffer(this.ctx, this.buffer, span * (this.dtype === 'f32' ? 4 : 2));
    const data = this.dtype === 'f32' ? new Float32Array(raw) : new Uint16Array(raw);
    return new Tensor(data, this.shape, { dtype: this.dtype, strides: this.strides });
  }

  /** Zero-copy permutation (for BHSD ↔ BSHD views). */
  permute(order: readonly number[]): GpuTensor {
    const r = this.shape.length;
    if (!Array.isArray(order) || order.length !== r || new Set(order).size !== r || order.some((o) => !Number.isInteger(o) || o < 0 || o >= r)) {
      throw new ShapeError(`permute order [${Array.isArray(order) ? order.join(', ') : String(order)}] is not a permutation of 0..${r - 1}`, 'order');
    }
    return new GpuTensor(this.ctx, this.buffer, order.map((o) => this.shape[o]!), this.dtype, order.map((o) => this.strides[o]!));
  }

  /** Destroys the buffer (idempotent); views made by permute share it and die with it, whichever is disposed. */
  dispose(): void {
    if (!this.life.disposed) { this.life.disposed = true; this.buffer.destroy(); }
  }
}

/**
 * Decode tuning for profiling (scripts/decode-profile.mjs). `target`: how many four-subgroup workgroups a
 * call aims for (384: split + merge read 0.089–0.091 ms on decode-kv4k f16 from 160 to 384 and fell off at
 * 448, a second wave; fused, 384 is SS 3 there, 0.073 ms: BENCHMARKS.md, run Z); decode_warp's `kb` (cap on
 * keys per batch), `pipe` (prefetch depth), `combine` (subgroup partials combined in the workgroup) and
 * `wide` (16-byte loads of 16-bit K/V: decode-kv4k f16 0.091 ms against 0.103–0.107 with 8-byte loads);
 * `direct16` (decode_merge writes 16-bit outputs itself; false: through an f32 buffer and convert_out);
 * `fuse` (one workgroup of up to 16 subgroups per (sequence, KV head) that writes the output itself, when
 * the split target asks for ≤ 4 workgroups per (sequence, KV head)); `ablate`: parts of the kernel dropped
 * (the results are wrong while it is non-zero; bit 32 skips the merge dispatch). Subgroup and lane from the invocation
 * index (the tensor-core kernel's lidsg) made no difference here (bench/results/decode-lin-run-b.txt) and were removed.
 */
/** The decode tuning's defaults (what runs unless a profile changes it; setDecodeTuning(DECODE_TUNING_DEFAULTS) restores them). */
export const DECODE_TUNING_DEFAULTS: Readonly<DecodeTuning> = Object.freeze({ target: 384, ablate: 0, kb: 16, pipe: 1, combine: true, wide: true, direct16: true, fuse: true });
/** setDecodeTuning's knobs (see above). */
export interface DecodeTuning { target: number; ablate: number; kb: number; pipe: number; combine: boolean; wide: boolean; direct16: boolean; fuse: boolean }
const decodeTuning: DecodeTuning = { ...DECODE_TUNING_DEFAULTS };
/**
 * Portable-kernel tuning for profiling (scripts/portable-profile.mjs; defaults are what runs):
 * - `pch`: P by chunk (PortableFlashVariant.pch) in the forward pass: P held in registers and stored with
 *   each V chunk of at most 32 keys (never the whole tile), so the kernel needs 20–24 KiB of workgroup
 *   memory instead of 32 (12–16 with 16-dim slices) and two workgroups share a compute unit. On by
 *   default: on the H200 vitL14-336 0.692 → 0.549 ms, qwen2vl d80 8.94 → 7.21, 8k-d64 14.56 → 11.38, N4096
 *   d128 6.71 → 5.18 with 32-dim slices, and 0.596, 7.23, 12.55, 5.69 with 16-dim ones (3–4 workgroups a
 *   compute unit but twice the slice barriers), outputs bit-identical (bench/results/portable-pch-profile.txt);
 * - `pcap`: with pch, at most this many keys a V chunk (32; 16 and 8 are what adapters with little
 *   workgroup memory get, `portableFit`: set here, tests run those forms on any adapter);
 * - `wide`: false keeps 16-dim S slices where 32 would fit;
 * - `v4`: V read as vec4, each thread owning four consecutive output columns. 'auto' takes it when the
 *   value head dim, rounded up to 16, is a multiple of 64: on the H200 it took vitL14-336 from 7.9 to 9.0
 *   TFLOP/s and 8k-d64 from 8.5 to 9.7, while at d80 (128 columns carried for 80) it fell from 7.2 to 6.6
 *   (bench/results/gpu-h200-portable-v4.txt);
 * - `rows`: rows of the 64-row tile a thread owns (4: 256 threads a workgroup, 2: 512). 'auto' takes 2
 *   only where it was measured to win: V read as vec4 but Q/K/V read by scalar loads (int8 K/V, odd
 *   strides), with bounds clamps on and 512 invocations allowed (H200 vitL14-336 1.262 → 1.195 ms, 8k-d64
 *   29.4 → 26.6, d128 13.7 → 12.5: bench/results/gpu-h200-portable-vload.txt). With four-element
 *   loads four rows win everywhere: vitL14-336 1.011 → 0.844 ms, 8k-d64 21.6 → 18.7, d128 9.96 → 8.31,
 *   and without WebGPU's bounds clamps (gpuContext's `robustness: false`) 0.912 → 0.735, 18.96 → 15.62,
 *   8.95 → 6.72 (bench/results/gpu-h200-portable-rows.txt). Eight rows a thread (128 threads) was tried and
 *   removed: 30–35% slower with scalar loads, 25–39% with four-element loads (vitL14-336 0.845 → 1.133
 *   ms, 8k-d64 18.7 → 25.6; bench/results/gpu-h200-portable-experiments.txt), and again with P by chunk
 *   3–10% slower (bench/results/portable-experiments-run-Q.txt);
 * - `vecLoads`: Q, K and V read from storage four elements per load where the layout allows (head dims,
 *   rows, heads and bases multiples of 4, K/V not int8, each loader thread's share of a slice a multiple
 *   of 4). On by default: on the H200 vitL14-336 9.1 → 10.8 TFLOP/s, qwen d80 6.9 → 10.2, 8k-d64 10.3 →
 *   12.7, d128 11.0 → 13.8, outputs bit-identical (bench/results/gpu-h200-portable-vload.txt);
 * - `vfull`: the V chunk is the whole 64-key tile where workgroup memory allows (value head dims 72–112
 *   take two chunks a tile otherwise: one V load phase and one barrier pair fewer). On by default: qwen
 *   d80 on the H200 14.26 → 13.58 ms (10.2 → 10.7 TFLOP/s; bench/results/gpu-h200-portable-experiments.txt).
 *   Keeping Q in workgroup memory for the whole pass (only K loaded per tile) was tried and removed:
 *   within 0.5% at vitL14-336 and 8k-d64, the only shapes where it fits;
 * - `vpre`: with four-element loads, each tile's first V chunk is loaded into registers before Q·Kᵀ, so
 *   that its latency hides behind the scores and the softmax, and stored into workgroup memory at the
 *   P·V phase. On by default: on the H200 vitL14-336 0.840 → 0.728 ms (13.0 → 15.0 TFLOP/s), qwen2vl d80
 *   13.57 → 11.72, 8k-d64 18.62 → 15.25, N4096 d128 8.30 → 7.63, outputs bit-identical
 *   (bench/results/gpu-h200-portable-vpre.txt; check:gpu 170/170, bench/results/check-gpu-h200-portable-vpre.txt);
 * - `vnext`: with vpre, each further V chunk of a tile is prefetched into registers during the previous
 *   chunk's FMAs. 'auto' (the default) takes it where a tile has two or more V chunks (value head dims
 *   ≥ 128 on the H200; most on 32 KiB devices): N4096 d128 7.67 → 7.12 ms (17.9 → 19.3 TFLOP/s); on
 *   one-chunk tiles it is dead code that still cost 1.5–1.8% there (bench/results/portable-experiments-run-K.txt).
 *   Tried there and removed: the first Q slice kept in registers for the pass with the next tile's first
 *   K slice prefetched after the softmax (4–9× slower: the registers spill), and slice s + 1 of Q and K
 *   loaded during slice s's FMAs (−1.5% at vitL14-336 and 8k-d64, +1% at qwen d80);
 * - `ablate`: parts of the kernel dropped (PortableFlashVariant's bits; the results are wrong while set).
 */
const portableTuning: { pch: boolean; pcap: 32 | 16 | 8; wide: boolean; v4: 'auto' | boolean; rows: 'auto' | 2 | 4; vecLoads: boolean; vfull: boolean; vpre: boolean; vnext: 'auto' | boolean; ablate: number } = { pch: true, pcap: 32, wide: true, v4: 'auto', rows: 'auto', vecLoads: true, vfull: true, vpre: true, vnext: 'auto', ablate: 0 };

export function setPortableTuning(t: Partial<typeof portableTuning>): void {
  Object.assign(portableTuning, Object.fromEntries(Object.entries(t).filter(([, x]) => x !== undefined)));
}

/**
 * The portable kernel's rows a thread and load width for a call (see setPortableTuning): `layout4` says
 * whether Q/K/V rows, heads and offsets allow four-element loads; those also need each loader thread's
 * share of an S slice (DS dims over 4 threads a row, 8 with two rows a thread) to be a multiple of 4.
 */
export function portableForm(o: { DV: number; wide: boolean; layout4: boolean; maxInvocations: number; robust: boolean }): { r2: boolean; vload: boolean } {
  const DS = portableGeometry({ DV: o.DV, wide: o.wide }).DS;
  // Loader threads a row: NT / 64 = 16 / rows a thread (8 with two rows, 4 with four).
  const vecOk = (rowsPerThread: number) => o.layout4 && (DS / (16 / rowsPerThread)) % 4 === 0;
  const r2 = o.maxInvocations >= 512 && (portableTuning.rows === 'auto'
    ? portableUsesV4(o.DV) && o.robust && !(portableTuning.vecLoads && vecOk(4))
    : portableTuning.rows === 2);
  return { r2, vload: portableTuning.vecLoads && vecOk(r2 ? 2 : 4) };
}

/** Whether the portable kernel reads V as vec4 for this value head dim (see setPortableTuning). */
export function portableUsesV4(headDimV: number): boolean {
  return portableTuning.v4 === 'auto' ? (Math.ceil(headDimV / 16) * 16) % 64 === 0 : portableTuning.v4;
}

export function setDecodeTuning(t: Partial<typeof decodeTuning>): void {
  if (t.target !== undefined) decodeTuning.target = Math.max(1, Math.floor(t.target));
  if (t.ablate !== undefined) decodeTuning.ablate = t.ablate;
  if (t.kb !== undefined) decodeTuning.kb = t.kb;
  if (t.pipe !== undefined) decodeTuning.pipe = t.pipe;
  if (t.combine !== undefined) decodeTuning.combine = t.combine;
  if (t.wide !== undefined) decodeTuning.wide = t.wide;
  if (t.direct16 !== undefined) decodeTuning.direct16 = t.direct16;
  if (t.fuse !== undefined) decodeTuning.fuse = t.fuse;
}

/** Whether `x` is a GpuTensor (a device tensor of this library's WebGPU backend). */
export function isGpuTensor(x: unknown): x is GpuTensor {
  return x instanceof GpuTensor;
}

/** Downloads the first `bytes` bytes of a GPU buffer (copied through a mappable staging buffer; waits for the device). */
export async function readBuffer(ctx: GpuContext, src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  if (size > src.size) throw new ShapeError(`a read of ${bytes} bytes exceeds the buffer's ${src.size}`, 'bytes');
  const staging = ctx.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    // The copy's validation (a destroyed source, say) is an error here, not a buffer of zeros.
    await ctx.checked('reading a GPU buffer', () => {
      const enc = ctx.device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, staging, 0, size);
      ctx.device.queue.submit([enc.finish()]);
    });
    await staging.mapAsync(GPUMapMode.READ);
    const copy = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    return copy;
  } finally {
    staging.destroy();
  }
}

/** What a WebGPU attention call ran: its kernel family, variant and work (structural; no timings). */
export interface GpuRunStats {
  /** Kernel family; 'decode' covers decode_warp and decode_split (see `key`). */
  kernel: 'flash_portable' | 'flash_sgmat' | 'decode';
  /** The main kernel's variant key (its pipeline cache key: head dims, tiling, mask, format…). */
  key: string;
  /** Workgroups of the main kernel: (sequence, head block, Q tile) jobs, or for decode the split workgroups plus, unless fused, the merge ones. */
  jobs: number;
  /** KV tiles of 64 keys visited, summed over jobs (tiles a mask empties are skipped); for decode, over (sequence, KV head). */
  visitedTiles: number;
  /** Compute passes the call encodes (range pass, top-k pass, main kernel, merge, conversion), empty ones not counted. */
  dispatches: number;
}

/** Stats of the last WebGPU attention call (host or device tensors, paged; not capture, not prepareGpuAttention); null before the first. */
export let lastGpuStats: GpuRunStats | null = null;

let poison = false;
/** Tests: fill device outputs with NaN before every dispatch, so unwritten elements show. */
export function setGpuOutputPoisoning(on: boolean): void {
  poison = on;
}

/**
 * 'sgmat-emulated' runs the tensor-core kernel's logic with its subgroup-matrix builtins emulated in plain
 * WGSL (for testing it on adapters without subgroup matrices, such as SwiftShader; slow). 'decode' forces
 * flash-decoding (the subgroup kernel decode_warp where it applies, else decode_split); 'decode-split'
 * forces decode_split; 'decode-emulated' runs decode_warp with its shuffles emulated in workgroup memory.
 */
export type GpuKernelPreference = 'auto' | 'portable' | 'sgmat' | 'sgmat-emulated' | 'decode' | 'decode-split' | 'decode-emulated';
let preference: GpuKernelPreference = 'auto';
/** Forces a kernel family when it supports the call (tests and benchmarks); 'auto' picks the fastest. */
export function setGpuKernelPreference(p: GpuKernelPreference): void {
  const all: GpuKernelPreference[] = ['auto', 'portable', 'sgmat', 'sgmat-emulated', 'decode', 'decode-split', 'decode-emulated'];
  if (!all.includes(p)) throw new ValueError(`setGpuKernelPreference: '${String(p)}' is not a kernel preference (${all.join(', ')})`, 'preference');
  preference = p;
}

/**
 * How f32 attention runs where the adapter has subgroup matrices. 'split' (the default): on the f16 tensor
 * cores in the 3-product split form (SgmatVariant.split): each value as a high and a low f16 half, about 22
 * significant bits, checked against the same float64 tolerance as the f32 kernels (FlashAttention's rule:
 * 2× the error of a naive f32 implementation plus 2e-6). A range pass scales each of Q, K and V by a power of
 * two that brings its largest finite magnitude into [2^14, 2^15), so any finite input fits f16's range; values
 * more than 2^27 below their tensor's largest keep an absolute precision of about 2^-50 of it instead of 22
 * bits of their own. Paged K/V take the SIMT kernel. 'exact': the f32 SIMT kernel (flash_portable) — PyTorch's
 * fp32 path with TF32 off is the analogue.
 */
export type GpuF32Policy = 'split' | 'exact';
let f32Policy: GpuF32Policy = 'split';
/** Sets how f32 attention runs on adapters with subgroup matrices (see GpuF32Policy; default 'split'); applies from the next call. */
export function setGpuF32Policy(p: GpuF32Policy): void {
  if (p !== 'split' && p !== 'exact') throw new ValueError(`setGpuF32Policy: '${String(p)}' is not a policy ('split' or 'exact')`, 'policy');
  f32Policy = p;
}

/** Element addressing of a (dense BSHD view or varlen [total, H, D]) tensor per sequence. */
interface Addr { seqBase: number[]; row: number; head: number }

function addr(plan: AttentionPlan, t: { strides: readonly number[]; offset: number }, which: 'q' | 'k'): Addr {
  const cu = which === 'k' ? plan.cuSeqlensK : plan.cuSeqlensQ;
  const seqBase: number[] = [];
  if (plan.varlen) {
    for (let b = 0; b < plan.batch; b++) seqBase.push(t.offset + cu[b]! * t.strides[0]!);
    return { seqBase, row: t.strides[0]!, head: t.strides[1]! };
  }
  for (let b = 0; b < plan.batch; b++) seqBase.push(t.offset + b * t.strides[0]!);
  return { seqBase, row: t.strides[1]!, head: t.strides[2]! };
}

/** Whether a tensor's row and head strides (and, with `bases`, its sequence offsets) are multiples of n elements. */
function aligned(a: Addr, n: number, bases: boolean): boolean {
  return a.row % n === 0 && a.head % n === 0 && (!bases || a.seqBase.every((x) => x % n === 0));
}

/** aligned() for K and V; a paged pool's sequence bases are block tables, not element offsets. */
function kvAligned(ka: Addr, va: Addr, n: number, paged: boolean): boolean {
  return aligned(ka, n, !paged) && aligned(va, n, !paged);
}

function lseAddr(plan: AttentionPlan): Addr {
  const seqBase: number[] = [];
  if (plan.varlen) {
    for (let b = 0; b < plan.batch; b++) seqBase.push(plan.cuSeqlensQ[b]!);
    return { seqBase, row: 1, head: plan.totalQ };
  }
  for (let b = 0; b < plan.batch; b++) seqBase.push(b * plan.numHeads * plan.seqLenQ);
  return { seqBase, row: 1, head: plan.seqLenQ };
}

class Meta {
  words: number[] = [];
  push(xs: ArrayLike<number>): number {
    const at = this.words.length;
    for (let i = 0; i < xs.length; i++) this.words.push(xs[i]! | 0);
    return at;
  }
  reserve(n: number): number {
    const at = this.words.length;
    for (let i = 0; i < n; i++) this.words.push(0);
    return at;
  }
}

/** Placeholder for the meta buffer's binding (the buffer is created after every table is known). */
const META = 'meta' as const;

interface Dispatch {
  pipeline: GPUComputePipeline;
  entries: (GPUBindGroupEntry | typeof META)[];
  groups: number;
}

/** A recorded WebGPU attention call (prepareGpuAttention). */
export interface PreparedGpuAttention {
  /** What the call runs. */
  readonly stats: GpuRunStats;
  /** The output tensor the dispatches write (given, or allocated by prepare: the caller disposes it). */
  readonly out: GpuTensor;
  /** Log-sum-exp per (head, query) row, f32; null when not requested. */
  readonly lse: GpuTensor | null;
  /** Records the call's dispatches (top-k pass, main kernel, merge, conversion) into `encoder`. */
  encode(encoder: GPUCommandEncoder): void;
  /** Releases the call's metadata and temporaries (not q, k, v, out, lse). */
  destroy(): void;
}

function uniform(ctx: GpuContext, data: ArrayBuffer, temps: GPUBuffer[]): GPUBuffer {
  const b = ctx.device.createBuffer({ size: Math.max(16, data.byteLength), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  ctx.device.queue.writeBuffer(b, 0, data);
  temps.push(b);
  return b;
}

/** The tensor-core kernel's key tile for this call, or null when it cannot run it. */
function sgmatFit(ctx: GpuContext, plan: AttentionPlan, pagedFmt: InFormat | 'i8' | undefined, buffers: GPUBuffer[]): { BK: number; NS: number; MB: number; emulate: boolean; split: boolean } | null {
  // f32 runs on the tensor cores in the split form (SgmatVariant.split) unless the f32 policy says 'exact';
  // its range pass reads Q, K and V 16 bytes at a time (GpuTensor buffers are padded to 16 bytes).
  const split = plan.dtype === 'f32';
  if (plan.dtype !== 'f16' && !(split && f32Policy === 'split' && buffers.every((b) => b.size % 16 === 0))) return null;
  // Paged K/V stay on the SIMT kernel in f32: the range pass would read the whole block pool every call.
  if (split && pagedFmt !== undefined) return null;
  if (preference === 'sgmat-emulated') {
    const g = sgmatGeometry(null, plan.headDim, plan.headDimV, ctx.caps.maxWorkgroupStorage, ctx.caps.maxInvocations, split, plan.seqLenK);
    return g && { ...g, emulate: true, split };
  }
  if (!ctx.caps.f16 || ctx.caps.subgroupMinSize !== 32 || ctx.caps.subgroupMaxSize !== 32) return null;
  const g = sgmatGeometry(ctx.caps.subgroupMatrix, plan.headDim, plan.headDimV, ctx.caps.maxWorkgroupStorage, ctx.caps.maxInvocations, split, plan.seqLenK, sgmatLinear(ctx.caps.subgroupLinear));
  return g && { ...g, emulate: false, split };
}

function chooseKernel(ctx: GpuContext, plan: AttentionPlan, topk: boolean, sgOk: boolean): GpuRunStats['kernel'] {
  const R = plan.groupSize * plan.seqLenQ;
  const decodeShared = decodeSharedBytes(R, plan.headDim, plan.headDimV);
  const decodeOk = !topk && plan.seqLenQ <= 16 && R <= 64 && R * plan.headDim <= 4096 && plan.seqLenK >= 128 && decodeShared <= ctx.caps.maxWorkgroupStorage;
  if ((preference === 'decode' || preference === 'decode-split' || preference === 'decode-emulated') && decodeOk) return 'decode';
  // Top-k stays on the SIMT kernel: its threshold pass computes each score as flash_portable does, with the same
  // rounding, so the k-th key passes `s >= threshold`; the tensor cores' products round differently and dropped it.
  const sgmatOk = sgOk && !topk;
  if ((preference === 'sgmat' || preference === 'sgmat-emulated') && sgmatOk) return 'flash_sgmat';
  if (preference === 'portable') return 'flash_portable';
  if (preference === 'auto') {
    if (decodeOk) return 'decode';
    if (sgmatOk) return 'flash_sgmat';
  }
  return 'flash_portable';
}

/**
 * Records one attention call on device tensors. q/k/v are BSHD views (layout already applied) or
 * varlen [total, H, D]; out (same layout as q, headDimV) and lse ([B, H, Sq] / [H, totalQ], f32)
 * are created when absent.
 */
/**
 * Capture (dense plans): probabilities recomputed from the forward LSE. Mode 1: column sums over the
 * query range, into `out` as [job][kTile][64] partials (summed by the caller); mode 2: the rows in
 * `rows` for the heads in `heads`, into `out` as [batch, heads, rows, seqLenK].
 */
export interface GpuCapture {
  mode: 1 | 2;
  heads: readonly number[];
  queryStart: number;
  queryEnd: number;
  rows?: readonly number[];
  lse: GpuTensor;
}

/**
 * Paged K/V (vLLM's PagedAttention): the layer's block pool [numBlocks·blockSize, numKvHeads, headDim]
 * in `k`/`v` (f32, f16 as pairs of halves, or int8 four per word with per-(block, KV head) f32 scales),
 * and one block table per sequence of the plan; key j of sequence b is slot tables[b][j / bs]·bs + j % bs.
 */
export interface GpuPaged {
  /** Tokens per block (bs above). */
  blockSize: number;
  /** One block table per sequence (plan.batch of them): block indices into the pool, in key order. */
  tables: readonly ArrayLike<number>[];
  /** Storage format of the pool's K and V. */
  kvFmt: InFormat | 'i8';
  /** The K block pool, [numBlocks·blockSize, numKvHeads, headDim]. */
  k: GPUBuffer;
  /** The V block pool, laid out as `k`. */
  v: GPUBuffer;
  /** Per-(block, KV head) f32 scales of int8 K; required when kvFmt is 'i8', ignored otherwise. */
  kScales?: GPUBuffer;
  /** Per-(block, KV head) f32 scales of int8 V; required when kvFmt is 'i8', ignored otherwise. */
  vScales?: GPUBuffer;
}

/**
 * Plans one attention call on device tensors and records its buffers and bind groups without running it:
 * `encode` it into a command encoder (as many times as wanted, e.g. for benchmarks), then `destroy`.
 * `k`/`v` may be null only with `paged`. `outIn`/`lseIn` are written when given; otherwise out is allocated
 * ([batch, seqLenQ, numHeads, headDimV], or [totalQ, numHeads, headDimV] varlen) and lse when plan.returnLse
 * ([batch, numHeads, seqLenQ] f32; [numHeads, totalQ] varlen); `lseIn: null` skips lse. `capture` (dense plans
 * only, not with `paged`) writes attention probabilities instead of the output. Does not set lastGpuStats.
 */
export async function prepareGpuAttention(plan: AttentionPlan, q: GpuTensor, k: GpuTensor | null, v: GpuTensor | null, outIn?: GpuTensor, lseIn?: GpuTensor | null, capture?: GpuCapture, paged?: GpuPaged): Promise<PreparedGpuAttention> {
  const given = ([[q, 'q'], [k, 'k'], [v, 'v'], [outIn, 'out'], [lseIn, 'lse']] as const).filter((e): e is readonly [GpuTensor, 'q' | 'k' | 'v' | 'out' | 'lse'] => !!e[0]);
  for (const [t, name] of given) if (t.isDisposed) throw new StateError(`${name} is a disposed GpuTensor`);
  if (given.some(([t]) => t.ctx !== q.ctx)) {
    // Name the tensor from the device configureWebGpu replaced (not the fresh one that merely differs from q).
    const cur = await gpuContext().catch(() => null);
    const [, name] = given.find(([t]) => t.ctx !== cur) ?? given.find(([t]) => t.ctx !== q.ctx)!;
    throw new ValueError(`${name} lives on a GPU device that configureWebGpu replaced (the others are on ${cur ? 'the current one' : 'another'}): upload it again`, name);
  }
  // What this call allocates is freed if planning fails part-way (a mask too large, a pipeline that fails).
  const temps: GPUBuffer[] = [], owned: GpuTensor[] = [];
  try {
    return await prepare(plan, q, k, v, outIn, lseIn, capture, paged, temps, owned);
  } catch (e) {
    for (const b of temps) b.destroy();
    for (const t of owned) t.dispose();
    throw e;
  }
}

async function prepare(plan: AttentionPlan, q: GpuTensor, k: GpuTensor | null, v: GpuTensor | null, outIn: GpuTensor | undefined, lseIn: GpuTensor | null | undefined, capture: GpuCapture | undefined, paged: GpuPaged | undefined, temps: GPUBuffer[], owned: GpuTensor[]): Promise<PreparedGpuAttention> {
  const ctx = q.ctx;
  const caps = ctx.caps;
  const topk = plan.mask ? findTopK(plan.mask.node) : null;
  if (topk && topk.k > TOPK_MAX) throw new UnsupportedError(`topK(${topk.k}) exceeds the WebGPU threshold kernel's heap of ${TOPK_MAX} scores`, `topK(${TOPK_MAX}) or backend 'wasm'`);
  if (paged && capture) throw new UnsupportedError('capture from a paged KV cache', 'contiguous K/V');
  if (!paged && (!k || !v)) throw new ShapeError('k and v are required unless K/V are paged', 'k');
  const kBuf = paged ? paged.k : k!.buffer, vBuf = paged ? paged.v : v!.buffer;
  const pagedV: KvPaging | undefined = paged ? { bs: paged.blockSize, kvFmt: paged.kvFmt, numKvHeads: plan.numKvHeads, headDim: plan.headDim } : undefined;
  const fit = capture ? null : sgmatFit(ctx, plan, paged?.kvFmt, [q.buffer, kBuf, vBuf]);
  const kernel = capture ? 'flash_portable' : chooseKernel(ctx, plan, topk !== null, fit !== null);
  const sgFit = kernel === 'flash_sgmat' ? fit : null;
  const scaleEntries = (withV: boolean): GPUBindGroupEntry[] => (paged?.kvFmt === 'i8'
    ? [{ binding: 7, resource: { buffer: paged.kScales! } }, ...(withV ? [{ binding: 8, resource: { buffer: paged.vScales! } }] : [])]
    : []);
  const outShape = plan.varlen ? [plan.totalQ, plan.numHeads, plan.headDimV] : [plan.batch, plan.seqLenQ, plan.numHeads, plan.headDimV];
  const nQT = Math.ceil(plan.seqLenQ / 64), nKT = Math.ceil(plan.seqLenK / 64);
  const captureShape = capture ? (capture.mode === 1 ? [plan.batch * capture.heads.length * nQT * nKT * 64] : [plan.batch, capture.heads.length, capture.rows!.length, plan.seqLenK]) : null;
  const out = outIn ?? GpuTensor.empty(ctx, captureShape ?? outShape, capture ? 'f32' : plan.dtype);
  if (!outIn) owned.push(out);
  const lse = lseIn === undefined ? (plan.returnLse ? GpuTensor.empty(ctx, plan.varlen ? [plan.numHeads, plan.totalQ] : [plan.batch, plan.numHeads, plan.seqLenQ], 'f32') : null) : lseIn;
  if (lseIn === undefined && lse) owned.push(lse);
  // Kernels that compute in f32 write f32; 16-bit outputs then go through convert_out, except from the
  // tensor-core kernel and decode_merge (whole words of two: value head dim and output offsets even).
  const decode16 = kernel === 'decode' && decodeTuning.direct16 && plan.headDimV % 2 === 0 && aligned(addr(plan, out, 'q'), 2, true);
  const directOut = out.dtype === 'f32' || (sgFit !== null && !sgFit.emulate) || decode16;
  const outF32 = directOut ? out : GpuTensor.empty(ctx, out.shape, 'f32');
  if (!directOut) temps.push(outF32.buffer);
  const lseBuf = capture ? capture.lse.buffer : lse?.buffer ?? (() => { const b = ctx.device.createBuffer({ size: 16, usage: STORAGE }); temps.push(b); return b; })();
  if (capture) {
    const enc = ctx.device.createCommandEncoder();
    enc.clearBuffer(out.buffer);
    ctx.device.queue.submit([enc.finish()]);
  } else if (poison) {
    // NaN in every element: f32 words, or two f16 / bf16 NaNs a word where a kernel writes 16 bits directly.
    const nanWord = outF32.dtype === 'f32' ? 0x7fc00000 : outF32.dtype === 'f16' ? 0x7e007e00 : 0x7fc07fc0;
    ctx.device.queue.writeBuffer(outF32.buffer, 0, new Uint32Array(outF32.buffer.size / 4).fill(nanWord));
    if (lse) ctx.device.queue.writeBuffer(lse.buffer, 0, new Float32Array(lse.buffer.size / 4).fill(NaN));
  }

  const meta = new Meta();
  const qa = addr(plan, q, 'q'), la = lseAddr(plan);
  let ka: Addr, va: Addr;
  if (paged) {
    // The sequence table's K/V base is the sequence's block table in the metadata.
    if (paged.tables.length !== plan.batch) throw new ShapeError(`${paged.tables.length} block tables for ${plan.batch} sequences`, 'blockTables', 'numSeqs');
    const slot = plan.numKvHeads * plan.headDim;
    const seqBase = paged.tables.map((t) => meta.push(t.length ? t : [0]));
    ka = { seqBase, row: slot, head: plan.headDim };
    va = ka;
  } else {
    ka = addr(plan, k!, 'k'); va = addr(plan, v!, 'k');
  }
  const oa = capture
    ? { seqBase: Array.from({ length: plan.batch }, (_, b) => (capture.mode === 2 ? b * capture.heads.length * capture.rows!.length * plan.seqLenK : 0)), row: 0, head: 0 }
    : addr(plan, outF32, 'q');
  const natural = plan.softcap > 0 || topk !== null;
  const cap = plan.softcap > 0;
  const mask = compileMaskWgsl(plan.mask?.node ?? null, plan.seqLenQ, plan.seqLenK);

  // Rows per tile: positions per Q tile for the chosen kernel.
  let tileQ: number, G: number;
  if (kernel === 'flash_sgmat') {
    G = Math.min(sgFit!.NS, plan.groupSize % 4 === 0 ? 4 : plan.groupSize % 2 === 0 ? 2 : 1);
    tileQ = 16 * sgFit!.MB * (sgFit!.NS / G);
  } else if (kernel === 'decode') {
    G = plan.groupSize;
    tileQ = Math.max(1, plan.seqLenQ);
  } else {
    G = capture ? 1 : plan.groupSize <= 64 ? plan.groupSize : 1;
    tileQ = Math.floor(64 / G);
  }

  const seqTable = meta.reserve(plan.batch * 9);
  const planIndex = new Map<string, number>();
  const plans: TilePlan[] = [];
  const seqPlan: (TilePlan | null)[] = [];
  for (let b = 0; b < plan.batch; b++) {
    const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lenK = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
    const key = `${lenQ},${lenK}`;
    let idx = planIndex.get(key);
    if (idx === undefined) {
      idx = plans.length;
      planIndex.set(key, idx);
      plans.push(planTiles(plan.mask, { seqLenQ: lenQ, seqLenK: lenK }, kernel === 'decode' ? Math.max(1, lenQ) : tileQ, GPU_TILE_K));
    }
    seqPlan.push(lenQ > 0 ? plans[idx]! : null);
    const w = [qa.seqBase[b]!, ka.seqBase[b]!, va.seqBase[b]!, oa.seqBase[b]!, la.seqBase[b]!, lenQ, lenK, idx, plan.cuSeqlensQ[b]!];
    for (let t = 0; t < 9; t++) meta.words[seqTable + b * 9 + t] = w[t]!;
  }
  const planTable = meta.reserve(plans.length * 2);
  plans.forEach((tp, i) => {
    meta.words[planTable + i * 2] = meta.push(tp.rowStart);
    meta.words[planTable + i * 2 + 1] = meta.push(tp.entries);
  });

  const dispatches: Dispatch[] = [];
  // Buffers cleared at the start of every encode (the split form's range maxima).
  const clears: GPUBuffer[] = [];
  let rangeEntries: GPUBindGroupEntry[] = [];
  if (sgFit?.split) {
    // The split form's range pass: each of Q, K and V's largest finite magnitude, read by the kernel to
    // scale them into f16's range (rangeSource).
    const rangeBuf = ctx.device.createBuffer({ size: 16, usage: STORAGE | GPUBufferUsage.COPY_DST });
    temps.push(rangeBuf); clears.push(rangeBuf);
    const n = [q.buffer.size / 16, kBuf.size / 16, vBuf.size / 16];
    const groups = Math.max(1, Math.min(1024, Math.ceil(Math.max(...n) / 256)));
    const rub = uniform(ctx, new Uint32Array([...n, groups * 256]).buffer, temps);
    const rpipe = await ctx.pipeline('split_range', rangeSource());
    // 'norange' in the ablation string (a profiling aid) skips the pass: the kernel then reads zeros and scales
    // nothing, right for inputs inside f16's range.
    if (!sgmatAblation().split(',').includes('norange')) {
      dispatches.push({ pipeline: rpipe, groups, entries: [{ binding: 0, resource: { buffer: rub } }, { binding: 1, resource: { buffer: q.buffer } }, { binding: 2, resource: { buffer: kBuf } }, { binding: 3, resource: { buffer: vBuf } }, { binding: 4, resource: { buffer: rangeBuf } }] });
    }
    rangeEntries = [{ binding: 9, resource: { buffer: rangeBuf } }];
  }
  let jobsCount = 0, visited = 0, key = '';

  // Top-k thresholds first (natural units, the `within` mask's tiles).
  if (topk) {
    const thrBase = meta.reserve(plan.numHeads * Math.max(1, plan.totalQ));
    mask.data[mask.thrSlot] = thrBase;
    const within = compileMaskWgsl(topk.within, plan.seqLenQ, plan.seqLenK);
    const withinMask = new Mask(topk.within);
    const wPlanTable = meta.reserve(plans.length * 2);
    plans.forEach((tp, i) => {
      const wp = planTiles(withinMask, { seqLenQ: tp.seqLenQ, seqLenK: tp.seqLenK }, 64, GPU_TILE_K);
      meta.words[wPlanTable + i * 2] = meta.push(wp.rowStart);
      meta.words[wPlanTable + i * 2 + 1] = meta.push(wp.entries);
    });
    const tjobs: number[] = [];
    for (let b = 0; b < plan.batch; b++) {
      const lenQ = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!;
      for (let h = 0; h < plan.numHeads; h++) for (let qt = 0; qt < Math.ceil(lenQ / 64); qt++) tjobs.push(b, h, qt);
    }
    const tJobTable = meta.push(tjobs);
    const wMaskBase = meta.push(within.data);
    const tv: TopKVariant = { kernel: 'topk_threshold', fmt: plan.dtype, D: plan.headDim, KK: topk.k, cap, maskKey: within.key, ...(pagedV ? { paged: pagedV } : {}) };
    const pipe = await ctx.pipeline(variantKey(tv), topkSource(tv, within.fn));
    const p = new ArrayBuffer(64), pu = new Uint32Array(p), pf = new Float32Array(p);
    pu.set([qa.row, qa.head, ka.row, ka.head, tjobs.length / 3, seqTable, wPlanTable, tJobTable, wMaskBase, thrBase, plan.totalQ, plan.groupSize]);
    pf[12] = plan.scale; pf[13] = plan.softcap; pf[14] = -Infinity; pf[15] = Infinity;
    const ub = uniform(ctx, p, temps);
    dispatches.push({ pipeline: pipe, groups: tjobs.length / 3, entries: [{ binding: 0, resource: { buffer: ub } }, META, { binding: 2, resource: { buffer: q.buffer } }, { binding: 3, resource: { buffer: kBuf } }, ...scaleEntries(false)] });
  }

  if (kernel === 'decode') {
    // Split each sequence's visited tiles so that there are ≥ 4 workgroups per multiprocessor-ish.
    let total = 0;
    for (let b = 0; b < plan.batch; b++) total += seqPlan[b] ? seqPlan[b]!.entries.length * plan.numKvHeads : 0;
    const target = decodeTuning.target;
    const perSeqHead = Math.max(1, Math.ceil(total / plan.numKvHeads / Math.max(1, plan.batch)));
    // Workgroups of four subgroups wanted per (sequence, KV head).
    const want = Math.max(1, Math.ceil(target / Math.max(1, plan.batch * plan.numKvHeads)));
    let splitTiles = Math.max(1, Math.ceil(perSeqHead / want));
    const rows = plan.groupSize * plan.seqLenQ;
    // Four elements per K/V load when every row, head and sequence offset is a multiple of 4; eight
    // 16-bit elements when they are multiples of 8.
    const vec4 = plan.headDim % 4 === 0 && plan.headDimV % 4 === 0 && paged?.kvFmt !== 'i8' && kvAligned(ka, va, 4, !!paged);
    const vec8 = vec4 && kvAligned(ka, va, 8, !!paged);
    // The subgroup kernel (decode-warp.ts) where it takes the shape: 32-lane subgroups, or emulated on request.
    const sg32 = caps.subgroups && caps.subgroupMinSize === 32 && caps.subgroupMaxSize === 32;
    const wg = vec4 && preference !== 'decode-split' && (sg32 || preference === 'decode-emulated') ? decodeWarpGeometry(plan.headDim, plan.headDimV, Math.max(1, rows), paged ? paged.kvFmt as InFormat : plan.dtype, decodeTuning.kb, decodeTuning.wide && vec8) : null;
    // Partials per split workgroup: one per subgroup for decode_warp.
    const combine = wg !== null && decodeTuning.combine && decodeWarpCombines(Math.max(1, rows), plan.headDimV);
    const PW = wg && !combine ? 4 : 1;
    // Fused (decode_warp's SS and fin): when the four-subgroup units wanted per (sequence, KV head) fit one
    // workgroup (≤ 4, and the adapter's invocation limit), each (sequence, KV head) gets one workgroup of
    // 4·SS subgroups that combines its partials in workgroup memory and writes the output itself: no merge
    // pass (decode-kv4k f16 on the H200: the merge dispatch cost ~10 µs of 89). Not for sequences of very
    // different lengths (varlen), where one workgroup per sequence would leave the long ones alone at the end.
    let maxEntries = 0;
    for (let b = 0; b < plan.batch; b++) maxEntries = Math.max(maxEntries, seqPlan[b]?.entries.length ?? 0);
    const ssMax = Math.min(4, Math.floor(caps.maxInvocations / 128));
    // With eight 16-bit elements a lane (E = 8, the f16 default) a compute unit of the H200 holds three
    // four-subgroup units of this kernel (its registers), so a workgroup of two or four units leaves part of
    // the unit idle: at H32/8 Sk4096 (bench/results/decode-fused-batches-run-z.txt) fused SS 4 (B12) and SS 2
    // (B24) ran 27–33% slower than split + merge, SS 3 (B16, B20) 7–15% faster; SS 2 at B32 was faster
    // (0.154 against 0.182 ms), a matter of how the workgroups fill the last wave, which WebGPU gives no
    // way to predict. So 16-bit wide decode fuses at SS 1 and 3 only; the four-element form (f32) gained at
    // every SS (B12–B32: 3–25%).
    const ssOk = wg?.E !== 8 || want === 1 || want === 3;
    const fused = combine && decodeTuning.fuse && ssOk && want <= ssMax && maxEntries <= 1.25 * perSeqHead;
    const SS = fused ? Math.max(1, Math.min(want, maxEntries)) : 1;
    if (fused) splitTiles = Math.max(1, maxEntries);
    const split: number[] = [], merge: number[] = [];
    for (let b = 0; b < plan.batch; b++) {
      const tp = seqPlan[b];
      if (!tp) continue;
      const n = Math.max(1, Math.ceil(tp.entries.length / splitTiles));
      for (let hk = 0; hk < plan.numKvHeads; hk++) {
        merge.push(b, hk, (split.length / 3) * PW, n * PW);
        for (let s = 0; s < n; s++) split.push(b, hk, s);
      }
    }
    const nSplit = split.length / 3, nMerge = merge.length / 4;
    const jobTable = meta.push(split), mergeTable = meta.push(merge);
    const maskBase = meta.push(mask.data);
    const ablate = decodeTuning.ablate ? { ablate: decodeTuning.ablate } : {};
    const realSg = sg32 && preference !== 'decode-emulated';
    const dv: DecodeVariant | DecodeWarpVariant = wg
      ? { kernel: 'decode_warp', fmt: plan.dtype, D: plan.headDim, DV: plan.headDimV, R: Math.max(1, rows), KB: wg.KB, wide: wg.E === 8, pipe: decodeTuning.pipe, combine, cap, maskKey: mask.key, sg: realSg, ...(pagedV ? { paged: pagedV } : {}), ...(SS > 1 ? { SS } : {}), ...(fused ? { fin: outF32.dtype } : {}), ...ablate }
      : { kernel: 'decode_split', fmt: plan.dtype, D: plan.headDim, DV: plan.headDimV, R: Math.max(1, rows), cap, maskKey: mask.key, vec4, ...(pagedV ? { paged: pagedV } : {}), ...ablate };
    const pipe = await ctx.pipeline(variantKey(dv), dv.kernel === 'decode_warp' ? decodeWarpSource(dv, mask.fn) : decodeSource(dv, mask.fn));
    const p = new ArrayBuffer(96), pu = new Uint32Array(p), pf = new Float32Array(p);
    pu.set([qa.row, qa.head, ka.row, ka.head, va.row, va.head, nSplit, splitTiles, seqTable, planTable, jobTable, maskBase]);
    pf[12] = plan.scale; pf[13] = plan.softcap; pu[14] = plan.groupSize; pu[15] = rows;
    pu.set([oa.row, oa.head, la.row, la.head, lse ? 1 : 0], 16);
    pf[21] = -Infinity; pf[22] = NaN;
    const ub = uniform(ctx, p, temps);
    const common: Dispatch['entries'] = [{ binding: 0, resource: { buffer: ub } }, META, { binding: 2, resource: { buffer: q.buffer } }, { binding: 3, resource: { buffer: kBuf } }, { binding: 4, resource: { buffer: vBuf } }, ...scaleEntries(true)];
    jobsCount = nSplit;
    visited = total;
    key = variantKey(dv);
    if (fused) {
      dispatches.push({ pipeline: pipe, groups: nSplit, entries: [...common, { binding: 10, resource: { buffer: outF32.buffer } }, { binding: 11, resource: { buffer: lseBuf } }] });
    } else {
      const partBytes = Math.max(16, nSplit * PW * rows * (plan.headDimV + 2) * 4);
      const partBuf = ctx.device.createBuffer({ size: partBytes, usage: STORAGE });
      temps.push(partBuf);
      dispatches.push({ pipeline: pipe, groups: nSplit, entries: [...common, { binding: 5, resource: { buffer: partBuf } }] });
      const mv = { kernel: 'decode_merge', DV: plan.headDimV } as const;
      const mfmt = outF32.dtype === 'f32' ? 0 : outF32.dtype === 'f16' ? 1 : 2;
      const mpipe = await ctx.pipeline(`${variantKey(mv)}:${mfmt}`, decodeMergeSource(plan.headDimV, mfmt));
      const mp = new ArrayBuffer(48), mu = new Uint32Array(mp), mf = new Float32Array(mp);
      mu.set([oa.row, oa.head, la.row, la.head, nMerge, lse ? 1 : 0, seqTable, mergeTable, plan.groupSize, rows]);
      mf[10] = -Infinity; mf[11] = NaN;
      const mub = uniform(ctx, mp, temps);
      dispatches.push({ pipeline: mpipe, groups: decodeTuning.ablate & 32 ? 0 : nMerge, entries: [{ binding: 0, resource: { buffer: mub } }, META, { binding: 2, resource: { buffer: partBuf } }, { binding: 3, resource: { buffer: outF32.buffer } }, { binding: 4, resource: { buffer: lseBuf } }] });
      jobsCount = nSplit + nMerge;
    }
  } else {
    const jobs: [number, number, number, number][] = [];
    const headBlocks = plan.numHeads / G;
    if (capture) {
      // Capture jobs in (batch, selected head, Q tile) order: column-sum partials are indexed by it.
      const sel = new Set(capture.rows ?? []);
      for (let b = 0; b < plan.batch; b++) {
        const tp = seqPlan[b];
        for (const h of capture.heads) for (let qt = 0; qt < nQT; qt++) {
          if (capture.mode === 2 && ![...sel].some((i) => i >= qt * 64 && i < (qt + 1) * 64)) continue;
          const cost = tp ? tp.rowStart[qt + 1]! - tp.rowStart[qt]! : 0;
          jobs.push([b, h, qt, cost]); visited += cost;
        }
      }
    } else {
      for (let b = 0; b < plan.batch; b++) {
        const tp = seqPlan[b];
        if (!tp) continue;
        for (let qt = 0; qt < tp.numQTiles; qt++) {
          const cost = tp.rowStart[qt + 1]! - tp.rowStart[qt]!;
          for (let hb = 0; hb < headBlocks; hb++) { jobs.push([b, hb, qt, cost]); visited += cost; }
        }
      }
      jobs.sort((a, z) => z[3] - a[3]);
    }
    const jobTable = meta.push(jobs.flatMap(([b, hb, qt]) => [b, hb, qt]));
    const maskBase = meta.push(mask.data);
    let pipe: GPUComputePipeline;
    if (kernel === 'flash_sgmat') {
      // 16-byte loads when every row, head and sequence offset is a multiple of 8 halves (4 floats, split;
      // the split form never reads paged K/V: sgmatFit).
      const split = sgFit!.split, E = split ? 4 : 8;
      // Offsets from the invocation index (SgmatVariant.lidsg) where the adapter's subgroups were probed linear.
      const linear = !sgFit!.emulate && sgmatLinear(ctx.caps.subgroupLinear);
      const vec = plan.headDim % E === 0 && plan.headDimV % E === 0 && aligned(qa, E, true) &&
        (!paged || paged.kvFmt === 'f16') && kvAligned(ka, va, E, !!paged);
      const sv: SgmatVariant = { ...(split ? { split: true } : {}), kernel: 'flash_sgmat', D: plan.headDim, DV: plan.headDimV, G4: G, BK: sgFit!.BK, NS: sgFit!.NS, ...(sgFit!.MB > 1 ? { MB: sgFit!.MB } : {}), vec, natural, cap, fuse: !natural && plan.scale > 0, outF16: out.dtype === 'f16' && directOut, emulate: sgFit!.emulate, maskKey: mask.key, ...(pagedV ? { paged: pagedV } : {}), ...(sgmatAblation() ? { ablate: sgmatAblation() } : {}), ...(linear ? { lidsg: true } : {}), ...(sgmatOutVec(plan.headDimV, aligned(oa, 8, true)) ? { outVec: true } : {}), ...(sgmatVLate(vec, plan.headDimV, plan.seqLenK) ? { vlate: true } : {}), ...(sgmatPf1(vec && !sgFit!.emulate, plan.headDim, plan.headDimV, split, linear) ? { pf1: true } : {}) };
      key = variantKey(sv);
      pipe = await ctx.pipeline(key, sgmatSource(sv, mask.fn));
    } else {
      const sg = caps.subgroups && caps.subgroupMinSize >= 16;
      const pch = portableTuning.pch && !capture;
      const fit = portableFit({ DV: plan.headDimV, sg, pch, wideWanted: portableTuning.wide, maxShared: caps.maxWorkgroupStorage });
      if (!fit) {
        const need = portableBytes({ DV: plan.headDimV, wide: false, sg, pch, pcap: 8 });
        throw new UnsupportedError(`the portable attention kernel needs ${need} bytes of workgroup memory${capture ? ' for attention capture' : ''}; this adapter allows ${caps.maxWorkgroupStorage} (maxComputeWorkgroupStorageSize)`, capture ? 'the forward pass without capture, or an adapter with 24 KiB or more' : 'an adapter with subgroups, or more workgroup memory');
      }
      const wide = fit.wide;
      const pcap = Math.min(fit.pcap, portableTuning.pcap);
      // Four elements per load: every Q/K/V row, head and sequence offset a multiple of 4, K/V not int8.
      const layout4 = plan.headDim % 4 === 0 && plan.headDimV % 4 === 0 && aligned(qa, 4, true) && paged?.kvFmt !== 'i8' && kvAligned(ka, va, 4, !!paged);
      const { r2, vload } = portableForm({ DV: plan.headDimV, wide, layout4, maxInvocations: caps.maxInvocations, robust: caps.robust });
      const vfull = !pch && portableTuning.vfull && portableGeometry({ DV: plan.headDimV, wide }).BCV < 64 &&
        portableSharedBytes(wide, sg, plan.headDimV) <= caps.maxWorkgroupStorage;
      const vnext = portableTuning.vnext === 'auto' ? portableGeometry({ DV: plan.headDimV, wide, vfull, pch, pcap }).BCV < 64 : portableTuning.vnext;
      const pv: PortableFlashVariant = { kernel: 'flash_portable', fmt: plan.dtype, D: plan.headDim, DV: plan.headDimV, G, sg, wide, ...(portableUsesV4(plan.headDimV) ? { v4: true } : {}), ...(r2 ? { r2: true } : {}), ...(vfull ? { vfull: true } : {}), ...(vload ? { vload: true } : {}), ...(vload && portableTuning.vpre ? { vpre: true } : {}), ...(vload && portableTuning.vpre && vnext ? { vnext: true } : {}), cap, maskKey: mask.key, capture: capture?.mode ?? 0, ...(pch ? { pch: true } : {}), ...(pch && pcap < 32 ? { pcap } : {}), ...(pagedV ? { paged: pagedV } : {}), ...(portableTuning.ablate ? { ablate: portableTuning.ablate } : {}) };
      key = variantKey(pv);
      pipe = await ctx.pipeline(key, portableSource(pv, mask.fn));
    }
    let rowMap = 0, headMap = 0;
    if (capture) {
      const rm = new Int32Array(plan.seqLenQ).fill(-1);
      capture.rows?.forEach((i, r) => { rm[i] = r; });
      rowMap = meta.push(rm);
      const hm = new Int32Array(plan.numHeads).fill(0);
      capture.heads.forEach((h, i) => { hm[h] = i; });
      headMap = meta.push(hm);
    }
    const p = new ArrayBuffer(112), pu = new Uint32Array(p), pf = new Float32Array(p);
    pu.set([qa.row, qa.head, ka.row, ka.head, va.row, va.head, oa.row, oa.head, la.row, la.head, jobs.length, lse ? 1 : 0, seqTable, planTable, jobTable, maskBase]);
    pf[16] = plan.scale; pf[17] = plan.softcap; pu[18] = plan.totalQ; pu[19] = plan.groupSize; pf[20] = -Infinity; pf[21] = NaN;
    pu[22] = capture?.queryStart ?? 0; pu[23] = capture?.queryEnd ?? 0;
    pu[24] = rowMap; pu[25] = headMap; pu[26] = capture?.rows?.length ?? 0; pu[27] = nKT;
    const ub = uniform(ctx, p, temps);
    dispatches.push({ pipeline: pipe, groups: jobs.length, entries: [{ binding: 0, resource: { buffer: ub } }, META, { binding: 2, resource: { buffer: q.buffer } }, { binding: 3, resource: { buffer: kBuf } }, { binding: 4, resource: { buffer: vBuf } }, { binding: 5, resource: { buffer: outF32.buffer } }, { binding: 6, resource: { buffer: lseBuf } }, ...scaleEntries(true), ...rangeEntries] });
    jobsCount = jobs.length;
  }

  if (!directOut) {
    const fmt = out.dtype === 'f16' ? 1 : 2;
    const cpipe = await ctx.pipeline(`convert_out:${fmt}`, convertSource(fmt));
    const words = Math.ceil(out.size / 2);
    const cp = new Uint32Array([words, out.size, 0, 0]);
    const cub = uniform(ctx, cp.buffer, temps);
    dispatches.push({ pipeline: cpipe, groups: Math.ceil(words / 256), entries: [{ binding: 0, resource: { buffer: cub } }, { binding: 1, resource: { buffer: outF32.buffer } }, { binding: 2, resource: { buffer: out.buffer } }] });
  }

  if (meta.words.length * 4 > caps.maxStorageBinding) throw new ShapeError("the kernel metadata (tile plans and mask data) exceeds the adapter's storage binding size", 'mask');
  const metaBuf = ctx.device.createBuffer({ size: Math.max(16, meta.words.length * 4), usage: STORAGE });
  temps.push(metaBuf);
  ctx.device.queue.writeBuffer(metaBuf, 0, new Uint32Array(meta.words));
  const bound = dispatches.map((d) => ({
    pipeline: d.pipeline,
    groups: d.groups,
    bind: ctx.device.createBindGroup({
      layout: d.pipeline.getBindGroupLayout(0),
      entries: d.entries.map((e) => (e === META ? { binding: 1, resource: { buffer: metaBuf } } : e)),
    }),
  }));
  const stats: GpuRunStats = { kernel, key, jobs: jobsCount, visitedTiles: visited, dispatches: bound.filter((b) => b.groups !== 0).length };
  return {
    stats, out, lse,
    encode(encoder) {
      for (const b of clears) encoder.clearBuffer(b);
      for (const d of bound) {
        const n = d.groups;
        if (n === 0) continue;
        const pass = encoder.beginComputePass();
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bind);
        pass.dispatchWorkgroups(Math.min(n, 65535), Math.ceil(n / 65535));
        pass.end();
      }
    },
    destroy() {
      for (const b of temps) b.destroy();
      temps.length = 0;
    },
  };
}

/** Runs a prepared call now and waits for the device. */
async function submit(ctx: GpuContext, prepared: PreparedGpuAttention): Promise<void> {
  await ctx.checked('attention (WebGPU)', async () => {
    const enc = ctx.device.createCommandEncoder();
    prepared.encode(enc);
    ctx.device.queue.submit([enc.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
  });
}

/** Attention on device tensors (outputs stay on the device). */
export async function runDevice(plan: AttentionPlan, q: GpuTensor, k: GpuTensor, v: GpuTensor, out?: GpuTensor, lse?: GpuTensor | null): Promise<{ out: GpuTensor; lse: GpuTensor | null }> {
  const prepared = await prepareGpuAttention(plan, q, k, v, out, lse);
  try {
    await submit(q.ctx, prepared);
  } catch (e) {
    // Outputs this call allocated are the caller's only if it succeeds.
    if (!out) prepared.out.dispose();
    if (lse === undefined) prepared.lse?.dispose();
    throw e;
  } finally {
    prepared.destroy();
  }
  lastGpuStats = prepared.stats;
  return { out: prepared.out, lse: prepared.lse };
}

/**
 * Paged attention from host queries: q uploaded, K/V read from the device block pool through the
 * block tables (no gather), out and lse downloaded into the given host tensors.
 */
export async function runPagedHost(plan: AttentionPlan, q: Tensor, paged: GpuPaged, out: Tensor, lse: Tensor | null): Promise<GpuRunStats> {
  const ctx = await gpuContext();
  const gq = await GpuTensor.fromTensor(q, ctx);
  let prepared: PreparedGpuAttention | null = null;
  try {
    prepared = await prepareGpuAttention({ ...plan, returnLse: lse !== null }, gq, null, null, undefined, lse ? undefined : null, undefined, paged);
    await submit(ctx, prepared);
    lastGpuStats = prepared.stats;
    copyInto(await prepared.out.toTensor(), out);
    if (lse && prepared.lse) copyInto(await prepared.lse.toTensor(), lse);
    return prepared.stats;
  } finally {
    gq.dispose();
    prepared?.destroy();
    prepared?.out.dispose(); prepared?.lse?.dispose();
  }
}

async function runHost(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor | null): Promise<void> {
  const ctx = await gpuContext();
  const gq = await GpuTensor.fromTensor(q, ctx), gk = await GpuTensor.fromTensor(k, ctx), gv = await GpuTensor.fromTensor(v, ctx);
  let res: { out: GpuTensor; lse: GpuTensor | null } | null = null;
  try {
    res = await runDevice({ ...plan, returnLse: lse !== null }, gq, gk, gv, undefined, lse ? undefined : null);
    copyInto(await res.out.toTensor(), out);
    if (lse && res.lse) copyInto(await res.lse.toTensor(), lse);
  } finally {
    gq.dispose(); gk.dispose(); gv.dispose();
    res?.out.dispose(); res?.lse?.dispose();
  }
}

export const webgpuBackend: HostBackend = {
  name: 'webgpu',
  run: runHost,
  runDevice: (plan, q, k, v, out, lse) => runDevice(plan, q as GpuTensor, k as GpuTensor, v as GpuTensor, out as GpuTensor | undefined, lse as GpuTensor | null | undefined),
};
