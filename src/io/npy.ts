/**
 * NumPy `.npy` (format versions 1.0, 2.0, 3.0) and `.npz` read/write, browser-safe: everything parses
 * from and serialises to a Uint8Array. Node file helpers live in `src/viz/node-files.ts`.
 *
 * Also defines `NdArray`, the dtype-tagged array that both interchange formats (.npy and safetensors)
 * produce and consume, and its conversions to and from `Tensor`.
 *
 * The .npy layout (numpy/lib/format.py):
 *   "\x93NUMPY" | major u8 | minor u8 | header_len (u16 LE for 1.0, u32 LE for 2.0/3.0) |
 *   header: a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`,
 *   padded with spaces and ended by '\n' so that the data starts at a multiple of 64 bytes |
 *   data: row-major (C order) or column-major when fortran_order is True.
 * Shape tuples are written the Python way: `()`, `(3,)`, `(3, 4)`.
 */
import { FormatError, ShapeError, UnsupportedError, ValueError } from '../errors.js';
import { type DType, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { unzipSync, zipSync } from 'fflate';

/** Element types of interchange arrays. f16/bf16 are raw bit patterns in a Uint16Array. */
export type ArrayDType = 'f64' | 'f32' | 'f16' | 'bf16' | 'i8' | 'i16' | 'i32' | 'i64' | 'u8' | 'u16' | 'u32' | 'u64' | 'bool';

/**
 * Storage of an NdArray, one typed array per dtype: Float64Array (f64), Float32Array (f32),
 * Uint16Array (f16 and bf16 as raw bits, u16), Int8Array, Int16Array, Int32Array, BigInt64Array (i64),
 * Uint8Array (u8, bool), Uint32Array, BigUint64Array (u64).
 */
export type ArrayData =
  | Float64Array | Float32Array | Uint16Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint32Array | BigUint64Array;

/** A dense row-major array with an explicit element type: what .npy and safetensors hold. */
export interface NdArray {
  /** Element type; fixes which typed array `data` is (see ArrayData). */
  dtype: ArrayDType;
  /** Dimensions; [] for a scalar. */
  shape: number[];
  /** The elements, row-major; length = product of `shape`. */
  data: ArrayData;
}

/** Every interchange dtype. */
export const ARRAY_DTYPES: readonly ArrayDType[] = ['f64', 'f32', 'f16', 'bf16', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64', 'bool'];

/** Bytes per element of an interchange dtype. */
export function arrayItemSize(dtype: ArrayDType): number {
  switch (dtype) {
    case 'f64': case 'i64': case 'u64': return 8;
    case 'f32': case 'i32': case 'u32': return 4;
    case 'f16': case 'bf16': case 'i16': case 'u16': return 2;
    default: return 1;
  }
}

type ArrayCtor = { new(n: number): ArrayData; new(buf: ArrayBufferLike, off: number, n: number): ArrayData };

function ctorOf(dtype: ArrayDType): ArrayCtor {
  switch (dtype) {
    case 'f64': return Float64Array as unknown as ArrayCtor;
    case 'f32': return Float32Array as unknown as ArrayCtor;
    case 'f16': case 'bf16': case 'u16': return Uint16Array as unknown as ArrayCtor;
    case 'i8': return Int8Array as unknown as ArrayCtor;
    case 'i16': return Int16Array as unknown as ArrayCtor;
    case 'i32': return Int32Array as unknown as ArrayCtor;
    case 'i64': return BigInt64Array as unknown as ArrayCtor;
    case 'u32': return Uint32Array as unknown as ArrayCtor;
    case 'u64': return BigUint64Array as unknown as ArrayCtor;
    default: return Uint8Array as unknown as ArrayCtor;
  }
}

/** Number of elements of a shape, or -1 when it is not a safe integer. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return -1;
  }
  return n;
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies `n` little-endian (or big-endian when `bigEndian`) elements from `bytes` into a fresh
 * typed array of `dtype`. Always copies, so the result is aligned and independent of `bytes`.
 */
export function decodeElements(bytes: Uint8Array, dtype: ArrayDType, n: number, bigEndian = false): ArrayData {
  const size = arrayItemSize(dtype);
  const Ctor = ctorOf(dtype);
  const out = new Ctor(n);
  const raw = new Uint8Array(out.buffer, out.byteOffset, n * size);
  raw.set(bytes.subarray(0, n * size));
  if (size > 1 && bigEndian === LITTLE_ENDIAN_HOST) swapBytes(raw, size);
  return out;
}

/** The little-endian bytes of an array (a copy when the host is big-endian). */
export function encodeElements(data: ArrayData, dtype: ArrayDType): Uint8Array {
  const size = arrayItemSize(dtype);
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.length * size);
  if (size === 1 || LITTLE_ENDIAN_HOST) return raw;
  const copy = raw.slice();
  swapBytes(copy, size);
  return copy;
}

function swapBytes(raw: Uint8Array, size: number): void {
  for (let i = 0; i < raw.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) { const t = raw[a]!; raw[a] = raw[b]!; raw[b] = t; }
  }
}

