/**
 * The WebAssembly backend without SharedArrayBuffer (a browser page without cross-origin isolation): one thread and
 * a heap whose memory is not shared, so growing it detaches its buffer and every view over it. Calls whose
 * allocations grow it must still be right (runWasm starts such a call again; checked against the float64 reference), and nothing long-lived may sit in it
 * (cpuTensor and a PagedKvCache given the heap use ordinary arrays there). Until 2026-12-02 a causal call on
 * [1, 512, 8, 64] failed with "heap pointer 0 freed twice", and one that did not fail could read stale views.
 * The runtime is one per process, so this runs in a child process with SharedArrayBuffer deleted, against dist/.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const SCRIPT = `
delete globalThis.SharedArrayBuffer;
const L = await import(process.cwd() + '/dist/index.js');
const { attention, attentionReference, randn, causal, slidingWindow, topK, cpuRuntime, cpuTensor, columnSums, PagedKvCache, attentionPaged, pagedAttentionReference } = L;
const rt = await cpuRuntime();
const maxDiff = (a, b) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) || (Number.isNaN(a[i]) !== Number.isNaN(b[i]) ? Infinity : 0)); return m; };
const res = { threads: rt.threads, shared: rt.heap.shared, cases: {} };
const check = async (name, q, k, v, opts) => {
  const before = rt.heap.growths;
  const got = await attention(q, k, v, { ...opts, backend: 'wasm', returnLse: true });
  const ref = attentionReference(q, k, v, opts); // float64, from the explicitly materialised mask
  res.cases[name] = { grew: rt.heap.growths > before, out: maxDiff(got.out.toFloat32(), ref.out), lse: maxDiff(got.lse.toFloat32(), ref.lse) };
};
await check('prefill causal GQA 2', randn([1, 512, 8, 64], 1), randn([1, 512, 4, 64], 2), randn([1, 512, 4, 64], 3), { mask: causal() });
await check('prefill window, 1500 keys', randn([1, 700, 4, 64], 4), randn([1, 1500, 4, 64], 5), randn([1, 1500, 4, 64], 6), { mask: slidingWindow(100, 0) });
await check('decode 2 × 6000 keys GQA 4', randn([2, 1, 16, 128], 7), randn([2, 6000, 4, 128], 8), randn([2, 6000, 4, 128], 9), {});
await check('top-k 16 of 3000', randn([1, 40, 4, 32], 10), randn([1, 3000, 4, 32], 11), randn([1, 3000, 4, 32], 12), { mask: topK(16) });
const t = await cpuTensor([1, 4, 2, 16]);
res.cpuTensorInHeap = rt.heap.owns(t.data);
const q = randn([1, 64, 4, 32], 13), k = randn([1, 9000, 4, 32], 14);
const cs = await columnSums(q, k, { backend: 'wasm' }), csRef = await columnSums(q, k, { backend: 'cpu-ts' });
res.columnSums = maxDiff(cs.toFloat32(), csRef.toFloat32());
const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: 32, blockSizeTokens: 16, numBlocks: 4096, dtype: 'f32', heap: rt.heap });
res.cacheInHeap = rt.heap.owns(cache.storage.layers[0].k.data);
const { id } = cache.addSequence();
const n = 5000;
cache.append(id, Array.from({ length: n }, (_, i) => i % 97), { k: randn([1, n, 2, 32], 15), v: randn([1, n, 2, 32], 16) });
const batch = cache.batch([id]);
const pq = randn([1, 1, 4, 32], 17);
const pg = await attentionPaged(pq, cache, 0, batch, batch.seqLens, { backend: 'wasm' });
const pr = pagedAttentionReference(pq, cache, 0, batch, batch.seqLens); // float64
res.paged = maxDiff(pg.out.toFloat32(), pr.out);
// Concurrent calls: a large call's allocations grow the heap while the small ones await (they failed with
// "Cannot perform Construct on a detached ArrayBuffer" before calls on an unshared heap took turns).
const small = [0, 1, 2].map((i) => [randn([1, 64, 4, 32], 20 + i), randn([1, 64, 4, 32], 30 + i), randn([1, 64, 4, 32], 40 + i)]);
const big = [randn([1, 16, 8, 64], 50), randn([1, 16000, 8, 64], 51), randn([1, 16000, 8, 64], 52)];
const growthsBefore = rt.heap.growths;
const settled = await Promise.allSettled([...small, big, ...small].map(([a, b, c]) => attention(a, b, c, { backend: 'wasm', mask: causal() })));
res.concurrent = {
  grew: rt.heap.growths > growthsBefore,
  rejected: settled.filter((x) => x.status === 'rejected').map((x) => String(x.reason)),
  err: Math.max(...settled.map((x, i) => {
    if (x.status !== 'fulfilled') return Infinity;
    const [a, b, c] = [...small, big, ...small][i];
    return maxDiff(x.value.out.toFloat32(), attentionReference(a, b, c, { mask: causal() }).out);
  })),
};
res.inUseAfter = rt.heap.inUseBytes;
console.log(JSON.stringify(res));
process.exit(0);
`;

describe('WebAssembly backend without SharedArrayBuffer', () => {
  it('calls that grow the unshared heap match the float64 reference (column sums: the TypeScript kernel); nothing long-lived lives in it', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT], { encoding: 'utf8', timeout: 240_000 });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r.threads).toBe(1);
    expect(r.shared).toBe(false);
    for (const [name, c] of Object.entries(r.cases as Record<string, { grew: boolean; out: number; lse: number }>)) {
      expect(c.out, name).toBeLessThan(1e-5);
      expect(c.lse, name).toBeLessThan(1e-4);
    }
    // The heap grew inside calls (the point of the test), from its initial 2 MiB.
    expect(Object.values(r.cases as Record<string, { grew: boolean }>).filter((c) => c.grew).length).toBeGreaterThan(0);
    expect(r.cpuTensorInHeap).toBe(false);
    expect(r.cacheInHeap).toBe(false);
    expect(r.columnSums).toBeLessThan(1e-4);
    expect(r.paged).toBeLessThan(1e-5);
    expect(r.concurrent.rejected).toEqual([]);
    expect(r.concurrent.grew).toBe(true);
    expect(r.concurrent.err).toBeLessThan(1e-5);
    // Only the thread pool's control block stays allocated between calls.
    expect(r.inUseAfter).toBeLessThanOrEqual(128);
  }, 300_000);
});
