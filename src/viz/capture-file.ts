/**
 * The capture file: everything the maps, the head statistics and the viewer need about one
 * (image, prompt) forward pass, in one versioned file. Browser-safe (bytes in, bytes out).
 *
 * Format `vlm-attention-capture`, version 1. A single safetensors file (extension
 * `.vlmcap.safetensors` by convention) whose `__metadata__` holds
 *   format  = "vlm-attention-capture"
 *   version = "1"
 *   capture = JSON of `CaptureInfo` (tokens, patch grid, image span, which query rows are stored...)
 * and whose tensors are
 *   attention.<l>    f32|f16|bf16 [numHeads, numQueries, seqLen]  P rows of layer l for `queryPositions`
 *   layer_mean.<l>   f32|f16|bf16 [seqLen, seqLen]   optional: head-mean P of layer l (all rows), for rollout
 *   rollout          f32 [numQueries, seqLen]         optional: precomputed rollout rows (last layer, all heads)
 *   head_importance  f32 [numLayers, numHeads]        optional: a per-head score (method in info.headImportance)
 *   image.png        u8  [byteLength]                 optional: the image, PNG-encoded
 *   mask.<name>      u8  [gridRows, gridCols]         optional: object masks on the patch grid (0/1)
 * for l = 0 … numLayers−1. Sequence positions [imageSpan[0], imageSpan[1]) are the image patches in
 * raster order (row-major over the grid), so imageSpan[1] − imageSpan[0] = gridRows·gridCols.
 *
 * When `queryPositions` covers every position (numQueries = seqLen, the usual
 * `output_attentions=True` export), rollout needs nothing else. A capture that keeps only some query
 * rows (e.g. just the text tokens, to stay small) needs `layer_mean.*` or a precomputed `rollout` for
 * the rollout view. The directory form (a `capture.json` manifest next to .npy/.safetensors files
 * exported from PyTorch) is read by `readCapture` in `vlm-attention/node`; see docs/interpretability.md.
 */
import { FormatError, ShapeError, ValueError } from '../errors.js';
import { type NdArray, ndarrayToFloat32, ndarrayFromValues, shapeSize } from '../io/npy.js';
import { parseSafetensors, writeSafetensors } from '../io/safetensors.js';
import { f32ToBf16, f32ToF16 } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { decodePng } from './png.js';

/** The `__metadata__.format` value that marks a capture file. */
export const CAPTURE_FORMAT = 'vlm-attention-capture';
/** The capture format version this library writes and reads (stored as the string "1"). */
export const CAPTURE_VERSION = 1;

/** The JSON part of a capture (stored as `__metadata__.capture`). */
export interface CaptureInfo {
  /** Always CAPTURE_FORMAT. */
  format: typeof CAPTURE_FORMAT;
  /** Always CAPTURE_VERSION. */
  version: typeof CAPTURE_VERSION;
  /** Number of sequence positions (keys), seqLen. */
  seqLen: number;
  /** Layers stored (not necessarily the model's layer count: see layerIds). */
  numLayers: number;
  /** Attention heads per layer. */
  numHeads: number;
  /** The image-patch grid. */
  grid: { rows: number; cols: number };
  /** Half-open range of sequence positions holding the image patches, raster order. */
  imageSpan: [number, number];
  /** One string per sequence position (image positions may be e.g. "<img 3,4>"). */
  tokens: string[];
  /** Sequence positions of the stored query rows, strictly increasing. */
  queryPositions: number[];
  /** Query positions offered as "text tokens" in maps and the viewer (default: stored rows outside the image span). */
  textPositions: number[];
  /** Image size in pixels, when an image is present. */
  image?: { width: number; height: number };
  /** The model's layer number of each stored layer (default 0 … numLayers−1). */
  layerIds: number[];
  /** How head_importance was computed, when present. */
  headImportance?: { method: string; description?: string };
  /** Names of the stored masks. */
  masks: string[];
  /** Free-form provenance: model name, prompt, tool version... */
  meta: Record<string, string>;
}

