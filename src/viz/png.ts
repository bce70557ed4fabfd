/**
 * PNG encoder and decoder in pure TypeScript (zlib via fflate), browser-safe.
 *
 * The encoder writes 8-bit RGBA (colour type 6), non-interlaced, choosing a filter per row by the
 * minimum-sum-of-absolute-differences heuristic (libpng's default). The decoder reads every
 * standard PNG: colour types 0/2/3/4/6, bit depths 1–16, palettes with tRNS, Adam7 interlacing,
 * and returns 8-bit RGBA (16-bit samples keep their high byte). Chunk CRCs are checked, so a
 * corrupt or truncated file raises FormatError rather than yielding garbage.
 */
import { unzlibSync, zlibSync } from 'fflate';
import { FormatError, ShapeError, ValueError } from '../errors.js';

/** An 8-bit RGBA raster, row-major, `data.length === width * height * 4`. */
export interface RgbaImage {
  width: number;
  height: number;
  /** Row-major RGBA bytes, 4 per pixel. */
  data: Uint8Array | Uint8ClampedArray;
}

/** Options for {@link encodePng}. */
export interface PngEncodeOptions {
  /** zlib level 0–9 (default 6). */
  level?: number;
  /** tEXt key/value pairs (Latin-1 keys of 1–79 characters). */
  text?: Readonly<Record<string, string>>;
  /**
   * A zlib-format (RFC 1950) compressor to use instead of fflate, e.g. Node's native
   * `(d, level) => zlib.deflateSync(d, { level })`, which is several times faster.
   */
  deflate?: (data: Uint8Array, level: number) => Uint8Array;
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Validates an RgbaImage argument; throws ValueError/ShapeError naming `argument`. */
export function checkRgbaImage(image: RgbaImage, argument = 'image'): void {
  const { width, height, data } = image ?? ({} as RgbaImage);
  if (!Number.isInteger(width) || width < 1) throw new ValueError(`${argument}.width must be an integer ≥ 1, got ${width}`, argument);
  if (!Number.isInteger(height) || height < 1) throw new ValueError(`${argument}.height must be an integer ≥ 1, got ${height}`, argument);
  if (!data || data.length !== width * height * 4) {
    throw new ShapeError(`${argument}.data must hold width·height·4 = ${width * height * 4} bytes (RGBA), got ${data?.length}`, argument, 'data');
  }
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * Encodes an RGBA image as PNG bytes.
 * @param image width × height × 4 bytes, row-major RGBA.
 */
export function encodePng(image: RgbaImage, options: PngEncodeOptions = {}): Uint8Array {
  checkRgbaImage(image);
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new ValueError(`options.level must be an integer in 0..9, got ${level}`, 'level');
  const { width, height, data } = image;
  const stride = width * 4;
  const raw = new Uint8Array((stride + 1) * height);
  const cand = [new Uint8Array(stride), new Uint8Array(stride), new Uint8Array(stride), new Uint8Array(stride), new Uint8Array(stride)];
  const score = (row: Uint8Array) => {
    let sum = 0;
    for (let i = 0; i < stride; i++) { const v = row[i]!; sum += v < 128 ? v : 256 - v; }
    return sum;
  };
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    const prev = row - stride;
    const [c0, c1, c2, c3, c4] = cand as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    for (let i = 0; i < stride; i++) {
      const x = data[row + i]!;
      const a = i >= 4 ? data[row + i - 4]! : 0;
      const b = y > 0 ? data[prev + i]! : 0;
      const c = y > 0 && i >= 4 ? data[prev + i - 4]! : 0;
      c0[i] = x;
      c1[i] = (x - a) & 0xff;
      c2[i] = (x - b) & 0xff;
      c3[i] = (x - ((a + b) >> 1)) & 0xff;
      c4[i] = (x - paeth(a, b, c)) & 0xff;
    }
    let bestFilter = 0, bestSum = Infinity;
    for (let f = 0; f < 5; f++) {
      const sc = score(cand[f]!);
      if (sc < bestSum) { bestSum = sc; bestFilter = f; }
    }
    raw[y * (stride + 1)] = bestFilter;
    raw.set(cand[bestFilter]!, y * (stride + 1) + 1);
  }
  const idat = options.deflate ? options.deflate(raw, level) : zlibSync(raw, { level: level as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 });

  const chunks: Array<[string, Uint8Array]> = [];
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  chunks.push(['IHDR', ihdr]);
  for (const [key, value] of Object.entries(options.text ?? {})) {
    if (key.length < 1 || key.length > 79) throw new ValueError(`options.text key must have 1–79 characters, got '${key}'`, 'text');
    const bytes = new Uint8Array(key.length + 1 + value.length);
    for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i) & 0xff;
    for (let i = 0; i < value.length; i++) bytes[key.length + 1 + i] = value.charCodeAt(i) & 0xff;
    chunks.push(['tEXt', bytes]);
  }
  chunks.push(['IDAT', idat]);
  chunks.push(['IEND', new Uint8Array(0)]);

