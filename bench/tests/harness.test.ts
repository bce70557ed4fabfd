/**
 * The benchmark harness's own checks: the row reference it validates kernels with, the peers it
 * times (ORT graphs, tfjs formulations, the naive implementation), the shape bookkeeping and the
 * timing policy. Random inputs, odd sizes, GQA, causal and cross-attention.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Mask, attentionReference, causal, randn } from '../../src/index.js';
import { parseArgs } from '../lib/args.js';
import { type QKV, bhsdAt, bshdAt, checkRows, pickRows, referenceRow, referenceRows } from '../lib/check.js';
import { type AttentionShape, attentionFlops, blockLayout, kvBytes, shapeMask, visibleFraction } from '../lib/shapes.js';
import { compareToBaseline } from '../lib/results.js';
import { formatTable, markdownTable } from '../lib/table.js';
import { median, timeIt } from '../lib/timing.js';
import { naiveAttention, naiveTimedRows } from '../peers/naive.js';
import { ortAlternatives, ortAttentionOp, toBhds, toBhsd } from '../peers/ort.js';
import { initTfjs, tfjsCandidates } from '../peers/tfjs.js';

function shape(p: Partial<AttentionShape> & Pick<AttentionShape, 'name' | 'numHeads' | 'seqLenQ' | 'headDim'>): AttentionShape {
  return { batch: 1, numKvHeads: p.numHeads, seqLenK: p.seqLenQ, headDimV: p.headDim, causal: false, note: 'test', ...p };
}

function inputs(s: AttentionShape, seed = 5): QKV {
  return {
    q: randn([s.batch, s.seqLenQ, s.numHeads, s.headDim], seed).data as Float32Array,
    k: randn([s.batch, s.seqLenK, s.numKvHeads, s.headDim], seed + 1).data as Float32Array,
    v: randn([s.batch, s.seqLenK, s.numKvHeads, s.headDimV], seed + 2).data as Float32Array,
  };
}

/** The library's float64 oracle over the whole output, BSHD. */
function oracle(s: AttentionShape, x: QKV, mask: Mask | null): Float64Array {
  return attentionReference(
    randnLike(x.q, [s.batch, s.seqLenQ, s.numHeads, s.headDim]),
    randnLike(x.k, [s.batch, s.seqLenK, s.numKvHeads, s.headDim]),
    randnLike(x.v, [s.batch, s.seqLenK, s.numKvHeads, s.headDimV]),
    { mask },
  ).out;
}

function randnLike(data: Float32Array, shape: number[]) {
  const t = randn(shape, 1);
  (t.data as Float32Array).set(data);
  return t;
}

const SHAPES: AttentionShape[] = [
  shape({ name: 'mha-odd', batch: 2, numHeads: 3, seqLenQ: 37, headDim: 24 }),
  shape({ name: 'gqa-causal', numHeads: 8, numKvHeads: 2, seqLenQ: 45, headDim: 16, causal: true }),
  shape({ name: 'cross', numHeads: 4, seqLenQ: 9, seqLenK: 70, headDim: 12 }),
  shape({ name: 'decode', numHeads: 8, numKvHeads: 2, seqLenQ: 1, seqLenK: 77, headDim: 32 }),
];

describe('row reference (check.ts)', () => {
  for (const s of SHAPES) {
    it(`float64 rows equal the library oracle: ${s.name}`, () => {
      const x = inputs(s), mask = shapeMask(s), full = oracle(s, x, mask);
      const at = bshdAt(s, full);
      for (const r of pickRows(s, 1000)) {
        const row = referenceRow(s, x, r, mask, false);
        for (let c = 0; c < s.headDimV; c++) expect(Math.abs(row[c]! - at(r, c))).toBeLessThan(1e-12);
      }
    });
  }

  it('passes the oracle, fails a perturbed or NaN output, and names the worst element', () => {
    const s = SHAPES[1]!, x = inputs(s), mask = shapeMask(s), full = oracle(s, x, mask);
    const rr = referenceRows(s, x, mask);
    expect(checkRows(s, rr, bshdAt(s, full)).ok).toBe(true);
    const bad = Float64Array.from(full);
    const r = rr.rows[3]!;
    bad[((r.b * s.seqLenQ + r.i) * s.numHeads + r.h) * s.headDimV + 5] += 1e-3;
    const c = checkRows(s, rr, bshdAt(s, bad));
    expect(c.ok).toBe(false);
    expect(c.worst).toMatchObject({ row: r, c: 5 });
    const nan = Float64Array.from(full);
    nan[((r.b * s.seqLenQ + r.i) * s.numHeads + r.h) * s.headDimV] = NaN;
    expect(checkRows(s, rr, bshdAt(s, nan)).ok).toBe(false);
  });

  it('the tolerance follows the conformance rule (2 × naive f32 error + floor)', () => {
    const s = SHAPES[0]!, x = inputs(s);
    const rr = referenceRows(s, x, null);
    const c = checkRows(s, rr, bshdAt(s, oracle(s, x, null)));
    expect(rr.naiveAbsErr).toBeGreaterThan(0);
    expect(c.tolerance).toBeCloseTo(2 * rr.naiveAbsErr + 2e-6 * Math.max(1, rr.vmax), 15);
  });
});

