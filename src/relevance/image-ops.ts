/**
 * Float RGB images for the relevance pipeline: conversion from 8-bit RGBA and resampling.
 * Browser-safe.
 */
import { ShapeError, ValueError } from '../errors.js';
import type { RgbaImage } from '../viz/png.js';

/** A planar float image: `data` is [3, height, width] (R plane, G plane, B plane), values in [0, 1]. */
export interface RgbImage {
  width: number;
  height: number;
  /** Shape [3, height, width] (the R plane, then G, then B; values in [0, 1]). */
  data: Float32Array;
}

/**
 * Checks an RgbImage; throws ValueError/ShapeError naming `argument` (zero-area images included). With
 * `values` (default) every value must be in [0, 1]; shape only for callers that clamp or were given checked data.
 */
export function checkRgbImage(image: RgbImage, argument = 'image', values = true): void {
  const { width, height, data } = image ?? ({} as RgbImage);
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new ValueError(`${argument} must have a positive integer width and height, got ${width}×${height} (zero-area image?)`, argument);
  }
  if (!(data instanceof Float32Array) || data.length !== 3 * width * height) {
    throw new ShapeError(`${argument}.data must be a Float32Array of 3·height·width = ${3 * width * height} values, got ${data?.length}`, argument, 'data');
  }
  // Values in [0, 1] (a NaN was reported later as the salience scorer's; 0..255 floats put every region's
  // luminance in one histogram bin).
  if (!values) return;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!(x >= 0 && x <= 1)) {
      const plane = Math.floor(i / (width * height)), px = i % (width * height);
      throw new ValueError(`${argument}.data holds ${x} at channel ${'RGB'[plane]}, pixel (${px % width}, ${Math.floor(px / width)}); float RGB values must be in [0, 1]${x > 1 && x <= 255 ? ' (8-bit values? divide by 255, or pass RGBA bytes)' : ''}`, argument);
    }
  }
}

/**
 * 8-bit RGBA → planar float RGB in [0, 1]; transparent pixels are composited over `background`
 * (default white).
 */
export function rgbaToRgb(image: RgbaImage, background: readonly [number, number, number] = [1, 1, 1]): RgbImage {
  const { width, height, data } = image ?? ({} as RgbaImage);
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new ValueError(`image must have a positive integer width and height, got ${width}×${height} (zero-area image?)`, 'image');
  }
  if (!data || data.length !== width * height * 4) throw new ShapeError(`image.data must hold width·height·4 = ${width * height * 4} bytes, got ${data?.length}`, 'image', 'data');
  const n = width * height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = data[i * 4 + 3]! / 255;
    for (let c = 0; c < 3; c++) out[c * n + i] = (data[i * 4 + c]! / 255) * a + background[c]! * (1 - a);
  }
  return { width, height, data: out };
}

/** Planar float RGB → 8-bit opaque RGBA (values clamped to [0, 1], rounded). */
export function rgbToRgba(image: RgbImage): RgbaImage {
  checkRgbImage(image, 'image', false); // values are clamped here
  const n = image.width * image.height;
  const out = new Uint8Array(4 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[i * 4 + c] = Math.round(Math.min(1, Math.max(0, image.data[c * n + i]!)) * 255);
    out[i * 4 + 3] = 255;
  }
  return { width: image.width, height: image.height, data: out };
}

/**
 * 1-D resampling weights from `src` to `dst` samples with pixel-centre alignment: exact box (area)
 * averaging when shrinking, bilinear (align_corners = false) when enlarging.
 */
