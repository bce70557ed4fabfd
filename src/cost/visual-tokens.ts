/**
 * Visual tokens per image for common VLM tokenisers (spec relevance.md §3). Two counts matter:
 *   encoderSeqLen  the sequence length inside the vision encoder (patches, + CLS where the ViT has
 *                  one), per encoder pass; `encoderPasses` passes per image (tiles);
 *   llmTokens      visual tokens the LLM sees (after dropping CLS, merging, pixel shuffle, unpadding).
 * Special tokens around the image (<vision_start>, <img>…) are not counted.
 *
 * Tokenisers:
 *   clip-vit-l14-224    16×16 = 256 patches + CLS (257 positions); LLaVA drops CLS → 256
 *   clip-vit-l14-336    24×24 = 576 + CLS (577); LLaVA-1.5 → 576
 *   siglip-so400m-384   ⌊384/14⌋ = 27 → 729, no CLS
 *   vit                 any square ViT: (⌊imageSize/patchSize⌋)² (+ CLS)
 *   qwen2-vl            smart_resize to multiples of 28 (Python round-half-even, min/max pixels),
 *                       (H/14)·(W/14) patches, 2×2 merge → (H/28)·(W/28) tokens
 *   llava-next          AnyRes: best pinpoint resolution, 336 tiles + a 336 base image, 576 features
 *                       each (CLS dropped); beforeUnpad = 576·(tiles + 1); llmTokens = after
 *                       `spatial_unpad`: unpadded grid + one newline per row + 576 base (HF's count)
 *   internvl            448 tiles (closest aspect-ratio grid, min..max tiles) + a thumbnail when
 *                       tiles > 1; InternViT sees 1024 patches + CLS per tile; pixel shuffle 0.5 →
 *                       256 tokens per tile
 */
import { ValueError } from '../errors.js';
import { checkKeys, dim, dimOr, oneOf } from './validate.js';

/** The tokenisers `visualTokens` counts (what each counts: the module comment above). */
export const TOKENIZERS = ['clip-vit-l14-224', 'clip-vit-l14-336', 'siglip-so400m-384', 'vit', 'qwen2-vl', 'llava-next', 'internvl'] as const;
/** One of TOKENIZERS. */
export type TokenizerName = (typeof TOKENIZERS)[number];

/** An image's size before preprocessing. */
export interface ImageSize {
  /** Pixels, integer ≥ 1. */
  width: number;
  /** Pixels, integer ≥ 1. */
  height: number;
}

/**
 * Per-tokeniser options of `visualTokens`; each tokeniser accepts only its own (others → ValueError).
 * Pixel counts and sizes are in pixels.
 */
export interface VisualTokenOptions {
  /** qwen2-vl: default 56·56 = 3,136 (4 tokens). */
  minPixels?: number;
  /** qwen2-vl: default 12,845,056 = 16,384·28² (released preprocessor configs; the class default is 1,003,520). */
  maxPixels?: number;
  /** qwen2-vl and vit: patch side in pixels; default 14. */
  patchSize?: number;
  /** qwen2-vl: merge (default 2). */
  mergeSize?: number;
  /** llava-next: [height, width] pinpoints (default LLaVA-NeXT's five). */
  gridPinpoints?: readonly (readonly [number, number])[];
  /** internvl: fewest 448-px tiles; default 1. */
  minTiles?: number;
  /** internvl: most 448-px tiles; default 12. */
  maxTiles?: number;
  /** internvl: add a thumbnail pass when there is more than one tile; default true. */
  thumbnail?: boolean;
  /** vit: input resolution, square side in pixels (required for vit). */
  imageSize?: number;
  /** vit: the encoder has a CLS token (counted in encoderSeqLen, dropped for the LLM); default false. */
  cls?: boolean;
}