/** Checks an NdArray's internal consistency (dtype known, shape valid, data length and type match). */
export function checkNdArray(a: NdArray, argument = 'array'): void {
  if (!ARRAY_DTYPES.includes(a.dtype)) throw new UnsupportedError(`${argument}: unknown dtype '${a.dtype}'`, ARRAY_DTYPES.join(', '));
  for (let i = 0; i < a.shape.length; i++) {
    const d = a.shape[i]!;
    if (!Number.isSafeInteger(d) || d < 0) throw new ShapeError(`${argument}: dimension ${i} must be a non-negative integer, got ${d}`, argument, `dim${i}`);
  }
  const n = shapeSize(a.shape);
  if (n !== a.data.length) throw new ShapeError(`${argument}: shape [${a.shape.join(', ')}] needs ${n} elements, data has ${a.data.length}`, argument);
  if (!(a.data instanceof ctorOf(a.dtype))) throw new UnsupportedError(`${argument}: dtype '${a.dtype}' needs a ${ctorOf(a.dtype).name}, got ${a.data.constructor.name}`);
  if (a.dtype === 'bool') {
    const d = a.data as Uint8Array;
    for (let i = 0; i < d.length; i++) if (d[i]! > 1) throw new ValueError(`${argument}: a bool array holds only bytes 0 and 1, got ${d[i]} at element ${i}`, argument);
  }
}

/** Values of any interchange array as float64 (f16/bf16 decoded; i64/u64 rounded to the nearest double). */
export function ndarrayToFloat64(a: NdArray): Float64Array {
  const n = a.data.length;
  const out = new Float64Array(n);
  const d = a.data;
  if (a.dtype === 'f16') for (let i = 0; i < n; i++) out[i] = f16ToF32(d[i] as number);
  else if (a.dtype === 'bf16') for (let i = 0; i < n; i++) out[i] = bf16ToF32(d[i] as number);
  else if (d instanceof BigInt64Array || d instanceof BigUint64Array) for (let i = 0; i < n; i++) out[i] = Number(d[i]!);
  else out.set(d as ArrayLike<number>);
  return out;
}

/** Values of any interchange array as float32 (rounded to nearest). */
export function ndarrayToFloat32(a: NdArray): Float32Array {
  if (a.dtype === 'f32') return (a.data as Float32Array).slice();
  return Float32Array.from(ndarrayToFloat64(a));
}

/** An NdArray → Tensor. f32/f16/bf16 keep their dtype and bits; other dtypes become f32. */
export function ndarrayToTensor(a: NdArray): Tensor {
  checkNdArray(a);
  if (a.dtype === 'f32' || a.dtype === 'f16' || a.dtype === 'bf16') return new Tensor((a.data as Float32Array | Uint16Array).slice(), a.shape, { dtype: a.dtype as DType });
  return new Tensor(ndarrayToFloat32(a), a.shape, { dtype: 'f32' });
}

/** A Tensor → NdArray (contiguous copy, same dtype and bits). */
export function tensorToNdArray(t: Tensor): NdArray {
  const c = t.contiguous();
  return { dtype: c.dtype, shape: [...c.shape], data: c.data.slice(0, c.size) };
}

