/**
 * The KV block storage on the GPU: a device copy of every layer's K/V blocks (and int8 scales) in the
 * layout the host storage uses, kept in step block by block as the cache writes (a storage observer).
 * The WebGPU paged kernels read it through the block tables in place: no gather, no per-call upload.
 *
 * One mirror per (storage, GPU context): `gpuKvMirror(storage)` creates it on first use (one full
 * upload) and returns the same one afterwards; a lost device gets a fresh mirror on the next call.
 */
import { type GpuContext, gpuContext } from '../kernels/webgpu/device.js';
import type { InFormat } from '../kernels/webgpu/variants.js';
import type { KvBlockStorage, KvLayerStorage } from './kv-storage.js';

const STORAGE = 0x80 | 0x8 | 0x4; // STORAGE | COPY_DST | COPY_SRC

/** One layer's device buffers. */
export interface GpuKvLayer {
  /** Element format of k and v, as the host stores them: 'f32', 'f16' (raw bits) or 'i8' (four codes per u32 word). */
  readonly kvFmt: InFormat | 'i8';
  /** K blocks in the host layout [numBlocks, blockSizeTokens, numKvHeads, headDim], padded to whole 4-byte words (at least 16 bytes). */
  readonly k: GPUBuffer;
  /** V blocks, laid out as k. */
  readonly v: GPUBuffer;
  /** int8 only: K's f32 scales [numBlocks, numKvHeads] (negative: gaussian grid); absent for float blocks. */
  readonly kScales?: GPUBuffer;
  /** int8 only: V's scales, laid out as kScales. */
  readonly vScales?: GPUBuffer;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * A GPU copy of a KvBlockStorage: one buffer per layer for K, V and the int8 scales, in the host
 * layout. It observes the storage, so each write or copy-on-write uploads only the blocks it touched;
 * the host storage stays the source of truth. Get it with `gpuKvMirror(storage)`, which keeps one per
 * storage and GPU context.
 */
export class GpuKvMirror {
  /** Device buffers of each layer, indexed by layer. */
  readonly layers: readonly GpuKvLayer[];
  private readonly unobserve: () => void;
  private disposed = false;

  constructor(/** The host storage mirrored. */ readonly storage: KvBlockStorage, /** The GPU context that owns the buffers. */ readonly ctx: GpuContext) {
    const make = (bytes: number) => ctx.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: STORAGE });
    this.layers = storage.layers.map((L) => {
      const k = make(this.hostK(L).byteLength), v = make(this.hostV(L).byteLength);
      if (L.dtype === 'int8') return { kvFmt: 'i8' as const, k, v, kScales: make(L.kScales.byteLength), vScales: make(L.vScales.byteLength) };
      return { kvFmt: L.dtype, k, v };
    });
    for (let l = 0; l < storage.numLayers; l++) this.uploadAll(l);
    this.unobserve = storage.observe({ blocksChanged: (layer, blocks) => this.upload(layer, blocks), storageDisposed: () => this.dispose() });
  }

  private hostK(L: KvLayerStorage): ArrayBufferView { return L.dtype === 'int8' ? L.k : L.k.data; }
  private hostV(L: KvLayerStorage): ArrayBufferView { return L.dtype === 'int8' ? L.v : L.v.data; }

  /** Bytes of one block of one tensor (K or V) of a layer. */
  private blockBytes(L: KvLayerStorage): number {
    const st = this.storage;
    return st.blockSizeTokens * st.numKvHeads * st.headDim * (L.dtype === 'f32' ? 4 : L.dtype === 'f16' ? 2 : 1);
  }

  private write(dst: GPUBuffer, src: Uint8Array, at: number, bytes: number): void {
    // writeBuffer needs 4-byte multiples: widen the range to whole words (the host array covers them,
    // or the zero padding past its end does).
    const a0 = at & ~3, a1 = Math.min(Math.ceil((at + bytes) / 4) * 4, src.byteLength & ~3);
    if (a1 > a0) this.ctx.device.queue.writeBuffer(dst, a0, src.subarray(a0, a1) as Uint8Array<ArrayBuffer>);
    const tail = src.byteLength & 3;
    if (tail && at + bytes > (src.byteLength & ~3)) {
      const w = new Uint8Array(4);
      w.set(src.subarray(src.byteLength - tail));
      this.ctx.device.queue.writeBuffer(dst, src.byteLength - tail, w);
    }
  }

  private uploadAll(layer: number): void {
    const L = this.storage.layers[layer]!, G = this.layers[layer]!;
    const k = bytesOf(this.hostK(L)), v = bytesOf(this.hostV(L));
    this.write(G.k, k, 0, k.byteLength);
    this.write(G.v, v, 0, v.byteLength);
    if (L.dtype === 'int8') {
      this.write(G.kScales!, bytesOf(L.kScales), 0, L.kScales.byteLength);
      this.write(G.vScales!, bytesOf(L.vScales), 0, L.vScales.byteLength);
    }
  }

  /** Uploads the given blocks of a layer (K, V and int8 scales). */
  upload(layer: number, blocks: readonly number[]): void {
    if (this.disposed) return;
    const L = this.storage.layers[layer]!, G = this.layers[layer]!;
    const bb = this.blockBytes(L), k = bytesOf(this.hostK(L)), v = bytesOf(this.hostV(L));
    const Hk = this.storage.numKvHeads;
    for (const b of [...blocks].sort((x, y) => x - y)) {
      this.write(G.k, k, b * bb, bb);
      this.write(G.v, v, b * bb, bb);
      if (L.dtype === 'int8') {
        this.write(G.kScales!, bytesOf(L.kScales), b * Hk * 4, Hk * 4);
        this.write(G.vScales!, bytesOf(L.vScales), b * Hk * 4, Hk * 4);
      }
    }
  }

  /** Device bytes held (all layers). */
  get bytes(): number {
    return this.layers.reduce((s, L) => s + L.k.size + L.v.size + (L.kScales?.size ?? 0) + (L.vScales?.size ?? 0), 0);
  }

  /** Stops observing the storage and destroys the buffers; idempotent. The next `gpuKvMirror(storage)` makes a fresh mirror. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unobserve();
    for (const L of this.layers) { L.k.destroy(); L.v.destroy(); L.kScales?.destroy(); L.vScales?.destroy(); }
    if (mirrors.get(this.storage) === this) mirrors.delete(this.storage);
  }
}

const mirrors = new WeakMap<KvBlockStorage, GpuKvMirror>();

/** The storage's device copy on the current GPU context (created, with one full upload, on first use). */
export async function gpuKvMirror(storage: KvBlockStorage): Promise<GpuKvMirror> {
  const ctx = await gpuContext();
  const m = mirrors.get(storage);
  if (m && m.ctx === ctx) return m;
  m?.dispose();
  const fresh = new GpuKvMirror(storage, ctx);
  mirrors.set(storage, fresh);
  return fresh;
}
