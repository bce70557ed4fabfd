/**
 * The texture array (spec relevance.md §1.1, corrected): per-pixel features at a working
 * resolution, normalised per image (never per batch), pooled per base patch and per region.
 *
 * Channels (14; the seed's two duplicate channels are gone, its dropped b* is back, and local
 * variance and saturation are added — the list, which it miscounts as 13):
 *
 * | #  | name            | content                                      | range / normalisation        |
 * |----|-----------------|----------------------------------------------|------------------------------|
 * | 0  | r, g, b (0–2)   | sRGB                                         | [0, 1] as input              |
 * | 3  | lab_l           | CIE L* (D65)                                 | L* / 100                       |
 * | 4  | lab_a           | CIE a*                                       | (a* + 128) / 255               |
 * | 5  | lab_b           | CIE b*                                       | (b* + 128) / 255               |
 * | 6  | sobel_x         | Sobel ∂/∂x of L* / 100 (kernel/8, replicate)   | min-max over this image      |
 * | 7  | sobel_y         | Sobel ∂/∂y                                   | min-max over this image      |
 * | 8  | sobel_mag       | √(gx² + gy² + 1e-8)                          | min-max over this image      |
 * | 9  | y               | row, linspace(0, 1)                          | [0, 1]                       |
 * | 10 | x               | column, linspace(0, 1)                       | [0, 1]                       |
 * | 11 | eccentricity    | √((y−½)² + (x−½)²) / √½                      | [0, 1]                       |
 * | 12 | local_variance  | variance of L* / 100 in a (2r+1)² window       | min-max over this image      |
 * | 13 | saturation      | HSV saturation (max − min)/max               | [0, 1]                       |
 *
 * A channel whose min-max span is below 1e-6 (a flat image) is set to 0.
 */
import { ValueError } from '../errors.js';
import { checkRgbImage, resamplePlanar, type RgbImage } from './image-ops.js';
import type { GridPlan } from './regions.js';

/** Channel names of the texture array, in order. */
export const TEXTURE_CHANNELS = Object.freeze([
  'r', 'g', 'b', 'lab_l', 'lab_a', 'lab_b', 'sobel_x', 'sobel_y', 'sobel_mag', 'y', 'x', 'eccentricity', 'local_variance', 'saturation',
] as const);
/** A texture channel's name (see TEXTURE_CHANNELS and CH for its index). */
export type TextureChannel = (typeof TEXTURE_CHANNELS)[number];
/** Number of texture channels (14). */
export const NUM_TEXTURE_CHANNELS = TEXTURE_CHANNELS.length;
/** Index of each channel by name. */
export const CH: Readonly<Record<TextureChannel, number>> = Object.freeze(
  Object.fromEntries(TEXTURE_CHANNELS.map((n, i) => [n, i])) as Record<TextureChannel, number>,
);

/** Options for {@link computeTexture}. */
export interface TextureOptions {
  /** Radius r of the local-variance window ((2r+1)², default 3). */
  localVarianceRadius?: number;
}

/** The texture array of one image. */
export interface TextureArray {
  /** The grid it was computed for (work size, base grid, regions). */
  plan: GridPlan;
  /** Channel names in the order of the arrays' first dimension (TEXTURE_CHANNELS). */
  channels: readonly TextureChannel[];
  /** Per-pixel features at the working resolution: [channels, workHeight, workWidth]. */
  pixels: Float32Array;
  /** Mean per base patch: [channels, gridRows, gridCols]. */
  patches: Float32Array;
  /** Mean per region: [channels, numRegions]. */
  regions: Float32Array;
  /** The working-resolution image the features were computed from. */
  work: RgbImage;
}

const WHITE = [0.95047, 1, 1.08883] as const;

function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
}

// sRGB → linear by table (4096 intervals, linear interpolation; max error < 1e-7 on [0, 1]).
const LIN_N = 4096;
let LIN: Float64Array | null = null;
function linearFast(v: number): number {
  if (!LIN) { LIN = new Float64Array(LIN_N + 2); for (let i = 0; i <= LIN_N + 1; i++) LIN[i] = srgbToLinear(Math.min(1, i / LIN_N)); }
  if (!(v > 0)) return v <= 0 ? v / 12.92 : v; // NaN passes through
  if (v >= 1) return srgbToLinear(v);
  const x = v * LIN_N, i = x | 0, f = x - i;
  return LIN[i]! + (LIN[i + 1]! - LIN[i]!) * f;
}

function labF(t: number): number {
  return t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 4 / 29;
}