/** Builds an NdArray from plain numbers, rounding to `dtype` (RNE for floats; integers must be exact). */
export function ndarrayFromValues(values: ArrayLike<number>, shape: readonly number[], dtype: ArrayDType = 'f32'): NdArray {
  const n = shapeSize(shape);
  if (n !== values.length) throw new ShapeError(`values has ${values.length} elements, shape [${shape.join(', ')}] needs ${n}`, 'values');
  const data = new (ctorOf(dtype))(n);
  if (dtype === 'f16' || dtype === 'bf16') {
    const enc = dtype === 'f16' ? f32ToF16 : f32ToBf16;
    for (let i = 0; i < n; i++) (data as Uint16Array)[i] = enc(values[i]!);
  } else if (dtype === 'i64' || dtype === 'u64') {
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (!Number.isSafeInteger(v) || (dtype === 'u64' && v < 0)) throw new ValueError(`values[${i}] = ${v} is not exactly a ${dtype} (an integer${dtype === 'u64' ? ' ≥ 0' : ''} within ±2⁵³)`, 'values');
      (data as BigInt64Array)[i] = BigInt(v);
    }
  } else if (dtype === 'bool') {
    for (let i = 0; i < n; i++) (data as Uint8Array)[i] = values[i] ? 1 : 0;
  } else {
    (data as Float64Array).set(values);
    // Integer dtypes: the typed array's store truncates and wraps silently; the promise is exact integers.
    if (dtype !== 'f32' && dtype !== 'f64') {
      for (let i = 0; i < n; i++) if (data[i] !== values[i]) throw new ValueError(`values[${i}] = ${values[i]} is not exactly a ${dtype}`, 'values');
    }
  }
  return { dtype, shape: [...shape], data };
}

// ---------------------------------------------------------------------------------------------
// .npy

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const MAX_HEADER_BYTES = 1 << 20;

const NPY_DESCR: Record<string, ArrayDType> = {
  f8: 'f64', f4: 'f32', f2: 'f16', i1: 'i8', i2: 'i16', i4: 'i32', i8: 'i64', u1: 'u8', u2: 'u16', u4: 'u32', u8: 'u64', b1: 'bool',
};

/** The numpy descr string written for a dtype. bf16 has no numpy type and is widened to f32 by `writeNpy`. */
export function npyDescr(dtype: ArrayDType): string {
  switch (dtype) {
    case 'f64': return '<f8';
    case 'f32': case 'bf16': return '<f4';
    case 'f16': return '<f2';
    case 'i8': return '|i1';
    case 'u8': return '|u1';
    case 'bool': return '|b1';
    case 'i16': return '<i2';
    case 'i32': return '<i4';
    case 'i64': return '<i8';
    case 'u16': return '<u2';
    case 'u32': return '<u4';
    case 'u64': return '<u8';
  }
}

type PyValue = string | number | boolean | PyValue[] | { [k: string]: PyValue } | null;

/** Parses the restricted Python literal used by .npy headers (dicts, tuples, lists, str, int, bool, None). */
function parsePyLiteral(src: string, path?: string): PyValue {
  let i = 0;
  const fail = (what: string): never => { throw new FormatError(`.npy header: ${what} at character ${i} of ${JSON.stringify(src.slice(0, 120))}`, path); };
  const ws = () => { while (i < src.length && /\s/.test(src[i]!)) i++; };
  let depth = 0;
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === undefined) return fail('unexpected end');
    if (c === '{' || c === '(' || c === '[') {
      if (++depth > 16) fail('nesting too deep');
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const dict: Record<string, PyValue> = {};
      const list: PyValue[] = [];
      let sawComma = false;
      for (;;) {
        ws();
        if (src[i] === close) { i++; break; }
        if (c === '{') {
          const k = value();
          if (typeof k !== 'string') fail('dict key is not a string');
          ws();
          if (src[i] !== ':') fail("expected ':'");
          i++;
          if (Object.prototype.hasOwnProperty.call(dict, k as string)) fail(`duplicate key '${k}'`);
          dict[k as string] = value();
        } else list.push(value());
        ws();
        if (src[i] === ',') { i++; sawComma = true; continue; }
        if (src[i] === close) { i++; break; }
        fail(`expected ',' or '${close}'`);
      }
      depth--;
      if (c === '{') return dict;
      // `(3)` is the int 3 in Python, not a tuple; a shape must be a real tuple.
      if (c === '(' && list.length === 1 && !sawComma) return list[0]!;
      return list;
    }
    if (c === "'" || c === '"') {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = src.slice(i + 1, end);
      if (s.includes('\\')) fail('escapes in strings are not supported');
      i = end + 1;
      return s;
    }
    const m = /^(?:True|False|None|[+-]?\d+L?)/.exec(src.slice(i, i + 40));
    if (!m) return fail('unexpected token');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace(/L$/, ''));
  };
  const v = value();
  ws();
  if (i !== src.length) fail('trailing characters');
  return v;
}