  let total = 8;
  for (const [, d] of chunks) total += 12 + d.length;
  const out = new Uint8Array(total);
  const ov = new DataView(out.buffer);
  out.set(SIGNATURE, 0);
  let p = 8;
  for (const [type, d] of chunks) {
    ov.setUint32(p, d.length);
    for (let i = 0; i < 4; i++) out[p + 4 + i] = type.charCodeAt(i);
    out.set(d, p + 8);
    ov.setUint32(p + 8 + d.length, crc32(out, p + 4, p + 8 + d.length));
    p += 12 + d.length;
  }
  return out;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const VALID_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
// Adam7 passes: x0, y0, dx, dy.
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]] as const;

/** Largest image the decoder accepts (pixels); guards against decompression bombs in headers. */
export const MAX_PNG_PIXELS = 1 << 28;

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) return false;
  return true;
}

/**
 * Decodes PNG bytes into 8-bit RGBA. Throws FormatError (with `path` when given) for a bad
 * signature, a CRC mismatch, a truncated file, a missing chunk, an invalid header or bad image data.
 */
export function decodePng(bytes: Uint8Array, path?: string): RgbaImage {
  const fail = (msg: string): never => { throw new FormatError(`PNG${path ? ` '${path}'` : ''}: ${msg}`, path); };
  if (!(bytes instanceof Uint8Array)) throw new ValueError('bytes must be a Uint8Array', 'bytes');
  if (!isPng(bytes)) fail('not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8;
  let width = 0, height = 0, depth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (p < bytes.length) {
    if (p + 12 > bytes.length) fail(`truncated chunk header at byte ${p}`);
    const len = view.getUint32(p);
    if (p + 12 + len > bytes.length) fail(`truncated: chunk at byte ${p} needs ${len} bytes, file ends at ${bytes.length}`);
    const type = String.fromCharCode(bytes[p + 4]!, bytes[p + 5]!, bytes[p + 6]!, bytes[p + 7]!);
    const crc = view.getUint32(p + 8 + len);
    if (crc !== crc32(bytes, p + 4, p + 8 + len)) fail(`CRC mismatch in ${type} chunk at byte ${p}`);
    const body = bytes.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      if (len !== 13) fail(`IHDR has length ${len}, expected 13`);
      width = view.getUint32(p + 8);
      height = view.getUint32(p + 12);
      depth = body[8]!; colorType = body[9]!; interlace = body[12]!;
      if (width === 0 || height === 0) fail(`zero-area image (${width}×${height})`);
      if (width * height > MAX_PNG_PIXELS) fail(`image ${width}×${height} exceeds ${MAX_PNG_PIXELS} pixels`);
      if (!(colorType in CHANNELS)) fail(`unknown colour type ${colorType}`);
      if (!VALID_DEPTHS[colorType]!.includes(depth)) fail(`bit depth ${depth} is invalid for colour type ${colorType}`);
      if (body[10] !== 0 || body[11] !== 0) fail('unknown compression or filter method');
      if (interlace > 1) fail(`unknown interlace method ${interlace}`);
    } else if (type === 'PLTE') {
      if (len % 3 !== 0 || len === 0 || len > 768) fail(`PLTE length ${len} is invalid`);
      palette = body.slice();
    } else if (type === 'tRNS') {
      trns = body.slice();
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    } else if ((bytes[p + 4]! & 0x20) === 0) {
      fail(`unknown critical chunk ${type}`);
    }
    if (colorType < 0 && type !== 'IHDR') fail('first chunk is not IHDR');
    p += 12 + len;
  }
  if (colorType < 0) fail('missing IHDR');
  if (!sawEnd) fail('truncated: no IEND chunk');
  if (idat.length === 0) fail('no IDAT chunk');
  if (colorType === 3 && !palette) fail('palette image without PLTE');

  let totalLen = 0;
  for (const c of idat) totalLen += c.length;
  const zdata = new Uint8Array(totalLen);
  let o = 0;
  for (const c of idat) { zdata.set(c, o); o += c.length; }
  const channels = CHANNELS[colorType]!;
  const bitsPerPixel = channels * depth;
  // The filtered rows' size follows from the header: inflate into that much (and a byte to tell excess), so a
  // small file cannot decompress into hundreds of megabytes.
  let expected = 0;
  for (const [x0, y0, dx, dy] of interlace ? ADAM7 : ([[0, 0, 1, 1]] as const)) {
    const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
    if (pw > 0 && ph > 0) expected += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }
  let raw: Uint8Array;
  try {
    raw = unzlibSync(zdata, { out: new Uint8Array(expected + 1) });
  } catch (e) {
    return fail(`corrupt image data (${(e as Error).message})`);
  }
  if (raw.length > expected) fail(`more image data than ${width}×${height} pixels hold (${expected} bytes)`);
  // zlib's Adler-32 of the inflated data (fflate does not check it).
  if (zdata.length >= 4 && raw.length === expected) {
    let a = 1, b = 0;
    for (let i = 0; i < raw.length; i++) { a = (a + raw[i]!) % 65521; b = (b + a) % 65521; }
    const want = ((zdata[zdata.length - 4]! << 24) | (zdata[zdata.length - 3]! << 16) | (zdata[zdata.length - 2]! << 8) | zdata[zdata.length - 1]!) >>> 0;
    if ((((b << 16) | a) >>> 0) !== want) fail('image data checksum (Adler-32) mismatch');
  }

  const bpp = Math.max(1, bitsPerPixel >> 3);
  const out = new Uint8Array(width * height * 4);
  const passes = interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  let rp = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const stride = Math.ceil((pw * bitsPerPixel) / 8);
    let prev = new Uint8Array(stride);
    let cur = new Uint8Array(stride);
    for (let py = 0; py < ph; py++) {
      if (rp + 1 + stride > raw.length) fail(`truncated image data (${raw.length} bytes decompressed)`);
      const filter = raw[rp]!;
      const src = raw.subarray(rp + 1, rp + 1 + stride);
      rp += 1 + stride;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? cur[i - bpp]! : 0;
        const b = prev[i]!;
        const c = i >= bpp ? prev[i - bpp]! : 0;
        let v = src[i]!;
        switch (filter) {
          case 0: break;
          case 1: v += a; break;
          case 2: v += b; break;
          case 3: v += (a + b) >> 1; break;
          case 4: v += paeth(a, b, c); break;
          default: fail(`unknown filter type ${filter} in row ${py}`);
        }
        cur[i] = v & 0xff;
      }
      const y = y0 + py * dy;
      for (let px = 0; px < pw; px++) {
        const x = x0 + px * dx;
        try {
          writePixel(out, (y * width + x) * 4, cur, px, colorType, depth, palette, trns);
        } catch (e) {
          // Named with the file's path, as decodePng's other errors are.
          if (e instanceof PaletteIndexError) fail(e.message);
          throw e;
        }
      }
      const t = prev; prev = cur; cur = t;
    }
  }
  return { width, height, data: out };
}

