/**
 * A synthetic capture: a procedural scene (coloured objects on a textured background, with known
 * patch masks) run through a tiny hand-built "VLM" whose attention is computed by this library's own
 * kernels and capture API (forward LSE, then `probabilityRows`). It needs no model weights, so the
 * maps, the viewer, the docs and the tests have a real capture whose right answer is known: a colour
 * word (or its object's noun) must attend to that object's patches.
 *
 * The toy model, per layer l (d_model = 12: chroma rgb, position, flags, noise):
 *   head 0, 1: colour heads   q·k = β_l·chroma(query)·chroma(key) + 2·[query is text]·[key is BOS]
 *   head 2:    locality head  q·k = −γ·|pos(query) − pos(key)|² (+ const), patches look at neighbours
 *   head 3:    diffuse head   small random projections
 *   x ← x + 0.5·mean_h(P_h·x)  (residual update, so later layers mix information)
 * Prefix-LM mask (as PaliGemma): <bos> and the image attend bidirectionally, the prompt causally.
 * Scale 1. Sequence: [<bos>, image patches in raster order, prompt words].
 */
import { prefixLM } from '../masks/mask.js';
import { attention } from '../attention/attention.js';
import { probabilityRows } from '../attention/capture.js';
import type { BackendName } from '../attention/backend.js';
// Backends register themselves on import (as in index.ts), so this module works on its own.
import '../kernels/cpu/backend-ts.js';
import '../kernels/cpu/wasm-backend.js';
import { ValueError } from '../errors.js';
import { Tensor, mulberry32 } from '../tensor/tensor.js';
import { type Capture, makeCapture, withHeadImportance } from './capture-file.js';
import { discoverHeads, headScores } from './heads.js';
import { encodePng, type RgbaImage } from './png.js';

/** The objects of the synthetic scene. */
export const SYNTHETIC_OBJECTS = [
  { name: 'red_square', colour: 'red', noun: 'square', rgb: [0.86, 0.12, 0.1] },
  { name: 'blue_disc', colour: 'blue', noun: 'disc', rgb: [0.12, 0.25, 0.9] },
  { name: 'green_triangle', colour: 'green', noun: 'triangle', rgb: [0.1, 0.8, 0.1] },
] as const;

/** Options of syntheticCapture. */
export interface SyntheticOptions {
  /** Seed of the object positions and the toy model's random parts (default 1). */
  seed?: number;
  /** Patch grid side, 9–64 (default 14). */
  gridSize?: number;
  /** Pixels per patch side, 4–64 (default 16). */
  patchPixels?: number;
  /** Layers of the toy model, 1–64 (default 4). */
  numLayers?: number;
  /** Prompt words (default: "the red square , the blue disc and the green triangle"). */
  prompt?: readonly string[];
  /** Attention backend for the toy model's forward pass and capture (default 'auto'). */
  backend?: BackendName;
}

const D = 12;

function chroma(rgb: readonly number[]): [number, number, number] {
  const m = (rgb[0]! + rgb[1]! + rgb[2]!) / 3;
  return [rgb[0]! - m, rgb[1]! - m, rgb[2]! - m];
}