function weights(src: number, dst: number): { start: Int32Array; count: Int32Array; w: Float32Array; stride: number } {
  const scale = src / dst;
  if (scale > 1) {
    const stride = Math.ceil(scale) + 1;
    const start = new Int32Array(dst), count = new Int32Array(dst), w = new Float32Array(dst * stride);
    for (let i = 0; i < dst; i++) {
      const a = i * scale, b = (i + 1) * scale;
      const s = Math.floor(a), e = Math.min(src, Math.ceil(b));
      start[i] = s; count[i] = e - s;
      for (let j = s; j < e; j++) w[i * stride + j - s] = (Math.min(b, j + 1) - Math.max(a, j)) / scale;
    }
    return { start, count, w, stride };
  }
  const stride = 2;
  const start = new Int32Array(dst), count = new Int32Array(dst), w = new Float32Array(dst * stride);
  for (let i = 0; i < dst; i++) {
    const s = Math.min(src - 1, Math.max(0, (i + 0.5) * scale - 0.5));
    const j0 = Math.floor(s), j1 = Math.min(src - 1, j0 + 1), f = s - j0;
    start[i] = j0; count[i] = j1 > j0 ? 2 : 1;
    w[i * stride] = j1 > j0 ? 1 - f : 1;
    if (j1 > j0) w[i * stride + 1] = f;
  }
  return { start, count, w, stride };
}

/**
 * Resamples planar data [channels, height, width] to [channels, outHeight, outWidth]: area average
 * when shrinking an axis, bilinear when enlarging it (separable, rows then columns).
 */
export function resamplePlanar(data: Float32Array, channels: number, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  if (!Number.isInteger(outWidth) || outWidth < 1 || !Number.isInteger(outHeight) || outHeight < 1) {
    throw new ValueError(`output size must be positive integers, got ${outWidth}×${outHeight}`, 'outWidth');
  }
  if (data.length !== channels * width * height) throw new ShapeError(`data has ${data.length} values, expected ${channels}·${height}·${width}`, 'data');
  if (outWidth === width && outHeight === height) return data.slice();
  if (width % outWidth === 0 && height % outHeight === 0) return boxDown(data, channels, width, height, width / outWidth, height / outHeight);
  const wx = weights(width, outWidth), wy = weights(height, outHeight);
  const tmp = new Float32Array(channels * height * outWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      const src = (c * height + y) * width, dst = (c * height + y) * outWidth;
      for (let x = 0; x < outWidth; x++) {
        let s = 0;
        const st = wx.start[x]!, n = wx.count[x]!, wo = x * wx.stride;
        for (let k = 0; k < n; k++) s += data[src + st + k]! * wx.w[wo + k]!;
        tmp[dst + x] = s;
      }
    }
  }
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outHeight; y++) {
      const st = wy.start[y]!, n = wy.count[y]!, wo = y * wy.stride;
      const dst = (c * outHeight + y) * outWidth;
      for (let k = 0; k < n; k++) {
        const wk = wy.w[wo + k]!, src = (c * height + st + k) * outWidth;
        for (let x = 0; x < outWidth; x++) out[dst + x] += tmp[src + x]! * wk;
      }
    }
  }
  return out;
}

/** Exact integer downsampling by kx × ky box averaging (the area filter's special case). */
function boxDown(data: Float32Array, channels: number, width: number, height: number, kx: number, ky: number): Float32Array {
  const ow = width / kx, oh = height / ky;
  const out = new Float32Array(channels * ow * oh);
  const acc = new Float64Array(ow);
  const inv = 1 / (kx * ky);
  for (let c = 0; c < channels; c++) {
    for (let oy = 0; oy < oh; oy++) {
      acc.fill(0);
      for (let y = oy * ky; y < (oy + 1) * ky; y++) {
        let src = (c * height + y) * width;
        for (let ox = 0; ox < ow; ox++) {
          let s = 0;
          for (let k = 0; k < kx; k++) s += data[src + k]!;
          acc[ox] += s;
          src += kx;
        }
      }
      const dst = (c * oh + oy) * ow;
      for (let ox = 0; ox < ow; ox++) out[dst + ox] = acc[ox]! * inv;
    }
  }
  return out;
}

/** Resizes an RgbImage (area average when shrinking, bilinear when enlarging). */
export function resizeRgb(image: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage(image);
  return { width, height, data: resamplePlanar(image.data, 3, image.width, image.height, width, height) };
}