/** A file reader's input is a Uint8Array: a ValueError naming `bytes` (and what it got) otherwise. */
export function checkBytes(bytes: unknown): asserts bytes is Uint8Array {
  if (bytes instanceof Uint8Array) return;
  const got = bytes === null ? 'null' : typeof bytes === 'object' ? (bytes as object).constructor?.name ?? 'object' : typeof bytes;
  throw new ValueError(`bytes must be a Uint8Array, got ${got}`, 'bytes');
}

/** Options of `parseNpy` and `parseNpz`. */
export interface NpyParseOptions {
  /** File name for error messages. */
  path?: string;
}

/**
 * Parses a .npy file. Supports versions 1.0–3.0, little and big endian, C and Fortran order (Fortran
 * data is transposed to row-major), dtypes f2/f4/f8, i1–i8, u1–u8, b1. Object, string, structured and
 * complex arrays raise UnsupportedError; anything malformed or truncated raises FormatError.
 */
export function parseNpy(bytes: Uint8Array, opts: NpyParseOptions = {}): NdArray {
  const { path } = opts;
  const where = path ? ` (${path})` : '';
  checkBytes(bytes);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new FormatError(`not a .npy file${where}: missing the \\x93NUMPY magic`, path);
  const major = bytes[6]!, minor = bytes[7]!;
  if (major < 1 || major > 3) throw new FormatError(`.npy format version ${major}.${minor} is not supported${where} (1.0, 2.0, 3.0 are)`, path);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new FormatError(`.npy file truncated in the header length${where}`, path);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (headerLen > MAX_HEADER_BYTES) throw new FormatError(`.npy header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes${where}`, path);
  if (dataStart > bytes.length) throw new FormatError(`.npy file truncated: header says ${headerLen} bytes, only ${bytes.length - 8 - lenBytes} present${where}`, path);
  const headerBytes = bytes.subarray(8 + lenBytes, dataStart);
  let header: string;
  try {
    header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(headerBytes);
  } catch {
    throw new FormatError(`.npy header is not valid ${major === 3 ? 'UTF-8' : 'latin-1'}${where}`, path);
  }
  const lit = parsePyLiteral(header.trim(), path);
  if (!lit || typeof lit !== 'object' || Array.isArray(lit)) throw new FormatError(`.npy header is not a dict${where}`, path);
  const keys = Object.keys(lit).sort().join(',');
  if (keys !== 'descr,fortran_order,shape') throw new FormatError(`.npy header must have exactly the keys descr, fortran_order, shape; got ${keys || 'none'}${where}`, path);
  const { descr, fortran_order: fortran, shape } = lit as { descr: PyValue; fortran_order: PyValue; shape: PyValue };
  if (typeof descr !== 'string') {
    throw new UnsupportedError(`.npy structured dtype ${JSON.stringify(descr)} is not supported${where}`, 'a plain numeric dtype such as <f4');
  }
  if (typeof fortran !== 'boolean') throw new FormatError(`.npy fortran_order must be True or False${where}`, path);
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
    throw new FormatError(`.npy shape must be a tuple of non-negative integers, got ${JSON.stringify(shape)}${where}`, path);
  }
  const dims = shape as number[];
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(descr);
  const dtype = m ? NPY_DESCR[m[2]!.toLowerCase() === m[2] ? `${m[2]}${m[3]}` : ''] : undefined;
  if (!m || !dtype) throw new UnsupportedError(`.npy dtype '${descr}' is not supported${where}`, '<f8 <f4 <f2 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8 |b1');
  const size = arrayItemSize(dtype);
  const bigEndian = m[1] === '>' || (m[1] === '=' && !LITTLE_ENDIAN_HOST);
  const n = shapeSize(dims);
  if (n < 0) throw new FormatError(`.npy shape (${dims.join(', ')}) has too many elements${where}`, path);
  const need = n * size;
  const have = bytes.length - dataStart;
  if (have < need) throw new FormatError(`.npy data truncated: shape (${dims.join(', ')}) of ${descr} needs ${need} bytes, file has ${have}${where}`, path);
  if (have > need) throw new FormatError(`.npy file has ${have - need} trailing bytes after the data of shape (${dims.join(', ')})${where}`, path);
  let data = decodeElements(bytes.subarray(dataStart), dtype, n, bigEndian);
  if (fortran && dims.length > 1) data = fortranToC(data, dims);
  const out: NdArray = { dtype, shape: dims, data };
  if (dtype === 'bool') for (let i = 0; i < n; i++) if ((data as Uint8Array)[i]! > 1) throw new FormatError(`.npy bool array holds byte ${(data as Uint8Array)[i]} at element ${i}${where}`, path);
  return out;
}