/** Renders the scene: image (RGBA) and per-object pixel masks. Object positions depend on `seed`. */
export function syntheticScene(opts: { seed?: number; gridSize?: number; patchPixels?: number } = {}): { image: RgbaImage; objectMasks: Map<string, Uint8Array> } {
  const G = opts.gridSize ?? 14, S = opts.patchPixels ?? 16;
  if (!Number.isInteger(G) || G < 9 || G > 64) throw new ValueError(`gridSize must be an integer in 9..64, got ${G}`, 'gridSize');
  if (!Number.isInteger(S) || S < 4 || S > 64) throw new ValueError(`patchPixels must be an integer in 4..64, got ${S}`, 'patchPixels');
  const W = G * S, rng = mulberry32(opts.seed ?? 1);
  const data = new Uint8Array(W * W * 4);
  // Textured grey background: low-amplitude noise plus faint diagonal stripes.
  for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) {
    const v = 0.5 + 0.04 * Math.sin((x + y) / 5) + 0.05 * (rng() - 0.5);
    const o = (y * W + x) * 4;
    data[o] = data[o + 1] = data[o + 2] = Math.round(v * 255);
    data[o + 3] = 255;
  }
  // Three objects of radius ~ 1.8 patches in three distinct cells of a 3×3 layout, jittered.
  const cells = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  for (let i = cells.length - 1; i > 0; i--) { const j = Math.floor(rng() * (i + 1)); [cells[i], cells[j]] = [cells[j]!, cells[i]!]; }
  const objectMasks = new Map<string, Uint8Array>();
  const r = 1.8 * S;
  SYNTHETIC_OBJECTS.forEach((obj, k) => {
    const cell = cells[k]!;
    const cw = W / 3;
    const cx = (cell % 3 + 0.5) * cw + (rng() - 0.5) * (cw - 2 * r - 4);
    const cy = (Math.floor(cell / 3) + 0.5) * cw + (rng() - 0.5) * (cw - 2 * r - 4);
    const m = new Uint8Array(W * W);
    for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) {
      const dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      let inside: boolean;
      if (obj.noun === 'square') inside = Math.abs(dx) <= r * 0.9 && Math.abs(dy) <= r * 0.9;
      else if (obj.noun === 'disc') inside = dx * dx + dy * dy <= r * r;
      else inside = dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= ((dy + r) / (1.8 * r)) * r;
      if (!inside) continue;
      m[y * W + x] = 1;
      const o = (y * W + x) * 4;
      const shade = 0.92 + 0.08 * rng();
      for (let c = 0; c < 3; c++) data[o + c] = Math.round(obj.rgb[c]! * shade * 255);
    }
    objectMasks.set(obj.name, m);
  });
  return { image: { width: W, height: W, data }, objectMasks };
}

/**
 * Builds the synthetic capture (all query rows stored, so raw, rollout and flow all work), with the
 * scene image, patch masks of the three objects (a patch is in a mask when ≥ 40% of its pixels are)
 * and token strings.
 */
