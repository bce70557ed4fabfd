/**
 * Capture: probability slices recomputed from the forward log-sum-exp equal a float64 reference
 * (explicit softmax of QKᵀ with the dense mask) within 1e-6, on the WASM, TypeScript and WebGPU paths; the
 * column-sum capture of an N = 5,329 self-attention stays under 64 MB.
 */
import { describe, expect, it } from 'vitest';
import {
  DTypeError, GpuTensor, type Mask, ShapeError, Tensor, ValueError, attention, causal, columnSums, copyInto, cpuRuntime, cpuTensor, denseMask, gpuContext, headMeans,
  probabilityMatrix, probabilityRows, randn, slidingWindow, topKeys,
} from '../../../src/index.js';
import { setCapturePassBytes } from '../../../src/attention/capture.js';
import { expectClose } from '../../helpers/close.js';

/** P[b, h, i, j] in float64 from an explicitly materialised mask. */
function referenceP(q: Tensor, k: Tensor, opts: { scale?: number; softcap?: number; mask?: Mask | null }): Float64Array {
  const [B, Sq, H, D] = q.shape as number[] as [number, number, number, number];
  const [, Sk, Hk] = k.shape as number[] as [number, number, number];
  const Q = q.toFloat64(), K = k.toFloat64();
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const m = opts.mask ? denseMask(opts.mask, { seqLenQ: Sq, seqLenK: Sk }) : null;
  const P = new Float64Array(B * H * Sq * Sk);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Sq; i++) {
    const hk = Math.floor(h / (H / Hk));
    const s = new Float64Array(Sk);
    let mx = -Infinity;
    for (let j = 0; j < Sk; j++) {
      if (m && !m[i * Sk + j]) { s[j] = -Infinity; continue; }
      let dot = 0;
      for (let c = 0; c < D; c++) dot += Q[((b * Sq + i) * H + h) * D + c]! * K[((b * Sk + j) * Hk + hk) * D + c]!;
      dot *= scale;
      if (opts.softcap) dot = opts.softcap * Math.tanh(dot / opts.softcap);
      s[j] = dot;
      mx = Math.max(mx, dot);
    }
    let sum = 0;
    for (let j = 0; j < Sk; j++) sum += s[j] === -Infinity ? 0 : Math.exp(s[j]! - mx);
    for (let j = 0; j < Sk; j++) P[((b * H + h) * Sq + i) * Sk + j] = s[j] === -Infinity || mx === -Infinity ? 0 : Math.exp(s[j]! - mx) / sum;
  }
  return P;
}

const cases: { name: string; B: number; Sq: number; Sk: number; H: number; Hk: number; D: number; mask?: Mask; softcap?: number }[] = [
  { name: 'cross 37×150 GQA', B: 2, Sq: 37, Sk: 150, H: 4, Hk: 2, D: 24 },
  { name: 'causal 97 with fully masked rows (Sq > Sk)', B: 1, Sq: 97, Sk: 70, H: 2, Hk: 1, D: 16, mask: causal() },
  { name: 'window + softcap', B: 1, Sq: 80, Sk: 80, H: 2, Hk: 2, D: 32, mask: slidingWindow(9, 3), softcap: 7 },
  // Row 0 sees one key: top-3 gives it and two empty slots (the CPU backends once filled them with masked keys).
  { name: 'causal 40 (row 0 sees one key)', B: 1, Sq: 40, Sk: 40, H: 2, Hk: 2, D: 16, mask: causal() },
];

