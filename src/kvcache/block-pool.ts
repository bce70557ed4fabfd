/**
 * The block pool: metadata of a fixed set of KV blocks (vLLM V1 `BlockPool`). It owns reference
 * counts, the prefix-cache map (block hash → block) and two intrusive queues:
 *
 *   free   — unreferenced blocks holding no cached content; allocation takes these first;
 *   cached — unreferenced blocks whose content is registered under a hash, least recently
 *            released first. When no free block is left, allocation evicts the head (LRU).
 *
 * Every block is in exactly one state, so   free + used + cached = total   always holds:
 *   used   ⇔ refCount > 0 (in no queue; may also be registered, then other sequences can hit it)
 *   free   ⇔ refCount = 0, no hash, in the free queue
 *   cached ⇔ refCount = 0, hash registered, in the cached queue
 *
 * vLLM keeps one queue and may evict a cached block while never-used blocks sit behind it; two
 * queues keep the same LRU order among cached blocks and never evict while a free block exists.
 */
import { ValueError, assert } from '../errors.js';
import { BlockQueue, IN_USE } from './free-queue.js';

const FREE = 1;
const CACHED = 2;

/**
 * Metadata of a fixed set of KV blocks (vLLM V1's BlockPool): reference counts, the prefix-cache map
 * (hash → block) and the free and cached (LRU) queues. Every block is used (refCount > 0), free or
 * cached, so numUsed + numFree + numCached = numBlocks. A PagedKvCache owns one (`cache.pool`); its
 * callers check `numAvailable` before `allocate`.
 */
export class BlockPool {
  /** Total blocks, fixed at construction. */
  readonly numBlocks: number;
  private readonly refCounts: Int32Array;
  private readonly hashes: (string | null)[];
  private readonly where: Uint8Array;
  private readonly freeQueue: BlockQueue;
  private readonly cachedQueue: BlockQueue;
  private readonly byHash = new Map<string, number>();
  private used = 0;
  /** Cached blocks dropped to make room or by `evict`. */
  evictions = 0;

  constructor(numBlocks: number) {
    assert(Number.isInteger(numBlocks) && numBlocks >= 1, 'numBlocks must be validated by the caller');
    this.numBlocks = numBlocks;
    this.refCounts = new Int32Array(numBlocks);
    this.hashes = new Array<string | null>(numBlocks).fill(null);
    this.where = new Uint8Array(numBlocks);
    const prev = new Int32Array(numBlocks), next = new Int32Array(numBlocks);
    this.freeQueue = new BlockQueue(prev, next, this.where, FREE);
    this.cachedQueue = new BlockQueue(prev, next, this.where, CACHED);
    for (let b = 0; b < numBlocks; b++) this.freeQueue.pushBack(b);
  }

  /** Unreferenced blocks holding no cached content (taken first by allocate). */
  get numFree(): number {
    return this.freeQueue.size;
  }

  /** Unreferenced blocks registered under a hash, kept for prefix hits; evicted LRU when needed. */
  get numCached(): number {
    return this.cachedQueue.size;
  }

  /** Blocks with refCount > 0. */
  get numUsed(): number {
    return this.used;
  }

  /** Blocks an allocation can take now: free plus evictable cached ones. */
  get numAvailable(): number {
    return this.freeQueue.size + this.cachedQueue.size;
  }

  /** References to block `b` (in a PagedKvCache: the block-table entries naming it); 0 when free or cached. */
  refCount(b: number): number {
    return this.refCounts[this.block(b)]!;
  }

  /** The hash block `b` is registered under in the prefix cache, or null when it is not registered. */
  hashOf(b: number): string | null {
    return this.hashes[this.block(b)]!;
  }

  /** `b` checked as a block id (an integer in [0, numBlocks)): ValueError naming it otherwise. */
  private block(b: number): number {
    if (!Number.isInteger(b) || b < 0 || b >= this.numBlocks) throw new ValueError(`block id must be an integer in [0, ${this.numBlocks}), got ${b}`, 'b');
    return b;
  }

  /** The block registered under `hash`, or −1. */
  lookup(hash: string): number {
    return this.byHash.get(hash) ?? -1;
  }

