/**
 * Kernel threads over one shared WebAssembly memory. The calling thread is participant 0; workers
 * 1..n−1 sleep on a generation word (Atomics.wait) and, when woken, call `runJobs` with the
 * arguments in the control block. Work is split by an atomic job counter inside the kernel, so a
 * dispatch costs one wake-up per worker, not one message per job.
 *
 * Node: worker_threads (loaded dynamically so the core stays browser-safe). Browsers: Web Workers,
 * only when cross-origin isolated (SharedArrayBuffer). Otherwise: the calling thread alone.
 */
import { isNode, nodeWorkerThreads } from '../../platform/node.js';
import { type WasmHeap, turnTaker } from './wasm-heap.js';

/** Control block layout (Int32 slots). */
const GEN = 0, ARGS = 1, DONE = 8, STOP = 9, CTRL_SLOTS = 16;
/** Polls of the generation word a worker makes before it sleeps (about 50 µs). */
const SPIN = 20000;
/** Below this many FLOPs (≈ 50 µs on one core) a call runs on the calling thread only. */
export const SOLO_FLOPS = 2e6;

/** The kernel module's exports the pool and the backend call (AssemblyScript, src/kernels/cpu/assembly/flash.ts). */
export interface KernelExports {
  runJobs(plan: number, kind: number, jobs: number, numJobs: number, counter: number, thread: number): void;
  scratchBytes(rows: number, dpad: number, dvpad: number, topk: number, vtRows: number, panel: number): number;
  fmaPeak(iters: number): number;
}

// The worker's whole program. Kept as a string so one build serves Node (eval) and browsers (Blob URL).
const WORKER_SOURCE = `
const isNode = typeof process !== 'undefined' && process.versions && process.versions.node;
function start(d, send) {
  const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
  const ctrl = new Int32Array(d.memory.buffer, d.ctrl, ${CTRL_SLOTS});
  send('ready');
  let gen = d.gen;
  for (;;) {
    // Spin a little before sleeping: back-to-back calls (layers, decode steps, benchmarks) then
    // start without a futex wake-up, which costs tens of microseconds.
    for (let s = 0; s < ${SPIN} && Atomics.load(ctrl, ${GEN}) === gen; s++);
    Atomics.wait(ctrl, ${GEN}, gen);
    gen = Atomics.load(ctrl, ${GEN});
    if (Atomics.load(ctrl, ${STOP})) break;
    try {
      inst.exports.runJobs(ctrl[${ARGS}], ctrl[${ARGS + 1}], ctrl[${ARGS + 2}], ctrl[${ARGS + 3}], ctrl[${ARGS + 4}], d.thread);
    } catch (e) { send('error:' + (e && e.stack || e)); }
    Atomics.add(ctrl, ${DONE}, 1);
    Atomics.notify(ctrl, ${DONE});
  }
}
if (isNode) {
  // import(), not require: the eval'd source runs as CommonJS, or as an ES module where the parent was
  // started with --input-type=module (workers inherit the parent's execArgv), and only import() serves both.
  import('node:worker_threads').then(({ parentPort, workerData }) => start(workerData, (m) => parentPort.postMessage(m)));
} else {
  self.onmessage = (e) => start(e.data, (m) => self.postMessage(m));
}
`;

interface WorkerHandle {
  terminate(): unknown;
}

/** The kernel's threads over the heap's shared memory (cpuRuntime().pool); see this file's header. */
export class ThreadPool {
  private readonly ctrlPtr: number;
  private workers: WorkerHandle[] = [];
  private errors: string[] = [];

  private constructor(
    readonly heap: WasmHeap,
    readonly exports: KernelExports,
    readonly module: WebAssembly.Module,
  ) {
    this.ctrlPtr = heap.alloc(CTRL_SLOTS * 4);
    this.ctrl().fill(0);
  }

  /** Number of participating threads (the caller included). */
  get size(): number {
    return this.workers.length + 1;
  }

  private ctrl(): Int32Array {
    return this.heap.i32(this.ctrlPtr, CTRL_SLOTS);
  }

