/**
 * Image decoding in browsers: any format the browser decodes (PNG, JPEG, WebP, AVIF, GIF) via
 * `createImageBitmap` and an OffscreenCanvas (or a DOM canvas), giving 8-bit RGBA. Without those
 * APIs (e.g. Node), PNG bytes still decode through the pure-TS decoder; other formats raise
 * UnsupportedError (use `decodeImage` from `vlm-attention/node`).
 */
import { FormatError, UnsupportedError, ValueError } from '../errors.js';
import { decodePng, isPng, type RgbaImage } from '../viz/png.js';

/** Decodes a Blob, ArrayBuffer or bytes into RGBA. Corrupt or zero-area images raise FormatError. */
export async function decodeImageBrowser(input: Blob | ArrayBuffer | Uint8Array): Promise<RgbaImage> {
  let bytes: Uint8Array | null = null;
  if (input instanceof Uint8Array) bytes = input;
  else if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
  else if (typeof Blob === 'undefined' || !(input instanceof Blob)) throw new ValueError('input must be a Blob, ArrayBuffer or Uint8Array', 'input');
  if (bytes && bytes.length === 0) throw new FormatError('image is empty (0 bytes)');
  const g = globalThis as unknown as { createImageBitmap?: (b: Blob) => Promise<ImageBitmap>; OffscreenCanvas?: typeof OffscreenCanvas; document?: Document };
  if (typeof g.createImageBitmap !== 'function') {
    if (bytes && isPng(bytes)) return decodePng(bytes);
    throw new UnsupportedError('this runtime has no createImageBitmap; only PNG bytes decode here', 'decodeImage from vlm-attention/node');
  }
  const blob = input instanceof Blob ? input : new Blob([bytes!.slice().buffer as ArrayBuffer]);
  let bitmap: ImageBitmap;
  try {
    bitmap = await g.createImageBitmap(blob);
  } catch (e) {
    throw new FormatError(`cannot decode image: ${(e as Error).message}`);
  }
  const { width, height } = bitmap;
  if (width < 1 || height < 1) throw new FormatError(`image has zero area (${width}×${height})`);
  let ctx: OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D | null;
  if (typeof g.OffscreenCanvas === 'function') ctx = new g.OffscreenCanvas(width, height).getContext('2d');
  else if (g.document) { const c = g.document.createElement('canvas'); c.width = width; c.height = height; ctx = c.getContext('2d'); }
  else throw new UnsupportedError('no canvas is available to read pixels', 'decodeImage from vlm-attention/node');
  if (!ctx) throw new UnsupportedError('a 2D canvas context is not available', 'decodeImage from vlm-attention/node');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close?.();
  const data = ctx.getImageData(0, 0, width, height).data;
  return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}
