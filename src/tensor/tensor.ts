/**
 * Host tensors: a typed-array storage, a dtype, a shape and element strides. Views (slice, permute,
 * select, layout changes) are zero-copy: they share storage and change only shape/strides/offset.
 */
import { DTypeError, ShapeError, ValueError } from '../errors.js';
import { type DType, type Storage, allocStorage, bytesPerElement, decoder, encoder, isDType } from './dtype.js';

/** Attention tensor layouts. BSHD is FlashAttention's `[batch, seqLen, numHeads, headDim]`. */
export type Layout = 'bshd' | 'bhsd';

/** Row-major element strides of a shape, e.g. [2, 3, 4] → [12, 4, 1]. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** Number of elements of a shape: the product of its dimensions (1 for `[]`). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Elements a typed array can hold (2³² − 1 in current engines; a larger shape is a ShapeError, not a RangeError). */
const MAX_ELEMENTS = 2 ** 32 - 1;

function checkShape(shape: readonly number[], argument: string): void {
  if (!Array.isArray(shape) && !ArrayBuffer.isView(shape)) throw new ShapeError(`${argument} must be an array of dimensions`, argument);
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${argument}: dimension ${i} must be a non-negative integer, got ${d}`, argument, `dim${i}`);
    n *= d;
  }
  if (n > MAX_ELEMENTS) throw new ShapeError(`${argument} [${shape.join(', ')}] has ${n} elements, more than a typed array holds (${MAX_ELEMENTS})`, argument);
}

/** How `new Tensor(data, shape, init)` views its storage. */
export interface TensorInit {
  /** Element type. Default f32 for a Float32Array; a Uint16Array needs `'f16'` or `'bf16'`. */
  dtype?: DType;
  /** Element (not byte) strides, one per dimension. Default row-major contiguous for the shape. */
  strides?: readonly number[];
  /** Index in `data` of element [0,…,0]. Default 0. */
  offset?: number;
}

/**
 * A host tensor: typed-array storage seen through a shape, element strides and an offset. Views
 * (permute, slice, select, asBSHD, reshape of a contiguous tensor) share the storage. Attention takes 4-D tensors in BSHD
 * `[batch, seqLen, numHeads, headDim]` by default (BHSD with `layout: 'bhsd'`). The constructor
 * checks that every element of the view lies inside `data` (ShapeError otherwise).
 */
export class Tensor {
  /** Element type; f16 and bf16 elements are raw bit patterns in a Uint16Array. */
  readonly dtype: DType;
  /** Size of each dimension (frozen). */
  readonly shape: readonly number[];
  /** Step in `data` per index of each dimension, in elements (not bytes); frozen. */
  readonly strides: readonly number[];
  /** Offset of element [0,…,0] in `data`, in elements. */
  readonly offset: number;
  /** The backing storage, shared with every view of it: may hold more elements than `size`. */
  readonly data: Storage;

  constructor(data: Storage, shape: readonly number[], init: TensorInit = {}) {
    const dtype = init.dtype ?? (data instanceof Float32Array ? 'f32' : undefined);
    if (init.dtype !== undefined && !isDType(init.dtype)) throw new DTypeError(`dtype must be 'f32', 'f16' or 'bf16', got ${JSON.stringify(init.dtype)}`, 'dtype');
    if (!dtype) {
      throw new DTypeError(data instanceof Uint16Array ? `a Uint16Array tensor needs dtype 'f16' or 'bf16'` : `data must be a Float32Array (f32) or a Uint16Array of f16/bf16 bits, got ${data === null || data === undefined ? String(data) : (data as object).constructor?.name ?? typeof data}`, data instanceof Uint16Array ? 'dtype' : 'data');
    }
    if (dtype === 'f32' && !(data instanceof Float32Array)) throw new DTypeError(`dtype 'f32' needs a Float32Array, got ${data.constructor.name}`, 'data');
    if (dtype !== 'f32' && !(data instanceof Uint16Array)) throw new DTypeError(`dtype '${dtype}' needs a Uint16Array of raw bits, got ${data.constructor.name}`, 'data');
    checkShape(shape, 'shape');
    const strides = init.strides ?? contiguousStrides(shape);
    if (strides.length !== shape.length) throw new ShapeError(`strides has ${strides.length} entries for a rank-${shape.length} shape`, 'strides');
    strides.forEach((s, i) => { if (!Number.isInteger(s)) throw new ShapeError(`strides: entry ${i} must be an integer, got ${s}`, 'strides', `dim${i}`); });
    const offset = init.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0) throw new ShapeError(`offset must be a non-negative integer, got ${offset}`, 'offset');
    if (numel(shape) > 0) {
      let lo = offset, hi = offset;
      for (let i = 0; i < shape.length; i++) {
        const span = (shape[i]! - 1) * strides[i]!;
        if (span < 0) lo += span; else hi += span;
      }
      if (lo < 0 || hi >= data.length) {
        throw new ShapeError(`shape [${shape.join(', ')}] with strides [${strides.join(', ')}] and offset ${offset} reaches elements ${lo}..${hi}, outside storage of length ${data.length}`, 'shape');
      }
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze([...strides]);
    this.offset = offset;
    this.data = data;
  }

  /** A new zero-filled contiguous tensor. */
  static zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    checkShape(shape, 'shape');
    if (!isDType(dtype)) throw new DTypeError(`dtype must be 'f32', 'f16' or 'bf16', got ${JSON.stringify(dtype)}`, 'dtype');
    return new Tensor(allocStorage(dtype, numel(shape)), shape, { dtype });
  }

  /** A contiguous tensor of `dtype` holding `values` (rounded to the dtype, RNE). */
  static fromValues(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    checkShape(shape, 'shape');
    if (values.length !== numel(shape)) throw new ShapeError(`values has ${values.length} elements, shape [${shape.join(', ')}] needs ${numel(shape)}`, 'values');
    const data = allocStorage(dtype, values.length);
    if (dtype === 'f32') (data as Float32Array).set(values);
    else {
      const enc = encoder(dtype);
      for (let i = 0; i < values.length; i++) data[i] = enc(values[i]!);
    }
    return new Tensor(data, shape, { dtype });
  }

  /** Number of dimensions (`shape.length`). */
  get rank(): number {
    return this.shape.length;
  }

  /** Number of elements: the product of `shape` (1 for a rank-0 tensor). */
  get size(): number {
    return numel(this.shape);
  }

  /** Bytes of the elements (`size` × bytes per element), not of the whole `data`. */
  get bytes(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  /** Whether the elements are dense in row-major order (strides of size-1 dimensions ignored; any offset). */
  isContiguous(): boolean {
    const c = contiguousStrides(this.shape);
    for (let i = 0; i < c.length; i++) if (this.shape[i]! > 1 && this.strides[i] !== c[i]) return false;
    return true;
  }

  /** Element offset in `data` of an index tuple. */
  index(idx: readonly number[]): number {
    let o = this.offset;
    for (let i = 0; i < idx.length; i++) o += idx[i]! * this.strides[i]!;
    return o;
  }

  /** Decoded value at an index tuple. */
  get(...idx: number[]): number {
    if (idx.length !== this.rank) throw new ShapeError(`get needs ${this.rank} indices, got ${idx.length}`, 'idx');
    this.checkIndex(idx);
    return decoder(this.dtype)(this.data[this.index(idx)]!);
  }

  /** Stores `value` at an index tuple (one index per dimension), rounded to the dtype (RNE). */
  set(value: number, ...idx: number[]): void {
    if (idx.length !== this.rank) throw new ShapeError(`set needs ${this.rank} indices, got ${idx.length}`, 'idx');
    this.checkIndex(idx);
    this.data[this.index(idx)] = encoder(this.dtype)(value);
  }

  /** Each index an integer inside its dimension (an index past one dimension would land in the next row). */
  private checkIndex(idx: readonly number[]): void {
    idx.forEach((x, d) => {
      if (!Number.isInteger(x) || x < 0 || x >= this.shape[d]!) throw new ShapeError(`index ${x} is out of range for dimension ${d} of size ${this.shape[d]}`, 'idx', `dim${d}`);
    });
  }

  /** Zero-copy permutation of dimensions. */
  permute(order: readonly number[]): Tensor {
    if (!Array.isArray(order) || order.length !== this.rank || new Set(order).size !== this.rank || order.some((o) => !Number.isInteger(o) || o < 0 || o >= this.rank)) {
      throw new ShapeError(`permute order [${order.join(', ')}] is not a permutation of 0..${this.rank - 1}`, 'order');
    }
    return new Tensor(this.data, order.map((o) => this.shape[o]!), { dtype: this.dtype, strides: order.map((o) => this.strides[o]!), offset: this.offset });
  }

  /** Zero-copy slice [start, end) along `dim`. */
  slice(dim: number, start: number, end: number): Tensor {
    const n = this.shape[dim];
    if (n === undefined) throw new ShapeError(`slice: no dimension ${dim} in a rank-${this.rank} tensor`, 'dim');
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start > end) {
      throw new ShapeError(`slice [${start}, ${end}) is outside dimension ${dim} of size ${n}`, 'start', `dim${dim}`);
    }
    const shape = [...this.shape];
    shape[dim] = end - start;
    return new Tensor(this.data, shape, { dtype: this.dtype, strides: this.strides, offset: this.offset + start * this.strides[dim]! });
  }

  /** Zero-copy selection of one index along `dim` (drops the dimension). */
  select(dim: number, i: number): Tensor {
    const s = this.slice(dim, i, i + 1);
    return new Tensor(this.data, s.shape.filter((_, d) => d !== dim), { dtype: this.dtype, strides: s.strides.filter((_, d) => d !== dim), offset: s.offset });
  }

  /** Reshape: zero-copy for a contiguous tensor; a strided one is made contiguous (a copy) first. */
  reshape(shape: readonly number[]): Tensor {
    checkShape(shape, 'shape');
    if (numel(shape) !== this.size) throw new ShapeError(`cannot reshape [${this.shape.join(', ')}] (${this.size} elements) to [${shape.join(', ')}]`, 'shape');
    if (!this.isContiguous()) return this.contiguous().reshape(shape);
    return new Tensor(this.data, shape, { dtype: this.dtype, offset: this.offset });
  }

  /** A contiguous copy (or this tensor, if already contiguous and starting at offset 0). */
  contiguous(): Tensor {
    if (this.isContiguous() && this.offset === 0 && this.data.length === this.size) return this;
    const out = Tensor.zeros(this.shape, this.dtype);
    copyInto(this, out);
    return out;
  }

  /** All values decoded to a contiguous Float32Array (row-major over `shape`). */
  toFloat32(): Float32Array {
    // Contiguous f32: one block copy (no per-element decode).
    if (this.dtype === 'f32' && this.data instanceof Float32Array && this.isContiguous()) return this.data.slice(this.offset, this.offset + this.size);
    const out = new Float32Array(this.size);
    const dec = decoder(this.dtype);
    let k = 0;
    forEachOffset(this, (o) => { out[k++] = dec(this.data[o]!); });
    return out;
  }

  /** All values decoded to a contiguous Float64Array. */
  toFloat64(): Float64Array {
    const src = this.dtype === 'f32' && this.data instanceof Float32Array && this.isContiguous() ? this.data.subarray(this.offset, this.offset + this.size) : this.toFloat32();
    const out = new Float64Array(src.length);
    out.set(src);
    return out;
  }

  /** Converted to another dtype (RNE), as a new tensor; the same dtype gives `contiguous()` (this tensor where it already is). */
  to(dtype: DType): Tensor {
    if (dtype === this.dtype) return this.contiguous();
    return Tensor.fromValues(this.toFloat32(), this.shape, dtype);
  }

  /**
   * Reinterprets a 4-D attention tensor given in `layout` as BSHD (zero-copy).
   * `bhsd` → permute(0, 2, 1, 3).
   */
  asBSHD(layout: Layout, argument = 'tensor'): Tensor {
    if (layout !== 'bshd' && layout !== 'bhsd') throw new ValueError(`layout must be 'bshd' or 'bhsd', got ${JSON.stringify(layout)}`, 'layout');
    if (this.rank !== 4) throw new ShapeError(`${argument} must be 4-D [${layout === 'bshd' ? 'batch, seqLen, numHeads, headDim' : 'batch, numHeads, seqLen, headDim'}], got rank ${this.rank} [${this.shape.join(', ')}]`, argument);
    return layout === 'bshd' ? this : this.permute([0, 2, 1, 3]);
  }

  /** Dtype and shape, e.g. `Tensor(f16, [1, 128, 8, 64])`. */
  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}])`;
  }
}

