import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ShapeError, ValueError } from '../../../src/errors.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';
import { LayeredFlow, attentionFlow, attentionRollout, residualAugment, rolloutColumns, rolloutRows } from '../../../src/viz/rollout.js';
import { expectClose } from '../../helpers/close.js';
import { randomStochastic } from './fixtures.js';

// ---- float64 reference, written straight from the formula with plain 2-D arrays ----
type M = number[][];
const toM = (a: ArrayLike<number>, n: number): M => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => a[i * n + j]!));
const matmul = (a: M, b: M): M => a.map((row) => b[0]!.map((_, j) => row.reduce((s, aik, k) => s + aik * b[k]![j]!, 0)));
/** normalise(0.5·W + 0.5·I), rows divided by their sums. */
const augment = (w: M): M => w.map((row, i) => {
  const r = row.map((v, j) => 0.5 * v + (i === j ? 0.5 : 0));
  const s = r.reduce((x, y) => x + y, 0);
  return r.map((v) => v / s);
});
/** Ã_1 = A_1, Ã_l = A_l·Ã_{l−1}. */
function referenceRollout(ws: M[]): M {
  let acc = augment(ws[0]!);
  for (let l = 1; l < ws.length; l++) acc = matmul(augment(ws[l]!), acc);
  return acc;
}
const flat = (m: M) => m.flat();

describe('attention rollout', () => {
  it('hand-checked 3-layer example (docs/interpretability.md): Ã_3 = A_3·A_2·A_1, and the reversed order differs', () => {
    const W1 = [1, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.5];
    const W2 = [1, 0, 0, 1, 0, 0, 0.5, 0.5, 0];
    const W3 = [1, 0, 0, 0.5, 0.5, 0, 0, 1, 0];
    // Step 1: A_l = normalise(0.5·W_l + 0.5·I).
    expect([...residualAugment(W1, 3)]).toEqual([1, 0, 0, 0.25, 0.75, 0, 0.125, 0.125, 0.75]);
    expect([...residualAugment(W2, 3)]).toEqual([1, 0, 0, 0.5, 0.5, 0, 0.25, 0.25, 0.5]);
    expect([...residualAugment(W3, 3)]).toEqual([1, 0, 0, 0.25, 0.75, 0, 0, 0.5, 0.5]);
    // Step 2: Ã_2 = A_2·A_1.
    expect([...attentionRollout([W1, W2], 3)]).toEqual([1, 0, 0, 0.625, 0.375, 0, 0.375, 0.25, 0.375]);
    // Step 3: Ã_3 = A_3·Ã_2.
    const r3 = [1, 0, 0, 0.71875, 0.28125, 0, 0.5, 0.3125, 0.1875];
    expect([...attentionRollout([W1, W2, W3], 3)]).toEqual(r3);
    expect([...rolloutRows([W1, W2, W3], 3, [2])]).toEqual([0.5, 0.3125, 0.1875]);
    expect([...rolloutColumns([W1, W2, W3], 3, [1])]).toEqual([0, 0.28125, 0.3125]);
    // The seed's order A_1·A_2·A_3 gives a different last row.
    const wrong = matmul(matmul(augment(toM(W1, 3)), augment(toM(W2, 3))), augment(toM(W3, 3)));
    expect(wrong[2]).toEqual([0.4375, 0.375, 0.1875]);
  });

  it('equals the float64 reference (formula and order) within 1e-9 on random stacks, and differs from the reversed order', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 19 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (n, L, seed) => {
      const rng = mulberry32(seed);
      const ws = Array.from({ length: L }, () => randomStochastic(n, rng));
      const ref = referenceRollout(ws.map((w) => toM(w, n)));
      const got = attentionRollout(ws, n);
      const stats = expectClose(got, flat(ref), { atol: 1e-9, label: `rollout n=${n} L=${L}`, shape: [n, n] });
      expect(stats.maxAbs).toBeLessThan(1e-9);
      // Rows and columns agree with the full product.
      const rows = Array.from({ length: Math.min(n, 3) }, (_, i) => (i * 7) % n);
      expectClose(rolloutRows(ws, n, rows), rows.flatMap((r) => ref[r]!), { atol: 1e-9, label: 'rows' });
      expectClose(rolloutColumns(ws, n, rows), rows.flatMap((c) => ref.map((row) => row[c]!)), { atol: 1e-9, label: 'columns' });
      // Every row of Ã is a distribution.
      for (const row of ref) expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
      if (n >= 3 && L >= 2) {
        let rev = augment(toM(ws[0]!, n));
        for (let l = 1; l < L; l++) rev = matmul(rev, augment(toM(ws[l]!, n)));
        let diff = 0;
        for (let i = 0; i < n * n; i++) diff = Math.max(diff, Math.abs(flat(rev)[i]! - got[i]!));
        expect(diff).toBeGreaterThan(1e-6);
      }
    }), { numRuns: 150 });
  });

  it('fixed odd sizes: n = 97, L = 5', () => {
    const rng = mulberry32(97);
    const n = 97, ws = Array.from({ length: 5 }, () => randomStochastic(n, rng));
    expectClose(attentionRollout(ws, n), flat(referenceRollout(ws.map((w) => toM(w, n)))), { atol: 1e-9, label: 'n=97' });
  });

  it('a fully masked (zero) query row becomes the identity row; residual weight is a parameter', () => {
    expect([...residualAugment([0, 0, 0.5, 0.5], 2)]).toEqual([1, 0, 0.25, 0.75]);
    expect([...residualAugment([0.5, 0.5, 0.5, 0.5], 2, { residual: 0 })]).toEqual([0.5, 0.5, 0.5, 0.5]);
    expect([...residualAugment([0.5, 0.5, 0.5, 0.5], 2, { residual: 1 })]).toEqual([1, 0, 0, 1]);
    expect(() => residualAugment([1], 1, { residual: 1.5 })).toThrow(ValueError);
  });

  it('bad input: wrong sizes and out-of-range rows name the argument', () => {
    expect(() => attentionRollout([new Float64Array(4), new Float64Array(5)], 2)).toThrow(/layers\[1\]/);
    expect(() => attentionRollout([], 2)).toThrow(ShapeError);
    expect(() => rolloutRows([new Float64Array(4)], 2, [2])).toThrow(/rows contains 2/);
    expect(() => rolloutColumns([new Float64Array(4)], 2, [-1])).toThrow(/cols contains -1/);
    // maxWork bounds rows·L·n² multiply-adds: 2 rows × 1 layer × 4 = 8.
    const w = new Float64Array([0.5, 0.5, 0.5, 0.5]);
    expect(() => rolloutRows([w], 2, [0, 1], { maxWork: 7 })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'maxWork' }));
    expect([...rolloutRows([w], 2, [0, 1], { maxWork: 8 })]).toEqual([...rolloutRows([w], 2, [0, 1])]);
  });

  it('bad input: NaN, infinite or negative weights are a ValueError naming the layer and the entry (they passed for masked rows)', () => {
    const good = [0.5, 0.5, 0.5, 0.5];
    for (const [bad, at] of [[NaN, '[0, 1]'], [Infinity, '[1, 0]'], [-1, '[1, 1]'], [-Infinity, '[0, 0]']] as const) {
      const w = good.slice();
      const idx = at === '[0, 0]' ? 0 : at === '[0, 1]' ? 1 : at === '[1, 0]' ? 2 : 3;
      w[idx] = bad;
      const layers = [good, w];
      for (const f of [() => attentionRollout(layers, 2), () => rolloutRows(layers, 2, [0]), () => rolloutColumns(layers, 2, [0]), () => attentionFlow(layers, 2, [0])]) {
        try { f(); throw new Error('no throw'); } catch (e) {
          expect(e).toBeInstanceOf(ValueError);
          expect((e as ValueError).argument).toBe('layers[1]');
          expect((e as Error).message).toContain(`layers[1]${at} is ${bad}`);
        }
      }
      expect(() => residualAugment(w, 2)).toThrow(/w\[0\]/);
    }
  });
});