export async function syntheticCapture(opts: SyntheticOptions = {}): Promise<Capture> {
  const G = opts.gridSize ?? 14, S = opts.patchPixels ?? 16, L = opts.numLayers ?? 4;
  if (!Number.isInteger(L) || L < 1 || L > 64) throw new ValueError(`numLayers must be an integer in 1..64, got ${L}`, 'numLayers');
  const { image, objectMasks } = syntheticScene({ seed: opts.seed, gridSize: G, patchPixels: S });
  const W = G * S, P = G * G;
  const prompt = [...(opts.prompt ?? ['the', 'red', 'square', ',', 'the', 'blue', 'disc', 'and', 'the', 'green', 'triangle'])];
  if (prompt.length < 1) throw new ValueError('prompt must hold at least one word', 'prompt');
  const tokens = ['<bos>', ...Array.from({ length: P }, (_, p) => `<img ${Math.floor(p / G)},${p % G}>`), ...prompt];
  const N = tokens.length, H = 4, dh = 4;
  const rng = mulberry32((opts.seed ?? 1) * 7919 + 17);
  // Initial features.
  const x = new Float64Array(N * D);
  x[7] = 1; // BOS flag
  for (let p = 0; p < P; p++) {
    const pr = Math.floor(p / G), pc = p % G;
    const rgb = [0, 0, 0];
    for (let y = pr * S; y < (pr + 1) * S; y++) for (let xx = pc * S; xx < (pc + 1) * S; xx++) for (let c = 0; c < 3; c++) rgb[c] += image.data[(y * W + xx) * 4 + c]! / 255;
    const ch = chroma(rgb.map((v) => v / (S * S)));
    const o = (1 + p) * D;
    x.set(ch, o);
    x[o + 3] = (pr + 0.5) / G; x[o + 4] = (pc + 0.5) / G; x[o + 5] = 1;
    for (let c = 8; c < D; c++) x[o + c] = 0.1 * (rng() - 0.5);
  }
  const colourOf = (w: string) => SYNTHETIC_OBJECTS.find((o) => o.colour === w.toLowerCase() || o.noun === w.toLowerCase());
  prompt.forEach((w, i) => {
    const o = (1 + P + i) * D;
    const obj = colourOf(w);
    if (obj) x.set(chroma(obj.rgb), o);
    x[o + 6] = 1;
    for (let c = 8; c < D; c++) x[o + c] = 0.1 * (rng() - 0.5);
  });
  const rand = Array.from({ length: L }, () => Array.from({ length: 2 * D * dh }, () => 0.6 * (rng() - 0.5)));
  const attentionLayers: Tensor[] = [];
  for (let l = 0; l < L; l++) {
    const beta = 14 - 2 * (l % 4), gamma = 6;
    const q = new Float32Array(N * H * dh), k = new Float32Array(N * H * dh), v = new Float32Array(N * H * D);
    for (let i = 0; i < N; i++) {
      const f = x.subarray(i * D, (i + 1) * D);
      const isText = f[6]! > 0.5 ? 1 : 0, isBos = f[7]! > 0.5 ? 1 : 0, isImg = f[5]! > 0.5 ? 1 : 0;
      const set = (arr: Float32Array, h: number, vals: number[]) => arr.set(vals, (i * H + h) * dh);
      // Colour heads (the second one a little softer).
      for (const [h, b] of [[0, beta], [1, beta * 0.7]] as const) {
        set(q, h, [b * f[0]!, b * f[1]!, b * f[2]!, 2 * isText]);
        set(k, h, [f[0]!, f[1]!, f[2]!, isBos]);
      }
      // Locality head: patches prefer nearby patches; text looks at BOS.
      const pr = f[3]!, pc = f[4]!;
      set(q, 2, [2 * gamma * pr * isImg, 2 * gamma * pc * isImg, -gamma * isImg, 2 * isText]);
      set(k, 2, [pr, pc, pr * pr + pc * pc, isBos]);
      // Diffuse head: random projections.
      const R = rand[l]!;
      const qq = [0, 0, 0, 0], kk = [0, 0, 0, 0];
      for (let c = 0; c < D; c++) for (let d = 0; d < dh; d++) { qq[d] += f[c]! * R[c * dh + d]!; kk[d] += f[c]! * R[D * dh + c * dh + d]!; }
      set(q, 3, qq); set(k, 3, kk);
      for (let h = 0; h < H; h++) for (let c = 0; c < D; c++) v[(i * H + h) * D + c] = f[c]!;
    }
    const qt = new Tensor(q, [1, N, H, dh]), kt = new Tensor(k, [1, N, H, dh]), vt = new Tensor(v, [1, N, H, D]);
    const mask = prefixLM(1 + P);
    const { out, lse } = await attention(qt, kt, vt, { mask, scale: 1, returnLse: true, backend: opts.backend });
    const probs = await probabilityRows(qt, kt, Array.from({ length: N }, (_, i) => i), { mask, scale: 1, lse, backend: opts.backend });
    attentionLayers.push(probs);
    const o = out.toFloat32();
    for (let i = 0; i < N; i++) for (let c = 0; c < D; c++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += o[(i * H + h) * D + c]!;
      // Flags and positions are not mixed: only content channels get the residual update.
      if (c < 3 || c >= 8) x[i * D + c] += (0.5 * s) / H;
    }
  }
  // Patch masks: ≥ 40% of the patch's pixels inside the object.
  const masks: Record<string, Uint8Array> = {};
  for (const [name, m] of objectMasks) {
    const g = new Uint8Array(P);
    for (let p = 0; p < P; p++) {
      const pr = Math.floor(p / G), pc = p % G;
      let c = 0;
      for (let y = pr * S; y < (pr + 1) * S; y++) for (let xx = pc * S; xx < (pc + 1) * S; xx++) c += m[y * W + xx]!;
      g[p] = c >= 0.4 * S * S ? 1 : 0;
    }
    masks[name] = g;
  }
  const capture = makeCapture({
    tokens, grid: [G, G], imageSpan: [1, 1 + P], attention: attentionLayers, imagePng: encodePng(image), masks,
    meta: { model: 'vlm-attention synthetic toy model (4 heads: 2 colour, 1 locality, 1 diffuse)', prompt: prompt.join(' '), seed: String(opts.seed ?? 1) },
  });
  // Head importance: localisation of each object's colour word against the object's mask.
  const examples = SYNTHETIC_OBJECTS.flatMap((o) => {
    const t = tokens.lastIndexOf(o.colour);
    return t > P ? [{ capture, tokens: [t], mask: o.name }] : [];
  });
  if (examples.length === 0) return capture;
  const d = discoverHeads(examples, { method: 'localisation' });
  return withHeadImportance(capture, headScores(d), 'localisation', 'share of each colour word\'s image attention inside its object\'s mask');
}
