/**
 * Intrusive doubly linked block queues (vLLM's `FreeKVCacheBlockQueue`): the links live in two
 * Int32Arrays indexed by block id, shared by every queue of a pool, so push, pop and
 * remove-from-the-middle are O(1) and allocate nothing. `where[b]` says which queue holds block b
 * (0 = none: the block is referenced), which makes membership checks O(1) as well.
 */
import { assert } from '../errors.js';

export const IN_USE = 0;

export class BlockQueue {
  head = -1;
  tail = -1;
  size = 0;

  constructor(
    private readonly prev: Int32Array,
    private readonly next: Int32Array,
    private readonly where: Uint8Array,
    /** The value of `where[b]` for blocks in this queue (≠ IN_USE). */
    readonly tag: number,
  ) {
    assert(tag !== IN_USE, 'queue tag must differ from IN_USE');
  }

  has(b: number): boolean {
    return this.where[b] === this.tag;
  }

  pushBack(b: number): void {
    assert(this.where[b] === IN_USE, `block ${b} is already queued (queue ${this.where[b]})`);
    this.prev[b] = this.tail;
    this.next[b] = -1;
    if (this.tail >= 0) this.next[this.tail] = b;
    else this.head = b;
    this.tail = b;
    this.where[b] = this.tag;
    this.size++;
  }

  /** Removes and returns the head (least recently queued) block, or −1 if empty. */
  popFront(): number {
    const b = this.head;
    if (b < 0) return -1;
    this.remove(b);
    return b;
  }

  remove(b: number): void {
    assert(this.where[b] === this.tag, `block ${b} is not in queue ${this.tag}`);
    const p = this.prev[b]!, n = this.next[b]!;
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
    this.prev[b] = -1;
    this.next[b] = -1;
    this.where[b] = IN_USE;
    this.size--;
  }

  /** Block ids from head to tail (O(size); for checks and tests). */
  toArray(): number[] {
    const out: number[] = [];
    for (let b = this.head; b >= 0; b = this.next[b]!) out.push(b);
    return out;
  }
}
