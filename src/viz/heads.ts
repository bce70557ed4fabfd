/**
 * Head discovery over a set of (image, query) examples: per-head statistics and a ranked list of
 * the heads that matter, following Sparse Attention Vectors (Mitra et al., arXiv 2412.00142,
 * `chancharikmitra/SAVs`; spec relevance.md §2.7), plus attention-based statistics for localisation.
 *
 * Per example e and head (l, h), with T the example's query tokens and P the image patches:
 *   a_e[p]   = mean over t ∈ T of A_l[h, t, imageStart + p]          (attention to the image)
 *   act_e    = Σ_p a_e[p]                      activation: the head's attention mass on the image
 *   q_e      = a_e / act_e                     its distribution over patches
 *   ent_e    = −Σ_p q_e[p]·ln q_e[p] / ln |P|  entropy, normalised to [0, 1] (1 = uniform)
 *   loc_e    = Σ_{p ∈ mask} q_e[p]             localisation: share of the image attention inside the mask
 *   point_e  = [argmax_p q_e[p] ∈ mask]        pointing-game hit
 * Statistics over examples: mean activation, variance of the activation across examples (unbiased,
 * n − 1; 0 for one example), mean entropy, mean localisation and pointing accuracy (over examples
 * with a mask).
 *
 * SAV (when every example carries `activations` and a `label`): x_{e,l,h} is the head's output at the
 * last token (the per-head slice of the o_proj input). Class means μ_{c,l,h} are taken over the
 * examples; a head's score is the number of examples it classifies correctly by
 * argmax_c cos(x_{e,l,h}, μ_{c,l,h}); the top k = 20 heads are kept and vote at inference
 * (`savClassify`).
 *
 * The ranking's method is 'sav' when labels and activations are given, else 'localisation' when any
 * example has a mask, else 'activation' (mean image-attention mass). Ties break by localisation,
 * then lower entropy, then (layer, head).
 */
import { ShapeError, ValueError } from '../errors.js';
import type { NdArray } from '../io/npy.js';
import { ndarrayToFloat32 } from '../io/npy.js';
import { Tensor } from '../tensor/tensor.js';
import type { Capture } from './capture-file.js';
import { applyColormap, type ColormapName } from './colormap.js';
import { drawText } from './overlay.js';
import { encodePng, type RgbaImage } from './png.js';

/** One (image, query) example for discoverHeads. */
export interface HeadExample {
  /** The example's capture; every example must have the same numLayers and numHeads. */
  capture: Capture;
  /** Query token positions (default: the capture's text positions). */
  tokens?: readonly number[];
  /** Target mask on the patch grid ([gridRows·gridCols] of 0/1) or the name of a mask stored in the capture. */
  mask?: Uint8Array | readonly number[] | string;
  /** Per-head outputs at the last token, [numLayers, numHeads, headDim] (SAV features). */
  activations?: Float32Array | NdArray | Tensor;
  /** Class label (SAV). */
  label?: string;
}

/** What ranks the heads: SAV accuracy, localisation in the masks, or mean image-attention mass. */
export type HeadRankMethod = 'sav' | 'localisation' | 'activation';

/** One head's statistics over the examples (definitions in the module comment). */
export interface HeadStats {
  /** Layer index in the captures (0 … numLayers−1, not layerIds). */
  layer: number;
  /** Head index. */
  head: number;
  /** Mean over examples of the head's attention mass on the image (Σ over patches of the query tokens' mean attention). */
  meanActivation: number;
  /** Variance of that mass across examples (n − 1; 0 for one example). */
  varianceActivation: number;
  /** Mean normalised entropy of the head's image attention, in [0, 1]. */
  entropy: number;
  /** Mean share of image attention inside the mask (examples with masks), or null. */
  localisation: number | null;
  /** Pointing-game accuracy (examples with masks), or null. */
  pointing: number | null;
  /** Fraction of examples the head classifies correctly by nearest class mean (SAV), or null. */
  savAccuracy: number | null;
  /** The ranking score under `method`. */
  score: number;
  /** 1-based rank under `method`. */
  rank: number;
}