describe('shapes.ts', () => {
  it('FLOPs: 4·B·H·Sq·Sk·d, halved for causal only when Sq = Sk', () => {
    const s = shape({ name: 'f', batch: 2, numHeads: 3, seqLenQ: 5, seqLenK: 7, headDim: 8 });
    expect(attentionFlops(s)).toBe(4 * 2 * 3 * 5 * 7 * 8);
    expect(attentionFlops({ ...s, causal: true })).toBe(4 * 2 * 3 * 5 * 7 * 8);
    expect(attentionFlops({ ...s, seqLenK: 5, causal: true })).toBe((4 * 2 * 3 * 5 * 5 * 8) / 2);
    expect(attentionFlops({ ...s, headDimV: 16 })).toBe(2 * 2 * 3 * 5 * 7 * (8 + 16));
    expect(kvBytes(s)).toBe(4 * 2 * 7 * 3 * 16);
  });

  it('block layouts keep exactly round((1 − sparsity)·blocks²) blocks, the diagonal, and depend only on the seed', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 700 }), fc.double({ min: 0, max: 0.99, noNaN: true }), fc.integer({ min: 0, max: 1000 }), (n, sparsity, seed) => {
      const s = shape({ name: 'bs', numHeads: 1, seqLenQ: n, headDim: 8, blockSparse: { sparsity, blockSize: 64, seed } });
      const a = blockLayout(s), b = blockLayout(s);
      const blocks = a.rows * a.cols;
      const kept = a.layout.reduce((x, y) => x + y, 0);
      expect(kept).toBe(Math.max(a.rows, Math.round((1 - sparsity) * blocks)));
      for (let i = 0; i < a.rows; i++) expect(a.layout[i * a.cols + i]).toBe(1);
      expect(b.layout).toEqual(a.layout);
    }), { numRuns: 60 });
  });

  it('the 4k block-sparse shape is 90% sparse and its mask matches its layout', () => {
    const s = shape({ name: 'bs4k', numHeads: 8, seqLenQ: 4096, headDim: 64, blockSparse: { sparsity: 0.9, blockSize: 64, seed: 2 } });
    const { kept, rows } = blockLayout(s);
    expect(kept).toBe(Math.round(0.1 * rows * rows));
    expect(visibleFraction(s, shapeMask(s))).toBeCloseTo(kept / (rows * rows), 12);
  });
});

