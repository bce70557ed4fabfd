/**
 * KV block storage: the bytes behind the block pool, laid out so attention kernels read it in place.
 *
 * Per layer, K and V are each
 *   f32 / f16: a Tensor [numBlocks, blockSizeTokens, numKvHeads, headDim] (f16 as raw bits);
 *   int8:      an Int8Array of that shape plus scales Float32Array [numBlocks, numKvHeads]
 *              (value = fround(level(int8) · |scale|); a negative scale marks the gaussian grid), see quant.ts.
 * A token's physical slot is block · blockSizeTokens + offsetInBlock, so element (slot, kvHead, c)
 * sits at (slot · numKvHeads + kvHead) · headDim + c. With a rotation, K and V hold R·x (quant.ts).
 */
import { ShapeError, StateError, UnsupportedError, ValueError, assert } from '../errors.js';
import { decoder, encoder } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { WasmHeap } from '../kernels/cpu/wasm-heap.js';
import {
  type HadamardRotation, type Int8Grid, type Int8GridMode, type RotationSource, dequantizeInt8, int8Scale, int8ScaleOf, type KFeedback, type KRounding, kFeedback, quantizeRowInt8, quantizeRowInt8Feedback, rotateInPlace,
  storedInt8Scale,
} from './quant.js';

/** Element types of KV blocks. */
export type KvDType = 'f32' | 'f16' | 'int8';

/**
 * One layer's K and V blocks, each [numBlocks, blockSizeTokens, numKvHeads, headDim]: f32/f16 Tensors
 * (f16 as raw bits), or int8 codes with scales Float32Array [numBlocks, numKvHeads] (value =
 * fround(level(code) · |scale|); a negative scale marks the gaussian grid, quant.ts).
 */
export type KvLayerStorage =
  | { readonly dtype: 'f32' | 'f16'; readonly k: Tensor; readonly v: Tensor }
  | { readonly dtype: 'int8'; readonly k: Int8Array; readonly v: Int8Array; readonly kScales: Float32Array; readonly vScales: Float32Array };

/** Bytes of one block over all layers, K and V (int8 includes its f32 scales). */
export function bytesPerBlock(numLayers: number, numKvHeads: number, headDim: number, blockSizeTokens: number, dtype: KvDType): number {
  const elem = dtype === 'f32' ? 4 : dtype === 'f16' ? 2 : 1;
  const perTensor = blockSizeTokens * numKvHeads * headDim * elem + (dtype === 'int8' ? numKvHeads * 4 : 0);
  return numLayers * 2 * perTensor;
}

/** Told which blocks of a layer changed (e.g. a device copy of the storage, kv-gpu.ts). */
export interface KvStorageObserver {
  /** Called after a write or a copy-on-write changed `blocks` (block ids) of `layer`. */
  blocksChanged(layer: number, blocks: readonly number[]): void;
  /** Called once when the storage is disposed (a device copy frees itself). */
  storageDisposed?(): void;
}

/** Tokens a layer's 'auto' K smoothing is calibrated from, at least (KvBlockStorage.smoothIn). */
export const SMOOTH_MIN_TOKENS = 16;

/**
 * K's smoothing factors from n tokens x [n, numKvHeads, headDim]: per KV head, λ_c = √rms_c over the
 * tokens (at least 1e-3 of the head's largest), divided by their geometric mean, so the head's typical
 * channel keeps its size and an outlier channel 100× the rest is stored 10× smaller (QServe's
 * SmoothAttention with α = ½). The root mean square rather than the absmax: the score error from K's
 * rounding goes as ‖λ ⊙ q‖·‖k / λ‖, smallest (Cauchy–Schwarz, for queries alike in every channel) at
 * λ_c² ∝ rms_c; and a rare large value (FlashAttention-3's sparse outliers) moves a channel's absmax, not its
 * rms. Against absmax: worst of 36 random draws 1.14e-2 → 1.02e-2 (tests/unit/kvcache/quant.test.ts).
 */