// labF by table on [0, 1.25] (linear interpolation, error < 2e-6 above the 0.008856 knee; exact
// formula outside the table).
const CBRT_N = 16384, CBRT_MAX = 1.25;
let CBRT: Float32Array | null = null;
function labFFast(t: number): number {
  if (!(t > 0.008856) || t >= CBRT_MAX) return labF(t);
  if (!CBRT) { CBRT = new Float32Array(CBRT_N + 2); for (let i = 0; i <= CBRT_N + 1; i++) CBRT[i] = Math.cbrt((i * CBRT_MAX) / CBRT_N); }
  const x = (t * CBRT_N) / CBRT_MAX, i = x | 0, f = x - i;
  return CBRT[i]! + (CBRT[i + 1]! - CBRT[i]!) * f;
}

/** CIE L*a*b* (D65) of an sRGB colour in [0, 1]: [L* ∈ [0, 100], a*, b*]. */
export function srgbToLab(r: number, g: number, b: number): [number, number, number] {
  const R = srgbToLinear(r), G = srgbToLinear(g), B = srgbToLinear(b);
  const X = (0.412453 * R + 0.35758 * G + 0.180423 * B) / WHITE[0];
  const Y = 0.212671 * R + 0.71516 * G + 0.072169 * B;
  const Z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / WHITE[2];
  const fx = labF(X), fy = labF(Y), fz = labF(Z);
  const L = Y > 0.008856 ? 116 * fy - 16 : 903.3 * Y;
  return [L, 500 * (fx - fy), 200 * (fy - fz)];
}

/** The texture vector (14 channels, normalised as above) of a uniform colour, at position (x, y). */
export function textureOfColor(r: number, g: number, b: number): { lab_l: number; lab_a: number; lab_b: number; saturation: number } {
  const [L, A, Bb] = srgbToLab(r, g, b);
  const mx = Math.max(r, g, b), mn = Math.min(r, g, b);
  return { lab_l: L / 100, lab_a: (A + 128) / 255, lab_b: (Bb + 128) / 255, saturation: mx > 0 ? (mx - mn) / mx : 0 };
}

function minMax(plane: Float32Array): void {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < plane.length; i++) { const v = plane[i]!; if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = hi - lo;
  if (!(span > 1e-6)) { plane.fill(0); return; }
  const inv = 1 / span;
  for (let i = 0; i < plane.length; i++) plane[i] = (plane[i]! - lo) * inv;
}

const COORDS = new Map<string, Float32Array>();
/** y, x and eccentricity planes [3, H, W] for a work size (small cache). */
function coordinatePlanes(W: number, H: number): Float32Array {
  const key = `${W}x${H}`;
  let c = COORDS.get(key);
  if (c) return c;
  const n = W * H;
  c = new Float32Array(3 * n);
  const emax = Math.SQRT1_2;
  for (let y = 0; y < H; y++) {
    const fy = H > 1 ? y / (H - 1) : 0.5;
    for (let x = 0; x < W; x++) {
      const fx = W > 1 ? x / (W - 1) : 0.5;
      const i = y * W + x;
      c[i] = fy; c[n + i] = fx; c[2 * n + i] = Math.sqrt((fy - 0.5) ** 2 + (fx - 0.5) ** 2) / emax;
    }
  }
  if (COORDS.size >= 4) COORDS.delete(COORDS.keys().next().value!);
  COORDS.set(key, c);
  return c;
}

/** The plan's crop of the image, resampled to the work size (an exact box average when the crop is a multiple of it). */
export function cropAndResample(image: RgbImage, plan: GridPlan): RgbImage {
  const { crop, workWidth: W, workHeight: H } = plan;
  const whole = crop.width === image.width && crop.height === image.height;
  if (whole && W === image.width && H === image.height) return image;
  if (crop.width % W === 0 && crop.height % H === 0) {
    const kx = crop.width / W, ky = crop.height / H, n0 = image.width * image.height, n = W * H;
    const out = new Float32Array(3 * n), acc = new Float64Array(W), inv = 1 / (kx * ky);
    for (let c = 0; c < 3; c++) for (let oy = 0; oy < H; oy++) {
      acc.fill(0);
      for (let y = crop.y + oy * ky; y < crop.y + (oy + 1) * ky; y++) {
        const src = c * n0 + y * image.width + crop.x, d = image.data;
        if (kx === 2) for (let ox = 0; ox < W; ox++) acc[ox] += d[src + 2 * ox]! + d[src + 2 * ox + 1]!;
        else for (let ox = 0, o = src; ox < W; ox++, o += kx) {
          let s = 0;
          for (let k = 0; k < kx; k++) s += d[o + k]!;
          acc[ox] += s;
        }
      }
      for (let ox = 0; ox < W; ox++) out[c * n + oy * W + ox] = acc[ox]! * inv;
    }
    return { width: W, height: H, data: out };
  }
  let work = image;
  if (!whole) {
    const n0 = image.width * image.height, nc = crop.width * crop.height;
    const data = new Float32Array(3 * nc);
    for (let c = 0; c < 3; c++) for (let y = 0; y < crop.height; y++) {
      const src = c * n0 + (crop.y + y) * image.width + crop.x;
      data.set(image.data.subarray(src, src + crop.width), c * nc + y * crop.width);
    }
    work = { width: crop.width, height: crop.height, data };
  }
  // `image` was checked by the caller (computeTexture): resample directly rather than re-check every value in resizeRgb.
  return work.width === W && work.height === H ? work : { width: W, height: H, data: resamplePlanar(work.data, 3, work.width, work.height, W, H) };
}