describe('peers', () => {
  for (const s of SHAPES) {
    it(`naive TypeScript equals the oracle: ${s.name}`, () => {
      const x = inputs(s), mask = shapeMask(s), full = oracle(s, x, mask);
      const out = new Float32Array(full.length).fill(NaN);
      naiveAttention(s, x, mask, out, Array.from({ length: s.seqLenQ }, (_, i) => i));
      for (let i = 0; i < full.length; i++) expect(Math.abs(out[i]! - full[i]!)).toBeLessThan(2e-6);
    });

    it(`ORT: the Attention op and every alternative graph equal the oracle: ${s.name}`, async () => {
      const x = inputs(s), mask = shapeMask(s), full = oracle(s, x, mask);
      const cands = [ortAttentionOp(s, x, { intraOpThreads: 1 }), ...ortAlternatives(s, x, { intraOpThreads: 1 })];
      expect(cands.length).toBeGreaterThanOrEqual(2);
      for (const c of cands) {
        const p = await c.build();
        await p.run();
        const o = p.output();
        const at = (o.layout === 'bshd' ? bshdAt : bhsdAt)(s, o.data), ref = bshdAt(s, full);
        for (const r of pickRows(s, 10_000)) for (let d = 0; d < s.headDimV; d++) {
          expect(Math.abs(at(r, d) - ref(r, d)), `${c.name} at b${r.b} i${r.i} h${r.h} c${d}`).toBeLessThan(1e-5);
        }
        await p.dispose();
      }
    });

    it(`ORT over several layers' inputs (one session, each fed in turn): the output is the last layer's: ${s.name}`, async () => {
      const x = inputs(s), x2 = inputs(s, 40), mask = shapeMask(s), ref = bshdAt(s, oracle(s, x2, mask));
      for (const c of [ortAttentionOp(s, x, { intraOpThreads: 1 }), ...ortAlternatives(s, x, { intraOpThreads: 1 })]) {
        const p = await c.build([x, x2]);
        await p.run();
        const o = p.output();
        const at = (o.layout === 'bshd' ? bshdAt : bhsdAt)(s, o.data);
        for (const r of pickRows(s, 2_000)) for (let d = 0; d < s.headDimV; d++) {
          expect(Math.abs(at(r, d) - ref(r, d)), `${c.name} at b${r.b} i${r.i} h${r.h} c${d}`).toBeLessThan(1e-5);
        }
        await p.dispose();
      }
    });

    it(`tfjs-wasm: both formulations equal the oracle: ${s.name}`, async () => {
      await initTfjs(1);
      const x = inputs(s), mask = shapeMask(s), full = oracle(s, x, mask);
      for (const c of tfjsCandidates(s, x)) {
        const p = await c.build();
        await p.run();
        const o = p.output();
        const at = bhsdAt(s, o.data), ref = bshdAt(s, full);
        for (const r of pickRows(s, 10_000)) for (let d = 0; d < s.headDimV; d++) expect(Math.abs(at(r, d) - ref(r, d)), c.name).toBeLessThan(1e-5);
        await p.dispose();
      }
    });
  }

  it('layout helpers: BSHD → BHSD and → [B, H, D, S]', () => {
    const B = 2, S = 3, H = 4, D = 5;
    const src = Float32Array.from({ length: B * S * H * D }, (_, i) => i);
    const bhsd = toBhsd(src, B, S, H, D), bhds = toBhds(src, B, S, H, D);
    for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
      const v = src[((b * S + s) * H + h) * D + d]!;
      expect(bhsd[((b * H + h) * S + s) * D + d]).toBe(v);
      expect(bhds[((b * H + h) * D + d) * S + s]).toBe(v);
    }
  });

  it('naive timed rows are spread evenly and bounded by the FLOP budget', () => {
    const s = shape({ name: 'n', numHeads: 4, seqLenQ: 1000, headDim: 8, causal: true });
    const rows = naiveTimedRows(s, 1e9, 1e8);
    expect(rows.length).toBe(100);
    expect(new Set(rows).size).toBe(100);
    expect(rows[0]).toBeLessThan(10);
    expect(rows[99]).toBeGreaterThan(990);
    expect(naiveTimedRows(s, 1e6, 1e8).length).toBe(1000);
  });
});

