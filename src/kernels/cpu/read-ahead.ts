/**
 * Whether the CPU decode kernel reads each 64-key tile of K, then of V, once in address order before its
 * micro-kernels use it ("read-ahead", touchRows in assembly/flash.ts).
 *
 * The micro-kernels read a KV head's 8 keys at a time, rows 4 KiB apart in BSHD: an order the hardware
 * prefetcher follows poorly when K/V come from DRAM, where reading the tile ahead in address order made
 * decode-kv4k 1.2–1.3× faster (AMD EPYC, 32 MiB of L3 per core complex). Where K/V stay in a large
 * last-level cache (Intel Xeon, 480 MiB of L3) the same reads cost time instead: 0.73× with one layer's
 * 32 MiB of K/V repeated, 0.86× with 32 layers' K/V in turn (BENCHMARKS.md, 2026-12-02). Which one wins depends
 * on the machine's caches and on the caller's working set, neither of which WebAssembly can see, so in
 * 'auto' mode a {@link ReadAheadTuner} times both on the caller's own calls and keeps the faster.
 */

/** 'auto' (default): timed on the caller's own calls; 'on'/'off': always/never (for tests and benchmarks). */
export type ReadAheadMode = 'auto' | 'on' | 'off';

/** Smallest f32 K/V of one sequence (bytes) for which reading ahead is considered: below it, K/V stay cached. */
export const READ_AHEAD_MIN_BYTES = 8 * 2 ** 20;

export interface ReadAheadTunerOptions {
  /** First calls of a class, alternating, whose timings are dropped: JIT tiering and cold caches make a
   *  process's first calls several times slower, which would decide the choice by call order (default 4). */
  warmup?: number;
  /** Calls timed per choice before the tuner decides (default 6). */
  explore?: number;
  /** Once decided, every `every`-th call runs the other choice, so a change of regime is noticed (default 32). */
  every?: number;
  /** Most recent timings kept per choice; the decision compares their medians (default 9: four outliers, a
   *  shared machine's delayed thread, say, cannot move a median of nine). */
  window?: number;
}

interface Arm { samples: number[]; next: number }
interface Entry { calls: number; recorded: number; arms: [Arm, Arm] }

const median = (a: readonly number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * A two-armed choice per workload class (`key`): alternates until each arm has `explore` timings, then takes
 * the arm whose recent timings have the lower median, re-timing the other one every `every` calls.
 * Timings are per unit of work (the caller divides by it), so calls of different sizes in one class compare.
 */
export class ReadAheadTuner {
  private readonly entries = new Map<string, Entry>();
  private readonly warmup: number;
  private readonly explore: number;
  private readonly every: number;
  private readonly window: number;

  constructor(opts: ReadAheadTunerOptions = {}) {
    this.warmup = Math.max(0, opts.warmup ?? 4);
    this.explore = Math.max(1, opts.explore ?? 6);
    this.every = Math.max(2, opts.every ?? 32);
    this.window = Math.max(this.explore, opts.window ?? 9);
  }

  private entry(key: string): Entry {
    let e = this.entries.get(key);
    if (!e) {
      e = { calls: 0, recorded: 0, arms: [{ samples: [], next: 0 }, { samples: [], next: 0 }] };
      this.entries.set(key, e);
    }
    return e;
  }

  /** The arm with the lower median of recent timings (true: read ahead), or null while still exploring. */
  best(key: string): boolean | null {
    const e = this.entries.get(key);
    if (!e || e.arms[0].samples.length < this.explore || e.arms[1].samples.length < this.explore) return null;
    return median(e.arms[1].samples) < median(e.arms[0].samples);
  }

  /** The choice for the next call of class `key` (true: read ahead). */
  choose(key: string): boolean {
    const e = this.entry(key);
    const n = e.calls++;
    const best = this.best(key);
    if (best === null) {
      const [off, on] = e.arms;
      return off.samples.length === on.samples.length ? (n & 1) === 1 : on.samples.length < off.samples.length;
    }
    return n % this.every === 0 ? !best : best;
  }

  /** Records a call's time per unit of work under the choice it ran with. */
  record(key: string, readAhead: boolean, timePerUnit: number): void {
    if (!(timePerUnit >= 0) || !Number.isFinite(timePerUnit)) return;
    const e = this.entry(key);
    if (e.recorded++ < this.warmup) return;
    const arm = e.arms[readAhead ? 1 : 0];
    if (arm.samples.length < this.window) arm.samples.push(timePerUnit);
    else arm.samples[arm.next] = timePerUnit;
    arm.next = (arm.next + 1) % this.window;
  }

  /** Medians of class `key`'s recent timings each way (NaN where none yet) and the choice they make. */
  medians(key: string): { off: number; on: number; best: boolean | null } {
    const e = this.entries.get(key);
    const m = (a: Arm | undefined) => (a?.samples.length ? median(a.samples) : NaN);
    return { off: m(e?.arms[0]), on: m(e?.arms[1]), best: this.best(key) };
  }

  /** {@link medians} of every class seen, for diagnostics. */
  summary(): Record<string, { off: number; on: number; best: boolean | null }> {
    return Object.fromEntries([...this.entries.keys()].map((k) => [k, this.medians(k)]));
  }
}