/** A capture in memory. Attention arrays are f32, row-major. */
export interface Capture {
  /** Everything but the arrays: tokens, grid, image span, stored rows, provenance. */
  info: CaptureInfo;
  /** Per layer, [numHeads, numQueries, seqLen]. */
  attention: Float32Array[];
  /** Per layer, [seqLen, seqLen] head-mean attention (optional). */
  layerMeans?: Float32Array[];
  /** [numQueries, seqLen] precomputed rollout (optional). */
  rollout?: Float32Array;
  /** [numLayers, numHeads] (optional). */
  headImportance?: Float32Array;
  /** The image as PNG bytes (optional). */
  imagePng?: Uint8Array;
  /** Patch-grid masks, [gridRows·gridCols] of 0/1 (optional). */
  masks?: Map<string, Uint8Array>;
}

/**
 * Anything that holds numbers with a shape: an NdArray, a Tensor, or a flat Float32Array whose shape follows from
 * the capture (its length must match). `attention[0]` sets the shapes, so it must be an NdArray or a Tensor; the
 * later layers and the other fields may be flat.
 */
export type ArrayInput = NdArray | Tensor | Float32Array;

/** Options of `makeCapture`: the pieces of a capture, in whatever array form they come. */
export interface CaptureInit {
  /** One string per sequence position; its length sets seqLen. */
  tokens: readonly string[];
  /** The image-patch grid, as {rows, cols} or [rows, cols]; rows·cols must equal the image span's length. */
  grid: { rows: number; cols: number } | readonly [number, number];
  /** Half-open range [start, end) of the image-patch positions, raster order. */
  imageSpan: readonly [number, number];
  /**
   * Attention per layer: [numHeads, numQueries, seqLen], or [batch, numHeads, numQueries, seqLen] as
   * saved from transformers' `output_attentions=True` (then `batchIndex` picks the example).
   */
  attention: readonly ArrayInput[];
  /** Which example to keep when `attention`/`layerMeans` carry a leading batch dimension (default 0). */
  batchIndex?: number;
  /** Query rows stored (default 0 … seqLen−1, which needs numQueries = seqLen). */
  queryPositions?: readonly number[];
  /** Positions offered as text tokens; each must be a stored query row (default: stored rows outside the image span). */
  textPositions?: readonly number[];
  /** Head-mean attention per layer, [seqLen, seqLen] each, one per attention layer; lets a capture of few rows do rollout. */
  layerMeans?: readonly ArrayInput[];
  /** Precomputed rollout rows, [numQueries, seqLen]. */
  rollout?: ArrayInput;
  /** A score per head, [numLayers, numHeads], finite. */
  headImportance?: ArrayInput;
  /** How headImportance was computed (default 'unspecified'). */
  headImportanceMethod?: string;
  /** The image as PNG bytes, decoded once to check it (a corrupt one is a FormatError); CaptureInfo.image is read from its header. */
  imagePng?: Uint8Array;
  /** Object masks on the patch grid, [gridRows, gridCols] each (values > 0.5 count as in); names of 1–64 characters of A–Z a–z 0–9 _ -. */
  masks?: Record<string, ArrayInput | Uint8Array> | Map<string, ArrayInput | Uint8Array>;
  /** The model's layer number of each stored layer, strictly increasing (default 0 … numLayers−1). */
  layerIds?: readonly number[];
  /** Free-form provenance (model, prompt, …). */
  meta?: Record<string, string>;
}

function shapeOf(a: ArrayInput): number[] | null {
  if (a instanceof Float32Array) return null;
  return [...a.shape];
}

function valuesOf(a: ArrayInput): Float32Array {
  if (a instanceof Float32Array) return a;
  if (a instanceof Tensor) return a.toFloat32();
  return ndarrayToFloat32(a);
}

/**
 * Reads `a` as exactly `dims` (names for errors), dropping a leading batch dimension when
 * `allowBatch` (selecting `batchIndex`). A flat Float32Array must have the right length.
 */
