/**
 * From a benchmark's JSON to a `measured` device profile, and measured kernel times against the
 * model's predictions.
 *
 * Schema `vlm-attention-bench/1` (all rates in base units: FLOP/s, bytes/s; times in ms):
 * ```json
 * {
 *   "schema": "vlm-attention-bench/1",
 *   "device": "NVIDIA H200 via Dawn/Vulkan",      // display name (required)
 *   "name": "h200-webgpu-run1",                    // profile key (default: derived from device)
 *   "api": "webgpu",                               // optional
 *   "base": "h200",                                // optional built-in profile for memory size, on-chip memory
 *   "date": "2026-11-29",                          // optional
 *   "ceilings": {                                  // what the benchmark measured (required)
 *     "f32": { "vector": 65.5e12 },
 *     "f16": { "vector": 66e12, "tensor": 550e12 },
 *     "bandwidth": 4.15e12,
 *     "sources": { "f16.tensor": "subgroup-matrix f16→f32, registers" }   // optional notes per figure
 *   },
 *   "results": [                                   // optional measured kernel times
 *     { "name": "vitL14-336", "ms": 0.81, "unit": "tensor",
 *       "shape": { "batch": 8, "seqLenQ": 577, "numHeads": 16, "headDim": 64, "dtype": "f16" } }
 *   ]
 * }
 * ```
 * `shape` takes the fields of `AttentionShape` that JSON can carry (batch, seqLenQ, seqLenK,
 * numHeads, numKvHeads, headDim, headDimV, dtype, causal, window, softcap). Unknown keys anywhere →
 * ValueError naming the key.
 */
import { DTypeError, ValueError } from '../errors.js';
import { slidingWindow } from '../masks/mask.js';
import { isDType } from '../tensor/dtype.js';
import { type AttentionShape, type TilingSpec, attentionCost } from './attention-cost.js';
import { type DeviceProfile, type DtypePeaks, type Figure, DEVICE_PROFILES, checkProfile, deviceProfile } from './devices.js';
import { type RooflineResult, attentionRoofline } from './roofline.js';
import { checkKeys, dim, oneOf, positive } from './validate.js';

/** The schema id a benchmark JSON carries in `schema` (the format above). */
export const BENCH_SCHEMA = 'vlm-attention-bench/1';

/** A JSON-friendly attention shape (the benchmark and config-file form). */
export interface JsonAttentionShape {
  /** Default 1. */
  batch?: number;
  seqLenQ: number;
  /** Default seqLenQ. */
  seqLenK?: number;
  numHeads: number;
  /** Default numHeads (MHA). */
  numKvHeads?: number;
  headDim: number;
  /** Default headDim. */
  headDimV?: number;
  /** 'f32', 'f16' or 'bf16'; default 'f16'. */
  dtype?: string;
  /** Bottom-right causal mask. Default false. */
  causal?: boolean;
  /**
   * Sliding window: query i sees keys from i − window on (bottom-right aligned), up to i with causal,
   * to the last key without.
   */
  window?: number;
  /** > 0 adds the softcap FLOPs. */
  softcap?: number;
}

export const JSON_SHAPE_KEYS = ['batch', 'seqLenQ', 'seqLenK', 'numHeads', 'numKvHeads', 'headDim', 'headDimV', 'dtype', 'causal', 'window', 'softcap'] as const;

/** Validates a JSON shape (unknown keys → ValueError naming `path.key`) into an AttentionShape. */
export function shapeFromJson(j: unknown, path = 'shape'): AttentionShape {
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new ValueError(`${path} must be an object`, path);
  checkKeys(j, JSON_SHAPE_KEYS, path);
  const s = j as JsonAttentionShape;
  let dtype: AttentionShape['dtype'];
  if (s.dtype !== undefined) {
    if (!isDType(s.dtype)) throw new DTypeError(`${path}.dtype must be f32, f16 or bf16, got ${JSON.stringify(s.dtype)}`, `${path}.dtype`);
    dtype = s.dtype;
  }
  if (s.causal !== undefined && typeof s.causal !== 'boolean') throw new ValueError(`${path}.causal must be true or false`, `${path}.causal`);
  const mask = s.window !== undefined ? slidingWindow(dim(s.window, 'window', { min: 0, path }), s.causal ? 0 : -1) : null;
  return {
    batch: s.batch, seqLenQ: s.seqLenQ, seqLenK: s.seqLenK, numHeads: s.numHeads, numKvHeads: s.numKvHeads,
    headDim: s.headDim, headDimV: s.headDimV, dtype, causal: s.causal, mask, softcap: s.softcap,
  };
}

