/**
 * Measures this machine's CPU ceilings through the WebAssembly SIMD kernels and returns a `measured`
 * device profile:
 *   - f32 FLOP/s: the kernel module's `fmaPeak(iters)` (12 independent f32x4 FMA chains, so
 *     iters × 12 × 4 lanes × 2 FLOPs), run on every kernel thread at once (Node: worker_threads on the
 *     same module and memory; elsewhere one thread × the thread count, said so in the source);
 *   - bandwidth: a 64 MiB Float32Array copy, counting bytes read + written, best of a few runs.
 * This is a ceiling of the instruction mix, not of attention: the kernels reach some fraction of it.
 */
import { cpuRuntime } from '../kernels/cpu/wasm-backend.js';
import { nodeWorkerThreads } from '../platform/node.js';
import type { DeviceProfile, Figure } from './devices.js';

/** This CPU's ceilings as `measureCpu()` measured them. */
export interface CpuMeasurement {
  /** FLOP/s of one thread. */
  singleThreadFlops: number;
  /** FLOP/s of all threads at once. */
  allThreadsFlops: number;
  /** Kernel threads, the caller's included (the CPU runtime's pool size; 1 without shared memory). */
  threads: number;
  /** Whether allThreadsFlops was measured concurrently (false: single × threads). */
  concurrent: boolean;
  /** bytes/s (read + write) of a large typed-array copy on one thread. */
  copyBytesPerSecond: number;
  /** The WebAssembly kernel build: 'relaxed-simd', 'simd128' or 'simd128-single'. */
  variant: string;
  /** `Node <version>` or `browser`. */
  runtime: string;
  /** Day of the measurement, YYYY-MM-DD (UTC). */
  date: string;
}

const FLOPS_PER_ITER = 12 * 4 * 2;

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

function timeFma(fn: (iters: number) => number, iters: number): number {
  const t0 = now();
  fn(iters);
  return (now() - t0) / 1e3;
}

/** Runs fmaPeak on `threads` Node worker threads simultaneously; returns total FLOP/s. */
async function concurrentFma(module: WebAssembly.Module, memory: WebAssembly.Memory, threads: number, iters: number): Promise<number | null> {
  const workerThreads = await nodeWorkerThreads();
  if (!workerThreads) return null;
  const { Worker } = workerThreads;
  // import(), not require: see thread-pool.ts (the eval'd source may run as an ES module).
  const src = `
    import('node:worker_threads').then(({ parentPort, workerData }) => {
      const inst = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } });
      const ctrl = new Int32Array(workerData.sab);
      inst.exports.fmaPeak(1000);
      Atomics.add(ctrl, 1, 1); Atomics.notify(ctrl, 1);
      Atomics.wait(ctrl, 0, 0);
      const t0 = performance.now();
      inst.exports.fmaPeak(workerData.iters);
      parentPort.postMessage(performance.now() - t0);
    });
  `;
  const sab = new SharedArrayBuffer(8);
  const ctrl = new Int32Array(sab);
  const workers = Array.from({ length: threads }, () => new Worker(src, { eval: true, workerData: { module, memory, iters, sab } }));
  try {
    const done = workers.map((w) => new Promise<number>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); }));
    while (Atomics.load(ctrl, 1) < threads) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
    const ms = await Promise.all(done);
    return (threads * iters * FLOPS_PER_ITER) / (Math.max(...ms) / 1e3);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Measures the CPU ceilings (takes about a second). */
export async function measureCpu(opts: { iters?: number; copyBytes?: number } = {}): Promise<CpuMeasurement> {
  const rt = await cpuRuntime();
  const fma = (n: number) => rt.pool.exports.fmaPeak(n);
  const iters = opts.iters ?? 20_000_000;
  fma(100_000);
  let best = Infinity;
  for (let r = 0; r < 3; r++) best = Math.min(best, timeFma(fma, iters));
  const single = (iters * FLOPS_PER_ITER) / best;
  let all: number | null = null;
  if (rt.threads > 1 && rt.heap.shared) {
    // Best of three: the machine is shared, a busy neighbour only ever lowers the figure.
    for (let r = 0; r < 3; r++) {
      const f = await concurrentFma(rt.pool.module, rt.heap.memory, rt.threads, iters);
      if (f !== null) all = Math.max(all ?? 0, f);
    }
  }

  const n = (opts.copyBytes ?? 64 * 1024 * 1024) / 4;
  const a = new Float32Array(n), b = new Float32Array(n);
  for (let i = 0; i < n; i += 1024) a[i] = i;
  let bestCopy = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = now();
    b.set(a);
    bestCopy = Math.min(bestCopy, (now() - t0) / 1e3);
  }
  const runtime = typeof process !== 'undefined' && process.versions?.node ? `Node ${process.versions.node}` : 'browser';
  return {
    singleThreadFlops: single, allThreadsFlops: all ?? single * rt.threads, threads: rt.threads, concurrent: all !== null,
    copyBytesPerSecond: (2 * n * 4) / bestCopy, variant: rt.variant, runtime, date: new Date().toISOString().slice(0, 10),
  };
}

/** A `measured` profile of this CPU from `measureCpu()`. */
export async function measureCpuProfile(opts: { iters?: number; name?: string } = {}): Promise<DeviceProfile> {
  const m = await measureCpu(opts);
  const src = `measured ${m.date} (${m.runtime}, WASM ${m.variant}, ${m.threads} thread${m.threads > 1 ? 's' : ''}${m.concurrent ? ', concurrently' : ', one thread × thread count'}): fmaPeak`;
  const f: Figure = { value: m.allThreadsFlops, label: 'measured', source: src };
  const copy: Figure = { value: m.copyBytesPerSecond, label: 'measured', source: `measured ${m.date} (${m.runtime}): 64 MiB Float32Array copy, read + write bytes, one thread` };
  return {
    name: opts.name ?? 'cpu-measured', displayName: `This CPU, WebAssembly ${m.variant} × ${m.threads} (measured)`, kind: 'cpu', api: 'wasm-simd',
    peaks: { f32: { vector: f }, f16: { vector: f }, bf16: { vector: f } },
    memoryBandwidth: copy,
    memoryBytes: { value: 8e9, label: 'derived', source: 'not measured: a typical 8 GB' },
    onChipBytes: { value: m.threads * 2 * 1024 ** 2, label: 'derived', source: 'not measured: ~2 MiB of L2 per core' },
  };
}
