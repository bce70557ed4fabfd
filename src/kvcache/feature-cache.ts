/**
 * Vision-feature cache: encoder outputs keyed by what determines them — a content hash of the
 * pixels, the encoder's id and the preprocessing options — so the same image is encoded once no
 * matter its file name, request or process.
 *
 * Two levels: an in-memory LRU bounded in bytes (always), and an optional shared `FeatureStore`
 * (e.g. `RedisFeatureStore` from `vlm-attention/node`) that several processes or machines read and
 * fill. The shared store is best-effort: when it fails or is unreachable, `getOrCompute` warns
 * (once per outage, however long reads or writes keep failing), computes the value, and keeps serving and filling the in-memory level — it
 * never throws a store error to the caller. Concurrent requests for one key share one computation.
 *
 * Values are Tensors (any shape; f32, f16 or bf16). Returned tensors are the cached objects: treat
 * them as read-only.
 */
import { FormatError, ValueError } from '../errors.js';
import { type DType, bytesPerElement } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { ByteWriter, type PixelData, imageContentHash, sha256, toHex } from './hash.js';

/** What determines an encoder output, hashed by `featureKey`: the image's pixels, the encoder and the preprocessing. */
export interface FeatureKeyInput {
  /** Decoded pixels (e.g. RGBA bytes), row-major [height, width, channels]. */
  pixels: PixelData;
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Default pixels.length / (width · height). */
  channels?: number;
  /** Encoder identity, including weights version (e.g. 'siglip-so400m-patch14-384@v1'). */
  encoderId: string;
  /** Preprocessing that changes the features (resize, crop, normalisation…); hashed as canonical JSON. */
  preprocessing?: unknown;
}

/** Canonical JSON: object keys sorted, no whitespace; rejects values JSON cannot represent exactly. */
export function canonicalJson(x: unknown, path = 'preprocessing'): string {
  if (x === null || typeof x === 'boolean' || typeof x === 'string') return JSON.stringify(x);
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) throw new ValueError(`${path} must not contain ${x}`, 'preprocessing');
    return JSON.stringify(x);
  }
  if (Array.isArray(x)) {
    // By index, not map(): map skips the holes of a sparse array, which would print as `[1,,3]` (not JSON).
    const items: string[] = [];
    for (let i = 0; i < x.length; i++) {
      if (!(i in x)) throw new ValueError(`${path}[${i}] is a hole in a sparse array (not JSON)`, 'preprocessing');
      items.push(canonicalJson(x[i], `${path}[${i}]`));
    }
    return `[${items.join(',')}]`;
  }
  if (typeof x === 'object' && x !== undefined && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null)) {
    const keys = Object.keys(x as object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((x as Record<string, unknown>)[k], `${path}.${k}`)}`).join(',')}}`;
  }
  throw new ValueError(`${path} must be plain JSON data (objects, arrays, strings, finite numbers, booleans, null), got ${typeof x === 'object' ? (x as object).constructor?.name : typeof x}`, 'preprocessing');
}

/** The cache key of an encoder output: SHA-256 hex of (image content hash, encoder id, canonical preprocessing). */
export function featureKey(input: FeatureKeyInput): string {
  if (!input || typeof input !== 'object') throw new ValueError('featureKey needs { pixels, width, height, encoderId }', 'input');
  if (typeof input.encoderId !== 'string' || input.encoderId.length === 0) throw new ValueError('encoderId must be a non-empty string', 'encoderId');
  const image = imageContentHash(input.pixels, input.width, input.height, input.channels);
  const w = new ByteWriter().str('features/v1').str(image).str(input.encoderId).str(canonicalJson(input.preprocessing ?? null));
  return toHex(sha256(w.view()));
}

// ----------------------------------------------------------------------------------------------
// Tensor wire format (shared stores): "VLMF" u8 version=1, u8 dtype (0 f32, 1 f16, 2 bf16), u8 rank,
// u8 0, u32 dims[rank], then the raw little-endian elements.

const DTYPE_CODES: readonly DType[] = ['f32', 'f16', 'bf16'];

/**
 * Serialises a tensor (f32, f16 or bf16, any shape; made contiguous) to the feature stores' wire
 * format: "VLMF", version 1, dtype code, rank, u32 dims, then the raw elements.
 */