function calibrateSmoothing(x: Float64Array, n: number, Hk: number, D: number): Float32Array {
  const lam = new Float32Array(Hk * D);
  for (let h = 0; h < Hk; h++) {
    const rms = new Float64Array(D);
    for (let t = 0; t < n; t++) for (let c = 0; c < D; c++) rms[c] += x[(t * Hk + h) * D + c]! ** 2;
    for (let c = 0; c < D; c++) rms[c] = Math.sqrt(rms[c]! / n);
    const top = Math.max(...rms);
    if (!(top > 0)) { lam.fill(1, h * D, (h + 1) * D); continue; }
    let logSum = 0;
    for (let c = 0; c < D; c++) { rms[c] = Math.sqrt(Math.max(rms[c]!, 1e-3 * top)); logSum += Math.log(rms[c]!); }
    const g = Math.exp(logSum / D);
    for (let c = 0; c < D; c++) lam[h * D + c] = rms[c]! / g;
  }
  return lam;
}

/**
 * Validates K smoothing factors (PagedKvCacheOptions.smoothK) for a cache of this geometry: int8 only; given
 * factors one array per layer of numKvHeads · headDim positive finite numbers. Returns copies.
 */
export function checkSmoothK(smoothK: 'auto' | readonly ArrayLike<number>[] | null, dtype: KvDType, numLayers: number, numKvHeads: number, headDim: number): 'auto' | Float32Array[] | null {
  if (smoothK === null) return null;
  if (dtype !== 'int8') throw new UnsupportedError(`smoothK is only used with int8 blocks, not ${dtype}`, "dtype: 'int8'");
  if (smoothK === 'auto') return 'auto';
  if (smoothK.length !== numLayers) throw new ShapeError(`smoothK has ${smoothK.length} layers, the cache has ${numLayers}`, 'smoothK', 'numLayers');
  return smoothK.map((f, l) => {
    if (f.length !== numKvHeads * headDim) throw new ShapeError(`smoothK[${l}] has ${f.length} factors, expected numKvHeads · headDim = ${numKvHeads * headDim}`, `smoothK[${l}]`, 'numKvHeads·headDim');
    for (let i = 0; i < f.length; i++) if (!(f[i]! > 0 && Number.isFinite(f[i]!))) throw new ValueError(`smoothK[${l}][${i}] must be a positive finite number, got ${f[i]}`, `smoothK[${l}]`);
    return Float32Array.from(f);
  });
}

/** int8: how many of a sequence's last blocks keep their exact values staged (KvBlockStorage.unstage). */
export const STAGED_TAIL_BLOCKS = 2;

/**
 * An int8 block whose scale exceeds 127 × this ratio × the largest value it now holds (kept tokens and the new
 * ones) is re-scaled at the next write: only a truncate leaves such a scale (a block's first write sets it to fit
 * and later writes only grow it), and requantising the kept tokens costs them at most half a new step.
 */
const STALE_SCALE_RATIO = 1.25;

/** A K token's weight in the 'auto' grid choice (writeInt8): the square of its mean squared value. */
function tokenWeight(xs: Float64Array, off: number, D: number): number {
  let m = 0;
  for (let c = 0; c < D; c++) m += xs[off + c]! ** 2;
  return (m / D) ** 2;
}

/**
 * The K/V bytes behind a block pool, per layer in the layout the paged kernels read in place
 * (`KvLayerStorage`; a token's slot is block · blockSizeTokens + offsetInBlock). A PagedKvCache
 * creates one (`cache.storage`) and writes it through `writeSlots` and `copyBlock`.
 */
