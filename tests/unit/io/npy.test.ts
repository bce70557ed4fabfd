import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { FormatError, UnsupportedError, ShapeError } from '../../../src/errors.js';
import { type NdArray, ndarrayFromValues, ndarrayToFloat64, ndarrayToTensor, parseNpy, parseNpz, pythonShape, tensorToNdArray, writeNpy, writeNpz } from '../../../src/io/npy.js';
import { randn } from '../../../src/tensor/tensor.js';
import { f16ToF32, f32ToF16 } from '../../../src/tensor/dtype.js';

/** Builds a .npy file byte by byte, as numpy's format.py does (version 1.0, 64-byte aligned). */
function handNpy(header: string, body: Uint8Array, opts: { major?: number; align?: number } = {}): Uint8Array {
  const major = opts.major ?? 1, align = opts.align ?? 64;
  const lenBytes = major === 1 ? 2 : 4;
  let h = header;
  const pre = 8 + lenBytes;
  while ((pre + h.length + 1) % align !== 0) h += ' ';
  h += '\n';
  const out = new Uint8Array(pre + h.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  if (major === 1) { out[8] = h.length & 0xff; out[9] = h.length >> 8; } else new DataView(out.buffer).setUint32(8, h.length, true);
  for (let i = 0; i < h.length; i++) out[pre + i] = h.charCodeAt(i);
  out.set(body, pre + h.length);
  return out;
}

function le(values: number[], kind: 'f4' | 'f8' | 'i4' | 'i2' | 'u2', bigEndian = false): Uint8Array {
  const size = kind === 'f8' ? 8 : kind === 'i2' || kind === 'u2' ? 2 : 4;
  const b = new Uint8Array(values.length * size);
  const dv = new DataView(b.buffer);
  values.forEach((v, i) => {
    if (kind === 'f4') dv.setFloat32(i * size, v, !bigEndian);
    else if (kind === 'f8') dv.setFloat64(i * size, v, !bigEndian);
    else if (kind === 'i4') dv.setInt32(i * size, v, !bigEndian);
    else if (kind === 'i2') dv.setInt16(i * size, v, !bigEndian);
    else dv.setUint16(i * size, v, !bigEndian);
  });
  return b;
}

describe('npy: hand-crafted files following the published format', () => {
  it("reads '<f4' C order, shape (2, 3), with the exact header numpy writes", () => {
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const bytes = handNpy(header, le([0.5, -1.25, 3, 4, 5.5, -6], 'f4'));
    expect(bytes.length % 64).toBe((6 * 4) % 64); // header ends on a 64-byte boundary
    const a = parseNpy(bytes);
    expect(a.dtype).toBe('f32');
    expect(a.shape).toEqual([2, 3]);
    expect([...a.data as Float32Array]).toEqual([0.5, -1.25, 3, 4, 5.5, -6]);
  });

  it('our writer produces byte-identical output to the hand-built numpy layout', () => {
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const vals = [0.5, -1.25, 3, 4, 5.5, -6];
    const hand = handNpy(header, le(vals, 'f4'));
    expect(writeNpy(ndarrayFromValues(vals, [2, 3], 'f32'))).toEqual(hand);
    const h1 = handNpy("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(new BigInt64Array([1n, -2n, 3n]).buffer));
    expect(writeNpy(ndarrayFromValues([1, -2, 3], [3], 'i64'))).toEqual(h1);
    const h0 = handNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", le([Math.PI], 'f8'));
    expect(writeNpy(ndarrayFromValues([Math.PI], [], 'f64'))).toEqual(h0);
  });

  it('integer dtypes take exact integers only (typed-array stores truncate and wrap)', () => {
    expect(() => ndarrayFromValues([1.5], [1], 'i32')).toThrow(expect.objectContaining({ argument: 'values' }));
    expect(() => ndarrayFromValues([300], [1], 'u8')).toThrow(/not exactly a u8/);
    expect(() => ndarrayFromValues([-1], [1], 'u16')).toThrow(/not exactly a u16/);
    expect(() => ndarrayFromValues([Number.NaN], [1], 'i64')).toThrow(/not exactly a i64/);
    expect(() => ndarrayFromValues([-1], [1], 'u64')).toThrow(/u64/);
    expect(Array.from(ndarrayFromValues([-128, 127], [2], 'i8').data as Int8Array)).toEqual([-128, 127]);
  });

  it('formats shape tuples the Python way', () => {
    expect(pythonShape([])).toBe('()');
    expect(pythonShape([7])).toBe('(7,)');
    expect(pythonShape([2, 3, 4])).toBe('(2, 3, 4)');
  });

  it('reads Fortran order by transposing to row-major', () => {
    // A = [[1, 2, 3], [4, 5, 6]] stored column-major: 1 4 2 5 3 6.
    const bytes = handNpy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", le([1, 4, 2, 5, 3, 6], 'f8'));
    const a = parseNpy(bytes);
    expect([...a.data as Float64Array]).toEqual([1, 2, 3, 4, 5, 6]);
    // Rank 3, checked against index arithmetic.
    const shape = [2, 3, 4];
    const colMajor: number[] = [];
    for (let k = 0; k < 4; k++) for (let j = 0; j < 3; j++) for (let i = 0; i < 2; i++) colMajor.push(100 * i + 10 * j + k);
    const b = parseNpy(handNpy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }", le(colMajor, 'i4')));
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(100 * i + 10 * j + k);
    expect(b.shape).toEqual(shape);
    expect([...b.data as Int32Array]).toEqual(expected);
  });

  it("reads big-endian '>f4' and '>i2', version 2.0 headers, py2 long shapes and key order", () => {
    expect([...parseNpy(handNpy("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", le([1.5, -2, 1e-3], 'f4', true))).data as Float32Array])
      .toEqual([1.5, -2, Math.fround(1e-3)]);
    expect([...parseNpy(handNpy("{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", le([-300, 7], 'i2', true))).data as Int16Array]).toEqual([-300, 7]);
    const v2 = parseNpy(handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", le([1, 2], 'f4'), { major: 2 }));
    expect(v2.shape).toEqual([2]);
    const py2 = parseNpy(handNpy("{'shape': (2L, 1L), 'fortran_order': False, 'descr': '<f4'}", le([1, 2], 'f4'), { align: 16 }));
    expect(py2.shape).toEqual([2, 1]);
  });

  it('reads f2 (half) with exact decoding, bool and u1', () => {
    const bits = [0x3c00, 0xc000, 0x7bff, 0x0001];
    const a = parseNpy(handNpy("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", le(bits, 'u2')));
    expect(a.dtype).toBe('f16');
    expect([...ndarrayToFloat64(a)]).toEqual([1, -2, 65504, 2 ** -24]);
    const b = parseNpy(handNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", new Uint8Array([1, 0, 1])));
    expect(b.dtype).toBe('bool');
    expect(() => parseNpy(handNpy("{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }", new Uint8Array([2])))).toThrow(FormatError);
  });

  it('refuses to write a bool array holding bytes other than 0 and 1 (numpy could not read it back)', () => {
    const bad: NdArray = { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 2]) };
    expect(() => writeNpy(bad)).toThrow(expect.objectContaining({ name: 'ValueError', message: expect.stringMatching(/element 2/) }));
    expect(() => writeNpz({ m: bad })).toThrow(/bool/);
    expect(parseNpy(writeNpy({ dtype: 'bool', shape: [2], data: new Uint8Array([1, 0]) })).data).toEqual(new Uint8Array([1, 0]));
  });

  it('rejects object, string and structured arrays with UnsupportedError', () => {
    expect(() => parseNpy(handNpy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)))).toThrow(UnsupportedError);
    expect(() => parseNpy(handNpy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(12)))).toThrow(UnsupportedError);
    expect(() => parseNpy(handNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)))).toThrow(UnsupportedError);
    expect(() => parseNpy(handNpy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)))).toThrow(UnsupportedError);
  });

  it('rejects malformed files with FormatError that says what is wrong', () => {
    const good = handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", le([1, 2, 3, 4, 5, 6], 'f4'));
    expect(() => parseNpy(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => parseNpy(new Uint8Array([...good, 0]))).toThrow(/trailing/);
    expect(() => parseNpy(good.subarray(0, 20))).toThrow(FormatError);
    const bad = good.slice(); bad[0] = 0x92;
    expect(() => parseNpy(bad)).toThrow(/magic/);
    expect(() => parseNpy(handNpy("{'descr': '<f4', 'shape': (1,), }", le([1], 'f4')))).toThrow(/keys/);
    expect(() => parseNpy(handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1), }", le([1], 'f4')))).toThrow(/shape/);
    expect(() => parseNpy(handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", le([1], 'f4')))).toThrow(/shape/);
    expect(() => parseNpy(handNpy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", le([1], 'f4')))).toThrow(/fortran_order/);
    expect(() => parseNpy(handNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'descr': '<f4'}", le([1], 'f4')))).toThrow(/duplicate/);
    const v9 = good.slice(); v9[6] = 9;
    expect(() => parseNpy(v9)).toThrow(/version/);
  });

  it('round-trips every dtype through writeNpy/parseNpy, with odd shapes', () => {
    const shapes = [[], [1], [7], [3, 5], [2, 3, 5], [0, 4]];
    for (const dtype of ['f64', 'f32', 'f16', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64', 'bool'] as const) {
      for (const shape of shapes) {
        const n = shape.reduce((a, b) => a * b, 1);
        const vals = Array.from({ length: n }, (_, i) => (dtype === 'bool' ? i % 2 : dtype.startsWith('u') ? (i * 37) % 200 : ((i * 37) % 200) - 100 + (dtype.startsWith('f') ? 0.375 : 0)));
        const a = ndarrayFromValues(vals, shape, dtype);
        const b = parseNpy(writeNpy(a));
        expect(b.dtype).toBe(dtype);
        expect(b.shape).toEqual(shape);
        expect([...ndarrayToFloat64(b)]).toEqual([...ndarrayToFloat64(a)]);
      }
    }
  });

  it('widens bf16 to <f4 exactly (numpy has no bfloat16)', () => {
    const t = randn([3, 5], 4, 'bf16');
    const a = tensorToNdArray(t);
    const b = parseNpy(writeNpy(a));
    expect(b.dtype).toBe('f32');
    expect([...b.data as Float32Array]).toEqual([...t.toFloat32()]);
  });

  it('converts to Tensor keeping f16 bits', () => {
    const vals = [0.1, -3, 7.5];
    const a = ndarrayFromValues(vals, [3], 'f16');
    const t = ndarrayToTensor(parseNpy(writeNpy(a)));
    expect(t.dtype).toBe('f16');
    expect([...t.toFloat32()]).toEqual(vals.map((v) => f16ToF32(f32ToF16(v))));
  });

  it('reads and writes .npz archives (numpy.savez and savez_compressed)', () => {
    const a = ndarrayFromValues([1, 2, 3, 4, 5, 6], [2, 3], 'f32');
    const b = ndarrayFromValues([9, 8, 7], [3], 'i32');
    for (const compress of [false, true]) {
      const m = parseNpz(writeNpz({ a, b }, { compress }));
      expect([...m.keys()]).toEqual(['a', 'b']);
      expect([...m.get('b')!.data as Int32Array]).toEqual([9, 8, 7]);
    }
    // An archive numpy would write by hand: members named <key>.npy.
    const z = zipSync({ 'attn_0.npy': writeNpy(a), 'README': new Uint8Array([1]) });
    expect([...parseNpz(z).keys()]).toEqual(['attn_0']);
    expect(() => parseNpz(new Uint8Array([1, 2, 3, 4]))).toThrow(FormatError);
  });

  it('input that is not a Uint8Array is a ValueError naming bytes', () => {
    expect(() => parseNpy('abc' as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'bytes' }));
    expect(() => parseNpz(new ArrayBuffer(4) as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'bytes', message: expect.stringMatching(/ArrayBuffer/) }));
  });

  it('rejects NdArrays whose data does not match the shape', () => {
    const a: NdArray = { dtype: 'f32', shape: [2, 2], data: new Float32Array(3) };
    expect(() => writeNpy(a)).toThrow(ShapeError);
  });

  it('fuzz: random bytes, truncations and byte flips raise only FormatError/UnsupportedError', () => {
    const base = writeNpy(ndarrayFromValues(Array.from({ length: 15 }, (_, i) => i * 0.5 - 3), [3, 5], 'f32'));
    const typed = (e: unknown) => e instanceof FormatError || e instanceof UnsupportedError;
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try { parseNpy(bytes); } catch (e) { if (!typed(e)) throw e; }
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.nat({ max: base.length }), fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), (cut, flips) => {
      const b = base.slice(0, cut === 0 ? base.length : cut);
      for (const [i, v] of flips) if (i < b.length) b[i] = v;
      try {
        const a = parseNpy(b);
        expect(a.data.length).toBe(a.shape.reduce((x, y) => x * y, 1));
      } catch (e) { if (!typed(e)) throw e; }
    }), { numRuns: 3000 });
    // Header text mutations: random printable garbage inside the dict.
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (s) => {
      const b = handNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': ${s}, }`, le([1, 2, 3], 'f4'));
      try { parseNpy(b); } catch (e) { if (!typed(e)) throw e; }
    }), { numRuns: 1000 });
  });
});