function take(a: ArrayInput, dims: [string, number][], argument: string, allowBatch = false, batchIndex = 0): Float32Array {
  const want = dims.map((d) => d[1]);
  const n = shapeSize(want);
  let shape = shapeOf(a);
  let vals = valuesOf(a);
  if (shape === null) {
    if (vals.length !== n) throw new ShapeError(`${argument} has ${vals.length} values, expected ${n} = [${dims.map(([k, v]) => `${k} ${v}`).join(', ')}]`, argument);
    return vals;
  }
  const original = shape;
  if (allowBatch && shape.length === dims.length + 1) {
    const B = shape[0]!;
    if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= B) throw new ShapeError(`batchIndex ${batchIndex} is out of range for ${argument} with batch ${B}`, 'batchIndex', 'batch');
    const per = shapeSize(shape.slice(1));
    vals = vals.subarray(batchIndex * per, (batchIndex + 1) * per);
    shape = shape.slice(1);
  }
  if (shape.length !== dims.length) {
    throw new ShapeError(`${argument} must be ${dims.length}-D [${dims.map((d) => d[0]).join(', ')}]${allowBatch ? ' (or with a leading batch dimension)' : ''}, got [${shape.join(', ')}]`, argument);
  }
  for (let i = 0; i < dims.length; i++) {
    if (shape[i] !== dims[i]![1]) {
      const batch = original.length !== shape.length ? ` (after the batch dimension of [${original.join(', ')}])` : '';
      throw new ShapeError(`${argument}: ${dims[i]![0]} is ${shape[i]}, expected ${dims[i]![1]}; shape [${shape.join(', ')}]${batch} vs [${dims.map(([k, v]) => `${k} ${v}`).join(', ')}]`, argument, dims[i]![0]);
    }
  }
  return vals;
}

function checkProbabilities(v: Float32Array, argument: string, rowLen: number): void {
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!(x >= 0) || !Number.isFinite(x)) {
      throw new ValueError(`${argument} holds ${x} at flat index ${i} (row ${Math.floor(i / rowLen)}, key ${i % rowLen}); attention probabilities must be finite and ≥ 0`, argument);
    }
  }
}

/**
 * Width and height from a PNG's IHDR chunk; FormatError when `png` is not a PNG or its chunks do not run whole to
 * IEND (a truncated file, caught here rather than when the image is first drawn).
 */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || sig.some((b, i) => png[i] !== b) || String.fromCharCode(...png.subarray(12, 16)) !== 'IHDR') {
    throw new FormatError('image is not a PNG (bad signature or missing IHDR)', 'image.png');
  }
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const width = dv.getUint32(16), height = dv.getUint32(20);
  if (width === 0 || height === 0) throw new FormatError(`PNG image has zero area (${width}×${height})`, 'image.png');
  let at = 8, end = false;
  while (!end) {
    if (at + 12 > png.length) throw new FormatError(`PNG is truncated: a chunk header runs past its ${png.length} bytes at byte ${at}`, 'image.png');
    const len = dv.getUint32(at);
    end = String.fromCharCode(...png.subarray(at + 4, at + 8)) === 'IEND';
    at += 12 + len;
    if (at > png.length) throw new FormatError(`PNG is truncated: a chunk of ${len} bytes runs past the file's ${png.length} bytes`, 'image.png');
  }
  return { width, height };
}

/**
 * The image's size after decoding it whole: chunk CRCs, the zlib stream and its checksum, filters and palette.
 * pngSize alone (chunk lengths) let a capture with a corrupt IDAT through, which no viewer could then draw (and
 * an upload of one replaced the good capture being viewed). FormatError naming image.png.
 */
function checkPng(png: Uint8Array): { width: number; height: number } {
  const size = pngSize(png);
  decodePng(png, 'image.png');
  return size;
}

function intList(v: readonly number[], argument: string, lo: number, hi: number, strictlyIncreasing: boolean, dimension: string): number[] {
  if (!Array.isArray(v)) throw new ShapeError(`${argument} must be an array of integers`, argument);
  let prev = -Infinity;
  for (const x of v) {
    if (!Number.isInteger(x) || x < lo || x > hi) throw new ShapeError(`${argument} contains ${x}; expected integers in ${lo}..${hi}`, argument, dimension);
    if (strictlyIncreasing && x <= prev) throw new ShapeError(`${argument} must be strictly increasing (… ${prev}, ${x} …)`, argument, dimension);
    prev = x;
  }
  return [...v];
}

/**
 * Builds and validates a capture from arrays (Tensors, NdArrays from parseNpy/parseSafetensors, or
 * flat Float32Arrays). Throws ShapeError/ValueError naming the argument and the dimension.
 */