export class KvBlockStorage implements RotationSource {
  private readonly layerArrays: readonly KvLayerStorage[];
  /** The kernel heap the blocks live in (null: ordinary arrays), and the allocations to release on dispose. */
  private readonly heap: WasmHeap | null;
  private readonly heapPtrs: number[] = [];
  private isDisposed = false;
  /**
   * int8 with smoothK: per layer, K's channel factors λ [numKvHeads · headDim] (K is stored as R·(k / λ),
   * queries as R·(λ ⊙ q)); null for a layer not calibrated yet ('auto' before its first write). Null
   * without smoothing.
   */
  readonly smoothing: (Float32Array | null)[] | null;
  private readonly observers = new Set<KvStorageObserver>();
  /**
   * int8: per (layer, block), 1 after a truncate ended a sequence inside the block (markTruncated): its next write
   * checks whether dropped tokens set the scale (STALE_SCALE_RATIO). Null for float blocks.
   */
  private readonly truncated: Uint8Array | null;
  /**
   * int8: per layer, K's and V's exact values (as quantised: smoothed, rotated) of the blocks still open to growth or
   * rollback: those a write leaves partly filled, and the last STAGED_TAIL_BLOCKS blocks of each write (PagedKvCache
   * unstages a block once no sequence has it among its last STAGED_TAIL_BLOCKS blocks or the block its latest
   * append started in). A write that grows a block's
   * scale, or re-scales it after a truncate, requantises the block's earlier tokens from these values instead of from
   * their codes: the codes of a coarser scale cannot give back what it rounded away (a rejected draft 100× larger left
   * the kept tokens at 60× their error). Costs blockSizeTokens · numKvHeads · headDim · 8 bytes a staged block and layer.
   */
  private readonly staged: { k: Map<number, Float32Array>; v: Map<number, Float32Array> }[] | null;
  /** Bytes of one block over all layers. */
  readonly bytesPerBlock: number;

  constructor(
    readonly numLayers: number,
    /** Blocks per layer (the pool size). */
    readonly numBlocks: number,
    readonly blockSizeTokens: number,
    readonly numKvHeads: number,
    readonly headDim: number,
    /** Element type of the blocks; 'int8' adds per-(block, KV head) scales. */
    readonly dtype: KvDType,
    /** Non-null when K and V are stored rotated (int8 only). */
    readonly rotation: HadamardRotation | null,
    /**
     * Where block memory comes from. Default: ordinary arrays. Pass the CPU kernel heap
     * (`(await cpuRuntime()).heap`) and `attentionPaged` reads the blocks in place, with no copy per call; a heap
     * whose memory is not shared (WasmHeap.shared) is not used: its growth would detach the blocks.
     */
    heapOpt?: WasmHeap,
    /**
     * int8 only: K's per-channel smoothing factors λ (PagedKvCacheOptions.smoothK): 'auto' calibrates each layer's
     * from the first K written to it; an array gives them per layer ([numKvHeads · headDim] each).
     */
    smoothK: 'auto' | readonly Float32Array[] | null = null,
    /** int8 only: how each (block, head) picks its codes' grid (quant.ts, PagedKvCacheOptions.int8Grid). */
    readonly int8Grid: Int8GridMode = 'auto',
    /** int8 with smoothing and rotation: how K's codes are rounded (PagedKvCacheOptions.kRounding). */
    readonly kRounding: KRounding = 'feedback',
  ) {
    const heap = heapOpt?.shared ? heapOpt : undefined;
    this.heap = heap ?? null;
    const sk = checkSmoothK(smoothK, dtype, numLayers, numKvHeads, headDim);
    this.smoothing = sk === null ? null : Array.from({ length: numLayers }, (_, l) => (sk === 'auto' ? null : sk[l]!));
    const shape = [numBlocks, blockSizeTokens, numKvHeads, headDim];
    const n = numBlocks * blockSizeTokens * numKvHeads * headDim;
    const layers: KvLayerStorage[] = [];
    // Allocate before taking the heap's buffer: an allocation can grow the memory, and a buffer taken before
    // it would be the old, shorter one.
    const alloc = (bytes: number) => { const p = heap!.alloc(bytes); this.heapPtrs.push(p); return p; };
    const i8 = (len: number) => { if (!heap) return new Int8Array(len); const p = alloc(len); return new Int8Array(heap.buffer(), p, len).fill(0); };
    const f32 = (len: number) => (heap ? heap.f32(alloc(len * 4), len).fill(0) : new Float32Array(len));
    const tensor = () => {
      if (!heap) return Tensor.zeros(shape, dtype as 'f32' | 'f16');
      const t = heap.tensor(shape, dtype as 'f32' | 'f16');
      this.heapPtrs.push(t.data.byteOffset);
      t.data.fill(0);
      return t;
    };
    for (let l = 0; l < numLayers; l++) {
      if (dtype === 'int8') {
        layers.push(Object.freeze({ dtype, k: i8(n), v: i8(n), kScales: f32(numBlocks * numKvHeads), vScales: f32(numBlocks * numKvHeads) }));
      } else {
        layers.push(Object.freeze({ dtype, k: tensor(), v: tensor() }));
      }
    }
    this.layerArrays = Object.freeze(layers);
    this.truncated = dtype === 'int8' ? new Uint8Array(numLayers * numBlocks) : null;
    this.staged = dtype === 'int8' ? Array.from({ length: numLayers }, () => ({ k: new Map(), v: new Map() })) : null;
    this.bytesPerBlock = bytesPerBlock(numLayers, numKvHeads, headDim, blockSizeTokens, dtype);
  }

