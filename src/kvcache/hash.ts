/**
 * Hashing for the KV cache: a synchronous SHA-256 (browsers only offer an async one through
 * `crypto.subtle`, and block hashing sits on the hot path of every append), an unambiguous byte
 * encoding of block contents, and content hashes for images.
 *
 * Block hash (vLLM V1 automatic prefix caching, `kv_cache_utils.py`):
 *
 *   hash(block i) = SHA-256( parent ‖ u32 n ‖ i32 tokenIds[0..n) ‖ u32 numExtra ‖ extra… )
 *   parent        = hash(block i−1), or for block 0
 *                   NONE_HASH = SHA-256( u32 26 ‖ "vlm-attention/kv-prefix/v1" ‖ u32 byteLength ‖ utf8 hashSeed )
 *   extra         = u8 tag ‖ u32 byteLength ‖ utf8 bytes [‖ i32 offset ‖ u32 length]
 *                   tag 1: an image overlapping the block: (content hash, image offset − block start, its placeholder
 *                   length: the same pixels tokenised to another number of placeholders, e.g. at another resolution,
 *                   have other features)
 *                   tag 2: the tenant salt (block 0 only)
 *
 * All integers are little-endian. Length prefixes make the encoding injective, so two different
 * (parent, tokens, extras) never share an input; only a SHA-256 collision could alias two blocks.
 */
import { DTypeError, ValueError } from '../errors.js';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const W = new Uint32Array(64);

/** SHA-256 of `bytes` (FIPS 180-4), synchronous. Returns 32 bytes. */
export function sha256(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  const padded = new Uint8Array(((n + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[n] = 0x80;
  const bits = n * 8;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor(bits / 0x100000000), false);
  dv.setUint32(padded.length - 4, bits >>> 0, false);
  let h0 = 0x6a09e667, h1 = 0xbb67ae85, h2 = 0x3c6ef372, h3 = 0xa54ff53a;
  let h4 = 0x510e527f, h5 = 0x9b05688c, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
  for (let off = 0; off < padded.length; off += 64) {
    for (let t = 0; t < 16; t++) W[t] = dv.getUint32(off + t * 4, false);
    for (let t = 16; t < 64; t++) {
      const w15 = W[t - 15]!, w2 = W[t - 2]!;
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[t]! + W[t]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  [h0, h1, h2, h3, h4, h5, h6, h7].forEach((x, i) => ov.setUint32(i * 4, x >>> 0, false));
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

const utf8 = new TextEncoder();

/** Growable little-endian byte writer for hash inputs. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  private dv = new DataView(this.buf.buffer);
  length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + extra));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  reset(): this {
    this.length = 0;
    return this;
  }

  u8(x: number): this {
    this.ensure(1);
    this.buf[this.length++] = x;
    return this;
  }

  u32(x: number): this {
    this.ensure(4);
    this.dv.setUint32(this.length, x >>> 0, true);
    this.length += 4;
    return this;
  }

  i32(x: number): this {
    this.ensure(4);
    this.dv.setInt32(this.length, x | 0, true);
    this.length += 4;
    return this;
  }

  f64(x: number): this {
    this.ensure(8);
    this.dv.setFloat64(this.length, x, true);
    this.length += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** u32 byte length, then the UTF-8 bytes. */
  str(s: string): this {
    const b = utf8.encode(s);
    return this.u32(b.length).bytes(b);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** One entry of a block's extra keys. */
export type ExtraKey =
  | { readonly kind: 'image'; readonly hash: string; readonly offsetFromBlockStart: number; readonly length: number }
  | { readonly kind: 'salt'; readonly salt: string };

const TAG_IMAGE = 1;
const TAG_SALT = 2;

/** The parent hash of block 0, for a given seed ("" by default; set one per deployment to make hashes unguessable). */
export function noneHash(hashSeed = ''): string {
  return toHex(sha256(new ByteWriter().str('vlm-attention/kv-prefix/v1').str(hashSeed).view()));
}

const writer = new ByteWriter();

/**
 * Hash of one full block: chains `parentHex` (64 hex chars), the block's token ids and its extra keys.
 * `tokenIds` is read over [start, end).
 */
export function blockHash(parentHex: string, tokenIds: ArrayLike<number>, start: number, end: number, extra: readonly ExtraKey[]): string {
  const w = writer.reset();
  w.bytes(fromHex(parentHex)).u32(end - start);
  for (let i = start; i < end; i++) w.i32(tokenIds[i]!);
  w.u32(extra.length);
  for (const e of extra) {
    if (e.kind === 'image') w.u8(TAG_IMAGE).str(e.hash).i32(e.offsetFromBlockStart).u32(e.length);
    else w.u8(TAG_SALT).str(e.salt);
  }
  return toHex(sha256(w.view()));
}

/** The element kind of pixel data; anything else (a plain array, null) is a DTypeError naming `pixels`. */
function pixelKind(pixels: unknown): 'u8' | 'u16' | 'f32' {
  if (pixels instanceof Uint8Array || pixels instanceof Uint8ClampedArray) return 'u8';
  if (pixels instanceof Uint16Array) return 'u16';
  if (pixels instanceof Float32Array) return 'f32';
  const what = pixels === null ? 'null' : Array.isArray(pixels) ? 'a plain array' : typeof pixels === 'object' ? (pixels as object).constructor?.name ?? 'an object' : typeof pixels;
  throw new DTypeError(`pixels must be a Uint8Array, Uint8ClampedArray, Uint16Array or Float32Array, got ${what}`, 'pixels');
}

/** Pixel data accepted by `imageContentHash`. */
export type PixelData = Uint8Array | Uint8ClampedArray | Uint16Array | Float32Array;

/**
 * Content hash of an image: SHA-256 over (width, height, channels, element type, raw pixel bytes),
 * hex. Two images with the same pixels hash the same whatever their file name or container: the element type is
 * u8 for Uint8Array, Buffer and Uint8ClampedArray (a canvas's ImageData) alike, u16 or f32 otherwise.
 */
export function imageContentHash(pixels: PixelData, width: number, height: number, channels?: number): string {
  const kind = pixelKind(pixels);
  const inferred = channels === undefined;
  channels ??= pixels.length / Math.max(1, width * height);
  for (const [v, name] of [[width, 'width'], [height, 'height']] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ValueError(`${name} must be a positive integer, got ${v}`, name);
  }
  // Without channels, a pixel count that is not a multiple of width·height is the pixels' fault, not channels'.
  if (inferred && (!Number.isInteger(channels) || channels < 1)) {
    throw new ValueError(`pixels has ${pixels.length} elements, not a positive multiple of width·height = ${width}·${height} = ${width * height} (channels inferred)`, 'pixels');
  }
  if (!Number.isInteger(channels) || channels < 1) throw new ValueError(`channels must be a positive integer, got ${channels}`, 'channels');
  if (pixels.length !== width * height * channels) {
    throw new ValueError(`pixels has ${pixels.length} elements, width·height·channels = ${width}·${height}·${channels} = ${width * height * channels}`, 'pixels');
  }
  const raw = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  // v2: the element type by kind, no longer the class name (Buffer, Uint8ClampedArray and subclasses hashed apart).
  const w = new ByteWriter().str('image/v2').u32(width).u32(height).u32(channels).str(kind).bytes(raw);
  return toHex(sha256(w.view()));
}
