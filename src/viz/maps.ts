/**
 * Attention maps from a capture: text tokens → image patch grid (`tokenMap`) and one patch → text
 * tokens (`patchMap`), as raw attention, attention rollout or attention flow; rendering to PNG.
 *
 * Raw:      map[p] = mean over chosen tokens t, layers l, heads h of A_l[h, t, imageStart + p]
 * Rollout:  map[p] = mean over t of Ã[t, imageStart + p], Ã = A_{l_k} ⋯ A_{l_1} over the chosen layer
 *           stack l_1 < … < l_k (default all layers; the viewer's "layer l" means layers 0 … l),
 *           each A_l = normalise(0.5·W̄_l + 0.5·I) with W̄_l the mean over the chosen heads.
 * Flow:     as rollout, with Ã replaced by the row-normalised max-flow values (see rollout.ts).
 *
 * Rollout and flow need every row of each layer's attention: a capture that stores all query rows,
 * or `layerMeans` (then only the all-heads mean is available), or for the default stack and all heads
 * a precomputed `rollout`. Other requests raise UnsupportedError saying what is missing.
 *
 * A map is a row-major grid [gridRows, gridCols] of float32, with its argmax (ties → lowest index).
 */
import { ShapeError, UnsupportedError, ValueError } from '../errors.js';
import type { Capture } from './capture-file.js';
import { applyColormap, type ColormapName, COLORMAP_NAMES } from './colormap.js';
import { overlayHeatmap } from './overlay.js';
import { decodePng, encodePng, type RgbaImage } from './png.js';
import { attentionFlow, type FlowOptions, rolloutColumns, rolloutRows } from './rollout.js';

/** How a map aggregates attention: raw (mean of stored P), rollout, or flow (see the module comment). */
export type MapMode = 'raw' | 'rollout' | 'flow';
/** The valid MapMode values (what `mode` is checked against). */
export const MAP_MODES: readonly MapMode[] = ['raw', 'rollout', 'flow'];

/** Which attention to aggregate. */
export interface MapSelection {
  /** Layers (indices 0 … numLayers−1) to average (raw) or to roll out, in order (rollout/flow). Default all. */
  layers?: readonly number[];
  /** Heads to average. Default all. */
  heads?: readonly number[];
  /** Default 'raw'. */
  mode?: MapMode;
  /** Residual weight α of rollout/flow (default 0.5). */
  residual?: number;
  /**
   * Work limit for rollout (rows · layers · n² multiply-adds) and flow (edge visits, see `attentionFlow`): a
   * ValueError naming maxWork past it. Default: none for rollout, attentionFlow's for flow.
   */
  maxWork?: number;
}

/** A map over the patch grid. */
export interface GridMap {
  /** The mode it was computed with. */
  mode: MapMode;
  /** Patch-grid rows (the capture's grid). */
  rows: number;
  /** Patch-grid columns. */
  cols: number;
  /** [rows·cols], row-major. */
  values: Float32Array;
  /** Index, row and column of the largest value (lowest index on ties). */
  argmax: { index: number; row: number; col: number };
  /** Smallest value. */
  min: number;
  /** Largest value (at argmax). */
  max: number;
  /** Sum of the values: the attention mass the tokens put on the image (raw/rollout/flow units). */
  total: number;
  /** The sequence positions the map is for. */
  tokens: number[];
  /** Layer indices used (capture indices, not layerIds), in order. */
  layers: number[];
  /** Head indices used. */
  heads: number[];
}

/** A map over text tokens for one patch. */
export interface TokenValues {
  /** The mode it was computed with. */
  mode: MapMode;
  /** The patch: index in the grid (row-major), its row and column, and its sequence position. */
  patch: { index: number; row: number; col: number; position: number };
  /** Sequence positions (the capture's text positions). */
  positions: number[];
  /** Token strings of `positions`. */
  tokens: string[];
  /** Attention each of `positions` pays to the patch, [positions.length]. */
  values: Float32Array;
  /** Position (not index) of the token that attends most to the patch. */
  argmax: number;
  /** Layer indices used (capture indices, not layerIds), in order. */
  layers: number[];
  /** Head indices used. */
  heads: number[];
}

interface Resolved { layers: number[]; heads: number[]; mode: MapMode }

