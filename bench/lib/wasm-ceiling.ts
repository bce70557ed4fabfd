/**
 * The machine's WebAssembly SIMD ceiling: the kernel module's `fmaPeak(iters)` runs iters × 12
 * independent f32x4 multiply-adds (fused under relaxed SIMD, mul + add under SIMD128): 96 flops per
 * iteration, no memory traffic. Measured on one thread, and on `threads` threads at once (worker
 * threads, each with its own instance of the same module, released together by a shared flag).
 * A ceiling is a peak, and other processes can only lower it: GFLOP/s come from the fastest of the
 * N runs (the median is kept in `timing`).
 */
import { Worker } from 'node:worker_threads';
import { type Timing, gflops, summarize, timeIt } from './timing.js';

export const FLOPS_PER_ITER = 96;

export interface CeilingResult {
  /** Iterations per call (calibrated to ~targetMs on one thread). */
  iters: number;
  /** GFLOP/s below are from the fastest run; medianGflops from the median. */
  singleThread: { gflops: number; medianGflops: number; timing: Timing };
  /** All threads at once: total flops / wall time from the first start to the last finish. */
  allThreads: { threads: number; gflops: number; medianGflops: number; timing: Timing };
  /** allThreads.gflops / (threads · singleThread.gflops): 1 = perfect scaling. */
  scaling: number;
}

interface PeakExports { fmaPeak(iters: number): number }

// import(), not require: the eval'd source may run as an ES module (src/kernels/cpu/thread-pool.ts).
const WORKER = `
import('node:worker_threads').then(({ parentPort, workerData }) => {
  const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, shared: true });
  const inst = new WebAssembly.Instance(workerData.module, { env: { memory } });
  const flag = new Int32Array(workerData.flag);
  parentPort.on('message', (round) => {
    Atomics.wait(flag, 0, round - 1);   // released when the parent stores round
    const t0 = performance.timeOrigin + performance.now();
    const r = inst.exports.fmaPeak(workerData.iters);
    const t1 = performance.timeOrigin + performance.now();
    parentPort.postMessage({ t0, t1, r });
  });
  parentPort.postMessage('ready');
});
`;

/** A fresh instance of `module` over its own memory (the library heap is never touched). */
function instantiate(module: WebAssembly.Module, shared: boolean): PeakExports {
  const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, shared } as WebAssembly.MemoryDescriptor);
  return new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as PeakExports;
}

export async function measureCeiling(module: WebAssembly.Module, threads: number, opts: { targetMs?: number; runs?: number; shared?: boolean } = {}): Promise<CeilingResult> {
  const targetMs = opts.targetMs ?? 200, runs = opts.runs ?? 7, shared = opts.shared ?? true;
  const ex = instantiate(module, shared);
  // Calibrate: grow iters until one call takes ≥ 20 ms, then scale to the target.
  let iters = 1 << 16;
  for (;;) {
    const t0 = performance.now();
    ex.fmaPeak(iters);
    const dt = performance.now() - t0;
    if (dt >= 20 || iters >= 1 << 30) { iters = Math.max(1, Math.round(iters * (targetMs / Math.max(dt, 1e-3)))); break; }
    iters *= 4;
  }
  const single = await timeIt(() => ex.fmaPeak(iters), { warmup: 1, runs, minRuns: runs, budgetMs: Infinity });
  const singleG = gflops(iters * FLOPS_PER_ITER, single.minMs);

  let allG = singleG, allTiming = single;
  if (threads > 1 && shared) {
    const flagBuf = new SharedArrayBuffer(4);
    const flag = new Int32Array(flagBuf);
    const workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true, workerData: { module, iters, flag: flagBuf } }));
    try {
      await Promise.all(workers.map((w) => new Promise<void>((res, rej) => { w.once('message', () => res()); w.once('error', rej); })));
      const samples: number[] = [];
      for (let round = 1; round <= runs + 1; round++) {
        const done = Promise.all(workers.map((w) => new Promise<{ t0: number; t1: number }>((res, rej) => { w.once('message', res); w.once('error', rej); })));
        for (const w of workers) w.postMessage(round);
        await new Promise((r) => setTimeout(r, 20)); // every worker parked on the flag
        Atomics.store(flag, 0, round);
        Atomics.notify(flag, 0);
        const times = await done;
        if (round > 1) samples.push(Math.max(...times.map((t) => t.t1)) - Math.min(...times.map((t) => t.t0))); // round 1: warm-up
      }
      allTiming = summarize(samples, 1);
      allG = gflops(threads * iters * FLOPS_PER_ITER, allTiming.minMs);
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }
  return {
    iters,
    singleThread: { gflops: singleG, medianGflops: gflops(iters * FLOPS_PER_ITER, single.medianMs), timing: single },
    allThreads: { threads, gflops: allG, medianGflops: gflops(allTiming === single ? iters * FLOPS_PER_ITER : threads * iters * FLOPS_PER_ITER, allTiming.medianMs), timing: allTiming },
    scaling: allG / (threads * singleG),
  };
}
