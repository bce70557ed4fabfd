/**
 * Visual tokens per image. The expected tables were produced by running the published Python
 * algorithms (transformers' Qwen2-VL smart_resize, LLaVA-NeXT select_best_resolution and
 * _get_unpadded_features, InternVL's dynamic_preprocess) in CPython on the same sizes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError, qwen2vlSmartResize, visualTokens } from '../../../src/index.js';

describe('fixed-resolution encoders (relevance.md §3)', () => {
  it('ViT-L/14 @224: 256 + CLS; @336: 576 + CLS; SigLIP 384/14: 729, no CLS', () => {
    const a = visualTokens('clip-vit-l14-224'), b = visualTokens('clip-vit-l14-336'), c = visualTokens('siglip-so400m-384');
    expect([a.llmTokens, a.encoderSeqLen]).toEqual([256, 257]);
    expect([b.llmTokens, b.encoderSeqLen]).toEqual([576, 577]);
    expect([c.llmTokens, c.encoderSeqLen]).toEqual([729, 729]);
    // PaliGemma's SigLIP at 224/448/896 through the generic ViT: 256, 1024, 4096.
    expect([224, 448, 896].map((s) => visualTokens('vit', undefined, { imageSize: s, patchSize: 14 }).llmTokens)).toEqual([256, 1024, 4096]);
  });
});

describe('Qwen2-VL dynamic resolution', () => {
  // [width, height, maxPixels, resized width, resized height, tokens] from the Python reference.
  const table: [number, number, number, number, number, number][] = [
    [1024, 1024, 12845056, 1036, 1036, 1369], [1024, 1024, 1003520, 980, 980, 1225],
    [1022, 700, 12845056, 1008, 700, 900], // 1022/28 = 36.5 rounds half to even → 36
    [10, 10, 12845056, 56, 56, 4], // min_pixels 3,136 → 4 tokens
    [4000, 3000, 12845056, 4004, 2996, 15301], [4000, 3000, 1003520, 1148, 840, 1230],
    [1920, 1080, 12845056, 1932, 1092, 2691], [1920, 1080, 1003520, 1316, 728, 1222],
    [640, 480, 12845056, 644, 476, 391], [50, 9000, 12845056, 56, 8988, 642],
  ];
  for (const [w, h, max, rw, rh, tokens] of table) {
    it(`${w}×${h} (max_pixels ${max}) → ${rw}×${rh}, ${tokens} tokens`, () => {
      const t = visualTokens('qwen2-vl', { width: w, height: h }, { maxPixels: max });
      expect(t.resized).toEqual({ width: rw, height: rh });
      expect(t.llmTokens).toBe(tokens);
      expect(t.encoderSeqLen).toBe(4 * tokens); // 2×2 merge
    });
  }
  it('defaults to the released configs\' max_pixels (16,384 tokens)', () => {
    expect(visualTokens('qwen2-vl', { width: 1024, height: 1024 }).llmTokens).toBe(1369);
  });
  it('property: sides are multiples of 28 and pixels stay within [min, max] (max ≫ min; the min branch may overshoot a max close to min, as in the reference)', () => {
    fc.assert(fc.property(fc.integer({ min: 28, max: 6000 }), fc.integer({ min: 28, max: 6000 }), fc.integer({ min: 50_000, max: 2_000_000 }), (w, h, max) => {
      fc.pre(Math.max(w, h) / Math.min(w, h) <= 200);
      const r = qwen2vlSmartResize(h, w, 28, 3136, max);
      expect(r.height % 28).toBe(0);
      expect(r.width % 28).toBe(0);
      expect(r.height * r.width).toBeLessThanOrEqual(Math.max(max, 28 * 28 * Math.ceil(Math.max(w, h) / Math.min(w, h))));
      expect(r.height * r.width).toBeGreaterThanOrEqual(3136);
    }), { numRuns: 300, seed: 5 });
  });
  it('rejects an aspect ratio above 200', () => {
    expect(() => visualTokens('qwen2-vl', { width: 10000, height: 40 })).toThrow(ValueError);
  });
});

describe('LLaVA-NeXT AnyRes', () => {
  // [width, height, pinpoint w, pinpoint h, after unpad (HF count), before unpad]
  const table: [number, number, number, number, number, number][] = [
    [672, 672, 672, 672, 2928, 2880], [1024, 768, 672, 672, 2340, 2880], [336, 1008, 336, 1008, 2376, 2304],
    [500, 1500, 336, 1008, 2376, 2304], [1920, 1080, 672, 672, 1948, 2880], [800, 600, 672, 672, 2340, 2880], [300, 200, 672, 336, 1464, 1728],
  ];
  for (const [w, h, pw, ph, after, before] of table) {
    it(`${w}×${h} → ${pw}×${ph}: ${before} before unpad, ${after} after (unpadded + newlines + 576 base)`, () => {
      const t = visualTokens('llava-next', { width: w, height: h });
      expect(t.resized).toEqual({ width: pw, height: ph });
      expect(t.beforeUnpad).toBe(before);
      expect(t.llmTokens).toBe(after);
      expect(t.encoderPasses).toBe((pw / 336) * (ph / 336) + 1);
      expect(t.encoderSeqLen).toBe(577);
    });
  }
});

describe('InternVL 448 tiles + pixel shuffle', () => {
  // [width, height, maxTiles, cols, rows, tokens]
  const table: [number, number, number, number, number, number][] = [
    [448, 448, 12, 1, 1, 256], [1024, 768, 12, 4, 3, 3328], [1024, 768, 6, 3, 2, 1792], [800, 1300, 12, 2, 3, 1792],
    [1000, 1000, 12, 3, 3, 2560], [1000, 1000, 6, 2, 2, 1280], [1920, 1080, 12, 4, 2, 2304], [1920, 1080, 6, 2, 1, 768],
    [300, 200, 12, 3, 2, 1792], [4000, 500, 12, 8, 1, 2304], [4000, 500, 6, 6, 1, 1792],
  ];
  for (const [w, h, max, cols, rows, tokens] of table) {
    it(`${w}×${h} max ${max} → ${cols}×${rows} tiles: ${tokens} tokens`, () => {
      const t = visualTokens('internvl', { width: w, height: h }, { maxTiles: max });
      expect([t.tiles!.cols, t.tiles!.rows]).toEqual([cols, rows]);
      expect(t.llmTokens).toBe(tokens);
      expect(t.encoderSeqLen).toBe(1025);
    });
  }
  it('no thumbnail when asked', () => {
    expect(visualTokens('internvl', { width: 1024, height: 768 }, { thumbnail: false }).llmTokens).toBe(12 * 256);
  });
});

describe('bad input', () => {
  it('typed errors', () => {
    expect(() => visualTokens('qwen2-vl')).toThrow(/needs image/);
    expect(() => visualTokens('qwen2-vl', { width: -5, height: 10 })).toThrow(ShapeError);
    expect(() => visualTokens('qwen2-vl', { width: 5.5, height: 10 })).toThrow(/image.width/);
    expect(() => visualTokens('gpt-vision')).toThrow(/clip-vit-l14-224/);
    expect(() => visualTokens('internvl', { width: 5, height: 5 }, { maxPixels: 10 })).toThrow(/options.maxPixels/);
    expect(() => visualTokens('qwen2-vl', { width: 100, height: 100, depth: 3 } as never)).toThrow(/image.depth/);
  });

  it('a maxPixels under the default minPixels names maxPixels (the option given), and minPixels when both are', () => {
    expect(() => visualTokens('qwen2-vl', { width: 640, height: 480 }, { maxPixels: 100 })).toThrow(expect.objectContaining({ argument: 'options.maxPixels' }));
    expect(() => visualTokens('qwen2-vl', { width: 640, height: 480 }, { minPixels: 5000, maxPixels: 4000 })).toThrow(expect.objectContaining({ argument: 'options.minPixels' }));
  });
});