describe('timing and tables', () => {
  it('median matches a sort-based definition', () => {
    fc.assert(fc.property(fc.array(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), { minLength: 1, maxLength: 50 }), (xs) => {
      const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
      expect(median(xs)).toBe(s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2);
    }));
  });

  it('timeIt: N runs within budget, at least minRuns, one run when the first exceeds slowMs', async () => {
    let calls = 0;
    const t = await timeIt(() => { calls++; }, { warmup: 2, runs: 7, minRuns: 3, budgetMs: 1e9 });
    expect(t.runs).toBe(7);
    expect(t.warmup).toBe(2);
    expect(calls).toBe(9);
    const slow = await timeIt(() => new Promise((r) => setTimeout(r, 5)), { warmup: 1, runs: 10, minRuns: 3, budgetMs: 0 });
    expect(slow.runs).toBe(3);
    // A slow first run lowers the floor to 1; the budget (spent after one run) then stops it.
    const one = await timeIt(() => undefined, { runs: 10, minRuns: 3, budgetMs: 0, slowMs: 100, firstRunMs: 500 });
    expect(one.runs).toBe(1);
    expect(one.warmup).toBe(1);
    const fast = await timeIt(() => undefined, { runs: 10, minRuns: 3, budgetMs: 0, slowMs: 100, firstRunMs: 50 });
    expect(fast.runs).toBe(3);
  });

  it('timeIt: minTimedMs adds runs past N until the timed runs reach it, at most maxRuns; never for a slow call', async () => {
    const wait = (ms: number) => () => new Promise((r) => setTimeout(r, ms));
    const t = await timeIt(wait(2), { warmup: 0, runs: 3, minTimedMs: 40, maxRuns: 1000 });
    expect(t.runs).toBeGreaterThan(3);
    expect(t.samplesMs.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(40);
    expect(t.samplesMs.slice(0, -1).reduce((a, b) => a + b, 0)).toBeLessThan(40);
    const capped = await timeIt(() => undefined, { warmup: 0, runs: 3, minTimedMs: 1e9, maxRuns: 25 });
    expect(capped.runs).toBe(25);
    const slow = await timeIt(() => undefined, { runs: 10, minRuns: 3, budgetMs: 0, slowMs: 100, firstRunMs: 500, minTimedMs: 1e9 });
    expect(slow.runs).toBe(1);
  });

  it('args: values, flags, and unknown options are errors', () => {
    const a = parseArgs(['--runs=5', '--quick', '--shapes', 'a,b'], { 'runs=': '', quick: '', 'shapes=': '' }, 'usage');
    expect(a.values.get('runs')).toBe('5');
    expect(a.values.get('shapes')).toBe('a,b');
    expect(a.flags.has('quick')).toBe(true);
    expect(() => parseArgs(['--rnus=5'], { 'runs=': '' }, 'usage')).toThrow(/unknown option --rnus/);
  });

  it('text and Markdown tables share one column list', () => {
    const cols = [{ title: 'a', cell: (r: number[]) => r[0] }, { title: 'b|c', cell: (r: number[]) => (r[1] ? String(r[1]) : null) }];
    expect(formatTable(cols, [[1, 22], [333, 0]]).split('\n')).toEqual(['a    b|c', '---  ---', '1     22', '333     ']);
    expect(markdownTable(cols, [[1, 2]])).toBe('| a | b\\|c |\n| :-- | --: |\n| 1 | 2 |');
  });
});

describe('compareToBaseline (bench:gpu --baseline)', () => {
  const before = [
    { shape: 'decode-kv4k', variant: 'f16', ms: 0.090 },
    { shape: 'decode-kv4k', variant: 'f32', ms: 0.151 },
    { shape: 'vitL14-336', variant: 'f16', ms: 0.181 },
    { shape: 'gone', variant: 'f16', ms: 1 },
    { shape: 'bad', variant: 'f32', ms: 'NaN' },
  ];
  it('matches rows by shape and variant, flags changes past the tolerance, skips unmatched and invalid rows', () => {
    const now = [
      { shape: 'decode-kv4k', variant: 'f16', ms: 0.120 },   // the run-Q regression: 1.33×
      { shape: 'decode-kv4k', variant: 'f32', ms: 0.152 },   // spread
      { shape: 'vitL14-336', variant: 'f16', ms: 0.150 },    // faster
      { shape: 'new', variant: 'f16', ms: 1 },               // no baseline
      { shape: 'bad', variant: 'f32', ms: 1 },               // baseline not finite
    ];
    const rows = compareToBaseline(now, before);
    expect(rows.map((r) => [r.name, r.verdict])).toEqual([['decode-kv4k/f16', 'slower'], ['decode-kv4k/f32', 'same'], ['vitL14-336/f16', 'faster']]);
    expect(rows[0]!.ratio).toBeCloseTo(0.120 / 0.090, 12);
  });
  it('honours the tolerance both ways, symmetric in ratio', () => {
    const r = (ms: number, tol: number) => compareToBaseline([{ shape: 'a', variant: 'f16', ms }], [{ shape: 'a', variant: 'f16', ms: 1 }], tol)[0]!.verdict;
    expect(r(1.049, 0.05)).toBe('same');
    expect(r(1.051, 0.05)).toBe('slower');
    expect(r(1 / 1.049, 0.05)).toBe('same');
    expect(r(1 / 1.051, 0.05)).toBe('faster');
    expect(compareToBaseline([{ shape: 'a', variant: 'f16', ms: NaN }], [{ shape: 'a', variant: 'f16', ms: 1 }])).toEqual([]);
  });
});
