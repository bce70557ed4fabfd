/**
 * Drawing on RGBA rasters, browser-safe and DOM-free: bilinear upsampling of a grid heatmap to image
 * size, colormapped alpha blending onto an image, and region rectangles with text labels (a built-in
 * 5×7 bitmap font) for allocation overlays.
 *
 * Coordinates are pixels with (0, 0) at the top-left; rectangles are half-open [x, x + width).
 */
import { ShapeError, ValueError } from '../errors.js';
import { type ColormapName, colorRange } from './colormap.js';
import { colormapLut } from './colormap.js';
import { checkRgbaImage, type RgbaImage } from './png.js';

/** An RGBA colour, each channel 0–255; alpha is the blending weight. */
export type Rgba = readonly [number, number, number, number];

function checkGrid(grid: ArrayLike<number>, gridWidth: number, gridHeight: number): void {
  if (!Number.isInteger(gridWidth) || gridWidth < 1) throw new ValueError(`gridWidth must be an integer ≥ 1, got ${gridWidth}`, 'gridWidth');
  if (!Number.isInteger(gridHeight) || gridHeight < 1) throw new ValueError(`gridHeight must be an integer ≥ 1, got ${gridHeight}`, 'gridHeight');
  if (grid.length !== gridWidth * gridHeight) {
    throw new ShapeError(`grid must hold gridWidth·gridHeight = ${gridWidth * gridHeight} values, got ${grid.length}`, 'grid', 'length');
  }
}

/**
 * Bilinear upsampling (or downsampling) of a row-major `gridHeight × gridWidth` grid to
 * `height × width`, with pixel-centre alignment (PyTorch's `align_corners=False`): output pixel x
 * samples source coordinate (x + 0.5)·gridWidth/width − 0.5, clamped to the grid's edge cells.
 * @returns Float32Array of `height × width`.
 */