describe('capture: slices from the log-sum-exp', () => {
  for (const c of cases) {
    for (const backend of ['wasm', 'cpu-ts', 'webgpu'] as const) {
      it(`${c.name} (${backend})`, async () => {
        const q = randn([c.B, c.Sq, c.H, c.D], 3), k = randn([c.B, c.Sk, c.Hk, c.D], 4), v = randn([c.B, c.Sk, c.Hk, c.D], 5);
        const opts = { mask: c.mask ?? null, softcap: c.softcap };
        const { lse } = await attention(q, k, v, { ...opts, returnLse: true, backend });
        const P = referenceP(q, k, opts);
        const { B, Sq, Sk, H } = c;
        // Rows.
        const rows = [0, Math.floor(Sq / 2), Sq - 1];
        const pr = (await probabilityRows(q, k, rows, { ...opts, lse, backend })).toFloat64();
        const expRows = new Float64Array(B * H * rows.length * Sk);
        for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) rows.forEach((i, r) => expRows.set(P.subarray(((b * H + h) * Sq + i) * Sk, ((b * H + h) * Sq + i + 1) * Sk), ((b * H + h) * rows.length + r) * Sk));
        expectClose(pr, expRows, { atol: 1e-6, label: 'probabilityRows' });
        // Column sums over a query range, a head subset (one head listed twice: each listing gets its own sums,
        // not twice them — the wasm backend's job list once ran a listed-twice head twice).
        const heads = [H - 1, 0, H - 1];
        const cs = (await columnSums(q, k, { ...opts, lse, heads, queryStart: 3, queryEnd: Sq - 2, backend })).toFloat64();
        const expCs = new Float64Array(B * heads.length * Sk);
        for (let b = 0; b < B; b++) heads.forEach((h, hi) => { for (let i = 3; i < Sq - 2; i++) for (let j = 0; j < Sk; j++) expCs[(b * heads.length + hi) * Sk + j] += P[((b * H + h) * Sq + i) * Sk + j]!; });
        expectClose(cs, expCs, { atol: 1e-6 * Sq, label: 'columnSums' });
        // Means and the full matrix under a byte limit.
        const hm = (await headMeans(q, k, { ...opts, lse, backend })).toFloat64();
        const expHm = new Float64Array(B * H * Sk);
        for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Sq; i++) for (let j = 0; j < Sk; j++) expHm[(b * H + h) * Sk + j] += P[((b * H + h) * Sq + i) * Sk + j]! / Sq;
        expectClose(hm, expHm, { atol: 1e-6, label: 'headMeans' });
        const full = (await probabilityMatrix(q, k, { ...opts, lse, maxBytes: 1e8, backend })).toFloat64();
        expectClose(full, P, { atol: 1e-6, label: 'probabilityMatrix' });
        await expect(probabilityMatrix(q, k, { ...opts, lse, maxBytes: 16, backend })).rejects.toThrow(/maxBytes/);
        // Top keys of chosen rows are the argmaxes of P (values within 1e-6; -1 pads rows with fewer live keys).
        const tkRows = [0, Sq - 1, Math.floor(Sq / 3)];
        const tk = await topKeys(q, k, tkRows, 3, { ...opts, lse, backend });
        expect(tk.shape).toEqual([B, H, tkRows.length, 3]);
        for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) tkRows.forEach((i, r) => {
          const row = Array.from(P.subarray(((b * H + h) * Sq + i) * Sk, ((b * H + h) * Sq + i + 1) * Sk));
          const best = row.map((p, j) => [p, j] as const).filter((x) => x[0] > 0).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, 3);
          const o = ((b * H + h) * tkRows.length + r) * 3;
          const got = Array.from(tk.indices.subarray(o, o + 3));
          // Near-ties may swap order in f32; compare the probabilities in rank order and the index sets where gaps are clear.
          best.forEach(([p], t) => expect(Math.abs(tk.values[o + t]! - p)).toBeLessThan(1e-6));
          for (let t = best.length; t < 3; t++) expect(got[t]).toBe(-1);
          const clear = best.every(([p], t) => t === 0 || best[t - 1]![0] - p > 1e-5);
          if (clear) expect(got.slice(0, best.length)).toEqual(best.map((x) => x[1]));
        });
      }, 60_000);
    }
  }

  it('column sums of an N = 5,329 self-attention allocate < 64 MB (heap tensors, LSE given)', async () => {
    const N = 5329, H = 16, D = 80;
    const q = await cpuTensor([1, N, H, D]), k = await cpuTensor([1, N, H, D]), v = await cpuTensor([1, N, H, D]);
    copyInto(randn([1, N, H, D], 1, 'f32', 0.5), q); copyInto(randn([1, N, H, D], 2, 'f32', 0.5), k); copyInto(randn([1, N, H, D], 3), v);
    const { lse } = await attention(q, k, v, { returnLse: true, backend: 'wasm' });
    const rt = await cpuRuntime();
    rt.heap.resetHighWater();
    const before = rt.heap.inUseBytes, ab0 = process.memoryUsage().arrayBuffers;
    const cs = await columnSums(q, k, { lse, backend: 'wasm' });
    const heapBytes = rt.heap.highWaterBytes - before;
    const jsBytes = process.memoryUsage().arrayBuffers - ab0;
    console.log(`column sums N=${N}: heap ${(heapBytes / 2 ** 20).toFixed(1)} MiB, JS array buffers ${(jsBytes / 2 ** 20).toFixed(1)} MiB`);
    expect(heapBytes + Math.max(0, jsBytes)).toBeLessThan(64 * 2 ** 20);
    // Every query's probabilities sum to 1, so the column sums of each head add up to N.
    const s = cs.toFloat64();
    for (let h = 0; h < H; h++) {
      let tot = 0;
      for (let j = 0; j < N; j++) tot += s[h * N + j]!;
      expect(Math.abs(tot - N) / N).toBeLessThan(1e-4);
    }
    for (const t of [q, k, v]) rt.heap.freeTensor(t);
  }, 180_000);

  // The capture's own forward pass (no lse given) builds a zero V: in q's dtype, or attention refused the call.
  for (const dtype of ['f16', 'bf16'] as const) {
    it(`${dtype} q and k without an lse (wasm, cpu-ts)`, async () => {
      const q = randn([1, 70, 2, 8], 1, dtype), k = randn([1, 70, 2, 8], 2, dtype);
      const P = referenceP(q, k, { mask: causal() });
      for (const backend of ['wasm', 'cpu-ts'] as const) {
        const rows = (await probabilityRows(q, k, [5, 69], { causal: true, backend })).toFloat64();
        for (const [r, i] of [[0, 5], [1, 69]] as const) for (let b = 0; b < 2; b++) {
          expectClose(rows.subarray((b * 2 + r) * 70, (b * 2 + r + 1) * 70), P.subarray((b * 70 + i) * 70, (b * 70 + i + 1) * 70), { atol: 1e-5, label: `${backend} head ${b} row ${i}` });
        }
        expect((await columnSums(q, k, { causal: true, backend })).shape).toEqual([1, 2, 70]);
      }
    });
  }

  it('two rows of an N = 32,768 sequence hold memory for those rows only (TypeScript path)', async () => {
    const N = 32768;
    const q = randn([1, N, 1, 16], 1), k = randn([1, N, 1, 16], 2);
    const lse = Tensor.zeros([1, 1, N]);
    const before = process.memoryUsage().arrayBuffers;
    const rows = await probabilityRows(q, k, [0, N - 1], { lse, causal: true, backend: 'cpu-ts' });
    // Inputs as f32 (2 MiB each) and the [1, 1, 2, N] result; a tile plan of every row took Sq·Sk/64 int32 (64 MiB).
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
    expect(rows.shape).toEqual([1, 1, 2, N]);
  }, 60_000);
});