export function makeCapture(init: CaptureInit): Capture {
  if (!Array.isArray(init.tokens) || init.tokens.some((t) => typeof t !== 'string')) throw new ShapeError('tokens must be an array of strings', 'tokens');
  const N = init.tokens.length;
  if (N < 1) throw new ShapeError('tokens is empty; a capture needs at least one sequence position', 'tokens', 'seqLen');
  const g = Array.isArray(init.grid) ? { rows: (init.grid as readonly number[])[0]!, cols: (init.grid as readonly number[])[1]! } : (init.grid as { rows: number; cols: number });
  if (!g || !Number.isInteger(g.rows) || !Number.isInteger(g.cols) || g.rows < 1 || g.cols < 1) throw new ShapeError(`grid must be positive integers {rows, cols}, got ${JSON.stringify(init.grid)}`, 'grid');
  const span = init.imageSpan;
  if (!Array.isArray(span) || span.length !== 2 || !span.every((x) => Number.isInteger(x)) || span[0] < 0 || span[1] > N || span[0] > span[1]) {
    throw new ShapeError(`imageSpan must be [start, end) inside 0..${N}, got ${JSON.stringify(span)}`, 'imageSpan', 'seqLen');
  }
  if (span[1] - span[0] !== g.rows * g.cols) {
    throw new ShapeError(`imageSpan [${span[0]}, ${span[1]}) holds ${span[1] - span[0]} positions, but the grid ${g.rows}×${g.cols} has ${g.rows * g.cols} patches`, 'imageSpan', 'grid');
  }
  if (!Array.isArray(init.attention) || init.attention.length < 1) throw new ShapeError('attention must hold at least one layer', 'attention', 'numLayers');
  const L = init.attention.length;
  const first = shapeOf(init.attention[0]!);
  if (!first) throw new ShapeError('attention[0] must carry a shape (NdArray or Tensor), not a flat Float32Array', 'attention');
  const core = first.length === 4 ? first.slice(1) : first;
  if (core.length !== 3) throw new ShapeError(`attention[0] must be [numHeads, numQueries, seqLen] or [batch, numHeads, numQueries, seqLen], got [${first.join(', ')}]`, 'attention[0]');
  const [H, Q, Nk] = core as [number, number, number];
  if (Nk !== N) throw new ShapeError(`attention[0] has seqLen ${Nk} keys, but tokens has ${N} entries`, 'attention[0]', 'seqLen');
  if (H < 1) throw new ShapeError('attention[0] has no heads', 'attention[0]', 'numHeads');
  let qp: number[];
  if (init.queryPositions) qp = intList(init.queryPositions, 'queryPositions', 0, N - 1, true, 'seqLen');
  else {
    if (Q !== N) throw new ShapeError(`attention has ${Q} query rows but ${N} tokens; pass queryPositions to say which positions the rows are`, 'queryPositions', 'numQueries');
    qp = Array.from({ length: N }, (_, i) => i);
  }
  if (qp.length !== Q) throw new ShapeError(`queryPositions has ${qp.length} entries, attention has ${Q} query rows`, 'queryPositions', 'numQueries');
  const dims: [string, number][] = [['numHeads', H], ['numQueries', Q], ['seqLen', N]];
  const attention = init.attention.map((a, l) => {
    const v = take(a, dims, `attention[${l}]`, true, init.batchIndex ?? 0);
    checkProbabilities(v, `attention[${l}]`, N);
    return v;
  });
  const qset = new Set(qp);
  const textPositions = init.textPositions
    ? intList(init.textPositions, 'textPositions', 0, N - 1, false, 'seqLen')
    : qp.filter((p) => p < span[0] || p >= span[1]);
  for (const t of textPositions) if (!qset.has(t)) throw new ShapeError(`textPositions contains ${t}, which is not a stored query row (queryPositions)`, 'textPositions', 'numQueries');
  const layerMeans = init.layerMeans?.map((a, l) => {
    const v = take(a, [['seqLen', N], ['seqLen', N]], `layerMeans[${l}]`, true, init.batchIndex ?? 0);
    checkProbabilities(v, `layerMeans[${l}]`, N);
    return v;
  });
  if (layerMeans && layerMeans.length !== L) throw new ShapeError(`layerMeans has ${layerMeans.length} layers, attention has ${L}`, 'layerMeans', 'numLayers');
  const rollout = init.rollout ? take(init.rollout, [['numQueries', Q], ['seqLen', N]], 'rollout') : undefined;
  if (rollout) checkProbabilities(rollout, 'rollout', N);
  const headImportance = init.headImportance ? take(init.headImportance, [['numLayers', L], ['numHeads', H]], 'headImportance') : undefined;
  if (headImportance) for (let i = 0; i < headImportance.length; i++) if (!Number.isFinite(headImportance[i]!)) throw new ValueError(`headImportance holds ${headImportance[i]} at layer ${Math.floor(i / H)}, head ${i % H}`, 'headImportance');
  const image = init.imagePng ? checkPng(init.imagePng) : undefined;
  const masks = new Map<string, Uint8Array>();
  const maskEntries = init.masks instanceof Map ? [...init.masks] : Object.entries(init.masks ?? {});
  for (const [name, m] of maskEntries) {
    if (!/^[A-Za-z0-9_\-]{1,64}$/.test(name)) throw new ValueError(`mask name ${JSON.stringify(name)} must be 1–64 characters of A–Z a–z 0–9 _ -`, 'masks');
    const v = m instanceof Uint8Array ? m : take(m, [['gridRows', g.rows], ['gridCols', g.cols]], `masks.${name}`);
    if (v.length !== g.rows * g.cols) throw new ShapeError(`masks.${name} has ${v.length} cells, the grid has ${g.rows * g.cols}`, `masks.${name}`, 'grid');
    masks.set(name, Uint8Array.from(v, (x) => (x > 0.5 ? 1 : 0)));
  }
  const layerIds = init.layerIds ? intList(init.layerIds, 'layerIds', 0, Number.MAX_SAFE_INTEGER, true, 'numLayers') : Array.from({ length: L }, (_, l) => l);
  if (layerIds.length !== L) throw new ShapeError(`layerIds has ${layerIds.length} entries, attention has ${L} layers`, 'layerIds', 'numLayers');
  const info: CaptureInfo = {
    format: CAPTURE_FORMAT, version: CAPTURE_VERSION, seqLen: N, numLayers: L, numHeads: H,
    grid: { rows: g.rows, cols: g.cols }, imageSpan: [span[0], span[1]], tokens: [...init.tokens], queryPositions: qp, textPositions,
    ...(image ? { image } : {}), layerIds,
    ...(headImportance ? { headImportance: { method: init.headImportanceMethod ?? 'unspecified' } } : {}),
    masks: [...masks.keys()], meta: { ...(init.meta ?? {}) },
  };
  return {
    info, attention,
    ...(layerMeans ? { layerMeans } : {}), ...(rollout ? { rollout } : {}), ...(headImportance ? { headImportance } : {}),
    ...(init.imagePng ? { imagePng: init.imagePng } : {}), ...(masks.size ? { masks } : {}),
  };
}