/** Visual tokens of one image, for the LLM and for the vision encoder. Special tokens are not counted. */
export interface VisualTokens {
  /** The tokeniser counted. */
  tokenizer: TokenizerName;
  /** Visual tokens the LLM receives. */
  llmTokens: number;
  /** Vision-encoder sequence length per pass: patches, + CLS where the encoder has one. */
  encoderSeqLen: number;
  /** Encoder passes per image (tiles, base image, thumbnail). */
  encoderPasses: number;
  /** Resolution the image is resized to before patching (per pass for tiled models: the full grid). */
  resized: ImageSize;
  /** Grid of LLM tokens (rows × cols) where it is one grid. */
  grid?: { rows: number; cols: number };
  /** Tiling models: tile grid and counts before unpadding. */
  tiles?: { rows: number; cols: number; count: number; thumbnail?: boolean };
  /** llava-next only: 576·(tiles + 1) features before `spatial_unpad`. */
  beforeUnpad?: number;
  /** Human-readable account of the count. */
  detail: string;
}

/** LLaVA-NeXT's default AnyRes resolutions, [height, width] in pixels. */
export const LLAVA_NEXT_PINPOINTS: readonly (readonly [number, number])[] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

/** Python's round(): half to even. */
function pyRound(x: number): number {
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Qwen2-VL's smart_resize (transformers `image_processing_qwen2_vl.py`): both sides multiples of
 * `factor`, pixels within [minPixels, maxPixels], aspect ratio kept as closely as possible.
 */
export function qwen2vlSmartResize(height: number, width: number, factor = 28, minPixels = 56 * 56, maxPixels = 16384 * 28 * 28): { height: number; width: number } {
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new ValueError(`absolute aspect ratio must be smaller than 200, got ${Math.max(height, width) / Math.min(height, width)}`, 'image');
  }
  let h = pyRound(height / factor) * factor, w = pyRound(width / factor) * factor;
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: h, width: w };
}

/** LLaVA-NeXT's select_best_resolution: most effective pixels, then least waste. Pinpoints are [h, w]. */
export function llavaNextBestResolution(height: number, width: number, pinpoints = LLAVA_NEXT_PINPOINTS): [number, number] {
  let best: [number, number] | null = null, maxEff = 0, minWaste = Infinity;
  for (const [ph, pw] of pinpoints) {
    const scale = Math.min(pw / width, ph / height);
    const dw = Math.trunc(width * scale), dh = Math.trunc(height * scale);
    const eff = Math.min(dw * dh, width * height);
    const waste = pw * ph - eff;
    if (eff > maxEff || (eff === maxEff && waste < minWaste)) { maxEff = eff; minWaste = waste; best = [ph, pw]; }
  }
  return best!;
}

/** Python int(round(x, 7)): round to 7 decimals (half-even on the scaled value), then truncate. */
function intRound7(x: number): number {
  return Math.trunc(pyRound(x * 1e7) / 1e7);
}

/** HF LlavaNextProcessor._get_unpadded_features: [unpadded features, newline features]. */
function llavaNextUnpadded(height: number, width: number, patchesH: number, patchesW: number, scaleH: number, scaleW: number): [number, number, number, number] {
  let ch = patchesH * scaleH, cw = patchesW * scaleW;
  if (width / height > cw / ch) {
    const newH = intRound7(height * (cw / width));
    const pad = Math.floor((ch - newH) / 2);
    ch -= pad * 2;
  } else {
    const newW = intRound7(width * (ch / height));
    const pad = Math.floor((cw - newW) / 2);
    cw -= pad * 2;
  }
  return [ch * cw, ch, ch, cw];
}