/** One measured kernel time of a benchmark JSON. */
export interface BenchResult {
  /** Row label, echoed in PredictionRow.name. */
  name: string;
  /** Measured time of one call, milliseconds. */
  ms: number;
  shape: JsonAttentionShape;
  /** Unit the kernel ran on, which picks the peak; absent: tensor when the profile has one for the dtype, else vector. */
  unit?: 'tensor' | 'vector';
  /** Which kernel's minimum bytes the prediction uses; default 'flash'. */
  kernel?: 'flash' | 'standard';
  /** Free-form label (e.g. the kernel variant); not read by the model. */
  variant?: string;
}

/** A benchmark's measured ceilings and kernel times (schema `vlm-attention-bench/1`, above); unknown keys are rejected. */
export interface BenchmarkJson {
  /** Must be BENCH_SCHEMA. */
  schema: typeof BENCH_SCHEMA;
  /** Display name of the measured device (required). */
  device: string;
  /** Profile key; default: `device` in kebab case + `-measured`. */
  name?: string;
  /** How the device was reached, e.g. `webgpu`; default the base profile's, else `unknown`. */
  api?: string;
  /**
   * A built-in profile for what the benchmark does not measure: memory size, on-chip memory, L2 and kind,
   * their labels kept. Without it those are 1-byte `derived` placeholders and kind is 'gpu'.
   */
  base?: string;
  /** When it was measured, e.g. `2026-11-29`; shown in the sources and the display name. */
  date?: string;
  /** Measured ceilings: FLOP/s per input dtype and unit, bandwidth in bytes/s. */
  ceilings: {
    f32?: { tensor?: number; vector?: number };
    f16?: { tensor?: number; vector?: number };
    bf16?: { tensor?: number; vector?: number };
    /** Main-memory bandwidth, bytes/s (required). */
    bandwidth: number;
    /** Notes appended to a figure's source, keyed `f16.tensor`, `f32.vector`, `bandwidth`, …. */
    sources?: Record<string, string>;
  };
  /** Measured kernel times for `comparePredictions`. */
  results?: BenchResult[];
}

