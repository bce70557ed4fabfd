import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError, UnsupportedError, ValueError } from '../../../src/errors.js';
import { ndarrayFromValues, ndarrayToFloat64, tensorToNdArray } from '../../../src/io/npy.js';
import { parseSafetensors, writeSafetensors } from '../../../src/io/safetensors.js';
import { randn } from '../../../src/tensor/tensor.js';

/** A safetensors file built byte by byte from a header string and a buffer (the published layout). */
function handST(header: string, buffer: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(buffer, 8 + json.length);
  return out;
}

function f32le(v: number[]): Uint8Array {
  const b = new Uint8Array(v.length * 4);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setFloat32(i * 4, x, true));
  return b;
}

describe('safetensors: hand-crafted files following the published format', () => {
  it('reads two tensors with metadata and space padding', () => {
    const buf = new Uint8Array([...f32le([1, 2, 3, 4, 5, 6]), 0x00, 0x3c, 0x00, 0xc0]); // F16 1.0, -2.0
    const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[2],"data_offsets":[24,28]}}   ';
    const f = parseSafetensors(handST(header, buf));
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.tensors.get('a')!.shape).toEqual([2, 3]);
    expect([...f.tensors.get('a')!.data as Float32Array]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...ndarrayToFloat64(f.tensors.get('b')!)]).toEqual([1, -2]);
  });

  it('reads BF16 bits, I64, BOOL, scalars and empty tensors; tensors may be listed out of offset order', () => {
    const buf = new Uint8Array(8 + 2 + 1);
    new DataView(buf.buffer).setBigInt64(0, -5n, true);
    buf[8] = 0x80; buf[9] = 0x3f; // bf16 1.0 = 0x3f80
    buf[10] = 1;
    const header = '{"flag":{"dtype":"BOOL","shape":[1],"data_offsets":[10,11]},"x":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"h":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[11,11]}}';
    const f = parseSafetensors(handST(header, buf));
    expect([...ndarrayToFloat64(f.tensors.get('x')!)]).toEqual([-5]);
    expect([...ndarrayToFloat64(f.tensors.get('h')!)]).toEqual([1]);
    expect(f.tensors.get('flag')!.dtype).toBe('bool');
    expect(f.tensors.get('e')!.data.length).toBe(0);
  });

  it('our writer matches the layout: u64 LE size, JSON padded with spaces to 8 bytes, contiguous offsets', () => {
    const bytes = writeSafetensors({ a: ndarrayFromValues([1, 2, 3], [3], 'f32') }, { k: 'v' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(JSON.parse(text)).toEqual({ __metadata__: { k: 'v' }, a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } });
    expect(/^\{.*\} *$/.test(text)).toBe(true);
    expect(bytes.subarray(8 + n)).toEqual(f32le([1, 2, 3]));
  });

  it('round-trips all dtypes with odd shapes', () => {
    const tensors: [string, ReturnType<typeof ndarrayFromValues>][] = [];
    for (const dtype of ['f64', 'f32', 'f16', 'bf16', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64', 'bool'] as const) {
      const shape = [3, 1, 5];
      const vals = Array.from({ length: 15 }, (_, i) => (dtype === 'bool' ? i % 2 : dtype.startsWith('u') ? i * 3 : i * 3 - 20 + (dtype.startsWith('f') || dtype === 'bf16' ? 0.5 : 0)));
      tensors.push([`t_${dtype}`, ndarrayFromValues(vals, shape, dtype)]);
    }
    tensors.push(['r', tensorToNdArray(randn([7, 3], 9, 'bf16'))]);
    const f = parseSafetensors(writeSafetensors(tensors, { note: 'x' }));
    for (const [name, a] of tensors) {
      const b = f.tensors.get(name)!;
      expect(b.dtype).toBe(a.dtype);
      expect(b.shape).toEqual(a.shape);
      expect([...ndarrayToFloat64(b)]).toEqual([...ndarrayToFloat64(a)]);
    }
  });

  it('rejects every structural violation with FormatError', () => {
    const buf = f32le([1, 2]);
    const cases: [string, Uint8Array, RegExp][] = [
      ['gap', handST('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', buf), /gap/],
      ['overlap', handST('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', buf), /overlap/],
      ['size mismatch', handST('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', buf), /needs 12 bytes/],
      ['trailing', handST('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', buf), /trailing/],
      ['truncated', handST('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', buf), /truncated/],
      ['bad json', handST('{"a":', buf), /JSON/],
      ['not object', handST('[1,2]   ', buf), /start with/],
      ['bad dtype', handST('{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', buf), /unknown dtype/],
      ['dtype named after an Object.prototype member', handST('{"a":{"dtype":"toString","shape":[2],"data_offsets":[0,8]}}', buf), /unknown dtype "toString"/],
      ['dtype constructor', handST('{"a":{"dtype":"constructor","shape":[2],"data_offsets":[0,8]}}', buf), /unknown dtype "constructor"/],
      ['negative shape', handST('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', buf), /shape/],
      ['fractional shape', handST('{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}', buf), /shape/],
      ['reversed offsets', handST('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', buf), /data_offsets/],
      ['metadata not strings', handST('{"__metadata__":{"a":1}}', new Uint8Array()), /must be a string/],
      ['bool byte', handST('{"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}', new Uint8Array([7])), /BOOL/],
    ];
    for (const [name, bytes, re] of cases) {
      let err: unknown;
      try { parseSafetensors(bytes); } catch (e) { err = e; }
      expect(err, name).toBeInstanceOf(FormatError);
      expect((err as Error).message, name).toMatch(re);
    }
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => parseSafetensors(huge)).toThrow(/limit/);
    expect(() => parseSafetensors(new Uint8Array(5))).toThrow(FormatError);
    const invalidUtf8 = handST('{"a":1}', new Uint8Array()); invalidUtf8[9] = 0xff;
    expect(() => parseSafetensors(invalidUtf8)).toThrow(/UTF-8/);
  });

  it('raises UnsupportedError for F8 dtypes and ValueError for writer misuse', () => {
    expect(() => parseSafetensors(handST('{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)))).toThrow(UnsupportedError);
    // With `only`, an F8 tensor outside it is range-checked and left out; inside it, it is still refused.
    const mixed = handST('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"f8":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[4,6]}}', new Uint8Array([...f32le([2.5]), 1, 2]));
    expect([...parseSafetensors(mixed, { only: ['a'] }).tensors.keys()]).toEqual(['a']);
    expect(() => parseSafetensors(mixed, { only: ['a', 'f8'] })).toThrow(UnsupportedError);
    expect(() => parseSafetensors(handST('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"f8":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[4,6]}}', new Uint8Array(6)), { only: ['a'] })).toThrow(/needs 3 bytes/);
    const a = ndarrayFromValues([1], [1]);
    expect(() => writeSafetensors([['a', a], ['a', a]])).toThrow(ValueError);
    expect(() => writeSafetensors([['__metadata__', a]])).toThrow(ValueError);
  });

  it('only: decodes a subset and names a missing tensor', () => {
    const bytes = writeSafetensors({ a: ndarrayFromValues([1], [1]), b: ndarrayFromValues([2], [1]) });
    expect([...parseSafetensors(bytes, { only: ['b'] }).tensors.keys()]).toEqual(['b']);
    expect(() => parseSafetensors(bytes, { only: ['c'] })).toThrow(/no tensor named "c"/);
  });

  it('dtypes: tensors in only of another dtype are a DTypeError naming them; misused arguments are ValueErrors', () => {
    const bytes = writeSafetensors({ a: ndarrayFromValues([1], [1], 'i32'), b: ndarrayFromValues([2], [1], 'f16') });
    expect(parseSafetensors(bytes, { only: ['b'], dtypes: ['f32', 'f16'] }).tensors.get('b')!.dtype).toBe('f16');
    expect(() => parseSafetensors(bytes, { only: ['a', 'b'], dtypes: ['f32', 'f16'] })).toThrow(expect.objectContaining({ name: 'DTypeError', argument: 'a', message: expect.stringMatching(/"a" has dtype I32; expected F32, F16/) }));
    expect(() => parseSafetensors([1, 2, 3] as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'bytes', message: expect.stringMatching(/got Array/) }));
    expect(() => parseSafetensors(bytes, { onyl: ['a'] } as never)).toThrow(/did you mean 'only'/);
  });

  it('fuzz: random bytes, truncations, byte flips and header mutations raise only FormatError/UnsupportedError', () => {
    const base = writeSafetensors({ w: ndarrayFromValues(Array.from({ length: 12 }, (_, i) => i - 5.5), [3, 4]), b: ndarrayFromValues([1, 2, 3], [3], 'f16') }, { m: 'x' });
    const typed = (e: unknown) => e instanceof FormatError || e instanceof UnsupportedError;
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try { parseSafetensors(bytes); } catch (e) { if (!typed(e)) throw e; }
    }), { numRuns: 2000 });
    fc.assert(fc.property(fc.nat({ max: base.length }), fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), (cut, flips) => {
      const b = base.slice(0, cut === 0 ? base.length : cut);
      for (const [i, v] of flips) if (i < b.length) b[i] = v;
      try {
        const f = parseSafetensors(b);
        for (const t of f.tensors.values()) expect(t.data.length).toBe(t.shape.reduce((x, y) => x * y, 1));
      } catch (e) { if (!typed(e)) throw e; }
    }), { numRuns: 3000 });
    // Structured header mutations: arbitrary JSON values in place of fields.
    fc.assert(fc.property(fc.jsonValue(), fc.constantFrom('dtype', 'shape', 'data_offsets', '__metadata__', 'w'), (v, field) => {
      const hdr: Record<string, unknown> = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
      if (field === '__metadata__' || field === 'w') hdr[field] = v; else (hdr.w as Record<string, unknown>)[field] = v;
      try { parseSafetensors(handST(JSON.stringify(hdr), f32le([1, 2]))); } catch (e) { if (!typed(e)) throw e; }
    }), { numRuns: 2000 });
  });
});

describe('writeSafetensors bool', () => {
  it('refuses bytes other than 0 and 1, naming the tensor', () => {
    expect(() => writeSafetensors({ mask: { dtype: 'bool', shape: [2], data: new Uint8Array([0, 255]) } })).toThrow(ValueError);
    expect(() => writeSafetensors({ mask: { dtype: 'bool', shape: [2], data: new Uint8Array([0, 255]) } })).toThrow(/tensors\["mask"\].*255/);
  });
});