/** InternVL's find_closest_aspect_ratio over grids (i, j) with minTiles ≤ i·j ≤ maxTiles. Returns [cols, rows]. */
export function internvlGrid(width: number, height: number, minTiles = 1, maxTiles = 12, imageSize = 448): [number, number] {
  const ratios: [number, number][] = [];
  for (let n = minTiles; n <= maxTiles; n++) {
    for (let i = 1; i <= n; i++) for (let j = 1; j <= n; j++) {
      if (i * j <= maxTiles && i * j >= minTiles && !ratios.some(([a, b]) => a === i && b === j)) ratios.push([i, j]);
    }
  }
  // Python sorts a set by i·j (stable); ties between equal products keep an order we fix as (i, j).
  ratios.sort((a, b) => a[0] * a[1] - b[0] * b[1] || a[0] - b[0] || a[1] - b[1]);
  const aspect = width / height, area = width * height;
  let bestDiff = Infinity, best: [number, number] = [1, 1];
  for (const r of ratios) {
    const diff = Math.abs(aspect - r[0] / r[1]);
    if (diff < bestDiff) { bestDiff = diff; best = r; }
    else if (diff === bestDiff && area > 0.5 * imageSize * imageSize * r[0] * r[1]) best = r;
  }
  return best;
}

function checkImage(image: ImageSize | undefined, needed: boolean, tokenizer: string): ImageSize | undefined {
  if (image === undefined) {
    if (needed) throw new ValueError(`tokenizer '${tokenizer}' needs image { width, height }`, 'image');
    return undefined;
  }
  if (!image || typeof image !== 'object') throw new ValueError('image must be { width, height }', 'image');
  checkKeys(image, ['width', 'height'], 'image');
  return { width: dim(image.width, 'width', { path: 'image' }), height: dim(image.height, 'height', { path: 'image' }) };
}

const OPTION_KEYS: Record<TokenizerName, readonly (keyof VisualTokenOptions)[]> = {
  'clip-vit-l14-224': [], 'clip-vit-l14-336': [], 'siglip-so400m-384': [],
  vit: ['imageSize', 'patchSize', 'cls'],
  'qwen2-vl': ['minPixels', 'maxPixels', 'patchSize', 'mergeSize'],
  'llava-next': ['gridPinpoints'],
  internvl: ['minTiles', 'maxTiles', 'thumbnail'],
};

function fixedVit(tokenizer: TokenizerName, imageSize: number, patch: number, cls: boolean, llmDropsCls: boolean): VisualTokens {
  const side = Math.floor(imageSize / patch), patches = side * side;
  return {
    tokenizer, llmTokens: patches, encoderSeqLen: patches + (cls ? 1 : 0), encoderPasses: 1,
    resized: { width: imageSize, height: imageSize }, grid: { rows: side, cols: side },
    detail: `${imageSize}px / ${patch} = ${side}×${side} = ${patches} patches${cls ? ` + CLS = ${patches + 1} encoder positions${llmDropsCls ? '; CLS dropped for the LLM' : ''}` : ', no CLS'}`,
  };
}

/**
 * Visual tokens for one image. Fixed-resolution encoders ignore `image` (the processor resizes);
 * qwen2-vl, llava-next and internvl need it.
 * @example visualTokens('qwen2-vl', { width: 1024, height: 1024 }).llmTokens  // 1369 (1036×1036 px)
 */