export function encodeTensor(t: Tensor): Uint8Array {
  const c = t.contiguous();
  const w = new ByteWriter().u8(0x56).u8(0x4c).u8(0x4d).u8(0x46).u8(1).u8(DTYPE_CODES.indexOf(c.dtype)).u8(c.rank).u8(0);
  for (const d of c.shape) w.u32(d);
  const raw = new Uint8Array(c.data.buffer, c.data.byteOffset + c.offset * bytesPerElement(c.dtype), c.size * bytesPerElement(c.dtype));
  return w.bytes(raw).view().slice();
}

/**
 * Parses `encodeTensor`'s format into a Tensor with its own copy of the data. Throws FormatError
 * naming `source` (e.g. the store key) on a bad magic, version, dtype code, header or length.
 */
export function decodeTensor(bytes: Uint8Array, source = 'store'): Tensor {
  const bad = (why: string) => new FormatError(`feature entry from ${source} is not a valid tensor: ${why}`, source);
  if (bytes.length < 8 || bytes[0] !== 0x56 || bytes[1] !== 0x4c || bytes[2] !== 0x4d || bytes[3] !== 0x46) throw bad('bad magic');
  if (bytes[4] !== 1) throw bad(`unknown version ${bytes[4]}`);
  const dtype = DTYPE_CODES[bytes[5]!];
  if (!dtype) throw bad(`unknown dtype code ${bytes[5]}`);
  const rank = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8 + 4 * rank) throw bad('truncated header');
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(dv.getUint32(8 + 4 * i, true));
  const n = shape.reduce((a, b) => a * b, 1);
  const start = 8 + 4 * rank, len = n * bytesPerElement(dtype);
  if (bytes.length !== start + len) throw bad(`expected ${start + len} bytes, got ${bytes.length}`);
  const copy = bytes.slice(start, start + len); // aligned copy
  const data = dtype === 'f32' ? new Float32Array(copy.buffer) : new Uint16Array(copy.buffer);
  return new Tensor(data, shape, { dtype });
}

// ----------------------------------------------------------------------------------------------

/** A shared (or local) key → tensor store. Implementations may throw; the cache treats that as unavailable. */
export interface FeatureStore {
  /** Short name for warnings (e.g. 'memory', 'redis'). */
  readonly name: string;
  /** The tensor stored under `key`, or undefined when there is none. */
  get(key: string): Promise<Tensor | undefined>;
  /** Stores `value` under `key`, replacing any entry. */
  set(key: string, value: Tensor): Promise<void>;
  /** Removes `key`; a missing key is not an error. */
  delete(key: string): Promise<void>;
}

function tensorBytes(t: Tensor): number {
  return t.size * bytesPerElement(t.dtype);
}

/** In-memory LRU bounded in bytes (Map insertion order is the recency order). */
export class MemoryFeatureStore implements FeatureStore {
  /** 'memory', for warnings. */
  readonly name = 'memory';
  private readonly entries = new Map<string, Tensor>();
  private used = 0;
  /** Entries dropped to stay within maxBytes (cumulative). */
  evictions = 0;

  constructor(/** Bound on the bytes of tensor data held (elements · bytes per element; keys not counted); ≥ 0. */ readonly maxBytes: number) {
    if (typeof maxBytes !== 'number' || !(maxBytes >= 0)) throw new ValueError(`maxBytes must be a number ≥ 0, got ${maxBytes}`, 'maxBytes');
  }

  /** Bytes of tensor data held now (≤ maxBytes). */
  get bytes(): number {
    return this.used;
  }

  /** Entries held now. */
  get size(): number {
    return this.entries.size;
  }

  /** Whether `key` is held; does not change its recency. */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Returns the entry and marks it most recently used. */
  getSync(key: string): Tensor | undefined {
    const t = this.entries.get(key);
    if (t) { this.entries.delete(key); this.entries.set(key, t); }
    return t;
  }

  /**
   * Inserts (or refreshes) an entry, evicting least recently used ones to stay within maxBytes. An
   * entry larger than maxBytes is not kept (returns false) and drops any older entry under `key`.
   */
  setSync(key: string, value: Tensor): boolean {
    const b = tensorBytes(value);
    this.deleteSync(key);
    if (b > this.maxBytes) return false;
    while (this.used + b > this.maxBytes) {
      const oldest = this.entries.keys().next().value as string;
      this.deleteSync(oldest);
      this.evictions++;
    }
    this.entries.set(key, value);
    this.used += b;
    return true;
  }

  /** Removes `key` if held. */
  deleteSync(key: string): void {
    const t = this.entries.get(key);
    if (!t) return;
    this.entries.delete(key);
    this.used -= tensorBytes(t);
  }

