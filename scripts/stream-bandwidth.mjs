// Streaming read bandwidth of this machine from JavaScript: each worker sums a 256 MiB Float64Array
// (best of 5 passes), on 1 and on 2 threads (best of 3 runs). The ceiling for decode-kv4k's K/V read rate.
// Usage: node scripts/stream-bandwidth.mjs
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
if (isMainThread) {
  const run = async (n) => {
    const ws = Array.from({ length: n }, () => new Worker(new URL(import.meta.url), { workerData: {} }));
    const res = await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
    ws.forEach((w) => w.terminate());
    return res.reduce((a, b) => a + b, 0);
  };
  for (const n of [1, 2]) { const best = Math.max(await run(n), await run(n), await run(n)); console.log(`${n} thread(s): ${best.toFixed(1)} GB/s`); }
  process.exit(0);
} else {
  const a = new Float64Array(256 * 1024 * 1024 / 8).fill(1);
  let best = 0, s = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < a.length; i += 4) s += a[i] + a[i + 1] + a[i + 2] + a[i + 3];
    const ms = performance.now() - t0;
    best = Math.max(best, a.byteLength / ms / 1e6);
  }
  parentPort.postMessage(best + (s < 0 ? 1 : 0));
}