describe('capture: device tensors, non-finite inputs, option names', () => {
  it('GpuTensor q, k and lse capture on the GPU as host tensors do (BSHD and BHSD, with and without lse)', async () => {
    const ctx = await gpuContext();
    const q = randn([1, 70, 4, 16], 11), k = randn([1, 90, 2, 16], 12), v = randn([1, 90, 2, 16], 13);
    const opts = { mask: causal(), softcap: 5 };
    const rows = [0, 33, 69];
    const hostRows = await probabilityRows(q, k, rows, { ...opts, backend: 'webgpu' });
    const hostCs = await columnSums(q, k, { ...opts, queryStart: 2, backend: 'webgpu' });
    const hostTk = await topKeys(q, k, rows, 4, { ...opts, backend: 'webgpu' });
    const [gq, gk, gv] = await Promise.all([q, k, v].map((x) => GpuTensor.fromTensor(x, ctx)));
    const { lse } = await attention(gq!, gk!, gv!, { ...opts, returnLse: true });
    try {
      for (const withLse of [false, true]) {
        const o = withLse ? { ...opts, lse: lse! as GpuTensor } : opts;
        expect(Array.from((await probabilityRows(gq!, gk!, rows, o)).data as Float32Array)).toEqual(Array.from(hostRows.data as Float32Array));
        expect(Array.from((await columnSums(gq!, gk!, { ...o, queryStart: 2 })).data as Float32Array)).toEqual(Array.from(hostCs.data as Float32Array));
        const tk = await topKeys(gq!, gk!, rows, 4, o);
        expect(Array.from(tk.indices)).toEqual(Array.from(hostTk.indices));
      }
      // A device lse with host q and k (the call moves to the GPU) and a mixed pair.
      expect(Array.from((await probabilityRows(q, gk!, rows, { ...opts, lse: lse! as GpuTensor })).data as Float32Array)).toEqual(Array.from(hostRows.data as Float32Array));
      // BHSD device views.
      const bq = gq!.permute([0, 2, 1, 3]), bk = gk!.permute([0, 2, 1, 3]);
      expect(Array.from((await probabilityRows(bq, bk, rows, { ...opts, layout: 'bhsd' })).data as Float32Array)).toEqual(Array.from(hostRows.data as Float32Array));
      // The caller's tensors stay usable.
      expect(gq!.isDisposed || gk!.isDisposed || (lse as GpuTensor).isDisposed).toBe(false);
    } finally {
      for (const t of [gq, gk, gv, lse as GpuTensor]) t!.dispose();
    }
  }, 120_000);

  it('WebGPU column sums in several head passes equal one pass', async () => {
    const q = randn([2, 130, 3, 8], 21), k = randn([2, 100, 3, 8], 22);
    const one = await columnSums(q, k, { causal: true, backend: 'webgpu' });
    const old = setCapturePassBytes(1);
    try {
      const many = await columnSums(q, k, { causal: true, heads: [2, 0, 2, 1], backend: 'webgpu' });
      const a = one.data as Float32Array, b = many.data as Float32Array;
      for (let bb = 0; bb < 2; bb++) [2, 0, 2, 1].forEach((h, hi) => expect(Array.from(b.subarray((bb * 4 + hi) * 100, (bb * 4 + hi + 1) * 100))).toEqual(Array.from(a.subarray((bb * 3 + h) * 100, (bb * 3 + h + 1) * 100))));
    } finally {
      setCapturePassBytes(old);
    }
  }, 60_000);

  it('a NaN query row: NaN at the keys it sees, 0 at masked ones, finite elsewhere, the same on every backend', async () => {
    const Sq = 70, Sk = 70, D = 8;
    const q = randn([1, Sq, 2, D], 31), k = randn([1, Sk, 1, D], 32);
    const qd = q.data as Float32Array;
    qd[(5 * 2 + 0) * D + 3] = Number.NaN; // row 5, head 0
    const P = referenceP(q, k, { mask: causal() });
    for (const backend of ['wasm', 'cpu-ts', 'webgpu'] as const) {
      const row = (await probabilityRows(q, k, [5], { causal: true, heads: [0], backend })).data as Float32Array;
      for (let j = 0; j < Sk; j++) expect(Number.isNaN(row[j]!), `${backend} key ${j}`).toBe(j <= 5);
      for (let j = 6; j < Sk; j++) expect(row[j], `${backend} key ${j}`).toBe(0);
      const cs = (await columnSums(q, k, { causal: true, backend })).toFloat64();
      // Head 0: columns ≤ 5 are NaN (row 5 sees them); later columns only get finite rows.
      for (let j = 0; j < Sk; j++) expect(Number.isNaN(cs[j]!), `${backend} head 0 column ${j}`).toBe(j <= 5);
      const exp1 = new Float64Array(Sk);
      for (let i = 0; i < Sq; i++) for (let j = 0; j < Sk; j++) exp1[j] += P[(1 * Sq + i) * Sk + j]!;
      expectClose(cs.subarray(Sk), exp1, { atol: 1e-5, label: `${backend} head 1` });
      // The NaN row outside the query range leaves every column finite.
      const after = (await columnSums(q, k, { causal: true, queryStart: 6, backend })).toFloat64();
      expect(after.every((x) => Number.isFinite(x)), `${backend} queryStart 6`).toBe(true);
    }
  }, 120_000);

  it('misspelt option names are refused with the nearest one', async () => {
    const q = randn([1, 6, 2, 8], 1), k = randn([1, 6, 2, 8], 2);
    await expect(columnSums(q, k, { casual: true } as never)).rejects.toThrow(/causal/);
    await expect(columnSums(q, k, { querystart: 2 } as never)).rejects.toThrow(/queryStart/);
    await expect(headMeans(q, k, { queryend: 2 } as never)).rejects.toThrow(/queryEnd/);
    await expect(probabilityRows(q, k, [0], { heads: [0], lses: null } as never)).rejects.toThrow(/lse/);
    await expect(topKeys(q, k, [0], 2, { queryStart: 1 } as never)).rejects.toThrow(/queryStart/);
    await expect(probabilityMatrix(q, k, { maxBytes: 1e6, maxbytes: 2 } as never)).rejects.toThrow(/maxBytes/);
    await expect(probabilityRows(q, k, [0], { returnLse: true } as never)).rejects.toThrow(ValueError);
  });

  it('an lse of the wrong shape is a ShapeError, of the wrong dtype a DTypeError, both naming lse', async () => {
    const q = randn([1, 6, 2, 8], 1), k = randn([1, 6, 2, 8], 2);
    const bad = await columnSums(q, k, { lse: randn([1, 2, 5], 3) }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ShapeError);
    expect((bad as ShapeError).argument).toBe('lse');
    const half = await columnSums(q, k, { lse: randn([1, 2, 6], 3).to('f16') }).catch((e: unknown) => e);
    expect(half).toBeInstanceOf(DTypeError);
    expect((half as DTypeError).argument).toBe('lse');
  });
});