/** Transposes column-major data of `shape` to row-major. */
function fortranToC(src: ArrayData, shape: readonly number[]): ArrayData {
  const n = src.length;
  const out = new (src.constructor as ArrayCtor)(n);
  const rank = shape.length;
  // Column-major strides.
  const fstr = new Array<number>(rank);
  let s = 1;
  for (let d = 0; d < rank; d++) { fstr[d] = s; s *= shape[d]!; }
  const idx = new Array<number>(rank).fill(0);
  for (let k = 0; k < n; k++) {
    let o = 0;
    for (let d = 0; d < rank; d++) o += idx[d]! * fstr[d]!;
    (out as unknown as number[])[k] = (src as unknown as number[])[o]!;
    for (let d = rank - 1; d >= 0; d--) { if (++idx[d]! < shape[d]!) break; idx[d] = 0; }
  }
  return out;
}

/** Formats a shape as a Python tuple: `()`, `(3,)`, `(3, 4)`. */
export function pythonShape(shape: readonly number[]): string {
  if (shape.length === 0) return '()';
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/**
 * Serialises an array as .npy version 1.0 (2.0 when the header would not fit in 65535 bytes), C
 * order, little endian, header padded so the data starts at a multiple of 64 bytes. bf16 has no
 * numpy dtype, so bf16 arrays are widened (exactly) to '<f4'.
 */
export function writeNpy(a: NdArray): Uint8Array {
  checkNdArray(a);
  let arr = a;
  if (a.dtype === 'bf16') arr = { dtype: 'f32', shape: a.shape, data: ndarrayToFloat32(a) };
  const dict = `{'descr': '${npyDescr(arr.dtype)}', 'fortran_order': False, 'shape': ${pythonShape(arr.shape)}, }`;
  let major = 1;
  let lenBytes = 2;
  const pad = (pre: number) => (64 - ((pre + dict.length + 1) % 64)) % 64;
  let headerLen = dict.length + pad(10) + 1;
  if (headerLen > 0xffff) { major = 2; lenBytes = 4; headerLen = dict.length + pad(12) + 1; }
  const header = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  const body = encodeElements(arr.data, arr.dtype);
  const out = new Uint8Array(8 + lenBytes + headerLen + body.length);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, headerLen, true); else dv.setUint32(8, headerLen, true);
  for (let i = 0; i < header.length; i++) out[8 + lenBytes + i] = header.charCodeAt(i);
  out.set(body, 8 + lenBytes + headerLen);
  return out;
}

// ---------------------------------------------------------------------------------------------
// .npz (a zip of .npy files, as written by numpy.savez / savez_compressed)

/** Parses an .npz archive into named arrays (names without the `.npy` suffix). */
export function parseNpz(bytes: Uint8Array, opts: NpyParseOptions = {}): Map<string, NdArray> {
  checkBytes(bytes);
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new FormatError(`not a valid .npz (zip) archive${opts.path ? ` (${opts.path})` : ''}: ${(e as Error).message}`, opts.path);
  }
  const out = new Map<string, NdArray>();
  for (const name of Object.keys(files).sort()) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(files[name]!, { path: `${opts.path ?? ''}:${name}` }));
  }
  return out;
}

/** Serialises named arrays as an .npz archive (`compress` = numpy.savez_compressed). */
export function writeNpz(arrays: Iterable<[string, NdArray]> | Record<string, NdArray>, opts: { compress?: boolean } = {}): Uint8Array {
  const entries = Symbol.iterator in arrays ? [...(arrays as Iterable<[string, NdArray]>)] : Object.entries(arrays);
  const files: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const [name, a] of entries) files[`${name}.npy`] = [writeNpy(a), { level: opts.compress ? 6 : 0 }];
  return zipSync(files);
}
