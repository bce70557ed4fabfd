/**
 * The WebAssembly heap: one (shared, when threads are available) linear memory that every kernel
 * thread sees, with a first-fit allocator on the host side. Tensors allocated here are read by the
 * kernels in place; other tensors are copied in for the duration of a call.
 */
import { ShapeError } from '../../errors.js';
import { type DType, bytesPerElement } from '../../tensor/dtype.js';
import { Tensor, numel } from '../../tensor/tensor.js';

const PAGE = 65536;
/** Bytes below this belong to the module's static data and stack. */
export const HEAP_BASE = 65536;
const ALIGN = 64;
/** Every allocation keeps this many readable bytes after its end (vector loads may overrun a row). */
const SLACK = 64;

interface Block { start: number; size: number }

/** A queue of async tasks: each call's `fn` starts after every earlier one has settled (a rejection does not block the queue). */
export function turnTaker(): <T>(fn: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const r = last.then(fn);
    last = r.catch(() => undefined);
    return r;
  };
}

/**
 * The kernel heap (`(await cpuRuntime()).heap`): one WebAssembly memory with a first-fit allocator.
 * Allocations are 64-byte aligned with 64 bytes of readable slack; the memory grows on demand up to
 * `maximumPages` of 64 KiB (default 4 GiB; 1 GiB where the host cannot reserve that much).
 */
export class WasmHeap {
  /** The linear memory every kernel thread sees. Growth replaces its buffer: take views through `buffer()`, `i32`, `f32`, `u8`. */
  readonly memory: WebAssembly.Memory;
  /**
   * Whether the memory is shared (a SharedArrayBuffer), which worker threads need. A memory that is not (a browser
   * page without cross-origin isolation) detaches its buffer when it grows: every typed array over it becomes empty,
   * so nothing long-lived may hold views of it (cpuTensor and PagedKvCache then use ordinary arrays) and a call
   * that grew it mid-way starts again (`growths`).
   */
  readonly shared: boolean;
  /** How many times the memory has grown. */
  growths = 0;
  private readonly inTurn = turnTaker();
  private free: Block[] = [];
  private sizes = new Map<number, number>();
  private buffers = new WeakSet<ArrayBufferLike>();
  private top = HEAP_BASE;
  /** Bytes allocated now, alignment and slack included. */
  inUseBytes = 0;
  /** Peak of `inUseBytes` since creation or the last `resetHighWater()`. */
  highWaterBytes = 0;

  constructor(shared: boolean, maximumPages = 65536) {
    this.shared = shared;
    const desc = { initial: 32, maximum: maximumPages, shared } as WebAssembly.MemoryDescriptor;
    try {
      this.memory = new WebAssembly.Memory(desc);
    } catch {
      // Some hosts cannot reserve 4 GiB of address space for shared memory: settle for 1 GiB.
      this.memory = new WebAssembly.Memory({ ...desc, maximum: Math.min(maximumPages, 16384) });
    }
    this.buffer();
  }

  /**
   * Runs `fn` alone among the heap's exclusive users where the memory is not shared: there, a concurrent call's
   * allocation could grow the memory while `fn` awaits and detach the views `fn` holds (concurrent attention calls
   * failed with "detached ArrayBuffer"). A shared memory never detaches: `fn` runs at once.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.shared ? fn() : this.inTurn(fn);
  }

  /** The current buffer (registered so that views over it are recognised as heap-resident). */
  buffer(): ArrayBufferLike {
    const b = this.memory.buffer;
    this.buffers.add(b);
    return b;
  }

  /** Whether a typed array lives in this heap. */
  owns(view: ArrayBufferView): boolean {
    // A buffer detached by growth (byteLength 0) is this heap's no longer: its views read nothing.
    return this.buffers.has(view.buffer) && view.buffer.byteLength > 0;
  }

  /** Allocates `bytes` (64-byte aligned, zero not guaranteed); returns the byte offset. */
  alloc(bytes: number): number {
    const size = Math.ceil((Math.max(bytes, 1) + SLACK) / ALIGN) * ALIGN;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.size >= size) {
        const start = b.start;
        if (b.size === size) this.free.splice(i, 1);
        else { b.start += size; b.size -= size; }
        return this.track(start, size);
      }
    }
    const start = this.top;
    const end = start + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE);
      try {
        this.memory.grow(pages);
        this.growths++;
      } catch {
        throw new ShapeError(`the WebAssembly heap cannot grow to ${(end / 2 ** 20).toFixed(0)} MiB (limit ${((this.memory.buffer.byteLength) / 2 ** 20).toFixed(0)} MiB in use)`, 'bytes');
      }
      this.buffer();
    }
    this.top = end;
    return this.track(start, size);
  }

  private track(start: number, size: number): number {
    this.sizes.set(start, size);
    this.inUseBytes += size;
    this.highWaterBytes = Math.max(this.highWaterBytes, this.inUseBytes);
    return start;
  }

  /** Frees an allocation by the byte offset `alloc` returned; an unknown or already freed offset throws. */
  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`vlm-attention internal error: heap pointer ${ptr} freed twice or never allocated`);
    this.sizes.delete(ptr);
    this.inUseBytes -= size;
    // Insert sorted, then coalesce with neighbours.
    let i = 0;
    while (i < this.free.length && this.free[i]!.start < ptr) i++;
    this.free.splice(i, 0, { start: ptr, size });
    const merge = (a: number) => {
      const x = this.free[a], y = this.free[a + 1];
      if (x && y && x.start + x.size === y.start) { x.size += y.size; this.free.splice(a + 1, 1); return true; }
      return false;
    };
    merge(i);
    if (i > 0) merge(i - 1);
    const last = this.free[this.free.length - 1];
    if (last && last.start + last.size === this.top) { this.top = last.start; this.free.pop(); }
  }

  /** Resets the high-water mark to the current use (for memory measurements). */
  resetHighWater(): void {
    this.highWaterBytes = this.inUseBytes;
  }

  /** A view of `n` int32 elements at byte offset `ptr` of the current buffer. */
  i32(ptr: number, n: number): Int32Array { return new Int32Array(this.buffer(), ptr, n); }
  /** A view of `n` float32 elements at byte offset `ptr` of the current buffer. */
  f32(ptr: number, n: number): Float32Array { return new Float32Array(this.buffer(), ptr, n); }
  /** A view of `n` bytes at byte offset `ptr` of the current buffer. */
  u8(ptr: number, n: number): Uint8Array { return new Uint8Array(this.buffer(), ptr, n); }

  /** A heap-resident tensor; free it with `freeTensor` (or let `dispose` below do it). */
  tensor(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const n = numel(shape);
    const ptr = this.alloc(n * bytesPerElement(dtype));
    const buf = this.buffer();
    const data = dtype === 'f32' ? new Float32Array(buf, ptr, n) : new Uint16Array(buf, ptr, n);
    return new Tensor(data, shape, { dtype });
  }

  /** Frees a tensor made by `tensor()` (a view detached by growth: free its pointer with `release`). */
  freeTensor(t: Tensor): void {
    if (!this.owns(t.data)) throw new ShapeError('freeTensor: this tensor does not live in the WebAssembly heap', 't');
    this.release(t.data.byteOffset);
  }
}