export function visualTokens(tokenizer: TokenizerName | string, image?: ImageSize, opts: VisualTokenOptions = {}): VisualTokens {
  const name = oneOf(tokenizer, TOKENIZERS, 'tokenizer');
  checkKeys(opts, OPTION_KEYS[name], 'options');
  switch (name) {
    case 'clip-vit-l14-224': checkImage(image, false, name); return fixedVit(name, 224, 14, true, true);
    case 'clip-vit-l14-336': checkImage(image, false, name); return fixedVit(name, 336, 14, true, true);
    case 'siglip-so400m-384': checkImage(image, false, name); return fixedVit(name, 384, 14, false, false);
    case 'vit': {
      checkImage(image, false, name);
      return fixedVit(name, dim(opts.imageSize, 'imageSize', { path: 'options' }), dimOr(opts.patchSize, 14, 'patchSize', { path: 'options' }), opts.cls ?? false, true);
    }
    case 'qwen2-vl': {
      const img = checkImage(image, true, name)!;
      const patch = dimOr(opts.patchSize, 14, 'patchSize', { path: 'options' }), merge = dimOr(opts.mergeSize, 2, 'mergeSize', { path: 'options' });
      const factor = patch * merge;
      const minPixels = dimOr(opts.minPixels, 56 * 56, 'minPixels', { path: 'options' });
      const maxPixels = dimOr(opts.maxPixels, 16384 * 28 * 28, 'maxPixels', { path: 'options' });
      // Name the one that was given (a maxPixels under the default minPixels is the usual way here).
      if (minPixels > maxPixels) throw new ValueError(`minPixels (${minPixels}) exceeds maxPixels (${maxPixels})`, opts.minPixels === undefined ? 'options.maxPixels' : 'options.minPixels');
      const r = qwen2vlSmartResize(img.height, img.width, factor, minPixels, maxPixels);
      const gh = r.height / patch, gw = r.width / patch;
      const rows = r.height / factor, cols = r.width / factor;
      return {
        tokenizer: name, llmTokens: rows * cols, encoderSeqLen: gh * gw, encoderPasses: 1,
        resized: { width: r.width, height: r.height }, grid: { rows, cols },
        detail: `${img.width}×${img.height} → smart_resize ${r.width}×${r.height} → ${gw}×${gh} patches of ${patch}px = ${gh * gw} → ${merge}×${merge} merge → ${cols}×${rows} = ${rows * cols} tokens`,
      };
    }
    case 'llava-next': {
      const img = checkImage(image, true, name)!;
      const pins = opts.gridPinpoints ?? LLAVA_NEXT_PINPOINTS;
      if (!Array.isArray(pins) || pins.length === 0) throw new ValueError('gridPinpoints must be a non-empty list of [height, width]', 'options.gridPinpoints');
      pins.forEach((p, i) => { dim(p?.[0], 'height', { path: `options.gridPinpoints[${i}]` }); dim(p?.[1], 'width', { path: `options.gridPinpoints[${i}]` }); });
      const [bh, bw] = llavaNextBestResolution(img.height, img.width, pins);
      const tile = 336, side = 24, base = side * side;
      const th = Math.floor(bh / tile), tw = Math.floor(bw / tile), count = th * tw;
      const [unpadded, newlines, ch, cw] = llavaNextUnpadded(img.height, img.width, side, side, th, tw);
      const llm = unpadded + newlines + base;
      return {
        tokenizer: name, llmTokens: llm, encoderSeqLen: base + 1, encoderPasses: count + 1,
        resized: { width: bw, height: bh }, grid: { rows: ch, cols: cw }, tiles: { rows: th, cols: tw, count },
        beforeUnpad: base * (count + 1),
        detail: `${img.width}×${img.height} → pinpoint ${bw}×${bh} = ${tw}×${th} tiles of 336 + base: ${count + 1} × 576 = ${base * (count + 1)} before unpad; after unpad ${cw}×${ch} + ${newlines} newlines + 576 base = ${llm}`,
      };
    }
    case 'internvl': {
      const img = checkImage(image, true, name)!;
      const minT = dimOr(opts.minTiles, 1, 'minTiles', { path: 'options' }), maxT = dimOr(opts.maxTiles, 12, 'maxTiles', { path: 'options' });
      if (minT > maxT) throw new ValueError(`minTiles (${minT}) exceeds maxTiles (${maxT})`, 'options.minTiles');
      const [cols, rows] = internvlGrid(img.width, img.height, minT, maxT, 448);
      const count = cols * rows, thumb = (opts.thumbnail ?? true) && count > 1;
      const passes = count + (thumb ? 1 : 0);
      return {
        tokenizer: name, llmTokens: 256 * passes, encoderSeqLen: 1025, encoderPasses: passes,
        resized: { width: 448 * cols, height: 448 * rows }, tiles: { rows, cols, count, thumbnail: thumb },
        detail: `${img.width}×${img.height} → ${cols}×${rows} tiles of 448${thumb ? ' + thumbnail' : ''} = ${passes} × (1024 patches → pixel shuffle → 256) = ${256 * passes} tokens`,
      };
    }
  }
}