/**
 * Computes the texture array of `image` (planar RGB in [0, 1]) on the plan's working grid: the
 * image is resampled to workWidth × workHeight, features are computed per pixel and normalised
 * over this image, then averaged per base patch and per region.
 */
export function computeTexture(image: RgbImage, plan: GridPlan, options: TextureOptions = {}): TextureArray {
  checkRgbImage(image);
  if (image.width !== plan.imageWidth || image.height !== plan.imageHeight) {
    throw new ValueError(`image is ${image.width}×${image.height} but the grid plan was made for ${plan.imageWidth}×${plan.imageHeight}`, 'image');
  }
  const rad = options.localVarianceRadius ?? 3;
  if (!Number.isInteger(rad) || rad < 0 || rad > 64) throw new ValueError(`localVarianceRadius must be an integer in 0..64, got ${rad}`, 'localVarianceRadius');
  const W = plan.workWidth, H = plan.workHeight, n = W * H;
  const work = cropAndResample(image, plan);
  const C = NUM_TEXTURE_CHANNELS;
  const px = new Float32Array(C * n);
  const plane = (c: number) => px.subarray(c * n, (c + 1) * n);
  const src = work.data;
  px.set(src.subarray(0, 3 * n), 0);
  const L = plane(CH.lab_l), A = plane(CH.lab_a), Bs = plane(CH.lab_b), S = plane(CH.saturation);
  for (let i = 0; i < n; i++) {
    const r = src[i]!, g = src[n + i]!, b = src[2 * n + i]!;
    const R = linearFast(r), G = linearFast(g), Bl = linearFast(b);
    const X = (0.412453 * R + 0.35758 * G + 0.180423 * Bl) / WHITE[0];
    const Y = 0.212671 * R + 0.71516 * G + 0.072169 * Bl;
    const Z = (0.019334 * R + 0.119193 * G + 0.950227 * Bl) / WHITE[2];
    const fx = labFFast(X), fy = labFFast(Y), fz = labFFast(Z);
    L[i] = (Y > 0.008856 ? 116 * fy - 16 : 903.3 * Y) / 100;
    A[i] = (500 * (fx - fy) + 128) / 255; Bs[i] = (200 * (fy - fz) + 128) / 255;
    const mx = Math.max(r, g, b), mn = Math.min(r, g, b);
    S[i] = mx > 0 ? (mx - mn) / mx : 0;
  }
  // Sobel on L* / 100 with replicated borders; kernel normalised by 8 (kornia's "normalized").
  const Gx = plane(CH.sobel_x), Gy = plane(CH.sobel_y), Gm = plane(CH.sobel_mag);
  const sobelAt = (y: number, x: number) => {
    const ym = (y > 0 ? y - 1 : 0) * W, y0 = y * W, yp = (y < H - 1 ? y + 1 : H - 1) * W;
    const xm = x > 0 ? x - 1 : 0, xp = x < W - 1 ? x + 1 : W - 1;
    const gx = (L[ym + xp]! + 2 * L[y0 + xp]! + L[yp + xp]! - L[ym + xm]! - 2 * L[y0 + xm]! - L[yp + xm]!) / 8;
    const gy = (L[yp + xm]! + 2 * L[yp + x]! + L[yp + xp]! - L[ym + xm]! - 2 * L[ym + x]! - L[ym + xp]!) / 8;
    Gx[y0 + x] = gx; Gy[y0 + x] = gy; Gm[y0 + x] = Math.sqrt(gx * gx + gy * gy + 1e-8);
  };
  for (let y = 0; y < H; y++) {
    if (y === 0 || y === H - 1 || W < 3) { for (let x = 0; x < W; x++) sobelAt(y, x); continue; }
    sobelAt(y, 0);
    // Interior: no clamping.
    const ym = (y - 1) * W, y0 = y * W, yp = (y + 1) * W;
    for (let x = 1; x < W - 1; x++) {
      const a = L[ym + x - 1]!, b = L[ym + x]!, c = L[ym + x + 1]!, d = L[y0 + x - 1]!, f = L[y0 + x + 1]!, g = L[yp + x - 1]!, h = L[yp + x]!, k = L[yp + x + 1]!;
      const gx = (c + 2 * f + k - a - 2 * d - g) / 8;
      const gy = (g + 2 * h + k - a - 2 * b - c) / 8;
      Gx[y0 + x] = gx; Gy[y0 + x] = gy; Gm[y0 + x] = Math.sqrt(gx * gx + gy * gy + 1e-8);
    }
    sobelAt(y, W - 1);
  }
  minMax(Gx); minMax(Gy); minMax(Gm);
  // Coordinates (the same for every image of this work size: cached).
  px.set(coordinatePlanes(W, H), CH.y * n);
  // Local variance of L via summed-area tables (float64).
  const V = plane(CH.local_variance);
  const sat1 = new Float64Array((W + 1) * (H + 1)), sat2 = new Float64Array((W + 1) * (H + 1));
  for (let y = 0; y < H; y++) {
    let r1 = 0, r2 = 0;
    for (let x = 0; x < W; x++) {
      const v = L[y * W + x]!;
      r1 += v; r2 += v * v;
      sat1[(y + 1) * (W + 1) + x + 1] = sat1[y * (W + 1) + x + 1]! + r1;
      sat2[(y + 1) * (W + 1) + x + 1] = sat2[y * (W + 1) + x + 1]! + r2;
    }
  }
  for (let y = 0; y < H; y++) {
    const y0 = Math.max(0, y - rad), y1 = Math.min(H, y + rad + 1);
    for (let x = 0; x < W; x++) {
      const x0 = Math.max(0, x - rad), x1 = Math.min(W, x + rad + 1);
      const cnt = (y1 - y0) * (x1 - x0);
      const s1 = sat1[y1 * (W + 1) + x1]! - sat1[y0 * (W + 1) + x1]! - sat1[y1 * (W + 1) + x0]! + sat1[y0 * (W + 1) + x0]!;
      const s2 = sat2[y1 * (W + 1) + x1]! - sat2[y0 * (W + 1) + x1]! - sat2[y1 * (W + 1) + x0]! + sat2[y0 * (W + 1) + x0]!;
      const mean = s1 / cnt;
      V[y * W + x] = Math.max(0, s2 / cnt - mean * mean);
    }
  }
  minMax(V);

  const patches = poolPatches(px, C, plan);
  const regions = poolRegions(patches, C, plan);
  return { plan, channels: TEXTURE_CHANNELS, pixels: px, patches, regions, work };
}