export function upsampleBilinear(grid: ArrayLike<number>, gridWidth: number, gridHeight: number, width: number, height: number): Float32Array {
  checkGrid(grid, gridWidth, gridHeight);
  if (!Number.isInteger(width) || width < 1) throw new ValueError(`width must be an integer ≥ 1, got ${width}`, 'width');
  if (!Number.isInteger(height) || height < 1) throw new ValueError(`height must be an integer ≥ 1, got ${height}`, 'height');
  const out = new Float32Array(width * height);
  const x0s = new Int32Array(width), x1s = new Int32Array(width), fxs = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    const sx = Math.min(gridWidth - 1, Math.max(0, ((x + 0.5) * gridWidth) / width - 0.5));
    const x0 = Math.floor(sx);
    x0s[x] = x0; x1s[x] = Math.min(gridWidth - 1, x0 + 1); fxs[x] = sx - x0;
  }
  for (let y = 0; y < height; y++) {
    const sy = Math.min(gridHeight - 1, Math.max(0, ((y + 0.5) * gridHeight) / height - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(gridHeight - 1, y0 + 1), fy = sy - y0;
    const r0 = y0 * gridWidth, r1 = y1 * gridWidth;
    for (let x = 0; x < width; x++) {
      const fx = fxs[x]!, a = x0s[x]!, b = x1s[x]!;
      const top = grid[r0 + a]! * (1 - fx) + grid[r0 + b]! * fx;
      const bot = grid[r1 + a]! * (1 - fx) + grid[r1 + b]! * fx;
      out[y * width + x] = top * (1 - fy) + bot * fy;
    }
  }
  return out;
}

/** Options for {@link overlayHeatmap}. */
export interface HeatmapOverlayOptions {
  /** Default 'inferno'. */
  colormap?: ColormapName;
  /** Maximum blend weight of the heatmap over the image, in [0, 1] (default 0.6). */
  alpha?: number;
  /** Value mapped to the colormap's start (default: the grid's finite minimum). */
  min?: number;
  /** Value mapped to the colormap's end (default: the grid's finite maximum). */
  max?: number;
  /**
   * When true, each pixel's blend weight is alpha·t^gamma with t the normalised value, so cold
   * areas show the image and hot areas show the colour (default false: uniform alpha).
   */
  weightByValue?: boolean;
  /** Exponent for `weightByValue` (default 1). */
  gamma?: number;
  /**
   * The pixel rectangle the grid covers (default: the whole image), e.g. the central crop a patch grid was
   * cut from; its edges are rounded to whole pixels, and pixels outside it are left as they are.
   */
  rect?: Rect;
}

/**
 * Upsamples a `gridHeight × gridWidth` heatmap bilinearly to the image's size (or to `options.rect`), colours
 * it with a colormap and alpha-blends it onto a copy of `image`. Non-finite grid values leave the image as is.
 */
export function overlayHeatmap(image: RgbaImage, grid: ArrayLike<number>, gridWidth: number, gridHeight: number, options: HeatmapOverlayOptions = {}): RgbaImage {
  checkRgbaImage(image);
  checkGrid(grid, gridWidth, gridHeight);
  const alpha = options.alpha ?? 0.6;
  if (!(alpha >= 0 && alpha <= 1)) throw new ValueError(`alpha must be in [0, 1], got ${alpha}`, 'alpha');
  const gamma = options.gamma ?? 1;
  if (!(gamma > 0) || !Number.isFinite(gamma)) throw new ValueError(`gamma must be a finite number > 0, got ${gamma}`, 'gamma');
  const [lo, hi] = colorRange(grid, options.min, options.max);
  const { width, height } = image;
  let x0 = 0, y0 = 0, x1 = width, y1 = height;
  if (options.rect) {
    const r = options.rect;
    if (![r.x, r.y, r.width, r.height].every(Number.isFinite)) throw new ValueError(`rect must have finite x, y, width and height, got ${JSON.stringify(r)}`, 'rect');
    x0 = Math.max(0, Math.round(r.x)); y0 = Math.max(0, Math.round(r.y));
    x1 = Math.min(width, Math.round(r.x + r.width)); y1 = Math.min(height, Math.round(r.y + r.height));
    if (x1 <= x0 || y1 <= y0) throw new ShapeError(`rect ${JSON.stringify(r)} covers no pixel of the ${width}×${height} image`, 'rect', 'width×height');
  }
  const rw = x1 - x0;
  const up = upsampleBilinear(grid, gridWidth, gridHeight, rw, y1 - y0);
  const table = colormapLut(options.colormap ?? 'inferno');
  const out = new Uint8Array(image.data);
  const span = hi - lo;
  for (let i = 0; i < up.length; i++) {
    const v = up[i]!;
    if (!Number.isFinite(v)) continue;
    const t = span > 0 ? Math.min(1, Math.max(0, (v - lo) / span)) : 0.5;
    const k = Math.round(t * 255) * 3;
    const w = options.weightByValue ? alpha * Math.pow(t, gamma) : alpha;
    const o = ((y0 + Math.floor(i / rw)) * width + x0 + (i % rw)) * 4;
    out[o] = Math.round(out[o]! * (1 - w) + table[k]! * w);
    out[o + 1] = Math.round(out[o + 1]! * (1 - w) + table[k + 1]! * w);
    out[o + 2] = Math.round(out[o + 2]! * (1 - w) + table[k + 2]! * w);
  }
  return { width, height, data: out };
}

/** Alpha-blends `top` over `base` with a uniform weight (both the same size); returns a new image. */
export function blendImages(base: RgbaImage, top: RgbaImage, alpha: number): RgbaImage {
  checkRgbaImage(base, 'base');
  checkRgbaImage(top, 'top');
  if (base.width !== top.width || base.height !== top.height) {
    throw new ShapeError(`top is ${top.width}×${top.height}, base is ${base.width}×${base.height}`, 'top', 'width×height');
  }
  if (!(alpha >= 0 && alpha <= 1)) throw new ValueError(`alpha must be in [0, 1], got ${alpha}`, 'alpha');
  const out = new Uint8Array(base.data.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = (i & 3) === 3 ? base.data[i]! : Math.round(base.data[i]! * (1 - alpha) + top.data[i]! * alpha);
  }
  return { width: base.width, height: base.height, data: out };
}

/** A pixel rectangle: [x, x + width) × [y, y + height). */
export interface Rect { x: number; y: number; width: number; height: number }

function blendPixel(data: Uint8Array | Uint8ClampedArray, o: number, c: Rgba): void {
  const w = c[3] / 255;
  data[o] = Math.round(data[o]! * (1 - w) + c[0] * w);
  data[o + 1] = Math.round(data[o + 1]! * (1 - w) + c[1] * w);
  data[o + 2] = Math.round(data[o + 2]! * (1 - w) + c[2] * w);
  data[o + 3] = Math.max(data[o + 3]!, c[3]);
}

/** Blends `color` over the rectangle, in place (clipped to the image). */
export function fillRect(image: RgbaImage, rect: Rect, color: Rgba): void {
  const x0 = Math.max(0, Math.round(rect.x)), y0 = Math.max(0, Math.round(rect.y));
  const x1 = Math.min(image.width, Math.round(rect.x + rect.width)), y1 = Math.min(image.height, Math.round(rect.y + rect.height));
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) blendPixel(image.data, (y * image.width + x) * 4, color);
}

