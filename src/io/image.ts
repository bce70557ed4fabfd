/**
 * Image decoding in Node (sharp/libvips): PNG, JPEG, WebP, GIF, TIFF, AVIF … → 8-bit RGBA.
 * Node-only; exported from `vlm-attention/node`. Browsers use `decodeImageBrowser`
 * (relevance/browser-image.ts).
 *
 * Corrupt, truncated or unknown files raise FormatError naming the file; zero-area images too.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { FormatError, ValueError } from '../errors.js';
import type { RgbaImage } from '../viz/png.js';

/** Options for {@link decodeImage}. */
export interface DecodeImageOptions {
  /** Refuse images with more pixels than this (default 2^28). */
  maxPixels?: number;
}

/**
 * Decodes an image file (path) or encoded bytes into 8-bit RGBA. EXIF orientation is applied.
 * @returns { width, height, data: Uint8Array [height × width × 4] }
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeImageOptions = {}): Promise<RgbaImage> {
  const name = typeof input === 'string' ? input : undefined;
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    if (input.length === 0) throw new ValueError('image path must not be empty', 'image');
    try {
      bytes = await readFile(input);
    } catch (e) {
      throw new FormatError(`cannot read image '${input}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, input, e);
    }
  } else if (input instanceof Uint8Array) {
    bytes = input;
  } else {
    throw new ValueError('image must be a file path or a Uint8Array of encoded bytes', 'image');
  }
  const label = name ? `'${name}'` : '(bytes)';
  if (bytes.length === 0) throw new FormatError(`image ${label} is empty (0 bytes)`, name);
  const maxPixels = options.maxPixels ?? 2 ** 28;
  try {
    const { data, info } = await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels })
      .rotate()
      .ensureAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width < 1 || info.height < 1) throw new FormatError(`image ${label} has zero area (${info.width}×${info.height})`, name);
    if (info.channels !== 4) throw new FormatError(`image ${label} decoded to ${info.channels} channels, expected 4`, name);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    if (e instanceof FormatError) throw e;
    const msg = ((e as Error).message ?? String(e)).split('\n')[0];
    throw new FormatError(`cannot decode image ${label}: ${msg}`, name);
  }
}
