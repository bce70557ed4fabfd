import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import sharp from 'sharp';
import { zlibSync } from 'fflate';
import { decodePng, encodePng, readPngText, type RgbaImage } from '../../../src/viz/png.js';
import { FormatError, ShapeError, ValueError } from '../../../src/errors.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';

function randomImage(width: number, height: number, seed: number, smooth = false): RgbaImage {
  const rnd = mulberry32(seed);
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const o = (y * width + x) * 4;
    for (let c = 0; c < 4; c++) {
      data[o + c] = smooth ? (x * 7 + y * 3 + c * 50 + Math.floor(rnd() * 4)) & 0xff : Math.floor(rnd() * 256);
    }
  }
  return { width, height, data };
}

describe('PNG codec', () => {
  it('round-trips random RGBA images of odd sizes exactly', () => {
    for (const [w, h] of [[1, 1], [97, 13], [3, 129], [128, 1], [33, 65]] as const) {
      for (const smooth of [false, true]) {
        const img = randomImage(w, h, w * 1000 + h, smooth);
        const back = decodePng(encodePng(img));
        expect(back.width).toBe(w);
        expect(back.height).toBe(h);
        expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
      }
    }
  });

  it('round-trips (property, fast-check)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer(), fc.boolean(), (w, h, seed, smooth) => {
      const img = randomImage(w, h, seed, smooth);
      const back = decodePng(encodePng(img, { level: 1 }));
      return back.width === w && back.height === h && Buffer.from(back.data).equals(Buffer.from(img.data));
    }), { numRuns: 60 });
  });

  it('writes PNGs that sharp (libpng/libspng) decodes to the same pixels', async () => {
    const img = randomImage(61, 37, 7, true);
    const { data, info } = await sharp(Buffer.from(encodePng(img))).raw().ensureAlpha().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([61, 37, 4]);
    expect(Buffer.from(data).equals(Buffer.from(img.data))).toBe(true);
  });

  // sharp writes each colour type / bit depth / interlace; our decoder must match sharp's own decode.
  type Sharp = ReturnType<typeof sharp>;
  const variants: Array<[string, (s: Sharp) => Sharp]> = [
    ['rgba 8-bit', (s) => s.png()],
    ['rgb 8-bit', (s) => s.removeAlpha().png()],
    ['grey 8-bit', (s) => s.removeAlpha().greyscale().png()],
    ['grey+alpha', (s) => s.greyscale().png()],
    ['interlaced rgba', (s) => s.png({ progressive: true })],
    ['interlaced grey', (s) => s.removeAlpha().greyscale().png({ progressive: true })],
    ['palette', (s) => s.png({ palette: true, colours: 200, dither: 0 })],
    ['palette 2-bit', (s) => s.png({ palette: true, colours: 4, dither: 0 })],
    ['16-bit rgba', (s) => s.toColourspace('rgb16').png()],
  ];
  for (const [name, make] of variants) {
    it(`decodes ${name} like sharp`, async () => {
      for (const [w, h] of [[1, 1], [23, 11], [37, 41]] as const) {
        const src = randomImage(w, h, w + h, true);
        const png = await make(sharp(Buffer.from(src.data), { raw: { width: w, height: h, channels: 4 } })).toBuffer();
        const ours = decodePng(new Uint8Array(png));
        const ref = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
        let refData = ref.data as Buffer | Uint16Array;
        if ((ref.info as { depth?: string }).depth === 'ushort') { // depth: in sharp's output info, not in its types
          const u16 = new Uint16Array(ref.data.buffer, ref.data.byteOffset, ref.data.length / 2);
          refData = Buffer.from(Array.from(u16, (v) => v >> 8));
        }
        expect([ours.width, ours.height]).toEqual([w, h]);
        expect(ref.info.channels).toBe(4);
        expect(Buffer.from(ours.data).equals(Buffer.from(refData as Buffer))).toBe(true);
      }
    });
  }

  it('keeps tEXt metadata', () => {
    const png = encodePng(randomImage(5, 3, 1), { text: { Software: 'vlm-attention', Comment: 'heatmap' } });
    expect(readPngText(png)).toEqual({ Software: 'vlm-attention', Comment: 'heatmap' });
  });

  it('rejects corrupt, truncated and zero-area files with FormatError', () => {
    const png = encodePng(randomImage(20, 20, 3));
    const flipped = png.slice();
    flipped[png.length - 30] ^= 0xff; // inside IDAT: CRC mismatch
    expect(() => decodePng(flipped)).toThrow(FormatError);
    expect(() => decodePng(flipped)).toThrow(/CRC mismatch/);
    expect(() => decodePng(png.subarray(0, png.length - 20))).toThrow(/truncated/);
    expect(() => decodePng(png.subarray(0, 40))).toThrow(FormatError);
    expect(() => decodePng(new Uint8Array([1, 2, 3]))).toThrow(/signature/);
    // A zero-width IHDR with a valid CRC.
    const zero = encodePng(randomImage(1, 1, 4));
    const dv = new DataView(zero.buffer);
    dv.setUint32(16, 0);
    let c = 0xffffffff;
    for (let i = 12; i < 29; i++) { c ^= zero[i]!; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; }
    dv.setUint32(29, (c ^ 0xffffffff) >>> 0);
    expect(() => decodePng(zero)).toThrow(/zero-area/);
  });

  it('refuses image data past what the header holds (a 1×1 image inflating to 8 MB), a bad Adler-32 and a bad palette index, naming the path', () => {
    const crc = (b: Uint8Array) => { let c = 0xffffffff; for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; } return (c ^ 0xffffffff) >>> 0; };
    const chunk = (type: string, data: Uint8Array) => {
      const out = new Uint8Array(12 + data.length), dv = new DataView(out.buffer);
      dv.setUint32(0, data.length);
      const td = new Uint8Array(4 + data.length);
      td.set([...type].map((ch) => ch.charCodeAt(0))); td.set(data, 4);
      out.set(td, 4); dv.setUint32(8 + data.length, crc(td));
      return out;
    };
    const png = (colorType: number, idat: Uint8Array, extra: Uint8Array[] = []) => {
      const ihdr = new Uint8Array(13), dv = new DataView(ihdr.buffer);
      dv.setUint32(0, 1); dv.setUint32(4, 1); ihdr[8] = 8; ihdr[9] = colorType;
      const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), ...extra, chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
      const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
      let o = 0;
      for (const x of parts) { out.set(x, o); o += x.length; }
      return out;
    };
    const t0 = performance.now();
    expect(() => decodePng(png(2, zlibSync(new Uint8Array(8e6))))).toThrow(/more image data than 1×1 pixels hold/);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(decodePng(png(2, zlibSync(new Uint8Array([0, 16, 32, 48])))).data).toEqual(new Uint8Array([16, 32, 48, 255]));
    const z = zlibSync(new Uint8Array([0, 16, 32, 48]));
    z[z.length - 1] ^= 1;
    expect(() => decodePng(png(2, z))).toThrow(/Adler-32/);
    try { decodePng(png(3, zlibSync(new Uint8Array([0, 5])), [chunk('PLTE', new Uint8Array([1, 2, 3]))]), 'cat.png'); throw new Error('no throw'); } catch (e) {
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError & { path?: string }).path).toBe('cat.png');
      expect((e as Error).message).toMatch(/^PNG 'cat.png': palette index 5 out of range/);
    }
  });

  it('rejects bad encoder input with typed errors naming the argument', () => {
    expect(() => encodePng({ width: 0, height: 2, data: new Uint8Array(0) })).toThrow(ValueError);
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8Array(15) })).toThrow(ShapeError);
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8Array(16) }, { level: 11 })).toThrow(/level/);
  });
});