/** Storage precision of the attention arrays in a written capture. */
export type CaptureDType = 'f32' | 'f16' | 'bf16';

/** The ±Infinity bit pattern (sign masked off) of each 16-bit storage type. */
const INF_BITS = { f16: 0x7c00, bf16: 0x7f80 } as const;

/**
 * Index of the first finite value of `v` that `dtype` cannot hold (it would round to ±Infinity: past 65504 in f16),
 * or -1. decodeCapture refuses non-finite attention, so such a value would make a file that cannot be opened.
 */
function firstOverflow(v: Float32Array, dtype: 'f16' | 'bf16'): number {
  const enc = dtype === 'f16' ? f32ToF16 : f32ToBf16, inf = INF_BITS[dtype];
  for (let i = 0; i < v.length; i++) if (Number.isFinite(v[i]!) && (enc(v[i]!) & 0x7fff) === inf) return i;
  return -1;
}

/** Whether every attention value of `c` (layer means included) stays finite when stored as `dtype`. */
export function captureFitsDType(c: Capture, dtype: CaptureDType): boolean {
  if (dtype === 'f32') return true;
  return [...c.attention, ...(c.layerMeans ?? [])].every((a) => firstOverflow(a, dtype) < 0);
}

function encodeF(name: string, v: Float32Array, shape: number[], dtype: CaptureDType): NdArray {
  if (dtype === 'f32') return { dtype, shape, data: v };
  const enc = dtype === 'f16' ? f32ToF16 : f32ToBf16, inf = INF_BITS[dtype];
  const u = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) {
    u[i] = enc(v[i]!);
    if ((u[i]! & 0x7fff) === inf && Number.isFinite(v[i]!)) {
      throw new ValueError(`${name}[${i}] = ${v[i]} does not fit in ${dtype} (it would be stored as Infinity, which decodeCapture refuses); write the capture in f32`, name);
    }
  }
  return { dtype, shape, data: u };
}

type TensorPlan = [name: string, dtype: 'f32' | 'f16' | 'bf16' | 'u8', shape: number[], data: () => NdArray];