  /** K and V of each layer, indexed by layer; the arrays are written in place. StateError once disposed. */
  get layers(): readonly KvLayerStorage[] {
    if (this.isDisposed) throw new StateError('the KV block storage was disposed: its blocks can no longer be read or written');
    return this.layerArrays;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.isDisposed;
  }

  /**
   * Frees the blocks: their memory in the CPU kernel heap, when the storage lives there (it is not garbage-collected:
   * a cache per session would otherwise hold the heap until the process ends), and any GPU copy. Reading or writing
   * the blocks afterwards throws StateError. Idempotent.
   */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    for (const o of [...this.observers]) o.storageDisposed?.();
    this.observers.clear();
    for (const p of this.heapPtrs.splice(0)) this.heap!.release(p);
    this.unstage();
  }

  /**
   * int8: drops the exact values kept for `blocks` (all blocks when omitted) in every layer: their later writes, if
   * any, requantise from codes. PagedKvCache calls it for blocks no longer open to growth or rollback. A no-op for
   * float blocks.
   */
  unstage(blocks?: Iterable<number>): void {
    if (!this.staged) return;
    for (const st of this.staged) {
      if (!blocks) { st.k.clear(); st.v.clear(); continue; }
      for (const b of blocks) { st.k.delete(b); st.v.delete(b); }
    }
  }

  /** int8: how many (layer, K or V, block) value copies are staged now (see unstage). */
  get stagedBlocks(): number {
    let n = 0;
    if (this.staged) for (const st of this.staged) n += st.k.size + st.v.size;
    return n;
  }

  /** Registers an observer of block writes; returns the function that removes it. */
  observe(o: KvStorageObserver): () => void {
    this.observers.add(o);
    return () => { this.observers.delete(o); };
  }

  private changed(layer: number, blocks: readonly number[]): void {
    for (const o of this.observers) o.blocksChanged(layer, blocks);
  }

  /** Elements per token slot (numKvHeads · headDim). */
  get slotElems(): number {
    return this.numKvHeads * this.headDim;
  }

  /**
   * Writes n tokens' K and V ([n, numKvHeads, headDim], any float dtype) of one layer into `slots`.
   * Same-dtype f32/f16 writes copy bits. int8 writes assume the slots of each block are consecutive
   * and that the block's slots before the first written one hold valid tokens (whose scale may grow).
   */
  writeSlots(layer: number, slots: ArrayLike<number>, k: Tensor, v: Tensor): void {
    const st = this.layers[layer]!;
    for (const [t, name] of [[k, 'k'], [v, 'v']] as const) {
      if (!(t instanceof Tensor)) throw new ValueError(`${name} must be a Tensor`, name);
      if (t.rank !== 3) throw new ShapeError(`${name} must be 3-D [numTokens, numKvHeads, headDim], got [${t.shape.join(', ')}]`, name);
      if (t.shape[0] !== slots.length) throw new ShapeError(`${name} has ${t.shape[0]} tokens, expected ${slots.length}`, name, 'numTokens');
      if (t.shape[1] !== this.numKvHeads) throw new ShapeError(`${name} has ${t.shape[1]} heads, the cache has numKvHeads ${this.numKvHeads}`, name, 'numKvHeads');
      if (t.shape[2] !== this.headDim) throw new ShapeError(`${name} has headDim ${t.shape[2]}, the cache has ${this.headDim}`, name, 'headDim');
    }
    if (st.dtype === 'int8') {
      // Validate both before writing either, so a bad v leaves k untouched.
      const xk = this.finiteValues(k, 'k'), xv = this.finiteValues(v, 'v');
      if (this.smoothing) this.smoothIn(layer, slots, xk, slots.length);
      this.writeInt8(layer, slots, xk, st.k, st.kScales, true);
      this.writeInt8(layer, slots, xv, st.v, st.vScales, false);
      const bs = this.blockSizeTokens, row = layer * this.numBlocks;
      for (let t = 0; t < slots.length; t++) this.truncated![row + Math.floor(slots[t]! / bs)] = 0;
    } else {
      this.writeFloat(slots, k, st.k);
      this.writeFloat(slots, v, st.v);
    }
    if (this.observers.size) {
      const bs = this.blockSizeTokens, blocks = new Set<number>();
      for (let t = 0; t < slots.length; t++) blocks.add(Math.floor(slots[t]! / bs));
      this.changed(layer, [...blocks]);
    }
  }

  private writeFloat(slots: ArrayLike<number>, src: Tensor, dst: Tensor): void {
    const E = this.slotElems, D = this.headDim, Hk = this.numKvHeads;
    const [s0, s1, s2] = src.strides as [number, number, number];
    const out = dst.data;
    if (src.dtype === dst.dtype && s2 === 1 && s1 === D) {
      const data = src.data;
      for (let t = 0; t < slots.length; t++) {
        const o = src.offset + t * s0;
        out.set(data.subarray(o, o + E), slots[t]! * E);
      }
      return;
    }
    const dec = decoder(src.dtype), enc = encoder(dst.dtype);
    for (let t = 0; t < slots.length; t++) {
      for (let h = 0; h < Hk; h++) {
        const so = src.offset + t * s0 + h * s1, d0 = (slots[t]! * Hk + h) * D;
        for (let c = 0; c < D; c++) out[d0 + c] = enc(dec(src.data[so + c * s2]!));
      }
    }
  }

  private finiteValues(src: Tensor, name: string): Float64Array {
    const Hk = this.numKvHeads, D = this.headDim;
    const x = src.toFloat64();
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]!)) {
        throw new ValueError(`${name} has a non-finite value ${x[i]} at token ${Math.floor(i / (Hk * D))}, head ${Math.floor(i / D) % Hk}, channel ${i % D}; int8 KV needs finite values`, name);
      }
    }
    return x;
  }

  /**
   * K [n, numKvHeads, headDim] of a write to `slots` ← K / λ in place, the layer's λ calibrated first if it
   * has none. Calibration waits for SMOOTH_MIN_TOKENS tokens: until then the layer's writes (and block copies)
   * are stored unsmoothed (λ unknown, so queries are not smoothed either) and logged; the write that reaches it
   * calibrates λ from every logged token and its own, and re-writes the logged K smoothed, in order. One
   * token's values alone (a decode step or a BOS token written first) made near-zero channels look tiny and
   * amplified them for the rest of the cache: 1.35e-2 against 9.1e-3 without smoothing.
   */
  private smoothIn(layer: number, slots: ArrayLike<number>, x: Float64Array, n: number): void {
    const sm = this.smoothing!;
    if (!sm[layer]) {
      if (n === 0) return;
      const log = this.uncalibrated[layer] ??= { tokens: 0, ops: [] };
      log.ops.push({ slots: Int32Array.from(slots), x: x.slice() });
      log.tokens += n;
      if (log.tokens < SMOOTH_MIN_TOKENS) return; // stored unsmoothed for now
      const all = new Float64Array(log.tokens * this.slotElems);
      let o = 0;
      for (const op of log.ops) if ('x' in op) { all.set(op.x, o); o += op.x.length; }
      sm[layer] = calibrateSmoothing(all, log.tokens, this.numKvHeads, this.headDim);
      this.uncalibrated[layer] = undefined;
      // Re-write the logged K (all but this write, which the caller writes) with λ, and replay the copies and the
      // truncations (a truncate's stale scale is found again by the write after it, as the first time).
      const st = this.layers[layer]!, bs = this.blockSizeTokens, Hk = this.numKvHeads, blocks = new Set<number>();
      assert(st.dtype === 'int8', 'smoothing is int8 only');
      const kStage = this.staged![layer]!.k, stagedBefore = new Set(kStage.keys());
      for (const op of log.ops.slice(0, -1)) {
        if ('truncated' in op) {
          this.truncated![layer * this.numBlocks + op.truncated] = 1;
        } else if ('x' in op) {
          this.divideByLambda(layer, op.x, op.slots.length);
          this.writeInt8(layer, op.slots, op.x, st.k, st.kScales, true);
          for (const sl of op.slots) blocks.add(Math.floor(sl / bs));
        } else {
          const m = bs * this.slotElems;
          st.k.copyWithin(op.dst * m, op.src * m, (op.src + 1) * m);
          st.kScales.copyWithin(op.dst * Hk, op.src * Hk, (op.src + 1) * Hk);
          const from = kStage.get(op.src);
          if (from) kStage.set(op.dst, from.slice()); else kStage.delete(op.dst);
          blocks.add(op.dst);
        }
      }
      // The replay re-stages blocks long since settled or freed: keep only those staged before it.
      for (const b of [...kStage.keys()]) if (!stagedBefore.has(b)) kStage.delete(b);
      if (this.observers.size && blocks.size) this.changed(layer, [...blocks]);
    }
    this.divideByLambda(layer, x, n);
  }

  private divideByLambda(layer: number, x: Float64Array, n: number): void {
    const Hk = this.numKvHeads, D = this.headDim, lam = this.smoothing![layer]!;
    for (let t = 0; t < n; t++) for (let h = 0; h < Hk; h++) for (let c = 0; c < D; c++) x[(t * Hk + h) * D + c]! /= lam[h * D + c]!;
  }

  /** Per layer, while 'auto' smoothing waits for enough tokens to calibrate: the writes and copies since the first (smoothIn). */
  private readonly uncalibrated: ({ tokens: number; ops: ({ slots: Int32Array; x: Float64Array } | { src: number; dst: number } | { truncated: number })[] } | undefined)[] = [];

  /**
   * Quantises x [n, numKvHeads, headDim] (float64, consumed: rotated in place) into slots (see writeSlots).
   * Under int8Grid 'auto' each (block, head) takes the grid with the smaller squared error over its values;
   * for K each token's error is weighted by the square of its mean squared value, because a key's rounding
   * moves its score in proportion to its size and the large keys are the ones attention picks: unweighted,
   * rotated K with unsmoothed outlier channels took the gaussian grid and lost 20–40 % accuracy in output
   * (the uniform grid rounds the large keys finer).
   */
  private writeInt8(layer: number, slots: ArrayLike<number>, x: Float64Array, q: Int8Array, scales: Float32Array, isK: boolean): void {
    const n = slots.length, Hk = this.numKvHeads, D = this.headDim, bs = this.blockSizeTokens, mode = this.int8Grid;
    const rot = this.rotation;
    if (rot) for (let r = 0; r < n * Hk; r++) rotateInPlace(x, r * D, rot.signs[layer]!, (r % Hk) * D, rot.chunks);
    // One head's tokens of a block as they are (re)quantised: values (earlier tokens dequantised when the
    // scale grows), and the codes on each grid.
    const vals = new Float64Array(bs * D), codes = new Int8Array(bs * D), alt = new Int8Array(bs * D);
    const fbs = isK ? this.feedbackFactors(layer) : null, work = new Float64Array(D);
    const stage = isK ? this.staged![layer]!.k : this.staged![layer]!.v;
    // The last STAGED_TAIL_BLOCKS blocks this write touches are staged even when it fills them: a truncate into them
    // (a rejected draft, verified in one append) must find their tokens' exact values.
    const tail = new Set<number>();
    for (let i = n - 1; i >= 0 && tail.size < STAGED_TAIL_BLOCKS; i--) tail.add(Math.floor(slots[i]! / bs));
    let t = 0;
    while (t < n) {
      const first = slots[t]!, b = Math.floor(first / bs), o0 = first % bs;
      let t1 = t + 1;
      while (t1 < n && slots[t1] === slots[t1 - 1]! + 1 && Math.floor(slots[t1]! / bs) === b) t1++;
      const end = o0 + (t1 - t);
      // The block's exact values: kept from earlier runs (`exact`: its rows before o0 are valid), or started now
      // when the block stays partly filled (a later run may grow it). A block's first run starts it afresh.
      const had = o0 > 0 ? stage.get(b) ?? null : null;
      let shadow = had;
      if (!shadow && (end < bs || tail.has(b))) { shadow = stage.get(b) ?? new Float32Array(bs * Hk * D); stage.set(b, shadow); }
      if (!shadow && o0 === 0) stage.delete(b);
      for (let h = 0; h < Hk; h++) {
        const fb = fbs?.[h] ?? null;
        let absmax = 0;
        for (let tt = t; tt < t1; tt++) {
          const base = (tt * Hk + h) * D;
          for (let c = 0; c < D; c++) { const a = Math.abs(x[base + c]!); if (a > absmax) absmax = a; }
        }
        const si = b * Hk + h;
        const prev = int8ScaleOf(scales[si]!);
        // An earlier token's value: exact when staged, else decoded from its code.
        const keptAt = had
          ? (o: number, c: number) => had[(o * Hk + h) * D + c]!
          : (o: number, c: number) => dequantizeInt8(q[((b * bs + o) * Hk + h) * D + c]!, prev.scale, prev.grid);
        // Tokens o0 … of the block are written; from token `from` on they are (re)quantised here: from 0
        // when the scale is set (a new block), grows (earlier tokens move to the new scale) or is stale, else o0.
        let fresh = o0 === 0 || absmax > 127 * prev.scale;
        if (!fresh && this.truncated![layer * this.numBlocks + b]) {
          // Stale: tokens a truncate dropped (a rejected speculative draft) set the scale, and the kept tokens and
          // the new ones all lie well inside it. The block is re-scaled to them; a stale scale rounded new tokens
          // to its coarse steps (100× larger drafts: 50× the error).
          let kept = 0;
          for (let o = 0; o < o0; o++) for (let c = 0; c < D; c++) { const a = Math.abs(keptAt(o, c)); if (a > kept) kept = a; }
          if (127 * prev.scale > STALE_SCALE_RATIO * Math.max(kept, absmax)) { fresh = true; absmax = Math.max(kept, absmax); }
        }
        const from = fresh ? 0 : o0, m = end - from;
        for (let o = from; o < o0; o++) for (let c = 0; c < D; c++) vals[(o - from) * D + c] = keptAt(o, c);
        for (let tt = t; tt < t1; tt++) vals.set(x.subarray((tt * Hk + h) * D, (tt * Hk + h + 1) * D), (o0 - from + tt - t) * D);
        if (shadow) {
          // Staged now: the new tokens exactly; earlier ones as well as they are known (exact, or from their codes).
          if (!had) for (let o = 0; o < o0; o++) for (let c = 0; c < D; c++) shadow[(o * Hk + h) * D + c] = keptAt(o, c);
          for (let tt = t; tt < t1; tt++) for (let c = 0; c < D; c++) shadow[((o0 + tt - t) * Hk + h) * D + c] = x[(tt * Hk + h) * D + c]!;
        }
        const scale = fresh ? int8Scale(absmax) : prev.scale;
        let grid: Int8Grid = fresh ? (mode === 'auto' ? 'uniform' : mode) : prev.grid;
        if (fresh && mode === 'auto') {
          // Both grids' codes, each row's squared error weighted once; the better grid's codes are kept.
          let err = 0, errG = 0;
          for (let r = 0; r < m; r++) {
            const w = isK ? tokenWeight(vals, r * D, D) : 1;
            if (fb) {
              err += quantizeRowInt8Feedback(vals, r * D, D, scale, 'uniform', codes, r * D, fb, work) * w;
              errG += quantizeRowInt8Feedback(vals, r * D, D, scale, 'gaussian', alt, r * D, fb, work) * w;
            } else {
              err += quantizeRowInt8(vals, r * D, D, scale, 'uniform', codes, r * D) * w;
              errG += quantizeRowInt8(vals, r * D, D, scale, 'gaussian', alt, r * D) * w;
            }
          }
          if (errG < err) { grid = 'gaussian'; codes.set(alt.subarray(0, m * D)); }
        } else if (fb) {
          for (let r = 0; r < m; r++) quantizeRowInt8Feedback(vals, r * D, D, scale, grid, codes, r * D, fb, work);
        } else {
          for (let r = 0; r < m; r++) quantizeRowInt8(vals, r * D, D, scale, grid, codes, r * D);
        }
        scales[si] = storedInt8Scale(scale, grid);
        for (let r = 0; r < m; r++) q.set(codes.subarray(r * D, (r + 1) * D), ((b * bs + from + r) * Hk + h) * D);
      }
      t = t1;
    }
  }

  private readonly feedback = new Map<number, (KFeedback | null)[]>();
  /** Per KV head of `layer`, K's rounding feedback (quant.ts kFeedback); null without smoothing and rotation. */
  private feedbackFactors(layer: number): (KFeedback | null)[] | null {
    const lam = this.smoothing?.[layer], rot = this.rotation;
    if (!lam || !rot || this.kRounding !== 'feedback') return null;
    let f = this.feedback.get(layer);
    if (!f) {
      f = Array.from({ length: this.numKvHeads }, (_, h) => kFeedback(lam, h * this.headDim, rot.signs[layer]!, h * this.headDim, rot.chunks));
      this.feedback.set(layer, f);
    }
    return f;
  }

  /**
   * A sequence was truncated to end inside `block` (int8; a no-op for float blocks): at its next write in each layer
   * the block is re-scaled when dropped tokens set its scale (STALE_SCALE_RATIO). Only marked blocks pay for the check.
   */
  markTruncated(block: number): void {
    if (this.truncated) for (let l = 0; l < this.numLayers; l++) this.truncated[l * this.numBlocks + block] = 1;
    // Layers still waiting to calibrate their smoothing replay the truncation with their logged writes.
    for (const log of this.uncalibrated) log?.ops.push({ truncated: block });
  }

  /** Copies block `src` to block `dst` in every layer (K, V and int8 scales): copy-on-write. */
  copyBlock(src: number, dst: number): void {
    assert(src !== dst, 'copyBlock onto itself');
    const n = this.blockSizeTokens * this.slotElems;
    if (this.truncated) for (let l = 0; l < this.numLayers; l++) this.truncated[l * this.numBlocks + dst] = this.truncated[l * this.numBlocks + src]!;
    for (const st of this.layers) {
      if (st.dtype === 'int8') {
        st.k.copyWithin(dst * n, src * n, (src + 1) * n);
        st.v.copyWithin(dst * n, src * n, (src + 1) * n);
        const Hk = this.numKvHeads;
        st.kScales.copyWithin(dst * Hk, src * Hk, (src + 1) * Hk);
        st.vScales.copyWithin(dst * Hk, src * Hk, (src + 1) * Hk);
      } else {
        st.k.data.copyWithin(dst * n, src * n, (src + 1) * n);
        st.v.data.copyWithin(dst * n, src * n, (src + 1) * n);
      }
    }
    if (this.staged) {
      for (const st of this.staged) {
        for (const m of [st.k, st.v]) { const from = m.get(src); if (from) m.set(dst, from.slice()); else m.delete(dst); }
      }
    }
    // Layers still waiting to calibrate their smoothing replay this copy after re-writing its source.
    for (const log of this.uncalibrated) log?.ops.push({ src, dst });
    if (this.observers.size) for (let l = 0; l < this.numLayers; l++) this.changed(l, [dst]);
  }

  /**
   * Reads one token slot of a layer as numbers into out[outOff..outOff + numKvHeads·headDim):
   * decoded f32/f16, or dequantised int8 (still rotated if the storage is).
   */
  readSlot(layer: number, which: 'k' | 'v', slot: number, out: Float64Array | Float32Array, outOff: number): void {
    const st = this.layers[layer]!, E = this.slotElems, D = this.headDim;
    if (st.dtype === 'int8') {
      const q = which === 'k' ? st.k : st.v, sc = which === 'k' ? st.kScales : st.vScales;
      const b = Math.floor(slot / this.blockSizeTokens);
      for (let e = 0; e < E; e++) {
        const { scale, grid } = int8ScaleOf(sc[b * this.numKvHeads + Math.floor(e / D)]!);
        out[outOff + e] = dequantizeInt8(q[slot * E + e]!, scale, grid);
      }
    } else {
      const t = which === 'k' ? st.k : st.v;
      const dec = decoder(t.dtype);
      for (let e = 0; e < E; e++) out[outOff + e] = dec(t.data[slot * E + e]!);
    }
  }
}