/** discoverHeads' result: per-head statistics and the ranking. */
export interface HeadDiscovery {
  /** The ranking method used. */
  method: HeadRankMethod;
  /** Layers of the captures. */
  numLayers: number;
  /** Heads per layer. */
  numHeads: number;
  /** Examples the statistics are over. */
  numExamples: number;
  /** Layer-major statistics, one per head. */
  stats: HeadStats[];
  /** The top k heads, best first. */
  top: { layer: number; head: number; score: number }[];
  /** Heads in `top`: the requested k, at most numLayers·numHeads. */
  k: number;
  /** SAV class means per label, [numLayers, numHeads, headDim] (when every example has activations and a label). */
  classMeans?: Map<string, Float32Array>;
  /** Head dim of the SAV activations (with classMeans). */
  headDim?: number;
}

/** Options of discoverHeads. */
export interface DiscoverOptions {
  /** Heads to keep (default 20, as SAVs' num_head). */
  k?: number;
  /** Force a ranking method (default: the richest the examples allow). */
  method?: HeadRankMethod;
}

function maskOf(ex: HeadExample, i: number, P: number): Uint8Array | null {
  if (ex.mask === undefined) return null;
  if (typeof ex.mask === 'string') {
    const m = ex.capture.masks?.get(ex.mask);
    if (!m) throw new ValueError(`examples[${i}].mask: the capture has no mask named "${ex.mask}" (has ${[...(ex.capture.masks?.keys() ?? [])].join(', ') || 'none'})`, `examples[${i}].mask`);
    return m;
  }
  if (ex.mask.length !== P) throw new ShapeError(`examples[${i}].mask has ${ex.mask.length} cells, the grid has ${P}`, `examples[${i}].mask`, 'grid');
  // As makeCapture stores masks: values in [0, 1], cells > 0.5 inside (a truthy test counted 0.1 in).
  const out = new Uint8Array(P);
  for (let j = 0; j < P; j++) {
    const x = Number(ex.mask[j]);
    if (!(x >= 0 && x <= 1)) throw new ValueError(`examples[${i}].mask[${j}] is ${ex.mask[j]}; mask cells must be in [0, 1] (> 0.5 counts as inside)`, `examples[${i}].mask`);
    out[j] = x > 0.5 ? 1 : 0;
  }
  return out;
}

function activationsOf(ex: HeadExample, i: number, L: number, H: number): Float32Array {
  const a = ex.activations!;
  let shape: readonly number[] | null = null;
  let v: Float32Array;
  if (a instanceof Float32Array) v = a;
  else if (a instanceof Tensor) { shape = a.shape; v = a.toFloat32(); }
  else { shape = a.shape; v = ndarrayToFloat32(a); }
  if (shape && (shape.length !== 3 || shape[0] !== L || shape[1] !== H)) {
    throw new ShapeError(`examples[${i}].activations must be [numLayers ${L}, numHeads ${H}, headDim], got [${shape.join(', ')}]`, `examples[${i}].activations`, shape.length === 3 && shape[0] !== L ? 'numLayers' : 'numHeads');
  }
  if (v.length === 0 || v.length % (L * H) !== 0) throw new ShapeError(`examples[${i}].activations has ${v.length} values, not a multiple of numLayers·numHeads = ${L * H}`, `examples[${i}].activations`, 'headDim');
  for (let j = 0; j < v.length; j++) if (!Number.isFinite(v[j]!)) throw new ValueError(`examples[${i}].activations holds ${v[j]} at flat index ${j}`, `examples[${i}].activations`);
  return v;
}

