import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { applyColormap, colorAt, colormapLut, COLORMAP_NAMES } from '../../../src/viz/colormap.js';
import { blendImages, drawRegions, drawText, overlayHeatmap, textSize, upsampleBilinear } from '../../../src/viz/overlay.js';
import { ShapeError, ValueError } from '../../../src/errors.js';
import { expectClose } from '../../helpers/close.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';

const hex = (t: Uint8Array, i: number) => [t[i * 3]!, t[i * 3 + 1]!, t[i * 3 + 2]!].map((v) => v.toString(16).padStart(2, '0')).join('');

describe('colormaps', () => {
  it('have matplotlib end points', () => {
    expect(hex(colormapLut('viridis'), 0)).toBe('440154');
    expect(hex(colormapLut('viridis'), 255)).toBe('fde725');
    expect(hex(colormapLut('viridis'), 128)).toBe('21918c');
    expect(hex(colormapLut('magma'), 0)).toBe('000004');
    expect(hex(colormapLut('magma'), 255)).toBe('fcfdbf');
    expect(hex(colormapLut('inferno'), 0)).toBe('000004');
    expect(hex(colormapLut('inferno'), 255)).toBe('fcffa4');
  });

  // The maps are designed with monotone lightness; a mistyped entry would break this.
  it('are monotone in lightness and smooth (entry-wise check of the tables)', () => {
    const lin = (c: number) => { const v = c / 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    for (const name of COLORMAP_NAMES) {
      const t = colormapLut(name);
      let prevL = -1;
      for (let i = 0; i < 256; i++) {
        const Y = 0.2126 * lin(t[i * 3]!) + 0.7152 * lin(t[i * 3 + 1]!) + 0.0722 * lin(t[i * 3 + 2]!);
        const L = Y > 0.008856 ? 116 * Math.cbrt(Y) - 16 : 903.3 * Y;
        expect(L, `${name}[${i}]`).toBeGreaterThan(prevL - 0.35); // 8-bit rounding slack
        prevL = L;
        if (i > 0) for (let c = 0; c < 3; c++) expect(Math.abs(t[i * 3 + c]! - t[(i - 1) * 3 + c]!), `${name}[${i}]`).toBeLessThanOrEqual(6);
        // second differences: a mistyped digit shows up as a spike
        if (i > 0 && i < 255) for (let c = 0; c < 3; c++) {
          expect(Math.abs(t[(i + 1) * 3 + c]! - 2 * t[i * 3 + c]! + t[(i - 1) * 3 + c]!), `${name}[${i}] curvature`).toBeLessThanOrEqual(3);
        }
      }
    }
  });

  it('applyColormap maps min/max to the ends and NaN to the non-finite colour', () => {
    const img = applyColormap([0, 0.5, 1, NaN], 2, 2, { colormap: 'viridis' });
    expect(Array.from(img.data.subarray(0, 4))).toEqual([0x44, 0x01, 0x54, 255]);
    expect(Array.from(img.data.subarray(8, 12))).toEqual([0xfd, 0xe7, 0x25, 255]);
    expect(Array.from(img.data.subarray(12, 16))).toEqual([0, 0, 0, 0]);
    expect(colorAt('viridis', 2)).toEqual([0xfd, 0xe7, 0x25]);
    expect(() => applyColormap([1, 2, 3], 2, 2)).toThrow(ShapeError);
    expect(() => applyColormap([1], 1, 1, { colormap: 'jet' as never })).toThrow(ValueError);
  });
});

/** float64 reference: separable weights from the align_corners=False definition. */
function upsampleRef(grid: number[], gw: number, gh: number, w: number, h: number): number[] {
  const weights = (n: number, src: number) => {
    const rows: Array<Array<[number, number]>> = [];
    for (let i = 0; i < n; i++) {
      let s = ((i + 0.5) * src) / n - 0.5;
      s = Math.min(src - 1, Math.max(0, s));
      const lo = Math.floor(s), hi = Math.min(src - 1, lo + 1), f = s - lo;
      rows.push(lo === hi ? [[lo, 1]] : [[lo, 1 - f], [hi, f]]);
    }
    return rows;
  };
  const wx = weights(w, gw), wy = weights(h, gh);
  const out: number[] = [];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let s = 0;
    for (const [j, a] of wy[y]!) for (const [i, b] of wx[x]!) s += a * b * grid[j * gw + i]!;
    out.push(s);
  }
  return out;
}

