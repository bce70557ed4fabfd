// Small generated fixtures shared by the viz tests.
import { mulberry32 } from '../../../src/tensor/tensor.js';
import { encodePng } from '../../../src/viz/png.js';

/** Random row-stochastic attention [heads, rows, keys] (never zeros: every entry ≥ 1e-3 before normalising). */
export function randomAttention(heads: number, rows: number, keys: number, seed: number, sharpness = 2): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(heads * rows * keys);
  for (let r = 0; r < heads * rows; r++) {
    let s = 0;
    for (let j = 0; j < keys; j++) { const v = Math.exp(sharpness * (rng() * 2 - 1)) + 1e-3; out[r * keys + j] = v; s += v; }
    for (let j = 0; j < keys; j++) out[r * keys + j] = out[r * keys + j]! / s;
  }
  return out;
}

/** Random row-stochastic float64 matrix n×n. */
export function randomStochastic(n: number, rng: () => number, sharpness = 3): Float64Array {
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) { const v = Math.exp(sharpness * (rng() * 2 - 1)); m[i * n + j] = v; s += v; }
    for (let j = 0; j < n; j++) m[i * n + j] = m[i * n + j]! / s;
  }
  return m;
}

/** A small gradient PNG. */
export function tinyPng(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const o = (y * width + x) * 4;
    data[o] = (x * 255) / Math.max(1, width - 1); data[o + 1] = (y * 255) / Math.max(1, height - 1); data[o + 2] = 128; data[o + 3] = 255;
  }
  return encodePng({ width, height, data });
}