function cosine(a: Float32Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let ab = 0, aa = 0, bb = 0;
  for (let c = 0; c < d; c++) { const x = a[ao + c]!, y = b[bo + c]!; ab += x * y; aa += x * x; bb += y * y; }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** Nearest class mean by cosine for head (l, h); ties → first label in sorted order. */
function nearest(x: Float32Array, means: Map<string, Float32Array>, labels: readonly string[], o: number, d: number): string {
  let best = labels[0]!, bs = -Infinity;
  for (const c of labels) {
    const s = cosine(x, o, means.get(c)!, o, d);
    if (s > bs) { bs = s; best = c; }
  }
  return best;
}

/** Per-head statistics over examples and the top-k ranking (see the module comment for definitions). */
export function discoverHeads(examples: readonly HeadExample[], opts: DiscoverOptions = {}): HeadDiscovery {
  if (!Array.isArray(examples) || examples.length === 0) throw new ShapeError('examples must hold at least one example', 'examples', 'numExamples');
  examples.forEach((ex, i) => {
    if (!ex || typeof ex !== 'object' || !ex.capture || typeof ex.capture !== 'object' || !ex.capture.info) throw new ValueError(`examples[${i}] must be { capture, tokens?, mask?, activations? } with a capture (readCapture, makeCapture)`, `examples[${i}]`);
  });
  const L = examples[0]!.capture.info.numLayers, H = examples[0]!.capture.info.numHeads;
  const k = opts.k ?? 20;
  if (!Number.isInteger(k) || k < 1) throw new ValueError(`k must be an integer ≥ 1, got ${k}`, 'k');
  const n = examples.length;
  const act = new Float64Array(n * L * H), ent = new Float64Array(n * L * H);
  const locSum = new Float64Array(L * H), pointSum = new Float64Array(L * H);
  let numMasked = 0;
  examples.forEach((ex, i) => {
    const c = ex.capture;
    if (c.info.numLayers !== L) throw new ShapeError(`examples[${i}] has ${c.info.numLayers} layers, examples[0] has ${L}`, `examples[${i}].capture`, 'numLayers');
    if (c.info.numHeads !== H) throw new ShapeError(`examples[${i}] has ${c.info.numHeads} heads, examples[0] has ${H}`, `examples[${i}].capture`, 'numHeads');
    const { seqLen: N, imageSpan: [s0, s1], queryPositions } = c.info;
    const P = s1 - s0, Q = queryPositions.length;
    const toks: readonly number[] = ex.tokens ? [...ex.tokens] : c.info.textPositions;
    if (toks.length === 0) throw new ShapeError(`examples[${i}] has no query tokens`, `examples[${i}].tokens`, 'seqLen');
    const rows = toks.map((t) => {
      const r = queryPositions.indexOf(t);
      if (r < 0) throw new ShapeError(`examples[${i}].tokens: position ${t} is not a stored query row of the capture`, `examples[${i}].tokens`, 'numQueries');
      return r;
    });
    const mask = maskOf(ex, i, P);
    if (mask) numMasked++;
    const a = new Float64Array(P);
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
      a.fill(0);
      for (const r of rows) {
        const o = (h * Q + r) * N + s0;
        for (let p = 0; p < P; p++) a[p] += c.attention[l]![o + p]!;
      }
      let mass = 0;
      for (let p = 0; p < P; p++) { a[p] = a[p]! / rows.length; mass += a[p]!; }
      const idx = (i * L + l) * H + h;
      act[idx] = mass;
      let e = 0, inside = 0, best = 0;
      if (mass > 0) {
        for (let p = 0; p < P; p++) {
          const q = a[p]! / mass;
          if (q > 0) e -= q * Math.log(q);
          if (mask && mask[p]) inside += q;
          if (a[p]! > a[best]!) best = p;
        }
      }
      ent[idx] = P > 1 ? e / Math.log(P) : 0;
      if (mask) { locSum[l * H + h] += inside; pointSum[l * H + h] += mass > 0 && mask[best] ? 1 : 0; }
    }
  });
  // SAV.
  const haveSav = examples.every((e) => e.activations !== undefined && typeof e.label === 'string');
  if (opts.method !== undefined && !['sav', 'localisation', 'activation'].includes(opts.method)) throw new ValueError(`method must be 'sav', 'localisation' or 'activation', got ${JSON.stringify(opts.method)}`, 'method');
  if (opts.method === 'sav' && !haveSav) throw new ValueError("method 'sav' needs activations and a label on every example", 'method');
  if (opts.method === 'localisation' && numMasked === 0) throw new ValueError("method 'localisation' needs a mask on at least one example", 'method');
  const method: HeadRankMethod = opts.method ?? (haveSav ? 'sav' : numMasked > 0 ? 'localisation' : 'activation');
  let savCorrect: Float64Array | null = null;
  let classMeans: Map<string, Float32Array> | undefined;
  let headDim: number | undefined;
  if (haveSav) {
    const feats = examples.map((e, i) => activationsOf(e, i, L, H));
    const d = feats[0]!.length / (L * H);
    feats.forEach((f, i) => { if (f.length !== L * H * d) throw new ShapeError(`examples[${i}].activations has headDim ${f.length / (L * H)}, examples[0] has ${d}`, `examples[${i}].activations`, 'headDim'); });
    const labels = [...new Set(examples.map((e) => e.label!))].sort();
    classMeans = new Map(labels.map((c) => [c, new Float32Array(L * H * d)]));
    const counts = new Map(labels.map((c) => [c, 0]));
    const sums = new Map(labels.map((c) => [c, new Float64Array(L * H * d)]));
    examples.forEach((e, i) => {
      const s = sums.get(e.label!)!;
      const f = feats[i]!;
      for (let j = 0; j < f.length; j++) s[j] += f[j]!;
      counts.set(e.label!, counts.get(e.label!)! + 1);
    });
    for (const c of labels) { const m = classMeans.get(c)!, s = sums.get(c)!, cnt = counts.get(c)!; for (let j = 0; j < m.length; j++) m[j] = s[j]! / cnt; }
    savCorrect = new Float64Array(L * H);
    for (let lh = 0; lh < L * H; lh++) {
      examples.forEach((e, i) => { if (nearest(feats[i]!, classMeans!, labels, lh * d, d) === e.label) savCorrect![lh] += 1; });
    }
    headDim = d;
  }
  const stats: HeadStats[] = [];
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += act[(i * L + l) * H + h]!;
    m /= n;
    let v = 0, e = 0;
    for (let i = 0; i < n; i++) { v += (act[(i * L + l) * H + h]! - m) ** 2; e += ent[(i * L + l) * H + h]!; }
    const loc = numMasked ? locSum[l * H + h]! / numMasked : null;
    const point = numMasked ? pointSum[l * H + h]! / numMasked : null;
    const sav = savCorrect ? savCorrect[l * H + h]! / n : null;
    const score = method === 'sav' ? sav! : method === 'localisation' ? loc! : m;
    stats.push({ layer: l, head: h, meanActivation: m, varianceActivation: n > 1 ? v / (n - 1) : 0, entropy: e / n, localisation: loc, pointing: point, savAccuracy: sav, score, rank: 0 });
  }
  const order = [...stats].sort((a, b) => b.score - a.score || (b.localisation ?? 0) - (a.localisation ?? 0) || a.entropy - b.entropy || a.layer - b.layer || a.head - b.head);
  order.forEach((s, r) => { s.rank = r + 1; });
  const kk = Math.min(k, stats.length);
  return {
    method, numLayers: L, numHeads: H, numExamples: n, stats, k: kk,
    top: order.slice(0, kk).map((s) => ({ layer: s.layer, head: s.head, score: s.score })),
    ...(classMeans ? { classMeans, headDim } : {}),
  };
}