/** Calls fn with the storage offset of every element, in row-major order. */
export function forEachOffset(t: Tensor, fn: (offset: number) => void): void {
  const rank = t.rank;
  if (t.size === 0) return;
  if (rank === 0) { fn(t.offset); return; }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const n = t.shape[last]!, s = t.strides[last]!;
  for (;;) {
    let base = t.offset;
    for (let i = 0; i < last; i++) base += idx[i]! * t.strides[i]!;
    for (let j = 0; j < n; j++) fn(base + j * s);
    let d = last - 1;
    while (d >= 0) {
      if (++idx[d]! < t.shape[d]!) break;
      idx[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

/** Copies src into dst elementwise (same shape), converting dtypes. */
export function copyInto(src: Tensor, dst: Tensor): void {
  if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i])) {
    throw new ShapeError(`copy: shapes [${src.shape.join(', ')}] and [${dst.shape.join(', ')}] differ`, 'dst');
  }
  // Nothing to copy (an empty view's offset may lie past its storage).
  if (src.size === 0) return;
  // Fast path: same dtype, both dense over the same order → one typed-array copy.
  if (src.dtype === dst.dtype && src.isContiguous() && dst.isContiguous()) {
    (dst.data as Float32Array).set((src.data as Float32Array).subarray(src.offset, src.offset + src.size), dst.offset);
    return;
  }
  // Rows along the last dimension are copied (and converted) row by row.
  const rank = src.rank;
  if (rank > 0 && src.strides[rank - 1] === 1 && dst.strides[rank - 1] === 1) {
    const n = src.shape[rank - 1]!;
    const outer = src.shape.slice(0, rank - 1);
    const dec = decoder(src.dtype), enc = encoder(dst.dtype);
    const same = src.dtype === dst.dtype;
    const idx = new Array<number>(rank - 1).fill(0);
    const total = numel(outer);
    for (let t = 0; t < total; t++) {
      let so = src.offset, d0 = dst.offset;
      for (let i = 0; i < rank - 1; i++) { so += idx[i]! * src.strides[i]!; d0 += idx[i]! * dst.strides[i]!; }
      if (same) (dst.data as Float32Array).set((src.data as Float32Array).subarray(so, so + n), d0);
      else for (let j = 0; j < n; j++) dst.data[d0 + j] = enc(dec(src.data[so + j]!));
      for (let i = rank - 2; i >= 0; i--) { if (++idx[i]! < outer[i]!) break; idx[i] = 0; }
    }
    return;
  }
  const offs: number[] = [];
  forEachOffset(dst, (o) => offs.push(o));
  let k = 0;
  if (src.dtype === dst.dtype) {
    forEachOffset(src, (o) => { dst.data[offs[k++]!] = src.data[o]!; });
  } else {
    const dec = decoder(src.dtype), enc = encoder(dst.dtype);
    forEachOffset(src, (o) => { dst.data[offs[k++]!] = enc(dec(src.data[o]!)); });
  }
}

/** Convenience constructor: `tensor(values, shape, dtype)`. */
export function tensor(values: ArrayLike<number> | Storage, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  if (dtype === 'f32' && values instanceof Float32Array) {
    if (values.length !== numel(shape)) throw new ShapeError(`values has ${values.length} elements, shape [${shape.join(', ')}] needs ${numel(shape)}`, 'values');
    return new Tensor(values, shape);
  }
  if (dtype !== 'f32' && values instanceof Uint16Array) {
    if (values.length !== numel(shape)) throw new ShapeError(`values has ${values.length} elements, shape [${shape.join(', ')}] needs ${numel(shape)}`, 'values');
    return new Tensor(values, shape, { dtype });
  }
  return Tensor.fromValues(values, shape, dtype);
}

/** Deterministic pseudo-random normal tensor (for tests, benches and examples). */
export function randn(shape: readonly number[], seed = 1, dtype: DType = 'f32', std = 1): Tensor {
  const rng = mulberry32(seed);
  const n = numel(shape);
  const vals = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(rng(), 1e-12), u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    vals[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) vals[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return Tensor.fromValues(vals, shape, dtype);
}

/** Small, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function requireRank(t: Tensor, rank: number, argument: string, dims: string): void {
  if (!(t instanceof Tensor)) throw new ValueError(`${argument} must be a Tensor`, argument);
  if (t.rank !== rank) throw new ShapeError(`${argument} must be ${rank}-D [${dims}], got [${t.shape.join(', ')}]`, argument);
}
