/**
 * Roofline: a lower bound on time from FLOPs and bytes on one device profile.
 *
 *   computeSeconds = matmulFlops / peak(unit, dtype)  ⊕  softmaxFlops / peak(vector, f32)
 *   memorySeconds  = bytes / memoryBandwidth
 *   seconds        = max(computeSeconds, memorySeconds)        (perfect overlap: a lower bound)
 *
 * ⊕ is max when the matmuls run on tensor units (the softmax overlaps them on the ALUs, as in
 * FlashAttention-3) and + when they share the vector ALUs. The bound that applies is the larger term;
 * arithmetic intensity = FLOPs / bytes, and the ridge point is peak / bandwidth.
 */
import { UnsupportedError, ValueError, checkOptionKeys, optionNames } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import type { AttentionCost } from './attention-cost.js';
import { type DeviceProfile, type Figure, deviceProfile } from './devices.js';

/** Where the matrix FLOPs run: 'tensor' on matrix units (tensor cores, subgroup matrix), 'vector' on ordinary ALUs. */
export type ComputeUnit = 'tensor' | 'vector';

/** Work of one call, for `roofline`. */
export interface RooflineInput {
  /** FLOPs for matrix units (QKᵀ, PV, projections). */
  matmulFlops: number;
  /** FLOPs that always run on vector ALUs in f32 (softmax, norms); default 0. */
  vectorFlops?: number;
  /** Bytes moved to and from main memory (HBM / DRAM). */
  bytes: number;
  /** Input dtype: picks the profile's peak for the matrix FLOPs. */
  dtype: DType;
}

/** Options of `roofline`. */
export interface RooflineOptions {
  /** 'auto' (default): tensor units when the profile has them for the dtype, else vector ALUs. */
  unit?: 'auto' | ComputeUnit;
}

/** A time lower bound on one device, with the terms and figures behind it. Times in seconds. */
export interface RooflineResult {
  /** The profile's name. */
  device: string;
  /** Input dtype, as given. */
  dtype: DType;
  /** The unit the matrix FLOPs were placed on ('auto' resolved). */
  unit: ComputeUnit;
  /** matmulFlops + vectorFlops. */
  flops: number;
  /** Main-memory bytes, as given. */
  bytes: number;
  /** flops / bytes (Infinity when bytes is 0). */
  intensity: number;
  /**
   * peak / bandwidth: the intensity at which the matrix FLOPs alone take as long as the bytes. With vector FLOPs
   * (the softmax) the compute time is larger, so a call below the ridge can still be compute-bound: `bound` compares
   * the two times themselves.
   */
  ridgeIntensity: number;
  /** FLOP/s used for the matrix FLOPs: the profile's `unit` peak for `dtype`. */
  peak: Figure;
  /** FLOP/s used for vectorFlops: the f32 vector peak (else the dtype's vector peak, else `peak`). */
  vectorPeak: Figure;
  /** The profile's memory bandwidth, bytes/s. */
  bandwidth: Figure;
  /** matmul / peak, combined with vector / vectorPeak by max on tensor units and by + on vector ALUs. */
  computeSeconds: number;
  /** bytes / bandwidth. */
  memorySeconds: number;
  /** Lower bound: max(computeSeconds, memorySeconds). */
  seconds: number;
  /** The larger of the two terms ('compute' on a tie). */
  bound: 'compute' | 'memory';
  /** flops / seconds: the rate this bound implies (0 when seconds is 0). */
  flopsPerSecond: number;
}

function pickPeak(p: DeviceProfile, dtype: DType, unit: RooflineOptions['unit']): { fig: Figure; unit: ComputeUnit } {
  const pk = p.peaks[dtype];
  if (!pk || (!pk.tensor && !pk.vector)) {
    const have = Object.keys(p.peaks).join(', ');
    throw new UnsupportedError(`device '${p.name}' has no ${dtype} peak`, have || undefined, 'dtype');
  }
  const want = unit ?? 'auto';
  if (want === 'tensor') {
    if (!pk.tensor) throw new UnsupportedError(`device '${p.name}' has no ${dtype} tensor-unit peak`, `unit: 'vector'`, 'unit');
    return { fig: pk.tensor, unit: 'tensor' };
  }
  if (want === 'vector') {
    if (!pk.vector) throw new UnsupportedError(`device '${p.name}' has no ${dtype} vector peak`, `unit: 'tensor'`, 'unit');
    return { fig: pk.vector, unit: 'vector' };
  }
  if (want !== 'auto') throw new ValueError(`unit must be 'auto', 'tensor' or 'vector', got ${String(unit)}`, 'unit');
  return pk.tensor ? { fig: pk.tensor, unit: 'tensor' } : { fig: pk.vector!, unit: 'vector' };
}