  /** Keys from least to most recently used. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** `getSync`, as a promise (marks the entry most recently used). */
  async get(key: string): Promise<Tensor | undefined> {
    return this.getSync(key);
  }

  /** `setSync`, as a promise; an entry larger than maxBytes is silently not kept. */
  async set(key: string, value: Tensor): Promise<void> {
    this.setSync(key, value);
  }

  /** `deleteSync`, as a promise. */
  async delete(key: string): Promise<void> {
    this.deleteSync(key);
  }
}

/** Options of `VisionFeatureCache`; all optional. */
export interface VisionFeatureCacheOptions {
  /** Bound of the in-memory level in bytes of tensor data; default 256 MiB. */
  maxBytes?: number;
  /** Optional shared level (e.g. RedisFeatureStore). */
  store?: FeatureStore;
  /** Called when the shared store fails (default: console.warn), once per outage. */
  onWarning?: (message: string, error: unknown) => void;
}

/** `VisionFeatureCache.stats()`: counters since creation, and the in-memory level's current size. */
export interface FeatureCacheStats {
  /** Lookups answered by the in-memory level. */
  readonly memoryHits: number;
  /** Lookups answered by the shared store (the value is then kept in memory too). */
  readonly storeHits: number;
  /** Computations run (misses on both levels, or store down). */
  readonly computes: number;
  /** Calls that joined a computation already in flight for the same key. */
  readonly coalesced: number;
  /** Failed store operations (get, set or delete), each counted; the warning fires once per outage. */
  readonly storeErrors: number;
  /** Entries in the in-memory level now. */
  readonly entries: number;
  /** Bytes of tensor data in the in-memory level now. */
  readonly bytes: number;
  /** In-memory entries evicted to stay within maxBytes (cumulative). */
  readonly evictions: number;
}

/**
 * Cache of vision-encoder outputs keyed by what determines them (`featureKey`: image content hash,
 * encoder id, preprocessing), never by file name: an in-memory LRU bounded in bytes, then an optional
 * shared `FeatureStore`. Concurrent `getOrCompute` misses of one key share one computation. Store
 * failures warn once per outage and fall back to memory and local computation; store errors never
 * reach the caller. Returned tensors are the cached objects: treat them as read-only.
 *
 * ```ts
 * const cache = new VisionFeatureCache({ maxBytes: 512e6, store: new RedisFeatureStore() });
 * const features = await cache.getOrCompute({ pixels, width, height, encoderId: 'siglip-so400m@v1' }, () => encode(pixels));
 * ```
 */
export class VisionFeatureCache {
  /** The in-memory level: an LRU of at most maxBytes of tensor data. */
  readonly memory: MemoryFeatureStore;
  /** The shared level, or null when none was given. */
  readonly store: FeatureStore | null;
  private readonly warn: (message: string, error: unknown) => void;
  private readonly inflight = new Map<string, Promise<Tensor>>();
  /** Loads under way per key, and the generation at which a key was deleted while one was (see delete). */
  private readonly loading = new Map<string, number>();
  private readonly deletedAt = new Map<string, number>();
  private generation = 0;
  /** The kinds of store operation failing now (an outage while non-empty; each kind clears on its own success). */
  private readonly storeFailing = new Set<'read' | 'write'>();
  private counters = { memoryHits: 0, storeHits: 0, computes: 0, coalesced: 0, storeErrors: 0 };

  constructor(opts: VisionFeatureCacheOptions = {}) {
    this.memory = new MemoryFeatureStore(opts.maxBytes ?? 256 * 1024 * 1024);
    this.store = opts.store ?? null;
    this.warn = opts.onWarning ?? ((m) => console.warn(m));
  }

  private storeFailed(op: 'get' | 'set' | 'delete', key: string, e: unknown): void {
    this.counters.storeErrors++;
    // Reads and writes fail apart (a Redis at maxmemory under noeviction refuses writes and serves reads): a read
    // that succeeds must not end an outage of writes, or every write warns.
    const kind = op === 'get' ? 'read' : 'write';
    const quiet = this.storeFailing.size > 0;
    this.storeFailing.add(kind);
    if (!quiet) {
      this.warn(`vlm-attention: feature store '${this.store!.name}' ${op} failed (${(e as Error)?.message ?? String(e)}); computing locally and keeping in-memory entries until it recovers (key ${key.slice(0, 12)}…)`, e);
    }
  }

  private storeOk(kind: 'read' | 'write'): void {
    this.storeFailing.delete(kind);
  }