/**
 * SAV inference: each of the top-k heads predicts the nearest class mean (cosine) for `activations`
 * [numLayers, numHeads, headDim]; the majority wins (ties → the label that sorts first).
 */
export function savClassify(d: HeadDiscovery, activations: Float32Array | NdArray | Tensor): { label: string; votes: Record<string, number> } {
  if (d.method !== 'sav' || !d.classMeans || !d.headDim) throw new ValueError("savClassify needs a discovery made with method 'sav'", 'discovery');
  const x = activationsOf({ capture: null as unknown as Capture, activations }, 0, d.numLayers, d.numHeads);
  if (x.length !== d.numLayers * d.numHeads * d.headDim) throw new ShapeError(`activations has headDim ${x.length / (d.numLayers * d.numHeads)}, the discovery used ${d.headDim}`, 'activations', 'headDim');
  const labels = [...d.classMeans.keys()].sort();
  const votes: Record<string, number> = Object.fromEntries(labels.map((c) => [c, 0]));
  for (const { layer, head } of d.top) votes[nearest(x, d.classMeans, labels, (layer * d.numHeads + head) * d.headDim, d.headDim)]! += 1;
  let best = labels[0]!;
  for (const c of labels) if (votes[c]! > votes[best]!) best = c;
  return { label: best, votes };
}

/** The discovery as plain JSON (class means omitted unless `withClassMeans`). */
export function headDiscoveryJson(d: HeadDiscovery, opts: { withClassMeans?: boolean } = {}): Record<string, unknown> {
  return {
    method: d.method, numLayers: d.numLayers, numHeads: d.numHeads, numExamples: d.numExamples, k: d.k, top: d.top, stats: d.stats,
    ...(opts.withClassMeans && d.classMeans ? { headDim: d.headDim, classMeans: Object.fromEntries([...d.classMeans].map(([c, m]) => [c, Array.from(m)])) } : {}),
  };
}

/**
 * The ranking score as a [numLayers, numHeads] array (for `head_importance` and heatmaps). Float32: a score past
 * its range (a capture of huge, if finite, attention values) becomes ±Infinity here; `headScores64` keeps it.
 */
export function headScores(d: HeadDiscovery): Float32Array {
  return Float32Array.from(headScores64(d));
}

/** headScores in float64, where every score computed from a valid capture is finite (sums of f32 values cannot overflow it). */
export function headScores64(d: HeadDiscovery): Float64Array {
  const s = new Float64Array(d.numLayers * d.numHeads);
  for (const st of d.stats) s[st.layer * d.numHeads + st.head] = st.score;
  return s;
}