/** The tensors of a capture file, in file order, each encoded only when asked (encodedCaptureBytes needs none). */
function captureTensors(c: Capture, dtype: CaptureDType): TensorPlan[] {
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16') throw new ValueError(`dtype must be 'f32', 'f16' or 'bf16', got ${JSON.stringify(dtype)}`, 'dtype');
  const { info } = c;
  const H = info.numHeads, Q = info.queryPositions.length, N = info.seqLen;
  const out: TensorPlan[] = [];
  c.attention.forEach((a, l) => out.push([`attention.${l}`, dtype, [H, Q, N], () => encodeF(`attention.${l}`, a, [H, Q, N], dtype)]));
  c.layerMeans?.forEach((a, l) => out.push([`layer_mean.${l}`, dtype, [N, N], () => encodeF(`layer_mean.${l}`, a, [N, N], dtype)]));
  if (c.rollout) { const r = c.rollout; out.push(['rollout', 'f32', [Q, N], () => ({ dtype: 'f32', shape: [Q, N], data: r })]); }
  if (c.headImportance) { const h = c.headImportance; out.push(['head_importance', 'f32', [info.numLayers, H], () => ({ dtype: 'f32', shape: [info.numLayers, H], data: h })]); }
  if (c.imagePng) { const p = c.imagePng; out.push(['image.png', 'u8', [p.length], () => ({ dtype: 'u8', shape: [p.length], data: p })]); }
  for (const [name, m] of c.masks ?? []) out.push([`mask.${name}`, 'u8', [info.grid.rows, info.grid.cols], () => ({ dtype: 'u8', shape: [info.grid.rows, info.grid.cols], data: m })]);
  return out;
}

function captureMetadata(c: Capture): Record<string, string> {
  return { format: CAPTURE_FORMAT, version: String(CAPTURE_VERSION), capture: JSON.stringify(c.info) };
}

/**
 * Serialises a capture as a version-1 capture file (safetensors). `dtype` sets the attention precision; a value it
 * cannot hold (above 65504 in f16) is a ValueError naming the array, not a file that decodeCapture refuses.
 */
export function encodeCapture(c: Capture, opts: { dtype?: CaptureDType } = {}): Uint8Array {
  const tensors = captureTensors(c, opts.dtype ?? 'f32').map(([name, , , data]) => [name, data()] as [string, NdArray]);
  return writeSafetensors(tensors, captureMetadata(c));
}

/**
 * The byte length encodeCapture(c, opts) will have, computed from the shapes alone (nothing is encoded): lets a
 * caller decide whether a capture fits somewhere (a self-contained page) before building hundreds of megabytes.
 */
export function encodedCaptureBytes(c: Capture, opts: { dtype?: CaptureDType } = {}): number {
  const size = { f32: 4, f16: 2, bf16: 2, u8: 1 } as const;
  const st = { f32: 'F32', f16: 'F16', bf16: 'BF16', u8: 'U8' } as const;
  const header: Record<string, unknown> = { __metadata__: captureMetadata(c) };
  let pos = 0;
  for (const [name, dtype, shape] of captureTensors(c, opts.dtype ?? 'f32')) {
    const n = shape.reduce((a, b) => a * b, 1) * size[dtype];
    header[name] = { dtype: st[dtype], shape, data_offsets: [pos, pos + n] };
    pos += n;
  }
  return 8 + Math.ceil(new TextEncoder().encode(JSON.stringify(header)).length / 8) * 8 + pos;
}

/**
 * Parses and validates a capture file. Corrupt files raise FormatError; a file that parses but does
 * not describe a consistent capture raises ShapeError/ValueError naming the part at fault.
 */
