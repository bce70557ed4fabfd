import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { computeTexture, CH, NUM_TEXTURE_CHANNELS, srgbToLab, TEXTURE_CHANNELS } from '../../../src/relevance/texture.js';
import { planGrid } from '../../../src/relevance/regions.js';
import { resamplePlanar, rgbaToRgb, rgbToRgba, type RgbImage } from '../../../src/relevance/image-ops.js';
import { ShapeError, ValueError } from '../../../src/errors.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';
import { expectClose } from '../../helpers/close.js';

function randomImage(w: number, h: number, seed: number): RgbImage {
  const rnd = mulberry32(seed);
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => rnd()) };
}

/** Float64 reference of the per-pixel features, written directly from the table in texture.ts. */
function referenceFeatures(img: RgbImage, rad: number): Float64Array[] {
  const { width: W, height: H, data } = img, n = W * H;
  const lin = (v: number) => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const f = (t: number) => (t > 0.008856 ? Math.cbrt(t) : 7.787 * t + 4 / 29);
  const ch = Array.from({ length: NUM_TEXTURE_CHANNELS }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    const r = data[i]!, g = data[n + i]!, b = data[2 * n + i]!;
    ch[0]![i] = r; ch[1]![i] = g; ch[2]![i] = b;
    const R = lin(r), G = lin(g), B = lin(b);
    const X = (0.412453 * R + 0.35758 * G + 0.180423 * B) / 0.95047, Y = 0.212671 * R + 0.71516 * G + 0.072169 * B, Z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / 1.08883;
    const L = Y > 0.008856 ? 116 * f(Y) - 16 : 903.3 * Y;
    ch[3]![i] = L / 100; ch[4]![i] = (500 * (f(X) - f(Y)) + 128) / 255; ch[5]![i] = (200 * (f(Y) - f(Z)) + 128) / 255;
    const mx = Math.max(r, g, b), mn = Math.min(r, g, b);
    ch[13]![i] = mx > 0 ? (mx - mn) / mx : 0;
  }
  const Lp = (y: number, x: number) => ch[3]![Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))]!;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], ky = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]];
    let gx = 0, gy = 0;
    for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) { gx += kx[a + 1]![b + 1]! * Lp(y + a, x + b) / 8; gy += ky[a + 1]![b + 1]! * Lp(y + a, x + b) / 8; }
    const i = y * W + x;
    ch[6]![i] = gx; ch[7]![i] = gy; ch[8]![i] = Math.sqrt(gx * gx + gy * gy + 1e-8);
    const fy = y / (H - 1), fx = x / (W - 1);
    ch[9]![i] = fy; ch[10]![i] = fx; ch[11]![i] = Math.hypot(fy - 0.5, fx - 0.5) / Math.SQRT1_2;
    let s1 = 0, s2 = 0, c = 0;
    for (let yy = Math.max(0, y - rad); yy <= Math.min(H - 1, y + rad); yy++) for (let xx = Math.max(0, x - rad); xx <= Math.min(W - 1, x + rad); xx++) {
      const v = ch[3]![yy * W + xx]!; s1 += v; s2 += v * v; c++;
    }
    ch[12]![i] = s2 / c - (s1 / c) ** 2;
  }
  for (const k of [6, 7, 8, 12]) {
    const a = ch[k]!; let lo = Infinity, hi = -Infinity;
    for (const v of a) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    for (let i = 0; i < n; i++) a[i] = hi - lo > 1e-6 ? (a[i]! - lo) / (hi - lo) : 0;
  }
  return ch;
}

