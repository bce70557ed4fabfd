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
import { UnsupportedError, ValueError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import type { AttentionCost } from './attention-cost.js';
import { type DeviceProfile, type Figure, deviceProfile } from './devices.js';

export type ComputeUnit = 'tensor' | 'vector';

export interface RooflineInput {
  /** FLOPs for matrix units (QKᵀ, PV, projections). */
  matmulFlops: number;
  /** FLOPs that always run on vector ALUs in f32 (softmax, norms); default 0. */
  vectorFlops?: number;
  bytes: number;
  dtype: DType;
}

export interface RooflineOptions {
  /** 'auto' (default): tensor units when the profile has them for the dtype, else vector ALUs. */
  unit?: 'auto' | ComputeUnit;
}

export interface RooflineResult {
  device: string;
  dtype: DType;
  unit: ComputeUnit;
  flops: number;
  bytes: number;
  /** FLOPs per byte. */
  intensity: number;
  /** Intensity at which compute and memory times are equal (peak / bandwidth). */
  ridgeIntensity: number;
  peak: Figure;
  vectorPeak: Figure;
  bandwidth: Figure;
  computeSeconds: number;
  memorySeconds: number;
  /** Lower bound: max(computeSeconds, memorySeconds). */
  seconds: number;
  bound: 'compute' | 'memory';
  /** flops / seconds: the rate this bound implies. */
  flopsPerSecond: number;
}

function pickPeak(p: DeviceProfile, dtype: DType, unit: RooflineOptions['unit']): { fig: Figure; unit: ComputeUnit } {
  const pk = p.peaks[dtype];
  if (!pk || (!pk.tensor && !pk.vector)) {
    const have = Object.keys(p.peaks).join(', ');
    throw new UnsupportedError(`device '${p.name}' has no ${dtype} peak`, have || undefined);
  }
  const want = unit ?? 'auto';
  if (want === 'tensor') {
    if (!pk.tensor) throw new UnsupportedError(`device '${p.name}' has no ${dtype} tensor-unit peak`, `unit: 'vector'`);
    return { fig: pk.tensor, unit: 'tensor' };
  }
  if (want === 'vector') {
    if (!pk.vector) throw new UnsupportedError(`device '${p.name}' has no ${dtype} vector peak`, `unit: 'tensor'`);
    return { fig: pk.vector, unit: 'vector' };
  }
  if (want !== 'auto') throw new ValueError(`unit must be 'auto', 'tensor' or 'vector', got ${String(unit)}`, 'unit');
  return pk.tensor ? { fig: pk.tensor, unit: 'tensor' } : { fig: pk.vector!, unit: 'vector' };
}

/** The roofline of any FLOP/byte count on a device (by name or profile). */
export function roofline(input: RooflineInput, device: string | DeviceProfile, opts: RooflineOptions = {}): RooflineResult {
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

export interface AttentionRooflineOptions extends RooflineOptions {
  /** 'flash' (default): Q, K, V read once, O written once; 'standard': S and P materialised in HBM. */
  kernel?: 'flash' | 'standard';
}

/**
 * Time lower bound of an attention call (from `attentionCost`) on a device. The FLOPs are the counted
 * (mask-aware, tile-visited) ones; bytes are the chosen kernel's minimum HBM traffic.
 */
export function attentionRoofline(cost: AttentionCost, device: string | DeviceProfile, opts: AttentionRooflineOptions = {}): RooflineResult & { kernel: 'flash' | 'standard' } {
  const kernel = opts.kernel ?? 'flash';
  if (kernel !== 'flash' && kernel !== 'standard') throw new ValueError(`kernel must be 'flash' or 'standard', got ${String(kernel)}`, 'kernel');
  const r = roofline({ matmulFlops: cost.flops.matmul, vectorFlops: cost.flops.softmax, bytes: cost.bytes[kernel].total, dtype: cost.shape.dtype }, device, opts);
  return { ...r, kernel };
}