export function decodeCapture(bytes: Uint8Array, opts: { path?: string } = {}): Capture {
  const { path } = opts;
  const where = path ? ` (${path})` : '';
  const st = parseSafetensors(bytes, { path });
  const md = st.metadata;
  if (md.format !== CAPTURE_FORMAT) throw new FormatError(`not a capture file${where}: __metadata__.format is ${JSON.stringify(md.format ?? null)}, expected "${CAPTURE_FORMAT}"`, path);
  if (md.version !== String(CAPTURE_VERSION)) throw new FormatError(`capture version ${JSON.stringify(md.version ?? null)} is not supported${where} (this reader knows version ${CAPTURE_VERSION})`, path);
  let raw: Partial<CaptureInfo>;
  try {
    raw = JSON.parse(md.capture ?? '');
  } catch (e) {
    throw new FormatError(`__metadata__.capture is not valid JSON${where}: ${(e as Error).message}`, path);
  }
  if (!raw || typeof raw !== 'object') throw new FormatError(`__metadata__.capture is not an object${where}`, path);
  const L = raw.numLayers;
  if (!Number.isInteger(L) || (L as number) < 1 || (L as number) > 10_000) throw new FormatError(`capture numLayers ${L} is not a positive integer${where}`, path);
  const get = (name: string) => st.tensors.get(name);
  const attention: NdArray[] = [];
  for (let l = 0; l < (L as number); l++) {
    const a = get(`attention.${l}`);
    if (!a) throw new FormatError(`capture${where} declares ${L} layers but has no tensor attention.${l}`, path);
    attention.push(a);
  }
  const extra = [...st.tensors.keys()].filter((k) => /^attention\.\d+$/.test(k) && Number(k.slice(10)) >= (L as number));
  if (extra.length) throw new FormatError(`capture${where} declares ${L} layers but also holds ${extra.join(', ')}`, path);
  let layerMeans: NdArray[] | undefined;
  if (get('layer_mean.0')) {
    layerMeans = [];
    for (let l = 0; l < (L as number); l++) {
      const a = get(`layer_mean.${l}`);
      if (!a) throw new FormatError(`capture${where} has layer_mean.0 but no layer_mean.${l}`, path);
      layerMeans.push(a);
    }
  }
  const masks = new Map<string, NdArray>();
  for (const [k, v] of st.tensors) if (k.startsWith('mask.')) masks.set(k.slice(5), v);
  const img = get('image.png');
  if (img && (img.dtype !== 'u8' || img.shape.length !== 1)) throw new FormatError(`image.png must be a 1-D U8 tensor of PNG bytes, got ${img.dtype} [${img.shape.join(', ')}]${where}`, path);
  const c = makeCapture({
    tokens: raw.tokens as string[], grid: raw.grid as { rows: number; cols: number }, imageSpan: raw.imageSpan as [number, number],
    attention, queryPositions: raw.queryPositions, textPositions: raw.textPositions, layerMeans,
    rollout: get('rollout'), headImportance: get('head_importance'), headImportanceMethod: raw.headImportance?.method,
    imagePng: img ? (img.data as Uint8Array) : undefined, masks, layerIds: raw.layerIds,
    meta: raw.meta && typeof raw.meta === 'object' ? Object.fromEntries(Object.entries(raw.meta).map(([k, v]) => [k, String(v)])) : {},
  });
  // JSON.stringify in the messages: a string "4" against 4 would otherwise read as "says 4, has 4".
  if (raw.numHeads !== undefined && raw.numHeads !== c.info.numHeads) throw new ShapeError(`capture info says numHeads ${JSON.stringify(raw.numHeads)}, attention.0 has ${c.info.numHeads}${where}`, 'attention.0', 'numHeads');
  if (raw.seqLen !== undefined && raw.seqLen !== c.info.seqLen) throw new ShapeError(`capture info says seqLen ${JSON.stringify(raw.seqLen)}, tokens has ${c.info.seqLen}${where}`, 'tokens', 'seqLen');
  if (raw.headImportance?.description) c.info.headImportance = { ...c.info.headImportance!, description: String(raw.headImportance.description) };
  if (raw.image && c.info.image && (raw.image.width !== c.info.image.width || raw.image.height !== c.info.image.height)) {
    throw new ShapeError(`capture info says the image is ${raw.image.width}×${raw.image.height}, image.png is ${c.info.image.width}×${c.info.image.height}${where}`, 'image.png');
  }
  return c;
}

/** A capture with `headImportance` replaced (e.g. by a head-discovery ranking). */
export function withHeadImportance(c: Capture, scores: Float32Array | ArrayLike<number>, method: string, description?: string): Capture {
  const { numLayers: L, numHeads: H } = c.info;
  const v = take(ndarrayFromValues(Float32Array.from(scores), [L, H], 'f32'), [['numLayers', L], ['numHeads', H]], 'scores');
  // The values decodeCapture accepts, checked here so that what is written reads back.
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new ValueError(`scores holds ${v[i]} at layer ${Math.floor(i / H)}, head ${i % H}; head importance must be finite`, 'scores');
  return { ...c, headImportance: v, info: { ...c.info, headImportance: { method, ...(description ? { description } : {}) } } };
}
