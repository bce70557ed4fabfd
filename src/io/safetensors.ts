/**
 * safetensors read/write, browser-safe (Uint8Array in, Uint8Array out). The format
 * (huggingface/safetensors, docs "Format"):
 *
 *   N: u64 little-endian header size | N bytes of UTF-8 JSON | byte buffer
 *
 *   JSON = { "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ...,
 *            "__metadata__": { "<key>": "<string value>" } }   (metadata optional, string→string)
 *
 * Offsets are relative to the start of the byte buffer; the tensors must tile the buffer exactly (no
 * holes, no overlap), and end − begin = numel·itemsize. Data is little-endian and row-major. The
 * header may be padded with trailing spaces; writers pad it to a multiple of 8 bytes so the buffer
 * is aligned. This reader enforces every rule above and the reference implementation's 100 MB
 * header limit, and raises FormatError (or UnsupportedError for valid but unsupported dtypes such
 * as F8_E4M3) on anything else.
 */
import { DTypeError, FormatError, ShapeError, UnsupportedError, ValueError, checkOptionKeys, optionNames } from '../errors.js';
import { type ArrayDType, type NdArray, arrayItemSize, checkBytes, checkNdArray, decodeElements, encodeElements, shapeSize } from './npy.js';

const ST_TO_DTYPE: Record<string, ArrayDType> = {
  F64: 'f64', F32: 'f32', F16: 'f16', BF16: 'bf16', I8: 'i8', I16: 'i16', I32: 'i32', I64: 'i64',
  U8: 'u8', U16: 'u16', U32: 'u32', U64: 'u64', BOOL: 'bool',
};
const DTYPE_TO_ST: Record<ArrayDType, string> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k])) as Record<ArrayDType, string>;

/**
 * Known safetensors dtypes this reader cannot decode (8-bit and smaller floats, complex), with their bytes per
 * element where whole (the sub-byte F6/F4 pack elements, so their byte ranges are not checked against the shape).
 */
const UNSUPPORTED_ST = new Map<string, number | null>([['F8_E4M3', 1], ['F8_E5M2', 1], ['F8_E8M0', 1], ['F6_E2M3', null], ['F6_E3M2', null], ['F4', null], ['C64', 8]]);

/** Header size limit of the reference implementation (safetensors' MAX_HEADER_SIZE). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/** A parsed safetensors file: tensors in file order of their data, and the string metadata. */
export interface SafetensorsFile {
  /** Arrays by name, in the order of their data in the file (with `only`, just those). */
  tensors: Map<string, NdArray>;
  /** The `__metadata__` strings; {} when the file has none. */
  metadata: Record<string, string>;
}

/** Options of `parseSafetensors`. */
export interface SafetensorsParseOptions {
  /** File name for error messages. */
  path?: string;
  /**
   * Decode only these tensors. The others are validated but not copied; one of a dtype this reader cannot
   * decode (F8_E4M3, …) is then checked for its byte range only and left out, rather than refused.
   */
  only?: readonly string[];
  /**
   * With `only`: the dtypes those tensors may have (a weight loader's floating-point ones, say). One of another
   * dtype, decodable or not, is refused with a DTypeError naming it and these.
   */
  dtypes?: readonly ArrayDType[];
}

const SAFETENSORS_OPTION_KEYS = optionNames<SafetensorsParseOptions>({ path: true, only: true, dtypes: true });

/** The safetensors dtype string of an interchange dtype ('F32', 'BF16', ...). */
export function safetensorsDType(dtype: ArrayDType): string {
  return DTYPE_TO_ST[dtype];
}

/** One tensor of a safetensors header: its name, dtype, shape and byte range [begin, end) in the data section. */
export interface SafetensorsEntry { name: string; dtype: ArrayDType; shape: number[]; begin: number; end: number }

/**
 * Parses only the header: names, dtypes, shapes and byte ranges, without decoding data. With `only`, tensors
 * outside it of a dtype this reader cannot decode are checked for their byte range and left out of `entries`
 * (without it they raise UnsupportedError).
 */