  static async create(heap: WasmHeap, module: WebAssembly.Module, threads: number): Promise<ThreadPool> {
    const instance = await WebAssembly.instantiate(module, { env: { memory: heap.memory } });
    const pool = new ThreadPool(heap, instance.exports as unknown as KernelExports, module);
    if (threads > 1 && heap.shared) await pool.spawn(threads - 1);
    return pool;
  }

  private async spawn(n: number): Promise<void> {
    const gen = Atomics.load(this.ctrl(), GEN);
    const workerThreads = await nodeWorkerThreads();
    const ready: Promise<void>[] = [];
    for (let t = 1; t <= n; t++) {
      const data = { module: this.module, memory: this.heap.memory, ctrl: this.ctrlPtr, gen, thread: t };
      if (workerThreads) {
        const w = new workerThreads.Worker(WORKER_SOURCE, { eval: true, workerData: data });
        ready.push(new Promise((resolve, reject) => {
          w.on('message', (m: string) => { if (m === 'ready') resolve(); else this.errors.push(m); });
          w.once('error', reject);
        }));
        this.workers.push(w);
      } else {
        const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
        const w = new Worker(url);
        ready.push(new Promise((resolve, reject) => {
          w.onmessage = (e: MessageEvent) => { if (e.data === 'ready') resolve(); else this.errors.push(String(e.data)); };
          w.onerror = (e) => reject(e);
        }));
        w.postMessage(data);
        this.workers.push(w);
      }
    }
    await Promise.all(ready);
    // Idle kernel threads must not keep the process alive (after 'ready': an unref'd worker's
    // pending message would not keep the loop alive either).
    for (const w of this.workers) (w as { unref?: () => void }).unref?.();
  }

  /**
   * Runs `numJobs` jobs of `kind` on every thread and returns when all are done. The caller takes
   * part (thread 0). Where the caller cannot block (a browser's main thread) it polls asynchronously, and runs
   * queue: a second call starting while the first waits would reset the shared done counter and the job
   * arguments under the workers, and could return before its own jobs ran.
   */
  run(plan: number, kind: number, jobs: number, numJobs: number, counter: number, opts: { flops?: number } = {}): Promise<void> {
    if (isNode) return this.runNow(plan, kind, jobs, numJobs, counter, opts); // blocks until done: never overlaps
    return this.inTurn(() => this.runNow(plan, kind, jobs, numJobs, counter, opts));
  }

  private readonly inTurn = turnTaker();

  private async runNow(plan: number, kind: number, jobs: number, numJobs: number, counter: number, opts: { flops?: number }): Promise<void> {
    if (numJobs === 0) return;
    this.heap.i32(counter, 1)[0] = 0;
    const ctrl = this.ctrl();
    // Work too small to repay waking the workers (or waiting for a core on a busy machine) runs on
    // the calling thread alone.
    const nw = opts.flops !== undefined && opts.flops < SOLO_FLOPS ? 0 : this.workers.length;
    if (nw > 0) {
      ctrl[ARGS] = plan; ctrl[ARGS + 1] = kind; ctrl[ARGS + 2] = jobs; ctrl[ARGS + 3] = numJobs; ctrl[ARGS + 4] = counter;
      Atomics.store(ctrl, DONE, 0);
      Atomics.add(ctrl, GEN, 1);
      Atomics.notify(ctrl, GEN);
    }
    this.exports.runJobs(plan, kind, jobs, numJobs, counter, 0);
    if (nw > 0) {
      const canBlock = isNode;
      for (let spin = 0; spin < SPIN && Atomics.load(ctrl, DONE) < nw; spin++);
      for (;;) {
        const done = Atomics.load(ctrl, DONE);
        if (done >= nw) break;
        if (canBlock) Atomics.wait(ctrl, DONE, done, 1000);
        else await new Promise((r) => setTimeout(r, 0));
      }
    }
    if (this.errors.length) {
      const e = this.errors.splice(0);
      throw new Error(`vlm-attention kernel thread failed: ${e.join('\n')}`);
    }
  }

  async terminate(): Promise<void> {
    const ctrl = this.ctrl();
    Atomics.store(ctrl, STOP, 1);
    Atomics.add(ctrl, GEN, 1);
    Atomics.notify(ctrl, GEN);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