describe('texture array', () => {
  it('has 14 channels: the seed without its two duplicates, plus b*, local variance and saturation', () => {
    expect(TEXTURE_CHANNELS.length).toBe(14);
    expect(new Set(TEXTURE_CHANNELS).size).toBe(14);
  });

  it('per-pixel features equal a float64 reference on random images of odd sizes', () => {
    for (const [w, h, p, seed] of [[35, 21, 7, 1], [39, 26, 13, 2], [15, 45, 5, 3]] as const) {
      const img = randomImage(w, h, seed);
      const plan = planGrid(w, h, { patchSize: p, regionRows: 2, regionCols: 1 });
      expect([plan.workWidth, plan.workHeight]).toEqual([w, h]); // no resampling at these sizes
      const tex = computeTexture(img, plan, { localVarianceRadius: 2 });
      const ref = referenceFeatures(img, 2);
      const n = w * h;
      for (let c = 0; c < NUM_TEXTURE_CHANNELS; c++) {
        expectClose(tex.pixels.subarray(c * n, (c + 1) * n), ref[c]!, { atol: 2e-5, label: `${TEXTURE_CHANNELS[c]} ${w}x${h}` });
      }
      // Patch means and region means.
      const g = plan.gridRows * plan.gridCols;
      for (let c = 0; c < NUM_TEXTURE_CHANNELS; c++) {
        const want = new Float64Array(g);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) want[Math.floor(y / p) * plan.gridCols + Math.floor(x / p)] += ref[c]![y * w + x]! / (p * p);
        expectClose(tex.patches.subarray(c * g, (c + 1) * g), want, { atol: 2e-5, label: `patches ${TEXTURE_CHANNELS[c]}` });
        for (const r of plan.regions) {
          let s = 0;
          for (let pr = r.patchRow0; pr < r.patchRow1; pr++) for (let pc = r.patchCol0; pc < r.patchCol1; pc++) s += want[pr * plan.gridCols + pc]!;
          expect(Math.abs(tex.regions[c * plan.regions.length + r.index]! - s / r.basePatches)).toBeLessThan(2e-5);
        }
      }
    }
  });

  it('CIE L*a*b* matches known D65 values', () => {
    const [L, a, b] = srgbToLab(1, 0, 0);
    expect(L).toBeCloseTo(53.24, 1); expect(a).toBeCloseTo(80.09, 1); expect(b).toBeCloseTo(67.2, 1);
    const w = srgbToLab(1, 1, 1);
    expect(w[0]).toBeCloseTo(100, 2); expect(Math.abs(w[1])).toBeLessThan(0.01); expect(Math.abs(w[2])).toBeLessThan(0.01);
    expect(srgbToLab(0, 0, 0)).toEqual([0, 0, 0]);
  });

  it('normalises per image: min-max channels span [0, 1]; a flat image gives zeros, never NaN (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 8, max: 30 }), fc.integer({ min: 8, max: 30 }), fc.integer(), (w, h, seed) => {
      const img = randomImage(w, h, seed);
      const tex = computeTexture(img, planGrid(w, h, { patchSize: 4, regionRows: 1, regionCols: 1 }));
      const n = tex.plan.workWidth * tex.plan.workHeight;
      for (const c of [CH.sobel_x, CH.sobel_y, CH.sobel_mag, CH.local_variance]) {
        const pl = tex.pixels.subarray(c * n, (c + 1) * n);
        if (Math.abs(Math.min(...pl)) > 1e-6 || Math.abs(Math.max(...pl) - 1) > 1e-6) return false;
      }
      return tex.pixels.every((v) => Number.isFinite(v) && v >= -1e-6 && v <= 1 + 1e-6);
    }), { numRuns: 40 });
    const flat = { width: 16, height: 16, data: new Float32Array(3 * 256).fill(0.4) };
    const tex = computeTexture(flat, planGrid(16, 16, { patchSize: 4 }));
    expect(tex.pixels.every((v) => Number.isFinite(v))).toBe(true);
    expect(tex.pixels.subarray(CH.sobel_mag * 256, (CH.sobel_mag + 1) * 256).every((v) => v === 0)).toBe(true);
  });

  it('crops to whole patches at full scale and resamples (area average) when shrinking', () => {
    const img = randomImage(50, 30, 9);
    const crop = planGrid(50, 30, { patchSize: 7 });
    expect([crop.workWidth, crop.workHeight]).toEqual([49, 28]);
    expect(crop.crop).toEqual({ x: 0, y: 1, width: 49, height: 28 });
    expect(crop.regions[0]!.imageRect.y).toBe(1);
    const tc = computeTexture(img, crop);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 49; x++) expect(tc.work.data[y * 49 + x]).toBe(img.data[(y + 1) * 50 + x]);
    const plan = planGrid(50, 30, { patchSize: 7, maxSide: 35 });
    expect([plan.workWidth, plan.workHeight]).toEqual([35, 21]);
    const tex = computeTexture(img, plan);
    // Area averaging preserves the mean of each channel.
    const mean = (a: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]!; return s / a.length; };
    expect(Math.abs(mean(img.data.subarray(0, 1500)) - mean(tex.work.data.subarray(0, 35 * 21)))).toBeLessThan(0.01);
    const down = resamplePlanar(Float32Array.from([1, 2, 3, 4]), 1, 4, 1, 2, 1);
    expectClose(down, [1.5, 3.5], { atol: 1e-6 });
  });

  it('rejects bad input with typed errors', () => {
    const plan = planGrid(16, 16, { patchSize: 4 });
    expect(() => computeTexture({ width: 0, height: 16, data: new Float32Array(0) }, plan)).toThrow(ValueError);
    expect(() => computeTexture({ width: 16, height: 16, data: new Float32Array(10) }, plan)).toThrow(ShapeError);
    expect(() => computeTexture(randomImage(17, 16, 1), plan)).toThrow(/grid plan/);
    expect(() => computeTexture(randomImage(16, 16, 1), plan, { localVarianceRadius: -1 })).toThrow(/localVarianceRadius/);
    expect(() => rgbaToRgb({ width: 0, height: 0, data: new Uint8Array(0) })).toThrow(/zero-area/);
  });

  it('rgbToRgba clamps values outside [0, 1] as documented (shape still checked)', () => {
    const img = { width: 2, height: 1, data: Float32Array.from([-0.5, 1.5, 0.5, 0.5, 2, -1]) };
    expect(Array.from(rgbToRgba(img).data)).toEqual([0, 128, 255, 255, 255, 128, 0, 255]);
    expect(() => rgbToRgba({ width: 2, height: 1, data: new Float32Array(5) })).toThrow(ShapeError);
  });
});