/** Mean of each p×p patch: [C, workH, workW] → [C, gridRows, gridCols]. */
export function poolPatches(px: Float32Array, C: number, plan: GridPlan): Float32Array {
  const { workWidth: W, workHeight: H, gridRows: gr, gridCols: gc, featurePatch: p } = plan;
  const n = W * H, g = gr * gc;
  const out = new Float32Array(C * g);
  const inv = 1 / (p * p);
  const acc = new Float64Array(gc);
  for (let c = 0; c < C; c++) {
    for (let pr = 0; pr < gr; pr++) {
      acc.fill(0);
      for (let y = pr * p; y < (pr + 1) * p; y++) {
        let base = c * n + y * W;
        for (let pc = 0; pc < gc; pc++) {
          let s = 0;
          for (let k = 0; k < p; k++) s += px[base + k]!;
          acc[pc] += s;
          base += p;
        }
      }
      for (let pc = 0; pc < gc; pc++) out[c * g + pr * gc + pc] = acc[pc]! * inv;
    }
  }
  return out;
}

/** Mean over each region's base patches: [C, gridRows, gridCols] → [C, numRegions]. */
export function poolRegions(patches: Float32Array, C: number, plan: GridPlan): Float32Array {
  const g = plan.gridRows * plan.gridCols, R = plan.regions.length;
  const out = new Float32Array(C * R);
  for (const reg of plan.regions) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = reg.patchRow0; r < reg.patchRow1; r++) for (let q = reg.patchCol0; q < reg.patchCol1; q++) s += patches[c * g + r * plan.gridCols + q]!;
      out[c * R + reg.index] = s / reg.basePatches;
    }
  }
  return out;
}