describe('overlay', () => {
  it('upsampleBilinear equals the float64 reference on random grids of odd sizes', () => {
    const rnd = mulberry32(11);
    for (const [gw, gh, w, h] of [[1, 1, 5, 3], [3, 5, 97, 31], [7, 7, 7, 7], [16, 9, 33, 129], [5, 4, 3, 2]] as const) {
      const grid = Array.from({ length: gw * gh }, () => rnd() * 2 - 1);
      expectClose(upsampleBilinear(grid, gw, gh, w, h), upsampleRef(grid, gw, gh, w, h), { atol: 1e-6, label: `${gw}x${gh}->${w}x${h}` });
    }
  });

  it('upsampleBilinear is the identity at the same size and stays within the grid range (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer(),
      (gw, gh, w, h, seed) => {
        const rnd = mulberry32(seed);
        const grid = Array.from({ length: gw * gh }, () => rnd());
        const same = upsampleBilinear(grid, gw, gh, gw, gh);
        for (let i = 0; i < grid.length; i++) if (Math.abs(same[i]! - grid[i]!) > 1e-6) return false;
        const lo = Math.min(...grid), hi = Math.max(...grid);
        return upsampleBilinear(grid, gw, gh, w, h).every((v) => v >= lo - 1e-6 && v <= hi + 1e-6);
      }), { numRuns: 200 });
  });

  it('overlayHeatmap: alpha 0 leaves the image, alpha 1 shows the colormap of the upsampled grid', () => {
    const rnd = mulberry32(5);
    const image = { width: 9, height: 7, data: Uint8Array.from({ length: 9 * 7 * 4 }, () => Math.floor(rnd() * 256)) };
    const grid = [0.1, 0.9, 0.4, 0.3, 0.7, 0.2];
    expect(Array.from(overlayHeatmap(image, grid, 3, 2, { alpha: 0 }).data)).toEqual(Array.from(image.data));
    const full = overlayHeatmap(image, grid, 3, 2, { alpha: 1, colormap: 'magma' });
    const up = upsampleBilinear(grid, 3, 2, 9, 7);
    const cm = applyColormap(up, 9, 7, { colormap: 'magma', min: 0.1, max: 0.9 });
    for (let i = 0; i < 9 * 7; i++) {
      for (let c = 0; c < 3; c++) expect(full.data[i * 4 + c]).toBe(cm.data[i * 4 + c]);
      expect(full.data[i * 4 + 3]).toBe(image.data[i * 4 + 3]);
    }
    expect(() => overlayHeatmap(image, grid, 4, 2)).toThrow(ShapeError);
    expect(() => overlayHeatmap(image, grid, 3, 2, { alpha: 2 })).toThrow(ValueError);
  });

  it('overlayHeatmap with a rect draws the grid over that rectangle only (as over the cropped image)', () => {
    const rnd = mulberry32(6);
    const image = { width: 11, height: 8, data: Uint8Array.from({ length: 11 * 8 * 4 }, () => Math.floor(rnd() * 256)) };
    const grid = [0.1, 0.9, 0.4, 0.3, 0.7, 0.2];
    const rect = { x: 2, y: 1, width: 7, height: 5 };
    const out = overlayHeatmap(image, grid, 3, 2, { alpha: 0.8, rect });
    // The cropped image, overlaid alone, must equal the rect of the whole.
    const sub = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 4) };
    for (let y = 0; y < 5; y++) sub.data.set(image.data.subarray(((y + 1) * 11 + 2) * 4, ((y + 1) * 11 + 9) * 4), y * 7 * 4);
    const alone = overlayHeatmap(sub, grid, 3, 2, { alpha: 0.8 });
    for (let y = 0; y < 8; y++) for (let x = 0; x < 11; x++) for (let c = 0; c < 4; c++) {
      const inside = x >= 2 && x < 9 && y >= 1 && y < 6;
      const want = inside ? alone.data[((y - 1) * 7 + x - 2) * 4 + c] : image.data[(y * 11 + x) * 4 + c];
      expect(out.data[(y * 11 + x) * 4 + c]).toBe(want);
    }
    expect(() => overlayHeatmap(image, grid, 3, 2, { rect: { x: 20, y: 0, width: 3, height: 3 } })).toThrow(/covers no pixel/);
    expect(() => overlayHeatmap(image, grid, 3, 2, { rect: { x: NaN, y: 0, width: 3, height: 3 } })).toThrow(ValueError);
  });

  it('blendImages mixes linearly and checks sizes', () => {
    const a = { width: 1, height: 1, data: new Uint8Array([0, 100, 200, 255]) };
    const b = { width: 1, height: 1, data: new Uint8Array([200, 100, 0, 0]) };
    expect(Array.from(blendImages(a, b, 0.25).data)).toEqual([50, 100, 150, 255]);
    expect(() => blendImages(a, { width: 2, height: 1, data: new Uint8Array(8) }, 0.5)).toThrow(ShapeError);
  });

  it('drawText renders the 5×7 glyph bit pattern', () => {
    const img = { width: 7, height: 9, data: new Uint8Array(7 * 9 * 4) };
    drawText(img, '1', 1, 1, { color: [255, 0, 0, 255] });
    const rows: string[] = [];
    for (let y = 1; y < 8; y++) {
      let s = '';
      for (let x = 1; x < 6; x++) s += img.data[(y * 7 + x) * 4] === 255 ? '#' : '.';
      rows.push(s);
    }
    expect(rows).toEqual(['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.']);
    expect(textSize('400', 2)).toEqual({ width: 34, height: 14 });
  });

  it('drawRegions outlines boxes, fills them and centres labels without touching the input', () => {
    const image = { width: 40, height: 40, data: new Uint8Array(40 * 40 * 4).fill(0) };
    const out = drawRegions(image, [{ x: 0, y: 0, width: 20, height: 20, label: '64', fill: [0, 0, 255, 255], stroke: [0, 255, 0, 255] }]);
    expect(image.data.every((v) => v === 0)).toBe(true);
    expect(Array.from(out.data.subarray(0, 4))).toEqual([0, 255, 0, 255]); // outline at the corner
    expect(Array.from(out.data.subarray((2 * 40 + 2) * 4, (2 * 40 + 2) * 4 + 3))).toEqual([0, 0, 255]); // fill inside
    let white = 0;
    for (let i = 0; i < 40 * 40; i++) if (out.data[i * 4] === 255 && out.data[i * 4 + 1] === 255) white++;
    expect(white).toBeGreaterThan(10); // label pixels
    const p = (30 * 40 + 30) * 4;
    expect(Array.from(out.data.subarray(p, p + 4))).toEqual([0, 0, 0, 0]); // outside the box untouched
  });
});