  private keyOf(key: string | FeatureKeyInput): string {
    if (typeof key === 'string') {
      if (key.length === 0) throw new ValueError('key must be a non-empty string', 'key');
      return key;
    }
    return featureKey(key);
  }

  /** The cached features of `key` from memory, then the shared store; undefined on a miss. */
  async get(key: string | FeatureKeyInput): Promise<Tensor | undefined> {
    const k = this.keyOf(key);
    const m = this.memory.getSync(k);
    if (m) { this.counters.memoryHits++; return m; }
    if (!this.store) return undefined;
    const stale = this.begin(k);
    try {
      return await this.fromStore(k, stale);
    } finally {
      this.end(k);
    }
  }

  /**
   * Registers a read or load of `k` under way; the returned function tells whether a delete() of `k` ran since
   * (its value then goes back to its callers but is never cached).
   */
  private begin(k: string): () => boolean {
    const started = this.generation;
    this.loading.set(k, (this.loading.get(k) ?? 0) + 1);
    return () => (this.deletedAt.get(k) ?? -1) > started;
  }

  private end(k: string): void {
    const n = this.loading.get(k)! - 1;
    if (n > 0) this.loading.set(k, n);
    else { this.loading.delete(k); this.deletedAt.delete(k); }
  }

  /** The store's entry of `k` (kept in memory unless deleted meanwhile); undefined on a miss or a store failure. */
  private async fromStore(k: string, stale: () => boolean): Promise<Tensor | undefined> {
    try {
      const t = await this.store!.get(k);
      this.storeOk('read');
      if (t) { this.counters.storeHits++; if (!stale()) this.memory.setSync(k, t); }
      return t;
    } catch (e) {
      this.storeFailed('get', k, e);
      return undefined;
    }
  }

  /**
   * The features of `key`: from memory, else from the shared store, else `compute()` (then kept in
   * memory and written to the store). Store failures warn and fall back; compute errors propagate.
   */
  async getOrCompute(key: string | FeatureKeyInput, compute: () => Tensor | Promise<Tensor>): Promise<Tensor> {
    const k = this.keyOf(key);
    if (typeof compute !== 'function') throw new ValueError('compute must be a function returning a Tensor', 'compute');
    const m = this.memory.getSync(k);
    if (m) { this.counters.memoryHits++; return m; }
    const running = this.inflight.get(k);
    if (running) { this.counters.coalesced++; return running; }
    const p = this.load(k, compute);
    this.inflight.set(k, p);
    try {
      return await p;
    } finally {
      // A delete() meanwhile may have let a newer load take the slot: leave that one.
      if (this.inflight.get(k) === p) this.inflight.delete(k);
    }
  }

  private async load(k: string, compute: () => Tensor | Promise<Tensor>): Promise<Tensor> {
    // Deleted after this load started: its value is returned to its callers but never cached.
    const stale = this.begin(k);
    try {
      const fromStore = this.store ? await this.fromStore(k, stale) : undefined;
      if (fromStore) return fromStore;
      this.counters.computes++;
      const t = await compute();
      if (!(t instanceof Tensor)) throw new ValueError(`compute() must return a Tensor, got ${t === null ? 'null' : typeof t}`, 'compute');
      if (stale()) return t;
      this.memory.setSync(k, t);
      if (this.store) {
        try {
          await this.store.set(k, t);
          this.storeOk('write');
          // A delete() that ran while the write was on its way may have reached the store first: delete again.
          if (stale()) await this.store.delete(k);
        } catch (e) {
          this.storeFailed('set', k, e);
        }
      }
      return t;
    } finally {
      this.end(k);
    }
  }

  /**
   * Removes an entry from memory and (best-effort) from the store. A computation of the key that is under
   * way finishes for its callers but is not cached, and the next getOrCompute computes afresh.
   */
  async delete(key: string | FeatureKeyInput): Promise<void> {
    const k = this.keyOf(key);
    if (this.loading.has(k)) { this.deletedAt.set(k, ++this.generation); this.inflight.delete(k); }
    this.memory.deleteSync(k);
    if (this.store) {
      try { await this.store.delete(k); this.storeOk('write'); } catch (e) { this.storeFailed('delete', k, e); }
    }
  }

  /** Hit, compute and error counters since creation, and the in-memory level's size now. */
  stats(): FeatureCacheStats {
    return { ...this.counters, entries: this.memory.size, bytes: this.memory.bytes, evictions: this.memory.evictions };
  }
}