export function parseSafetensorsHeader(bytes: Uint8Array, opts: SafetensorsParseOptions = {}): { entries: SafetensorsEntry[]; metadata: Record<string, string>; dataStart: number } {
  const { path } = opts;
  const only = opts.only ? new Set(opts.only) : null;
  const where = path ? ` (${path})` : '';
  const fail = (msg: string): never => { throw new FormatError(`safetensors${where}: ${msg}`, path); };
  checkBytes(bytes);
  checkOptionKeys(opts, SAFETENSORS_OPTION_KEYS, 'parseSafetensors');
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header size`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) fail(`header size ${n64} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`header size ${n} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  if (n < 2) fail(`header size ${n} is too small for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail(`header must start with '{', got ${JSON.stringify(text.slice(0, 20))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  const ranges: SafetensorsEntry[] = []; // skipped tensors: byte ranges only
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__["${k}"] must be a string, got ${typeof v}`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) fail(`tensor "${name}" must be an object`);
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info.dtype !== 'string') fail(`tensor "${name}" has no dtype string`);
    const st = info.dtype as string;
    // Own keys only: "toString" or "constructor" would otherwise find Object.prototype's.
    const dtype = Object.prototype.hasOwnProperty.call(ST_TO_DTYPE, st) ? ST_TO_DTYPE[st] : undefined;
    // A tensor of a known dtype this reader cannot decode, outside `only`: its byte range still tiles the buffer.
    const skipped = !dtype && UNSUPPORTED_ST.has(st) && only !== null && !only.has(name);
    if (opts.dtypes && only !== null && only.has(name) && (!dtype || !opts.dtypes.includes(dtype))) {
      throw new DTypeError(`safetensors${where}: tensor "${name}" has dtype ${st}; expected ${opts.dtypes.map((d) => DTYPE_TO_ST[d]).join(', ')}`, name);
    }
    if (!dtype && !skipped) {
      if (UNSUPPORTED_ST.has(st)) throw new UnsupportedError(`safetensors${where}: tensor "${name}" has dtype ${st}, which this reader does not decode`, Object.keys(ST_TO_DTYPE).join(', '));
      fail(`tensor "${name}" has unknown dtype ${JSON.stringify(st)}`);
    }
    if (!Array.isArray(info.shape) || info.shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
      fail(`tensor "${name}" shape must be an array of non-negative integers, got ${JSON.stringify(info.shape)}`);
    }
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || off.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) || (off[0] as number) > (off[1] as number)) {
      fail(`tensor "${name}" data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${JSON.stringify(off)}`);
    }
    const shape = info.shape as number[];
    const [begin, end] = off as [number, number];
    const count = shapeSize(shape);
    if (count < 0) fail(`tensor "${name}" shape [${shape.join(', ')}] has too many elements`);
    const itemSize = dtype ? arrayItemSize(dtype) : UNSUPPORTED_ST.get(st)!;
    const need = itemSize === null ? end - begin : count * itemSize;
    if (end - begin !== need) fail(`tensor "${name}" of ${st}[${shape.join(', ')}] needs ${need} bytes, data_offsets [${begin}, ${end}] give ${end - begin}`);
    (skipped ? ranges : entries).push({ name, dtype: dtype!, shape, begin, end });
  }
  // The tensors must tile the byte buffer exactly.
  const sorted = [...entries, ...ranges].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of sorted) {
    if (e.begin !== pos) fail(e.begin < pos ? `tensor "${e.name}" overlaps the previous tensor (begins at ${e.begin}, previous ends at ${pos})` : `gap in the byte buffer before tensor "${e.name}" (bytes ${pos}..${e.begin} unused)`);
    pos = e.end;
  }
  const bufLen = bytes.length - 8 - n;
  if (pos !== bufLen) fail(pos > bufLen ? `data truncated: tensors need ${pos} bytes, the buffer has ${bufLen}` : `${bufLen - pos} trailing bytes after the last tensor`);
  return { entries: sorted, metadata, dataStart: 8 + n };
}

/** Parses a safetensors file into arrays (copies; aligned and independent of `bytes`). */
export function parseSafetensors(bytes: Uint8Array, opts: SafetensorsParseOptions = {}): SafetensorsFile {
  return decodeSafetensors(bytes, parseSafetensorsHeader(bytes, opts), opts);
}

/** parseSafetensors's second half: decodes the tensors of a header `parseSafetensorsHeader` returned for `bytes`. */
export function decodeSafetensors(bytes: Uint8Array, header: ReturnType<typeof parseSafetensorsHeader>, opts: SafetensorsParseOptions = {}): SafetensorsFile {
  const { entries, metadata, dataStart } = header;
  const only = opts.only ? new Set(opts.only) : null;
  if (only) for (const name of only) if (!entries.some((e) => e.name === name)) throw new ValueError(`safetensors${opts.path ? ` (${opts.path})` : ''}: no tensor named "${name}" (has ${entries.map((e) => e.name).join(', ') || 'none'})`, 'only');
  const tensors = new Map<string, NdArray>();
  for (const e of entries) {
    if (only && !only.has(e.name)) continue;
    const n = e.end - e.begin;
    const data = decodeElements(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype, n / arrayItemSize(e.dtype));
    if (e.dtype === 'bool') {
      const u = data as Uint8Array;
      for (let i = 0; i < u.length; i++) if (u[i]! > 1) throw new FormatError(`safetensors: BOOL tensor "${e.name}" holds byte ${u[i]} at element ${i}`, opts.path);
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/**
 * Serialises named arrays (and optional string metadata) as safetensors. Tensors are laid out in the
 * order given; the header is padded with spaces to a multiple of 8 bytes.
 */
export function writeSafetensors(tensors: Iterable<[string, NdArray]> | Record<string, NdArray>, metadata?: Record<string, string>): Uint8Array {
  const list = Symbol.iterator in tensors ? [...(tensors as Iterable<[string, NdArray]>)] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new ValueError(`metadata["${k}"] must be a string, got ${typeof v}`, 'metadata');
    header.__metadata__ = metadata;
  }
  const seen = new Set<string>();
  const bodies: Uint8Array[] = [];
  let pos = 0;
  for (const [name, a] of list) {
    if (name === '__metadata__') throw new ValueError(`a tensor cannot be named "__metadata__"`, 'tensors');
    if (seen.has(name)) throw new ValueError(`duplicate tensor name "${name}"`, 'tensors');
    seen.add(name);
    checkNdArray(a, `tensors["${name}"]`);
    const body = encodeElements(a.data, a.dtype);
    header[name] = { dtype: DTYPE_TO_ST[a.dtype], shape: a.shape, data_offsets: [pos, pos + body.length] };
    bodies.push(body);
    pos += body.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  if (json.length > SAFETENSORS_MAX_HEADER_BYTES) throw new ShapeError(`safetensors header of ${json.length} bytes exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`, 'tensors');
  const out = new Uint8Array(8 + json.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let o = 8 + json.length;
  for (const b of bodies) { out.set(b, o); o += b.length; }
  return out;
}
