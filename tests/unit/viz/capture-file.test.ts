import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError, ShapeError, UnsupportedError, ValueError } from '../../../src/errors.js';
import { ndarrayFromValues } from '../../../src/io/npy.js';
import { parseSafetensors, writeSafetensors } from '../../../src/io/safetensors.js';
import { type Capture, captureFitsDType, decodeCapture, encodeCapture, encodedCaptureBytes, makeCapture } from '../../../src/viz/capture-file.js';
import { randomAttention, tinyPng } from './fixtures.js';

function tiny(opts: { layers?: number; heads?: number } = {}): Capture {
  const L = opts.layers ?? 3, H = opts.heads ?? 2;
  const tokens = ['<bos>', ...Array.from({ length: 6 }, (_, i) => `<img ${i}>`), 'red', 'ball'];
  const N = tokens.length;
  return makeCapture({
    tokens, grid: [2, 3], imageSpan: [1, 7],
    attention: Array.from({ length: L }, (_, l) => ndarrayFromValues(randomAttention(H, N, N, 10 + l), [1, H, N, N])),
    imagePng: tinyPng(6, 4), masks: { ball: ndarrayFromValues([0, 1, 1, 0, 0, 0], [2, 3]) }, meta: { model: 'test' },
  });
}

describe('capture file', () => {
  it('encodeCapture refuses (ValueError naming the array) values that f16 or bf16 would store as Infinity; captureFitsDType says so first', () => {
    const c = tiny();
    expect(captureFitsDType(c, 'f16')).toBe(true);
    const big = { ...c, attention: c.attention.map((a, l) => (l === 1 ? Float32Array.from(a, (v, i) => (i === 5 ? 70000 : v)) : a)) };
    expect(captureFitsDType(big, 'f16')).toBe(false);
    expect(captureFitsDType(big, 'bf16')).toBe(true);
    expect(() => encodeCapture(big, { dtype: 'f16' })).toThrow(ValueError);
    expect(() => encodeCapture(big, { dtype: 'f16' })).toThrow(expect.objectContaining({ argument: 'attention.1', message: expect.stringMatching(/attention\.1\[5\] = 70000 does not fit in f16/) }));
    // 65504 is f16's largest value: kept, and the file opens.
    const edge = { ...c, attention: c.attention.map((a) => Float32Array.from(a, (v, i) => (i === 0 ? 65504 : v))) };
    expect(decodeCapture(encodeCapture(edge, { dtype: 'f16' })).attention[0]![0]).toBe(65504);
    const huge = { ...c, attention: c.attention.map((a) => Float32Array.from(a, (v, i) => (i === 0 ? 3.4e38 : v))) };
    expect(() => encodeCapture(huge, { dtype: 'bf16' })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'attention.0' }));
    expect(decodeCapture(encodeCapture(huge)).attention[0]![0]).toBeCloseTo(3.4e38, -34);
  });

  it('round-trips (f32 exactly, f16 within half precision)', () => {
    const c = tiny();
    const d = decodeCapture(encodeCapture(c));
    expect(d.info).toEqual(c.info);
    expect(d.attention.map((a) => [...a])).toEqual(c.attention.map((a) => [...a]));
    expect([...d.masks!.get('ball')!]).toEqual([0, 1, 1, 0, 0, 0]);
    expect(d.imagePng).toEqual(c.imagePng);
    const h = decodeCapture(encodeCapture(c, { dtype: 'f16' }));
    for (let l = 0; l < 3; l++) for (let i = 0; i < c.attention[l]!.length; i++) expect(Math.abs(h.attention[l]![i]! - c.attention[l]![i]!)).toBeLessThan(1e-3);
  });

  it('defaults: text positions are the stored rows outside the image span; image size from IHDR', () => {
    const c = tiny();
    expect(c.info.textPositions).toEqual([0, 7, 8]);
    expect(c.info.image).toEqual({ width: 6, height: 4 });
    expect(c.info.queryPositions.length).toBe(9);
  });

  it('keeps only text rows when queryPositions is given', () => {
    const N = 9, H = 2;
    const c = makeCapture({
      tokens: Array.from({ length: N }, (_, i) => `t${i}`), grid: { rows: 2, cols: 3 }, imageSpan: [1, 7], queryPositions: [7, 8],
      attention: [ndarrayFromValues(randomAttention(H, 2, N, 3), [H, 2, N])],
    });
    expect(c.info.textPositions).toEqual([7, 8]);
    expect(decodeCapture(encodeCapture(c)).info.queryPositions).toEqual([7, 8]);
  });

  it('wrong shapes give ShapeError naming the argument and the dimension', () => {
    const N = 9;
    const tokens = Array.from({ length: N }, (_, i) => `t${i}`);
    const att = (h: number, q: number, k: number) => ndarrayFromValues(randomAttention(h, q, k, 1), [h, q, k]);
    const cases: [() => unknown, string, string | undefined][] = [
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 8], attention: [att(2, N, N)] }), 'imageSpan', 'grid'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, N, N + 1)] }), 'attention[0]', 'seqLen'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, N, N), att(3, N, N)] }), 'attention[1]', 'numHeads'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, 4, N)] }), 'queryPositions', 'numQueries'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, 2, N)], queryPositions: [8, 7] }), 'queryPositions', 'seqLen'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, 2, N)], queryPositions: [7, 9] }), 'queryPositions', 'seqLen'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, N, N)], layerMeans: [ndarrayFromValues(new Float32Array(N * (N - 1)), [N, N - 1])] }), 'layerMeans[0]', 'seqLen'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, N, N)], headImportance: ndarrayFromValues([1, 2, 3], [1, 3]) }), 'headImportance', 'numHeads'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att(2, N, N), ndarrayFromValues(randomAttention(3, N, N, 1), [1, 3, N, N])] }), 'attention[1]', 'numHeads'],
      [() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [ndarrayFromValues(randomAttention(2, N, N, 1), [1, 2, N, N])], batchIndex: 1 }), 'batchIndex', 'batch'],
      [() => makeCapture({ tokens: [], grid: [2, 3], imageSpan: [0, 0], attention: [] }), 'tokens', 'seqLen'],
    ];
    for (const [f, argument, dimension] of cases) {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(err, argument).toBeInstanceOf(ShapeError);
      expect((err as ShapeError).argument, (err as Error).message).toBe(argument);
      if (dimension) expect((err as ShapeError).dimension, (err as Error).message).toBe(dimension);
    }
  });

  it('a truncated image and an unknown dtype are refused up front', () => {
    const N = 9, tokens = Array.from({ length: N }, (_, i) => `t${i}`);
    const att = ndarrayFromValues(randomAttention(2, N, N, 1), [2, N, N]);
    const png = tinyPng(8, 6);
    expect(() => makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att], imagePng: png.subarray(0, 40) })).toThrow(/truncated/);
    const c = makeCapture({ tokens, grid: [2, 3], imageSpan: [1, 7], attention: [att], imagePng: png });
    expect(() => encodeCapture(c, { dtype: 'f64' as never })).toThrow(expect.objectContaining({ argument: 'dtype' }));
  });

  it('negative or NaN probabilities give ValueError naming the layer', () => {
    const N = 9;
    const v = randomAttention(1, N, N, 2);
    v[5] = NaN;
    expect(() => makeCapture({ tokens: Array.from({ length: N }, () => 'x'), grid: [2, 3], imageSpan: [1, 7], attention: [ndarrayFromValues(v, [1, N, N])] }))
      .toThrow(/attention\[0\] holds NaN/);
    v[5] = -0.1;
    expect(() => makeCapture({ tokens: Array.from({ length: N }, () => 'x'), grid: [2, 3], imageSpan: [1, 7], attention: [ndarrayFromValues(v, [1, N, N])] }))
      .toThrow(ValueError);
  });

  it('a safetensors file that is not a capture, or of another version, is a FormatError', () => {
    const plain = writeSafetensors({ a: ndarrayFromValues([1], [1]) });
    expect(() => decodeCapture(plain)).toThrow(/not a capture file/);
    const c = encodeCapture(tiny({ layers: 1 }));
    const st = parseSafetensors(c);
    const v2 = writeSafetensors(st.tensors, { ...st.metadata, version: '2' });
    expect(() => decodeCapture(v2)).toThrow(/version "2"/);
    const missing = writeSafetensors([...st.tensors].filter(([k]) => k !== 'attention.0'), st.metadata);
    expect(() => decodeCapture(missing)).toThrow(/no tensor attention.0/);
  });

  it('fuzz: corrupted capture files raise only typed errors', () => {
    const base = encodeCapture(tiny({ layers: 2, heads: 1 }));
    fc.assert(fc.property(fc.nat({ max: base.length }), fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), (cut, flips) => {
      const b = base.slice(0, cut === 0 ? base.length : cut);
      for (const [i, v] of flips) if (i < b.length) b[i] = v;
      try { decodeCapture(b); } catch (e) {
        if (!(e instanceof FormatError || e instanceof ShapeError || e instanceof ValueError || e instanceof UnsupportedError)) throw e;
      }
    }), { numRuns: 1500 });
  });

  it('an image whose IDAT is corrupt (CRC mismatch, or a bad zlib stream under a good CRC) is a FormatError naming image.png', () => {
    const c = tiny();
    const png = c.imagePng!;
    const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
    let at = 8;
    while (String.fromCharCode(...png.subarray(at + 4, at + 8)) !== 'IDAT') at += 12 + dv.getUint32(at);
    const len = dv.getUint32(at);
    for (const fixCrc of [false, true]) {
      const bad = png.slice();
      bad[at + 8 + Math.floor(len / 2)] ^= 0x5a;
      if (fixCrc) new DataView(bad.buffer).setUint32(at + 8 + len, crc32(bad.subarray(at + 4, at + 8 + len)));
      // pngSize (chunk lengths only) accepted it: the capture validated and then nothing could draw it.
      const file = encodeCapture({ ...c, imagePng: bad });
      let err: unknown;
      try { decodeCapture(file); } catch (e) { err = e; }
      expect(err, fixCrc ? 'zlib' : 'crc').toBeInstanceOf(FormatError);
      expect((err as FormatError).path).toBe('image.png');
      if (!fixCrc) expect((err as Error).message).toMatch(/CRC mismatch in IDAT/);
    }
  });

  it('encodedCaptureBytes is the encoded length, computed without encoding', () => {
    const c = tiny();
    for (const dtype of ['f32', 'f16', 'bf16'] as const) expect(encodedCaptureBytes(c, { dtype }), dtype).toBe(encodeCapture(c, { dtype }).length);
    const bare = makeCapture({ tokens: ['a', 'b'], grid: [1, 1], imageSpan: [0, 1], attention: [ndarrayFromValues([0.5, 0.5, 0.25, 0.75], [1, 2, 2])] });
    expect(encodedCaptureBytes(bare)).toBe(encodeCapture(bare).length);
  });
});
