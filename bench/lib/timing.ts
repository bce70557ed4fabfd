/**
 * Timing: warm-up runs, then timed runs until `runs` samples or the time budget is spent (never
 * fewer than `minRuns`), reported as the median. Generic over anything awaitable, so the CPU and
 * WebGPU benchmarks share it (a GPU bench passes a function that waits for the queue).
 */

export interface TimingOptions {
  /** Untimed runs first (JIT, caches, lazy allocation). Default 2; after the first, warm-up stops
   *  early when one run takes more than a quarter of the budget (long runs are warm already). */
  warmup?: number;
  /** Keep warming up until the warm-up runs have taken at least this long (ms), whatever `warmup`
   *  says (still stopping after a run longer than a quarter of the budget). Default 0. Short calls
   *  need it: two warm-up runs of a 0.3 ms attention call leave its JavaScript half-optimised, and the
   *  timed runs then measure V8's tiering rather than the call. */
  warmMs?: number;
  /** Target number of timed runs (the N of "median of N"). Default 10. */
  runs?: number;
  /** Past `runs`, keep adding timed runs until they have taken this long (ms), up to `maxRuns`: a short
   *  call's median of 10 moves with whatever else the machine does in those few milliseconds (a shared
   *  2-core VM delays one thread now and then, doubling a call), a median over a few hundred ms does not.
   *  Default 0 (off). */
  minTimedMs?: number;
  /** Most timed runs `minTimedMs` may take. Default 500. */
  maxRuns?: number;
  /** Always take at least this many timed runs, whatever the budget. Default 3. */
  minRuns?: number;
  /** Stop adding runs once the timed runs have taken this long (ms). Default 4000. */
  budgetMs?: number;
  /** When the first warm-up run takes longer than this (ms), take a single timed run (N = 1), so
   *  one very slow peer cannot blow the bench's time limit. Default: never. */
  slowMs?: number;
  /** Duration of an untimed run the caller already made (e.g. the validation run): it counts as
   *  the first warm-up, and decides `slowMs`. */
  firstRunMs?: number;
}

export interface Timing {
  /** Median of the timed runs (ms). */
  medianMs: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
  /** Median absolute deviation (ms): the spread a shared machine adds. */
  madMs: number;
  /** Number of timed runs (N). */
  runs: number;
  warmup: number;
  samplesMs: number[];
}

export const now = (): number => performance.now();

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarize(samplesMs: number[], warmup: number): Timing {
  const med = median(samplesMs);
  return {
    medianMs: med,
    minMs: Math.min(...samplesMs),
    maxMs: Math.max(...samplesMs),
    meanMs: samplesMs.reduce((a, b) => a + b, 0) / samplesMs.length,
    madMs: median(samplesMs.map((x) => Math.abs(x - med))),
    runs: samplesMs.length,
    warmup,
    samplesMs,
  };
}

/** Times `fn` (sync or async); see TimingOptions for the run policy. */
export async function timeIt(fn: () => unknown, opts: TimingOptions = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2, runs = Math.max(1, opts.runs ?? 10), minRuns = Math.min(runs, Math.max(1, opts.minRuns ?? 3));
  const budgetMs = opts.budgetMs ?? 4000, slowMs = opts.slowMs ?? Infinity;
  let warmed = 0, floor = minRuns, slow = false;
  const first = opts.firstRunMs;
  if (first !== undefined) {
    warmed = 1;
    if (first > slowMs) { floor = 1; slow = true; }
  }
  const warmMs = opts.warmMs ?? 0, w0 = now();
  for (let i = warmed; (i < warmup || now() - w0 < warmMs) && (first === undefined || first <= budgetMs / 4); i++) {
    const t0 = now();
    await fn();
    warmed++;
    const dt = now() - t0;
    if (i === 0 && dt > slowMs) { floor = 1; slow = true; break; }
    if (dt > budgetMs / 4) break;
  }
  const samples: number[] = [];
  let spent = 0;
  const minTimedMs = opts.minTimedMs ?? 0, maxRuns = Math.max(runs, opts.maxRuns ?? 500);
  while ((samples.length < runs && (samples.length < floor || spent < budgetMs)) || (!slow && spent < minTimedMs && samples.length < maxRuns)) {
    const t0 = now();
    await fn();
    const dt = now() - t0;
    samples.push(dt);
    spent += dt;
  }
  return summarize(samples, warmed);
}

/** GFLOP/s from a FLOP count and a time in ms. */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}

/** GB/s from a byte count and a time in ms. */
export function gbPerSecond(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}