function sample(row: Uint8Array, index: number, depth: number): number {
  if (depth === 8) return row[index]!;
  if (depth === 16) return row[index * 2]!; // high byte
  const perByte = 8 / depth;
  const byte = row[Math.floor(index / perByte)]!;
  const shift = 8 - depth * ((index % perByte) + 1);
  return (byte >> shift) & ((1 << depth) - 1);
}

function sample16(row: Uint8Array, index: number): number {
  return (row[index * 2]! << 8) | row[index * 2 + 1]!;
}

class PaletteIndexError extends Error {}

function writePixel(
  out: Uint8Array, o: number, row: Uint8Array, px: number, colorType: number, depth: number,
  palette: Uint8Array | null, trns: Uint8Array | null,
): void {
  const scale = depth < 8 ? 255 / ((1 << depth) - 1) : 1;
  switch (colorType) {
    case 0: {
      const g = sample(row, px, depth);
      const v = Math.round(g * scale);
      out[o] = out[o + 1] = out[o + 2] = v;
      let alpha = 255;
      if (trns && trns.length >= 2) {
        const key = (trns[0]! << 8) | trns[1]!;
        const raw = depth === 16 ? sample16(row, px) : g;
        if (raw === key) alpha = 0;
      }
      out[o + 3] = alpha;
      break;
    }
    case 2: {
      out[o] = sample(row, px * 3, depth);
      out[o + 1] = sample(row, px * 3 + 1, depth);
      out[o + 2] = sample(row, px * 3 + 2, depth);
      let alpha = 255;
      if (trns && trns.length >= 6) {
        const key = [(trns[0]! << 8) | trns[1]!, (trns[2]! << 8) | trns[3]!, (trns[4]! << 8) | trns[5]!];
        const r = depth === 16 ? [sample16(row, px * 3), sample16(row, px * 3 + 1), sample16(row, px * 3 + 2)]
          : [out[o]!, out[o + 1]!, out[o + 2]!];
        if (r[0] === key[0] && r[1] === key[1] && r[2] === key[2]) alpha = 0;
      }
      out[o + 3] = alpha;
      break;
    }
    case 3: {
      const idx = sample(row, px, depth);
      if (idx * 3 + 2 >= palette!.length) {
        throw new PaletteIndexError(`palette index ${idx} out of range (${palette!.length / 3} entries)`);
      }
      out[o] = palette![idx * 3]!;
      out[o + 1] = palette![idx * 3 + 1]!;
      out[o + 2] = palette![idx * 3 + 2]!;
      out[o + 3] = trns && idx < trns.length ? trns[idx]! : 255;
      break;
    }
    case 4: {
      const g = sample(row, px * 2, depth);
      out[o] = out[o + 1] = out[o + 2] = g;
      out[o + 3] = sample(row, px * 2 + 1, depth);
      break;
    }
    default: {
      out[o] = sample(row, px * 4, depth);
      out[o + 1] = sample(row, px * 4 + 1, depth);
      out[o + 2] = sample(row, px * 4 + 2, depth);
      out[o + 3] = sample(row, px * 4 + 3, depth);
    }
  }
}

/** Reads the tEXt chunks of a PNG (key → value); does not decode pixels. */
export function readPngText(bytes: Uint8Array): Record<string, string> {
  if (!isPng(bytes)) throw new FormatError('PNG: not a PNG file (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, string> = {};
  let p = 8;
  while (p + 12 <= bytes.length) {
    const len = view.getUint32(p);
    if (p + 12 + len > bytes.length) throw new FormatError(`PNG: truncated chunk at byte ${p}`);
    const type = String.fromCharCode(bytes[p + 4]!, bytes[p + 5]!, bytes[p + 6]!, bytes[p + 7]!);
    if (type === 'tEXt') {
      const body = bytes.subarray(p + 8, p + 8 + len);
      const nul = body.indexOf(0);
      if (nul > 0) out[String.fromCharCode(...body.subarray(0, nul))] = String.fromCharCode(...body.subarray(nul + 1));
    }
    if (type === 'IEND') break;
    p += 12 + len;
  }
  return out;
}