function parse(json: string | object): BenchmarkJson {
  let j: unknown = json;
  if (typeof json === 'string') {
    try { j = JSON.parse(json); } catch (e) { throw new ValueError(`benchmark JSON does not parse: ${(e as Error).message}`, 'benchmark'); }
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new ValueError('benchmark must be a JSON object', 'benchmark');
  checkKeys(j, ['schema', 'device', 'name', 'api', 'base', 'date', 'ceilings', 'results'], '');
  const b = j as BenchmarkJson;
  if (b.schema !== BENCH_SCHEMA) throw new ValueError(`schema must be '${BENCH_SCHEMA}', got ${JSON.stringify(b.schema)}`, 'schema');
  if (typeof b.device !== 'string' || !b.device) throw new ValueError('device must be a non-empty string (the display name)', 'device');
  if (!b.ceilings || typeof b.ceilings !== 'object') throw new ValueError('ceilings is required: { f32: { vector }, bandwidth, … }', 'ceilings');
  checkKeys(b.ceilings, ['f32', 'f16', 'bf16', 'bandwidth', 'sources'], 'ceilings');
  positive(b.ceilings.bandwidth, 'ceilings.bandwidth');
  for (const dt of ['f32', 'f16', 'bf16'] as const) {
    const c = b.ceilings[dt];
    if (c === undefined) continue;
    if (!c || typeof c !== 'object') throw new ValueError(`ceilings.${dt} must be { tensor?, vector? }`, `ceilings.${dt}`);
    checkKeys(c, ['tensor', 'vector'], `ceilings.${dt}`);
    if (c.tensor !== undefined) positive(c.tensor, `ceilings.${dt}.tensor`);
    if (c.vector !== undefined) positive(c.vector, `ceilings.${dt}.vector`);
  }
  if (b.base !== undefined) deviceProfile(b.base);
  if (b.results !== undefined) {
    if (!Array.isArray(b.results)) throw new ValueError('results must be an array', 'results');
    b.results.forEach((r, i) => {
      const p = `results[${i}]`;
      if (!r || typeof r !== 'object') throw new ValueError(`${p} must be an object`, p);
      checkKeys(r, ['name', 'ms', 'shape', 'unit', 'kernel', 'variant'], p);
      if (typeof r.name !== 'string') throw new ValueError(`${p}.name must be a string`, `${p}.name`);
      positive(r.ms, `${p}.ms`);
      if (r.unit !== undefined) oneOf(r.unit, ['tensor', 'vector'] as const, `${p}.unit`);
      if (r.kernel !== undefined) oneOf(r.kernel, ['flash', 'standard'] as const, `${p}.kernel`);
      shapeFromJson(r.shape, `${p}.shape`);
    });
  }
  return b;
}

/**
 * A `measured` device profile from a benchmark's JSON (schema above). Memory size and on-chip memory
 * come from `base` (their datasheet labels kept) or are marked as not measured.
 */
export function profileFromBenchmark(json: string | object): DeviceProfile {
  const b = parse(json);
  const date = b.date ? ` on ${b.date}` : '';
  const src = (key: string) => `measured by benchmark${date} (${b.device}${b.api ? `, ${b.api}` : ''})${b.ceilings.sources?.[key] ? `: ${b.ceilings.sources[key]}` : ''}`;
  const fig = (value: number, key: string): Figure => ({ value, label: 'measured', source: src(key) });
  const peaks: Partial<Record<'f32' | 'f16' | 'bf16', DtypePeaks>> = {};
  for (const dt of ['f32', 'f16', 'bf16'] as const) {
    const c = b.ceilings[dt];
    if (!c) continue;
    peaks[dt] = {
      ...(c.tensor !== undefined ? { tensor: fig(c.tensor, `${dt}.tensor`) } : {}),
      ...(c.vector !== undefined ? { vector: fig(c.vector, `${dt}.vector`) } : {}),
    };
  }
  const base = b.base ? DEVICE_PROFILES[deviceProfile(b.base).name] : undefined;
  const unknown = (what: string): Figure => ({ value: 1, label: 'derived', source: `${what} not measured and no base profile given (placeholder 1 byte)` });
  const name = b.name ?? `${b.device.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}-measured`;
  return checkProfile({
    name, displayName: `${b.device} (measured${date})`, kind: base?.kind ?? 'gpu', api: b.api ?? base?.api ?? 'unknown',
    peaks,
    memoryBandwidth: fig(b.ceilings.bandwidth, 'bandwidth'),
    memoryBytes: base?.memoryBytes ?? unknown('memory size'),
    onChipBytes: base?.onChipBytes ?? unknown('on-chip memory'),
    ...(base?.l2Bytes ? { l2Bytes: base.l2Bytes } : {}),
  });
}

/** One benchmark row against the model: measured and predicted times in milliseconds. */
export interface PredictionRow {
  /** The BenchResult's name. */
  name: string;
  measuredMs: number;
  /** The roofline lower bound, or the leave-one-out estimate (see `calibration`). */
  predictedMs: number;
  /** measured / predicted: ≥ 1 when the prediction is a true lower bound. */
  ratio: number;
  /** max(ratio, 1/ratio) ≤ 2. */
  within2x: boolean;
  /** The ceiling roofline's bound, also under leave-one-out. */
  bound: 'compute' | 'memory';
  /** Counted FLOPs per byte of the row's kernel (FLOP/B). */
  intensity: number;
  /** Counted FLOPs / measured time. */
  achievedFlopsPerSecond: number;
  /** Minimum flash bytes / measured time. */
  achievedBytesPerSecond: number;
  /**
   * Where the compute rate behind the prediction came from: 'ceiling' (the profile's peak: a lower
   * bound), or 'leave-one-out' (the median rate the same kernel unit sustained on the other shapes).
   */
  calibration: 'ceiling' | 'leave-one-out';
  /** With leave-one-out: the shapes whose sustained rates were used, and that rate (FLOP/s). */
  calibratedFrom?: string[];
  /** With leave-one-out: the median matrix FLOP/s of calibratedFrom. */
  calibratedFlopsPerSecond?: number;
  /** The ceiling roofline on the profile's peaks, whichever calibration. */
  roofline: RooflineResult;
}

/** Options of `comparePredictions`. */
export interface CompareOptions {
  /** Tiles for the FLOP count; default { tileQ: 64, tileK: 64 }, not 'cpu'. */
  tiling?: TilingSpec;
  /**
   * 'ceiling' (default): predictions are roofline lower bounds on the profile's peaks. 'leave-one-out':
   * each compute-bound shape is predicted from the median rate (matrix FLOPs per measured second) that
   * the same unit and dtype sustained on the *other* compute-bound shapes of the file (rows of the same
   * shape, such as a paged variant, are left out too), which tests the model's FLOP counting, masks
   * and bound classification across shapes without the kernel's distance from the peak. Memory-bound
   * shapes, and shapes without such peers, keep the ceiling bound.
   */
  calibrate?: 'ceiling' | 'leave-one-out';
}

const median = (xs: number[]) => {
  const v = [...xs].sort((x, y) => x - y);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

/**
 * Predicted times against a benchmark's measured times, shape by shape. `profile` defaults to
 * `profileFromBenchmark(json)`; pass a datasheet profile to compare against the vendor figures. See
 * CompareOptions for the two kinds of prediction.
 */
export function comparePredictions(json: string | object, profile?: string | DeviceProfile, opts: CompareOptions = {}): PredictionRow[] {
  const b = parse(json);
  const p = profile ? deviceProfile(profile) : profileFromBenchmark(b);
  const mode = oneOf(opts.calibrate ?? 'ceiling', ['ceiling', 'leave-one-out'] as const, 'calibrate');
  const base = (b.results ?? []).map((r) => {
    const cost = attentionCost(shapeFromJson(r.shape), { tiling: opts.tiling ?? { tileQ: 64, tileK: 64 } });
    const roof = attentionRoofline(cost, p, { unit: r.unit, kernel: r.kernel });
    return { r, cost, roof, key: JSON.stringify(r.shape), rate: cost.flops.matmul / (r.ms / 1e3) };
  });
  return base.map(({ r, cost, roof, key }) => {
    let predictedMs = roof.seconds * 1e3;
    let calibration: PredictionRow['calibration'] = 'ceiling';
    let from: typeof base = [], rate = 0;
    if (mode === 'leave-one-out' && roof.bound === 'compute') {
      from = base.filter((o) => o.key !== key && o.roof.bound === 'compute' && o.roof.unit === roof.unit && o.roof.dtype === roof.dtype);
      if (from.length) {
        calibration = 'leave-one-out';
        rate = median(from.map((o) => o.rate));
        predictedMs = Math.max(cost.flops.matmul / rate, roof.memorySeconds) * 1e3;
      }
    }
    const ratio = r.ms / predictedMs;
    return {
      name: r.name, measuredMs: r.ms, predictedMs, ratio, within2x: Math.max(ratio, 1 / ratio) <= 2,
      bound: roof.bound, intensity: roof.intensity,
      achievedFlopsPerSecond: cost.flops.total / (r.ms / 1e3), achievedBytesPerSecond: cost.bytes.flash.total / (r.ms / 1e3),
      calibration,
      ...(calibration === 'leave-one-out' ? { calibratedFrom: from.map((o) => o.r.name), calibratedFlopsPerSecond: rate } : {}),
      roofline: roof,
    };
  });
}

/**
 * The benchmark shapes of the CPU issue (`npm run bench:cpu`, batch 1) and the GPU issue
 * (`npm run bench:gpu`). 8k-d128-causal's head count is not given there; 16 heads are assumed.
 */
export const BENCHMARK_SHAPES: Readonly<Record<'cpu' | 'gpu', readonly { name: string; shape: JsonAttentionShape }[]>> = Object.freeze({
  cpu: [
    { name: 'vitL14-336', shape: { batch: 1, seqLenQ: 577, numHeads: 16, headDim: 64 } },
    { name: 'siglip-384', shape: { batch: 1, seqLenQ: 729, numHeads: 16, headDim: 72 } },
    { name: 'qwen2vl-1024px', shape: { batch: 1, seqLenQ: 5329, numHeads: 16, headDim: 80 } },
    { name: 'prefill-2k-gqa', shape: { batch: 1, seqLenQ: 2048, numHeads: 32, numKvHeads: 8, headDim: 128, causal: true } },
    { name: 'decode-kv4k', shape: { batch: 1, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128 } },
    { name: 'arrcoc-xattn', shape: { batch: 1, seqLenQ: 32, seqLenK: 196, numHeads: 8, headDim: 64 } },
  ],
  gpu: [
    { name: 'vitL14-336', shape: { batch: 8, seqLenQ: 577, numHeads: 16, headDim: 64 } },
    { name: 'siglip-384', shape: { batch: 8, seqLenQ: 729, numHeads: 16, headDim: 72 } },
    { name: 'qwen2vl-1024px', shape: { batch: 1, seqLenQ: 5329, numHeads: 16, headDim: 80 } },
    { name: 'prefill-4k-gqa', shape: { batch: 1, seqLenQ: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, causal: true } },
    { name: 'decode-kv4k', shape: { batch: 16, seqLenQ: 1, seqLenK: 4096, numHeads: 32, numKvHeads: 8, headDim: 128 } },
    { name: '8k-d64', shape: { batch: 1, seqLenQ: 8192, numHeads: 16, headDim: 64 } },
    { name: '8k-d128-causal', shape: { batch: 1, seqLenQ: 8192, numHeads: 16, headDim: 128, causal: true } },
  ],
});

/** The lower bound of one BENCHMARK_SHAPES entry on a device. */
export interface ShapePrediction {
  /** The shape's name in BENCHMARK_SHAPES. */
  name: string;
  /** The shape, with the dtype used filled in. */
  shape: JsonAttentionShape;
  roofline: RooflineResult;
  /** Nominal FLOPs (benchmark convention) over the lower bound: the FLOP/s a benchmark would report at the bound. */
  nominalFlopsPerSecond: number;
}

/** Roofline lower bounds of the benchmark shapes on a device (dtype and unit as given). */
export function predictBenchmarkShapes(set: 'cpu' | 'gpu', device: string | DeviceProfile, opts: { dtype?: 'f32' | 'f16' | 'bf16'; unit?: 'auto' | 'tensor' | 'vector'; kernel?: 'flash' | 'standard'; tiling?: TilingSpec } = {}): ShapePrediction[] {
  const shapes = BENCHMARK_SHAPES[oneOf(set, ['cpu', 'gpu'] as const, 'set')];
  const p = deviceProfile(device);
  return shapes.map(({ name, shape }) => {
    const s = { ...shape, dtype: opts.dtype ?? (set === 'cpu' ? 'f32' : 'f16') };
    const cost = attentionCost(shapeFromJson(s), { tiling: opts.tiling ?? (set === 'cpu' ? 'cpu' : { tileQ: 64, tileK: 64 }) });
    const roof = attentionRoofline(cost, p, { unit: opts.unit, kernel: opts.kernel });
    return { name, shape: s, roofline: roof, nominalFlopsPerSecond: cost.flops.nominal / roof.seconds };
  });
}