function resolve(c: Capture, sel: MapSelection): Resolved {
  const { numLayers: L, numHeads: H } = c.info;
  const mode = sel.mode ?? 'raw';
  if (!MAP_MODES.includes(mode)) throw new ValueError(`mode must be one of ${MAP_MODES.join(', ')}, got ${JSON.stringify(mode)}`, 'mode');
  const list = (v: readonly number[] | undefined, n: number, argument: string, dimension: string): number[] => {
    if (v === undefined) return Array.from({ length: n }, (_, i) => i);
    if (!Array.isArray(v) || v.length === 0) throw new ShapeError(`${argument} must be a non-empty list of indices`, argument, dimension);
    const seen = new Set<number>();
    for (const x of v) {
      if (!Number.isInteger(x) || x < 0 || x >= n) throw new ShapeError(`${argument} contains ${x}; the capture has ${n} ${dimension === 'numLayers' ? 'layers' : 'heads'} (0..${n - 1})`, argument, dimension);
      if (seen.has(x)) throw new ShapeError(`${argument} contains ${x} twice`, argument, dimension);
      seen.add(x);
    }
    return [...v];
  };
  const layers = list(sel.layers, L, 'layers', 'numLayers');
  if (mode !== 'raw') for (let i = 1; i < layers.length; i++) if (layers[i]! <= layers[i - 1]!) throw new ShapeError(`layers for ${mode} must be increasing (a stack rolled out bottom to top), got [${layers.join(', ')}]`, 'layers', 'numLayers');
  return { layers, heads: list(sel.heads, H, 'heads', 'numHeads'), mode };
}

/** The stored query row of sequence position `position`; a ShapeError naming `argument` when it is not stored. */
export function rowOf(c: Capture, position: number, argument: string): number {
  const i = c.info.queryPositions.indexOf(position);
  if (i < 0) {
    const tok = Number.isInteger(position) && position >= 0 && position < c.info.seqLen ? ` (${JSON.stringify(c.info.tokens[position])})` : '';
    throw new ShapeError(`${argument}: position ${position}${tok} is not a stored query row; stored rows: ${summarise(c.info.queryPositions)}`, argument, 'numQueries');
  }
  return i;
}

function summarise(v: readonly number[]): string {
  return v.length > 12 ? `${v.slice(0, 12).join(', ')}, … (${v.length})` : v.join(', ');
}

function checkPositions(c: Capture, tokens: readonly number[], argument: string): number[] {
  if (!Array.isArray(tokens) || tokens.length === 0) throw new ShapeError(`${argument} must be a non-empty list of sequence positions`, argument, 'seqLen');
  for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.info.seqLen) throw new ShapeError(`${argument} contains ${t}; the sequence has ${c.info.seqLen} positions (0..${c.info.seqLen - 1})`, argument, 'seqLen');
  return [...tokens];
}

/**
 * Head-mean attention matrices (n×n) of the chosen layers, for rollout and flow. Throws
 * UnsupportedError when the capture does not hold enough to build them.
 */
export function layerMatrices(c: Capture, layers: readonly number[], heads: readonly number[]): Float64Array[] {
  // One cached entry per capture: the viewer asks for many tokens with the same layers and heads.
  const key = `${layers.join(',')}|${heads.join(',')}`;
  const hit = matrixCache.get(c);
  if (hit && hit.key === key) return hit.mats;
  const mats = buildLayerMatrices(c, layers, heads);
  matrixCache.set(c, { key, mats });
  return mats;
}

const matrixCache = new WeakMap<Capture, { key: string; mats: Float64Array[] }>();

function buildLayerMatrices(c: Capture, layers: readonly number[], heads: readonly number[]): Float64Array[] {
  const { seqLen: N, numHeads: H, queryPositions } = c.info;
  const Q = queryPositions.length;
  const allHeads = heads.length === H;
  if (Q === N) {
    return layers.map((l) => {
      const a = c.attention[l]!;
      const m = new Float64Array(N * N);
      for (const h of heads) {
        const base = h * Q * N;
        for (let r = 0; r < Q; r++) {
          const o = queryPositions[r]! * N;
          for (let j = 0; j < N; j++) m[o + j] += a[base + r * N + j]!;
        }
      }
      for (let i = 0; i < m.length; i++) m[i] = m[i]! / heads.length;
      return m;
    });
  }
  if (c.layerMeans) {
    if (!allHeads) throw new UnsupportedError(`rollout over a subset of heads needs every query row of every head; this capture stores ${Q} of ${N} rows and only all-head layer means`, 'all heads');
    return layers.map((l) => Float64Array.from(c.layerMeans![l]!));
  }
  throw new UnsupportedError(`rollout/flow need every query row of each layer; this capture stores ${Q} of ${N} rows and no layer_mean.* tensors`, 'raw mode, or a capture with all rows or layer means');
}

