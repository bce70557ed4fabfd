/**
 * A toy "model" for KV-cache tests: the K/V of a token is a deterministic function of its whole
 * prefix (tenant salt, every earlier token id and which image covers each position), as in a real
 * transformer. So a prefix-cache hit that returns blocks of a different prefix, a different image
 * behind the same placeholder tokens, or another tenant's blocks shows up as a data mismatch.
 */
import { Tensor, mulberry32 } from '../../../src/index.js';

export interface ToyModel {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  dtype: 'f32' | 'f16';
}

/** 32-bit mix (murmur3 finaliser over a combination). */
export function mix32(h: number, x: number): number {
  let k = Math.imul(x | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export function saltSeed(salt: string | undefined): number {
  let h = 0x12345678;
  for (const ch of salt ?? '') h = mix32(h, ch.charCodeAt(0));
  return mix32(h, salt === undefined ? 0 : 1);
}

/** Prefix hash after one more token (imageId −1 when no image covers the position). */
export function stepHash(prev: number, token: number, imageId: number): number {
  return mix32(mix32(prev, token), imageId + 1);
}

/** K and V values of one position for every layer: [numLayers][numKvHeads · headDim] each. */
export function kvValues(m: ToyModel, prefixHash: number, layer: number, which: 0 | 1): Float32Array {
  const rng = mulberry32(mix32(mix32(prefixHash, layer), which));
  const n = m.numKvHeads * m.headDim;
  const out = new Float32Array(n);
  // Never zero: |x| in [0.25, 4.25).
  for (let i = 0; i < n; i++) out[i] = (rng() < 0.5 ? -1 : 1) * (0.25 + 4 * rng());
  return out;
}

/** K/V input tensors [numLayers, n, numKvHeads, headDim] in the model's dtype for positions with these prefix hashes. */
export function kvInput(m: ToyModel, hashes: ArrayLike<number>): { k: Tensor; v: Tensor } {
  const n = hashes.length, E = m.numKvHeads * m.headDim;
  const k = new Float32Array(m.numLayers * n * E), v = new Float32Array(m.numLayers * n * E);
  for (let l = 0; l < m.numLayers; l++) {
    for (let t = 0; t < n; t++) {
      k.set(kvValues(m, hashes[t]!, l, 0), (l * n + t) * E);
      v.set(kvValues(m, hashes[t]!, l, 1), (l * n + t) * E);
    }
  }
  const shape = [m.numLayers, n, m.numKvHeads, m.headDim];
  return { k: Tensor.fromValues(k, shape, m.dtype), v: Tensor.fromValues(v, shape, m.dtype) };
}