  /**
   * Takes `n` blocks (refCount 1 each): free blocks first, then the least recently released cached
   * blocks, whose hashes are dropped. The caller checks `numAvailable` first, so this cannot fail.
   */
  allocate(n: number, out: number[] = []): number[] {
    assert(n <= this.numAvailable, `allocate(${n}) with only ${this.numAvailable} available`);
    for (let i = 0; i < n; i++) {
      let b = this.freeQueue.popFront();
      if (b < 0) {
        b = this.cachedQueue.popFront();
        this.dropHash(b);
        this.evictions++;
      }
      assert(this.refCounts[b] === 0, `allocated block ${b} has refCount ${this.refCounts[b]}`);
      this.refCounts[b] = 1;
      this.used++;
      out.push(b);
    }
    return out;
  }

  /** Adds a reference; a cached (unreferenced) block leaves the LRU queue (a prefix-cache hit). */
  incRef(b: number): void {
    if (this.refCounts[b] === 0) {
      assert(this.cachedQueue.has(b), `incRef of unreferenced block ${b} that is not cached`);
      this.cachedQueue.remove(b);
      this.used++;
    }
    this.refCounts[b]!++;
  }

  /** Drops a reference; at zero the block goes to the cached queue's tail if registered, else to free. */
  decRef(b: number): void {
    assert(this.refCounts[b]! > 0, `block ${b} released twice`);
    if (--this.refCounts[b]! > 0) return;
    this.used--;
    if (this.hashes[b] !== null) this.cachedQueue.pushBack(b);
    else this.freeQueue.pushBack(b);
  }

  /**
   * Registers a referenced block's content under `hash`. Returns false (and registers nothing) when
   * another block already holds that hash: duplicates stay private to their sequence, as in vLLM.
   */
  register(b: number, hash: string): boolean {
    assert(this.refCounts[b]! > 0, `register of unreferenced block ${b}`);
    const cur = this.hashes[b];
    if (cur !== null) {
      assert(cur === hash, `block ${b} is registered under another hash`);
      return true;
    }
    if (this.byHash.has(hash)) return false;
    this.byHash.set(hash, b);
    this.hashes[b] = hash;
    return true;
  }

  /** Drops up to `count` least recently released cached blocks to the free queue. Returns how many. */
  evict(count: number): number {
    let n = 0;
    while (n < count && this.cachedQueue.size > 0) {
      const b = this.cachedQueue.popFront();
      this.dropHash(b);
      this.freeQueue.pushBack(b);
      this.evictions++;
      n++;
    }
    return n;
  }

  private dropHash(b: number): void {
    const h = this.hashes[b]!;
    assert(h !== null && this.byHash.get(h) === b, `cached block ${b} is not registered`);
    this.byHash.delete(h);
    this.hashes[b] = null;
  }

  /** Cached block ids in eviction order (head first). */
  cachedOrder(): number[] {
    return this.cachedQueue.toArray();
  }

  /**
   * Full O(numBlocks) consistency check: queue membership matches reference counts and hashes,
   * queue sizes match a recount, the hash map and the per-block hashes agree. Throws on violation.
   */
  checkInvariants(): { free: number; used: number; cached: number } {
    let free = 0, used = 0, cached = 0;
    const free2 = this.freeQueue.toArray(), cached2 = this.cachedQueue.toArray();
    assert(free2.length === this.freeQueue.size && cached2.length === this.cachedQueue.size, 'queue size counters drifted');
    for (let b = 0; b < this.numBlocks; b++) {
      const rc = this.refCounts[b]!, w = this.where[b]!, h = this.hashes[b]!;
      assert(rc >= 0, `block ${b} has negative refCount ${rc}`);
      if (rc > 0) {
        assert(w === IN_USE, `referenced block ${b} sits in queue ${w}`);
        used++;
      } else if (w === FREE) {
        assert(h === null, `free block ${b} still has a hash`);
        free++;
      } else {
        assert(w === CACHED && h !== null, `unreferenced block ${b} is in no queue (leaked)`);
        cached++;
      }
      if (h !== null) assert(this.byHash.get(h) === b, `block ${b}'s hash maps to block ${this.byHash.get(h)}`);
    }
    for (const [h, b] of this.byHash) assert(this.hashes[b] === h, `hash map entry for block ${b} is stale`);
    assert(free === this.freeQueue.size && cached === this.cachedQueue.size && used === this.used, 'accounting drifted');
    assert(free + used + cached === this.numBlocks, `free ${free} + used ${used} + cached ${cached} ≠ total ${this.numBlocks}`);
    return { free, used, cached };
  }
}