/** Draws the rectangle's outline, `thickness` pixels inside its edge, in place. */
export function strokeRect(image: RgbaImage, rect: Rect, color: Rgba, thickness = 1): void {
  const t = Math.max(1, Math.round(thickness));
  const { x, y, width: w, height: h } = rect;
  fillRect(image, { x, y, width: w, height: Math.min(t, h) }, color);
  if (h > t) fillRect(image, { x, y: y + h - t, width: w, height: t }, color);
  if (h > 2 * t) {
    fillRect(image, { x, y: y + t, width: Math.min(t, w), height: h - 2 * t }, color);
    if (w > t) fillRect(image, { x: x + w - t, y: y + t, width: t, height: h - 2 * t }, color);
  }
}

// 5×7 bitmap font, one 5-bit row mask per line (bit 4 = leftmost pixel). Lowercase maps to upper.
const FONT: Record<string, readonly number[]> = {
  '0': [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e], '1': [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
  '2': [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f], '3': [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
  '4': [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02], '5': [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
  '6': [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e], '7': [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
  '8': [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e], '9': [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
  A: [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11], B: [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
  C: [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e], D: [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
  E: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f], F: [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
  G: [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f], H: [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
  I: [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e], J: [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
  K: [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], L: [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
  M: [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11], N: [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
  O: [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], P: [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
  Q: [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d], R: [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
  S: [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e], T: [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
  U: [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e], V: [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
  W: [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a], X: [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
  Y: [0x11, 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04], Z: [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
  ' ': [0, 0, 0, 0, 0, 0, 0], '.': [0, 0, 0, 0, 0, 0x0c, 0x0c], ',': [0, 0, 0, 0, 0x0c, 0x04, 0x08],
  ':': [0, 0x0c, 0x0c, 0, 0x0c, 0x0c, 0], '-': [0, 0, 0, 0x1f, 0, 0, 0], '+': [0, 0x04, 0x04, 0x1f, 0x04, 0x04, 0],
  '%': [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], '/': [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
  '=': [0, 0, 0x1f, 0, 0x1f, 0, 0], '(': [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
  ')': [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08], '#': [0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a],
  '_': [0, 0, 0, 0, 0, 0, 0x1f], '?': [0x0e, 0x11, 0x01, 0x02, 0x04, 0, 0x04], '!': [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04],
  '×': [0, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0], "'": [0x04, 0x04, 0x08, 0, 0, 0, 0],
  '<': [0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02], '>': [0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08],
  '[': [0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e], ']': [0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e],
};

function glyph(ch: string): readonly number[] {
  return FONT[ch] ?? FONT[ch.toUpperCase()] ?? FONT['?']!;
}

/** Pixel size of `text` drawn by {@link drawText} at `scale` (6·scale per character, 7·scale high). */
export function textSize(text: string, scale = 1): { width: number; height: number } {
  const n = [...text].length;
  return { width: n > 0 ? (6 * n - 1) * scale : 0, height: 7 * scale };
}

/** Options for {@link drawText}. */
export interface TextOptions {
  /** Text colour (default opaque white). */
  color?: Rgba;
  /** Integer pixel scale of the 5×7 font (default 1). */
  scale?: number;
  /** Box behind the text, with `padding` pixels around it. */
  background?: Rgba;
  /** Pixels of background around the text (default: the font scale). */
  padding?: number;
}

/** Draws `text` with its top-left corner at (x, y), in place, using the built-in 5×7 font. */
export function drawText(image: RgbaImage, text: string, x: number, y: number, options: TextOptions = {}): void {
  const scale = Math.max(1, Math.round(options.scale ?? 1));
  const color = options.color ?? [255, 255, 255, 255];
  if (options.background) {
    const pad = options.padding ?? scale;
    const size = textSize(text, scale);
    fillRect(image, { x: x - pad, y: y - pad, width: size.width + 2 * pad, height: size.height + 2 * pad }, options.background);
  }
  let cx = Math.round(x);
  const cy = Math.round(y);
  for (const ch of text) {
    const rows = glyph(ch);
    for (let r = 0; r < 7; r++) {
      const bits = rows[r]!;
      for (let c = 0; c < 5; c++) {
        if (!(bits & (1 << (4 - c)))) continue;
        fillRect(image, { x: cx + c * scale, y: cy + r * scale, width: scale, height: scale }, color);
      }
    }
    cx += 6 * scale;
  }
}

/** A region to draw on an allocation overlay. */
export interface RegionBox extends Rect {
  /** Text drawn centred in the box (e.g. the allocated token count). */
  label?: string;
  /** Outline colour (default white). */
  stroke?: Rgba;
  /** Fill blended over the box (default none). */
  fill?: Rgba;
}

/** Options for {@link drawRegions}. */
export interface DrawRegionsOptions {
  /** Outline width in pixels, drawn inside each box (default 1). */
  thickness?: number;
  /** Font scale for labels (default: as large as fits, up to 3). */
  labelScale?: number;
  /** Label text colour (default opaque white). */
  labelColor?: Rgba;
  /** Box behind each label (default translucent black, [0, 0, 0, 150]). */
  labelBackground?: Rgba;
}

/**
 * Draws region boxes (fill, outline, centred label) on a copy of `image` and returns it. Used for
 * allocation overlays: one box per region, labelled with its level.
 */
export function drawRegions(image: RgbaImage, regions: readonly RegionBox[], options: DrawRegionsOptions = {}): RgbaImage {
  checkRgbaImage(image);
  const out: RgbaImage = { width: image.width, height: image.height, data: new Uint8Array(image.data) };
  for (const r of regions) if (r.fill) fillRect(out, r, r.fill);
  for (const r of regions) strokeRect(out, r, r.stroke ?? [255, 255, 255, 200], options.thickness ?? 1);
  for (const r of regions) {
    if (!r.label) continue;
    let scale = options.labelScale ?? 3;
    while (scale > 1 && (textSize(r.label, scale).width > r.width - 4 || textSize(r.label, scale).height > r.height - 4)) scale--;
    const size = textSize(r.label, scale);
    drawText(out, r.label, r.x + (r.width - size.width) / 2, r.y + (r.height - size.height) / 2, {
      scale,
      color: options.labelColor ?? [255, 255, 255, 255],
      background: options.labelBackground ?? [0, 0, 0, 150],
      padding: Math.max(1, scale),
    });
  }
  return out;
}