/**
 * A layer × head heatmap (rows = layers, top = layer 0; columns = heads) with axis labels; top-k
 * heads outlined when `top` is given.
 */
export function headHeatmap(scores: ArrayLike<number>, numLayers: number, numHeads: number, opts: { cellPixels?: number; colormap?: ColormapName; top?: readonly { layer: number; head: number }[] } = {}): RgbaImage {
  if (!Number.isInteger(numLayers) || numLayers < 1 || !Number.isInteger(numHeads) || numHeads < 1) throw new ValueError(`numLayers and numHeads must be integers ≥ 1, got ${numLayers}, ${numHeads}`, 'numLayers');
  if (scores.length !== numLayers * numHeads) throw new ShapeError(`scores has ${scores.length} values, expected numLayers·numHeads = ${numLayers * numHeads}`, 'scores', 'numHeads');
  const cell = opts.cellPixels ?? 16;
  if (!Number.isInteger(cell) || cell < 4 || cell > 128) throw new ValueError(`cellPixels must be an integer in 4..128, got ${cell}`, 'cellPixels');
  for (const t of opts.top ?? []) {
    if (!Number.isInteger(t?.layer) || t.layer < 0 || t.layer >= numLayers) throw new ShapeError(`top: layer ${t?.layer} is out of range 0..${numLayers - 1}`, 'top', 'numLayers');
    if (!Number.isInteger(t.head) || t.head < 0 || t.head >= numHeads) throw new ShapeError(`top: head ${t.head} is out of range 0..${numHeads - 1}`, 'top', 'numHeads');
  }
  const left = 6 * String(numLayers - 1).length + 10, top = 14;
  const W = left + numHeads * cell + 2, Hh = top + numLayers * cell + 2;
  // Scaled by the largest finite magnitude before the float32 grid: scores past f32's range (huge but finite
  // attention values) would otherwise become Infinity there and draw as holes. Colours are relative, so unchanged.
  let big = 0;
  for (let i = 0; i < scores.length; i++) { const v = Math.abs(scores[i]!); if (Number.isFinite(v) && v > big) big = v; }
  const scale = big > 1e30 ? 1 / big : 1;
  const grid = new Float32Array(numLayers * cell * numHeads * cell);
  for (let y = 0; y < numLayers * cell; y++) for (let x = 0; x < numHeads * cell; x++) grid[y * numHeads * cell + x] = scores[Math.floor(y / cell) * numHeads + Math.floor(x / cell)]! * scale;
  const heat = applyColormap(grid, numHeads * cell, numLayers * cell, { colormap: opts.colormap ?? 'viridis' });
  const data = new Uint8Array(W * Hh * 4).fill(255);
  for (let y = 0; y < numLayers * cell; y++) data.set(heat.data.subarray(y * numHeads * cell * 4, (y + 1) * numHeads * cell * 4), ((top + y) * W + left) * 4);
  const img: RgbaImage = { width: W, height: Hh, data };
  const black = [0, 0, 0, 255] as const;
  const every = (n: number) => Math.max(1, Math.ceil((n * 12) / Math.max(cell, 1) / 4));
  for (let l = 0; l < numLayers; l += every(numLayers)) drawText(img, String(l), 2, top + l * cell + Math.max(0, (cell - 7) / 2), { color: black });
  for (let h = 0; h < numHeads; h += Math.max(every(numHeads), Math.ceil((6 * String(numHeads).length) / cell))) drawText(img, String(h), left + h * cell + 1, 3, { color: black });
  for (const t of opts.top ?? []) {
    const x0 = left + t.head * cell, y0 = top + t.layer * cell;
    for (let i = 0; i < cell; i++) for (const [x, y] of [[x0 + i, y0], [x0 + i, y0 + cell - 1], [x0, y0 + i], [x0 + cell - 1, y0 + i]] as const) {
      const o = (y * W + x) * 4;
      data[o] = 255; data[o + 1] = 40; data[o + 2] = 40; data[o + 3] = 255;
    }
  }
  return img;
}

/** `headHeatmap` of a discovery's scores as PNG bytes, top-k heads outlined. */
export function headHeatmapPng(d: HeadDiscovery, opts: { cellPixels?: number; colormap?: ColormapName } = {}): Uint8Array {
  return encodePng(headHeatmap(headScores64(d), d.numLayers, d.numHeads, { ...opts, top: d.top }));
}