describe('region grid', () => {
  it('partitions the base grid exactly (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 16, max: 3000 }), fc.integer({ min: 16, max: 3000 }), fc.integer({ min: 4, max: 32 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), (w, h, p, rr, rc) => {
      const g0 = planGrid(w, h, { patchSize: p, regionRows: 1, regionCols: 1, maxSide: 1024 });
      const plan = planGrid(w, h, { patchSize: p, regionRows: Math.min(rr, g0.gridRows), regionCols: Math.min(rc, g0.gridCols), maxSide: 1024 });
      const seen = new Int32Array(plan.gridRows * plan.gridCols).fill(-1);
      for (const r of plan.regions) for (let a = r.patchRow0; a < r.patchRow1; a++) for (let b = r.patchCol0; b < r.patchCol1; b++) {
        if (seen[a * plan.gridCols + b] !== -1) return false;
        seen[a * plan.gridCols + b] = r.index;
      }
      return seen.every((v, i) => v >= 0 && plan.patchRegion[i] === v) && Math.max(plan.workWidth, plan.workHeight) <= 1024 + p;
    }), { numRuns: 300 });
    const k = planGrid(140, 98, { patchSize: 14, regionPatches: 3 });
    expect([k.gridRows, k.gridCols, k.regionRows, k.regionCols]).toEqual([7, 10, 3, 4]);
    expect(k.regions[k.regions.length - 1]!.basePatches).toBe(1);
  });

  it('rejects zero-area images and impossible grids', () => {
    expect(() => planGrid(0, 10)).toThrow(/zero-area/);
    expect(() => planGrid(28, 28, { patchSize: 14, regionRows: 3 })).toThrow(/regionRows/);
    expect(() => planGrid(28, 28, { patchSize: 0 })).toThrow(/patchSize/);
  });
});