/** Brute-force min cut between (L, s) and (0, t) on the layered graph: enumerate every node subset. */
function bruteMinCut(aug: Float64Array[], n: number, s: number, t: number): number {
  const L = aug.length, V = (L + 1) * n, S = L * n + s, T = t;
  const others = Array.from({ length: V }, (_, v) => v).filter((v) => v !== S && v !== T);
  let best = Infinity;
  for (let mask = 0; mask < 1 << others.length; mask++) {
    const inS = new Uint8Array(V);
    inS[S] = 1;
    others.forEach((v, k) => { if (mask & (1 << k)) inS[v] = 1; });
    let cut = 0;
    for (let l = 1; l <= L; l++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      if (inS[l * n + i] && !inS[(l - 1) * n + j]) cut += aug[l - 1]![i * n + j]!;
    }
    best = Math.min(best, cut);
  }
  return best;
}

describe('attention flow', () => {
  it('max-flow equals the brute-force min cut on small layered graphs', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (n, L, seed) => {
      if ((L + 1) * n - 2 > 12) return;
      const rng = mulberry32(seed);
      const aug = Array.from({ length: L }, () => residualAugment(randomStochastic(n, rng), n));
      const net = new LayeredFlow(aug, n);
      for (let s = 0; s < n; s++) for (let t = 0; t < n; t++) {
        expect(Math.abs(net.maxFlow(s, t) - bruteMinCut(aug, n, s, t))).toBeLessThan(1e-12);
      }
    }), { numRuns: 60 });
  });

  it('one layer: flow rows equal the augmented attention rows (= rollout)', () => {
    const rng = mulberry32(5);
    const w = randomStochastic(7, rng);
    expectClose(attentionFlow([w], 7, [0, 3, 6]), [...rolloutRows([w], 7, [0, 3, 6])], { atol: 1e-12, label: 'flow L=1' });
  });

  it('rows are distributions; a hand example with a bottleneck', () => {
    // Two tokens, two layers. Layer 2 sends everything from token 1 to token 0, layer 1 is uniform.
    const W1 = [0.5, 0.5, 0.5, 0.5], W2 = [1, 0, 1, 0];
    // A_1 = [[.75,.25],[.25,.75]], A_2 = [[1,0],[.5,.5]].
    // From (2,1): edges to (1,0) cap .5 and (1,1) cap .5; to input 0: min(.5,.75)+min(.5,.25) = .75; to input 1: .25+.5 = .75.
    const f = attentionFlow([W1, W2], 2, [1]);
    expect([...f]).toEqual([0.5, 0.5]);
    const g = attentionFlow([W1, W2], 2, [0]);
    // From (2,0): single edge (1,0) of cap 1 → to input 0: .75, input 1: .25 → normalised .75/.25.
    expectClose(g, [0.75, 0.25], { atol: 1e-15 });
  });

  it('refuses work beyond maxWork with a ValueError that names the cost', () => {
    const n = 40, rng = mulberry32(1);
    const ws = Array.from({ length: 4 }, () => randomStochastic(n, rng));
    expect(() => attentionFlow(ws, n, [0], { maxWork: 1e5 })).toThrow(/edge visits/);
  });
});