/** Whether the capture's precomputed rollout answers this selection (default stack, all heads). */
function usePrecomputed(c: Capture, r: Resolved, sel: MapSelection): boolean {
  const use = !!c.rollout && r.mode === 'rollout' && r.layers.length === c.info.numLayers && r.heads.length === c.info.numHeads
    && !(c.info.queryPositions.length === c.info.seqLen || c.layerMeans);
  // The stored rollout was made with its exporter's residual, which this capture cannot recompute with another.
  if (use && sel.residual !== undefined) throw new UnsupportedError('residual with a capture that holds only a precomputed rollout', 'no residual (the stored rollout as exported), or a capture with every row or layer means');
  return use;
}

function argmaxOf(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

function gridMap(c: Capture, r: Resolved, tokens: number[], values: Float32Array): GridMap {
  const { rows, cols } = c.info.grid;
  const idx = argmaxOf(values);
  let min = Infinity, max = -Infinity, total = 0;
  for (const v of values) { if (v < min) min = v; if (v > max) max = v; total += v; }
  return { mode: r.mode, rows, cols, values, argmax: { index: idx, row: Math.floor(idx / cols), col: idx % cols }, min, max, total, tokens, layers: r.layers, heads: r.heads };
}

/**
 * Attention from the chosen text tokens (sequence positions) to the image patch grid, averaged over
 * tokens, heads and layers (raw) or rolled out through the layer stack (rollout/flow).
 * @returns a [gridRows, gridCols] map with its argmax.
 */
export function tokenMap(c: Capture, tokens: readonly number[], sel: MapSelection = {}): GridMap {
  const r = resolve(c, sel);
  const pos = checkPositions(c, tokens, 'tokens');
  const { seqLen: N, imageSpan: [s0, s1], queryPositions } = c.info;
  const P = s1 - s0;
  const out = new Float64Array(P);
  if (r.mode === 'raw') {
    const Q = queryPositions.length;
    const rowsIdx = pos.map((t) => rowOf(c, t, 'tokens'));
    for (const l of r.layers) {
      const a = c.attention[l]!;
      for (const h of r.heads) for (const q of rowsIdx) {
        const o = (h * Q + q) * N + s0;
        for (let p = 0; p < P; p++) out[p] += a[o + p]!;
      }
    }
    const k = r.layers.length * r.heads.length * rowsIdx.length;
    return gridMap(c, r, pos, Float32Array.from(out, (v) => v / k));
  }
  // A token listed twice counts twice in the mean but is rolled out once.
  const uniq = [...new Set(pos)];
  let rowsOut: Float64Array;
  if (usePrecomputed(c, r, sel)) {
    const rowsIdx = uniq.map((t) => rowOf(c, t, 'tokens'));
    rowsOut = new Float64Array(uniq.length * N);
    rowsIdx.forEach((q, i) => rowsOut.set(c.rollout!.subarray(q * N, (q + 1) * N), i * N));
  } else {
    const mats = layerMatrices(c, r.layers, r.heads);
    rowsOut = r.mode === 'rollout'
      ? rolloutRows(mats, N, uniq, { residual: sel.residual, maxWork: sel.maxWork })
      : attentionFlow(mats, N, uniq, { residual: sel.residual, maxWork: sel.maxWork } as FlowOptions);
  }
  const at = new Map(uniq.map((t, i) => [t, i]));
  for (const t of pos) {
    const i = at.get(t)!;
    for (let p = 0; p < P; p++) out[p] += rowsOut[i * N + s0 + p]!;
  }
  return gridMap(c, r, pos, Float32Array.from(out, (v) => v / pos.length));
}

/**
 * Which text tokens attend to one image patch: for each of the capture's text positions, the
 * attention it pays to `patch` (index in the grid, row-major), averaged over heads and layers (raw)
 * or read from the rollout/flow matrix.
 */
export function patchMap(c: Capture, patch: number, sel: MapSelection = {}): TokenValues {
  const r = resolve(c, sel);
  const { seqLen: N, imageSpan: [s0, s1], textPositions, queryPositions, grid } = c.info;
  const P = s1 - s0;
  if (!Number.isInteger(patch) || patch < 0 || patch >= P) throw new ShapeError(`patch ${patch} is outside the ${grid.rows}×${grid.cols} grid (0..${P - 1})`, 'patch', 'grid');
  if (textPositions.length === 0) throw new ShapeError('the capture has no text positions to show', 'textPositions', 'seqLen');
  const key = s0 + patch;
  const values = new Float32Array(textPositions.length);
  if (r.mode === 'raw') {
    const Q = queryPositions.length;
    textPositions.forEach((t, i) => {
      const q = rowOf(c, t, 'textPositions');
      let s = 0;
      for (const l of r.layers) for (const h of r.heads) s += c.attention[l]![(h * Q + q) * N + key]!;
      values[i] = s / (r.layers.length * r.heads.length);
    });
  } else if (usePrecomputed(c, r, sel)) {
    textPositions.forEach((t, i) => { values[i] = c.rollout![rowOf(c, t, 'textPositions') * N + key]!; });
  } else {
    const mats = layerMatrices(c, r.layers, r.heads);
    if (r.mode === 'rollout') {
      const col = rolloutColumns(mats, N, [key], { residual: sel.residual });
      textPositions.forEach((t, i) => { values[i] = col[t]!; });
    } else {
      const rows = attentionFlow(mats, N, textPositions, { residual: sel.residual, maxWork: sel.maxWork });
      textPositions.forEach((_, i) => { values[i] = rows[i * N + key]!; });
    }
  }
  return {
    mode: r.mode, patch: { index: patch, row: Math.floor(patch / grid.cols), col: patch % grid.cols, position: key },
    positions: [...textPositions], tokens: textPositions.map((t) => c.info.tokens[t]!), values,
    argmax: textPositions[argmaxOf(values)]!, layers: r.layers, heads: r.heads,
  };
}

/** Options of `renderMap`. */
export interface RenderOptions {
  /** Default 'inferno'. */
  colormap?: ColormapName;
  /**
   * Heatmap opacity over the image (default 0.75). With `weightByValue` (the default) the map is blended twice,
   * a uniform wash at 0.4·alpha and then a value-weighted pass at alpha, so the hottest pixels end at
   * 1 − (1 − 0.4·alpha)(1 − alpha): 0.825 for 0.75, 0.6 for 0.5; uniform `alpha` with `weightByValue: false`.
   */
  alpha?: number;
  /** Blend weight grows with the value, so cold areas mostly show the image (default true; false = uniform alpha). */
  weightByValue?: boolean;
  /** Pixels per patch when the capture has no image (default 24). */
  cellPixels?: number;
}

/**
 * The map drawn over the capture's image (bilinear upsampling, colormap, alpha blend), or as a
 * plain colormapped grid when there is no image. Returns RGBA.
 */
export function renderMap(c: Capture, map: GridMap, opts: RenderOptions = {}): RgbaImage {
  const cm = opts.colormap ?? 'inferno';
  if (!COLORMAP_NAMES.includes(cm)) throw new ValueError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}, got ${JSON.stringify(cm)}`, 'colormap');
  // Checked with or without an image (without one it has nothing to blend, but a bad value is still a mistake).
  if (opts.alpha !== undefined && !(opts.alpha >= 0 && opts.alpha <= 1)) throw new ValueError(`alpha must be in [0, 1], got ${opts.alpha}`, 'alpha');
  if (c.imagePng) return overlayMap(decodePng(c.imagePng, 'image.png'), map.values, map.cols, map.rows, { ...opts, colormap: cm });
  const cell = opts.cellPixels ?? 24;
  if (!Number.isInteger(cell) || cell < 1 || cell > 256) throw new ValueError(`cellPixels must be an integer in 1..256, got ${cell}`, 'cellPixels');
  const w = map.cols * cell, h = map.rows * cell;
  const big = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) big[y * w + x] = map.values[Math.floor(y / cell) * map.cols + Math.floor(x / cell)]!;
  return applyColormap(big, w, h, { colormap: cm });
}

/**
 * Blends a grid map over an image: bilinear upsampling, colormap, and (default) two passes: a light
 * uniform wash (cold regions dim towards the colormap's dark end, so the hot region stands out),
 * then a value-weighted pass (hot regions take the colour, cold ones keep the image). With
 * `weightByValue: false`, one uniform blend at `alpha`. Used by `renderMap` and by the viewer page.
 */
export function overlayMap(image: RgbaImage, values: ArrayLike<number>, cols: number, rows: number, opts: RenderOptions = {}): RgbaImage {
  const cm = opts.colormap ?? 'inferno';
  const alpha = opts.alpha ?? 0.75;
  if (!(alpha >= 0 && alpha <= 1)) throw new ValueError(`alpha must be in [0, 1], got ${alpha}`, 'alpha');
  if (opts.weightByValue === false) return overlayHeatmap(image, values, cols, rows, { colormap: cm, alpha });
  const washed = overlayHeatmap(image, values, cols, rows, { colormap: cm, alpha: alpha * 0.4 });
  return overlayHeatmap(washed, values, cols, rows, { colormap: cm, alpha, weightByValue: true, gamma: 0.6 });
}

/** `renderMap` encoded as PNG bytes. */
export function renderMapPng(c: Capture, map: GridMap, opts: RenderOptions = {}): Uint8Array {
  return encodePng(renderMap(c, map, opts));
}