const ROOFLINE_INPUT_KEYS = optionNames<RooflineInput>({ matmulFlops: true, vectorFlops: true, bytes: true, dtype: true });

/** The roofline of any FLOP/byte count on a device (by name or profile). */
export function roofline(input: RooflineInput, device: string | DeviceProfile, opts: RooflineOptions = {}): RooflineResult {
  if (!input || typeof input !== 'object') throw new ValueError('roofline input must be an object', 'input');
  checkOptionKeys(input, ROOFLINE_INPUT_KEYS, 'roofline');
  checkOptionKeys(opts ?? {}, optionNames<RooflineOptions>({ unit: true }), 'roofline options');
  const p = deviceProfile(device);
  for (const k of ['matmulFlops', 'bytes'] as const) {
    if (!(input[k] >= 0) || !Number.isFinite(input[k])) throw new ValueError(`${k} must be a finite number ≥ 0, got ${input[k]}`, k);
  }
  const vflops = input.vectorFlops ?? 0;
  if (!(vflops >= 0) || !Number.isFinite(vflops)) throw new ValueError(`vectorFlops must be a finite number ≥ 0, got ${vflops}`, 'vectorFlops');
  const { fig, unit } = pickPeak(p, input.dtype, opts.unit);
  const vectorPeak = p.peaks.f32?.vector ?? p.peaks[input.dtype]?.vector ?? fig;
  const mm = input.matmulFlops / fig.value, sm = vflops / vectorPeak.value;
  const computeSeconds = unit === 'tensor' ? Math.max(mm, sm) : mm + sm;
  const memorySeconds = input.bytes / p.memoryBandwidth.value;
  const seconds = Math.max(computeSeconds, memorySeconds);
  const flops = input.matmulFlops + vflops;
  return {
    device: p.name, dtype: input.dtype, unit, flops, bytes: input.bytes,
    intensity: input.bytes > 0 ? flops / input.bytes : Infinity,
    ridgeIntensity: fig.value / p.memoryBandwidth.value,
    peak: fig, vectorPeak, bandwidth: p.memoryBandwidth,
    computeSeconds, memorySeconds, seconds,
    bound: computeSeconds >= memorySeconds ? 'compute' : 'memory',
    flopsPerSecond: seconds > 0 ? flops / seconds : 0,
  };
}

/** Options of `attentionRoofline`: the compute unit and which kernel's bytes. */
export interface AttentionRooflineOptions extends RooflineOptions {
  /** 'flash' (default): Q, K, V read once, O written once; 'standard': S and P materialised in HBM. */
  kernel?: 'flash' | 'standard';
}

/**
 * Time lower bound of an attention call (from `attentionCost`) on a device. The FLOPs are the counted
 * (mask-aware, tile-visited) ones; bytes are the chosen kernel's minimum HBM traffic.
 */
export function attentionRoofline(cost: AttentionCost, device: string | DeviceProfile, opts: AttentionRooflineOptions = {}): RooflineResult & { kernel: 'flash' | 'standard' } {
  checkOptionKeys(opts ?? {}, optionNames<AttentionRooflineOptions>({ unit: true, kernel: true }), 'attentionRoofline options');
  const kernel = opts.kernel ?? 'flash';
  if (kernel !== 'flash' && kernel !== 'standard') throw new ValueError(`kernel must be 'flash' or 'standard', got ${String(kernel)}`, 'kernel');
  const r = roofline({ matmulFlops: cost.flops.matmul, vectorFlops: cost.flops.softmax, bytes: cost.bytes[kernel].total, dtype: cost.shape.dtype }, device, { unit: opts.unit });
  return { ...r, kernel };
}
