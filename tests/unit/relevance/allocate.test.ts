import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { allocateLevels, allocateWaterFill } from '../../../src/relevance/allocate.js';
import { InfeasibleError, ValueError } from '../../../src/errors.js';

function infeasible(fn: () => unknown): InfeasibleError {
  try { fn(); } catch (e) { if (e instanceof InfeasibleError) return e; throw e; }
  throw new Error('expected InfeasibleError');
}

describe('allocator A (water-filling + largest remainder)', () => {
  it('gives the spec test vector [400,400,208,208,96,96,96,96] with λ = 125', () => {
    const a = allocateWaterFill([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05], { budget: 1600, min: 64, max: 400, quantum: 16 });
    expect(Array.from(a.tokens)).toEqual([400, 400, 208, 208, 96, 96, 96, 96]);
    expect(a.lambda!).toBeCloseTo(125, 9);
    expect(a.total).toBe(1600);
  });

  it('property: Σ = B exactly, m ≤ t ≤ M_r, q | t, deterministic, over 10,000 random ρ and bounds', () => {
    let feasibleRuns = 0;
    fc.assert(fc.property(
      fc.array(fc.double({ min: 1e-6, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
      fc.constantFrom(1, 2, 4, 8, 16, 32),
      fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 30 }),
      fc.option(fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 40, maxLength: 40 }), { nil: undefined }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (rho, q, mUnits, extraUnits, capsAll, budgetPos) => {
        const m = mUnits * q, M = m + extraUnits * q;
        const caps = capsAll?.slice(0, rho.length).map((c) => Math.max(c, m));
        const R = rho.length;
        const hi = rho.map((_, r) => Math.floor(Math.min(M, caps?.[r] ?? Infinity) / q));
        const lo = Math.ceil(m / q);
        const U = Math.round(R * lo + budgetPos * (hi.reduce((s, h) => s + h, 0) - R * lo));
        const B = U * q;
        const a = allocateWaterFill(rho, { budget: B, min: m, max: M, quantum: q, caps });
        const b = allocateWaterFill(rho, { budget: B, min: m, max: M, quantum: q, caps });
        feasibleRuns++;
        let sum = 0;
        for (let r = 0; r < R; r++) {
          const t = a.tokens[r]!;
          sum += t;
          if (t % q !== 0 || t < m || t > Math.min(M, caps?.[r] ?? Infinity)) return false;
          if (t !== b.tokens[r]) return false;
        }
        return sum === B;
      }), { numRuns: 10_000, seed: 20240605 });
    expect(feasibleRuns).toBe(10_000);
  });

  it('property: any budget and bounds either allocate correctly or raise InfeasibleError (with drop too)', () => {
    fc.assert(fc.property(
      fc.array(fc.double({ min: 1e-6, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 0, max: 8000 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 500 }),
      fc.constantFrom(1, 16), fc.boolean(),
      (rho, B, m, M, q, allowDrop) => {
        if (m > M) [m, M] = [M, m];
        try {
          const a = allocateWaterFill(rho, { budget: B, min: m, max: M, quantum: q, allowDrop });
          const ts = Array.from(a.tokens);
          return ts.reduce((x, y) => x + y, 0) === B && ts.every((t) => t % q === 0 && ((allowDrop && t === 0) || (t >= m && t <= M)));
        } catch (e) {
          if (!(e instanceof InfeasibleError)) throw e;
          return typeof e.condition === 'string' && e.condition.length > 0;
        }
      }), { numRuns: 3000, seed: 99 });
  });

  it('property: monotone in ρ when all regions share bounds', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: 1e-4, max: 1, noNaN: true }), { minLength: 2, maxLength: 30 }), fc.double({ min: 0, max: 1, noNaN: true }), (rho, pos) => {
      const R = rho.length;
      const U = Math.round(R * 4 + pos * R * 21);
      const a = allocateWaterFill(rho, { budget: U * 16, min: 64, max: 400 });
      for (let i = 0; i < R; i++) for (let j = 0; j < R; j++) if (rho[i]! > rho[j]! && a.tokens[i]! < a.tokens[j]!) return false;
      return true;
    }), { numRuns: 2000, seed: 7 });
  });

  it('water level follows relevance: larger ρ never gets fewer tokens on random cases (sanity on the seed bug)', () => {
    // The seed's example: [1,0,…,0] over 8 patches at B=1600 gave 405 > 400 and Σ=1595. Ours: exact.
    const a = allocateWaterFill([1, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9], { budget: 1600 });
    expect(a.total).toBe(1600);
    expect(Math.max(...a.tokens)).toBe(400);
    expect(Array.from(a.tokens).every((t) => t % 16 === 0 && t >= 64 && t <= 400)).toBe(true);
  });

  it('every infeasible case raises a typed InfeasibleError with its condition and a feasible budget', () => {
    const rho = [0.5, 0.3, 0.2];
    let e = infeasible(() => allocateWaterFill(rho, { budget: 1601 }));
    expect(e.condition).toBe('budget-not-multiple-of-quantum');
    expect(e.feasibleBudget).toEqual({ min: 192, max: 1200 });
    expect(e.message).toMatch(/1600 or 1616/);
    e = infeasible(() => allocateWaterFill(rho, { budget: 1600, min: 70, max: 79 }));
    expect(e.condition).toBe('no-aligned-level');
    e = infeasible(() => allocateWaterFill(new Array(196).fill(1), { budget: 1600 }));
    expect(e.condition).toBe('too-many-regions-for-minimum');
    expect(e.feasibleBudget).toEqual({ min: 196 * 64, max: 196 * 400 });
    e = infeasible(() => allocateWaterFill(rho, { budget: 1216 }));
    expect(e.condition).toBe('budget-exceeds-capacity');
    expect(e.feasibleBudget).toEqual({ min: 192, max: 1200 });
    e = infeasible(() => allocateWaterFill(rho, { budget: 480, caps: [100, 100, 100] }));
    expect(e.condition).toBe('budget-exceeds-capacity');
    expect(e.feasibleBudget!.max).toBe(288);
    // Dropping: U = 30, lo = 16, hi = 25 (spec example) — 1 region holds ≤ 25, 2 need ≥ 32.
    e = infeasible(() => allocateWaterFill([0.6, 0.4], { budget: 30, min: 16, max: 25, quantum: 1, allowDrop: true }));
    expect(e.condition).toBe('no-feasible-region-count');
    expect(e.feasibleBudget).toEqual({ min: 32, max: 50 });
    expect(e.message).toMatch(/most relevant regions first.*the top 1 hold at most 25, the top 2 need at least 32; nearest feasible budgets 32–50/);
  });

  it('bad arguments raise ValueError naming the argument', () => {
    for (const [budget, arg] of [[NaN, 'budget'], [-16, 'budget'], [Infinity, 'budget'], [16.5, 'budget'], [2 ** 31, 'budget']] as const) {
      try { allocateWaterFill([1], { budget }); throw new Error('no throw'); } catch (err) {
        expect(err).toBeInstanceOf(ValueError);
        expect((err as ValueError).argument).toBe(arg);
      }
    }
    expect(() => allocateWaterFill([1, NaN], { budget: 128 })).toThrow(/rho\[1\]/);
    expect(() => allocateWaterFill([1, 0], { budget: 128 })).toThrow(ValueError);
    expect(() => allocateWaterFill([], { budget: 128 })).toThrow(/rho/);
    expect(() => allocateWaterFill([1], { budget: 128, min: 200, max: 100 })).toThrow(/min/);
    expect(() => allocateWaterFill([1], { budget: 128, quantum: 0 })).toThrow(/quantum/);
  });

  it('max and caps of 2^31 and above bound nothing they should not (no 32-bit wrap)', () => {
    for (const max of [2 ** 31 - 1, 2 ** 31, 2 ** 32, 3e9]) {
      expect(Array.from(allocateWaterFill([1, 1], { budget: 1600, min: 0, max, quantum: 1 }).tokens)).toEqual([800, 800]);
    }
    expect(Array.from(allocateWaterFill([1, 1], { budget: 1600, min: 0, max: 2 ** 33, quantum: 1, caps: [2 ** 32, 2 ** 32] }).tokens)).toEqual([800, 800]);
    expect(Array.from(allocateWaterFill([3, 1], { budget: 1600, min: 0, max: 2 ** 33, quantum: 16, caps: [2 ** 32, 160] }).tokens)).toEqual([1440, 160]);
  });

  it('dropping keeps the top-k regions by ρ and allocates exactly', () => {
    const rho = Array.from({ length: 196 }, (_, i) => 1 + ((i * 37) % 101) / 1000);
    const a = allocateWaterFill(rho, { budget: 1600, allowDrop: true });
    expect(a.total).toBe(1600);
    const kept = Array.from(a.tokens).filter((t) => t > 0).length;
    expect(kept).toBe(25); // k* = ⌊100 / 4⌋
    const minKept = Math.min(...rho.filter((_, i) => a.tokens[i]! > 0));
    const maxDropped = Math.max(...rho.filter((_, i) => a.tokens[i] === 0));
    expect(minKept).toBeGreaterThanOrEqual(maxDropped);
    expect(a.dropped.length).toBe(171);
    const zero = allocateWaterFill([0.5, 0.5], { budget: 0, allowDrop: true });
    expect(Array.from(zero.tokens)).toEqual([0, 0]);
  });
});

function brute(rho: number[], levels: number[], B: number, mode: 'exact' | 'at-most'): number {
  let best = -Infinity;
  const R = rho.length;
  const rec = (r: number, sum: number, val: number) => {
    if (sum > B) return;
    if (r === R) { if (mode === 'at-most' || sum === B) best = Math.max(best, val); return; }
    for (const l of levels) rec(r + 1, sum + l, val + rho[r]! * (l === 0 ? 0 : Math.sqrt(l)));
  };
  rec(0, 0, 0);
  return best;
}

describe('allocator B (level DP)', () => {
  it('gives the spec examples', () => {
    const a = allocateLevels([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05], { budget: 1600 });
    expect(Array.from(a.tokens)).toEqual([400, 400, 400, 144, 64, 64, 64, 64]);
    const u = allocateLevels(new Array(8).fill(1 / 8), { budget: 1600 });
    expect(Array.from(u.tokens)).toEqual([256, 256, 256, 256, 144, 144, 144, 144]);
    const e = infeasible(() => allocateLevels([0.9, 0.1], { budget: 1600 }));
    expect(e.condition).toBe('budget-exceeds-capacity');
    expect(e.feasibleBudget).toEqual({ min: 128, max: 800 });
  });

  it('with level 0 and near-uniform ρ over 196 regions at B = 1600: 25 regions at 64, the rest dropped', () => {
    let s = 1;
    const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647);
    const rho = Array.from({ length: 196 }, () => 1 + 0.01 * rnd());
    const a = allocateLevels(rho, { budget: 1600, allowZero: true });
    const kept = Array.from(a.tokens).filter((t) => t > 0);
    expect(kept.length).toBe(25);
    expect(kept.every((t) => t === 64)).toBe(true);
    expect(a.total).toBe(1600);
  });

  it('matches brute force on random small cases (R ≤ 6), exact and at-most, with and without 0', () => {
    let checked = 0;
    fc.assert(fc.property(
      fc.array(fc.double({ min: 0.001, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 0, max: 150 }), fc.boolean(), fc.constantFrom('exact' as const, 'at-most' as const),
      (rho, units, zero, mode) => {
        const B = units * 16;
        const levels = zero ? [0, 64, 144, 256, 400] : [64, 144, 256, 400];
        const want = brute(rho, levels, B, mode);
        let got: number;
        try {
          const a = allocateLevels(rho, { budget: B, allowZero: zero, mode });
          got = Array.from(a.tokens).reduce((s, t, r) => s + rho[r]! * Math.sqrt(t), 0);
          if (mode === 'exact' ? a.total !== B : a.total > B) return false;
          if (!Array.from(a.tokens).every((t) => levels.includes(t))) return false;
        } catch (e) {
          if (!(e instanceof InfeasibleError)) throw e;
          return want === -Infinity;
        }
        checked++;
        return Math.abs(got - want) <= 1e-9;
      }), { numRuns: 3000, seed: 42 });
    expect(checked).toBeGreaterThan(300);
  });

  it('infeasible exact totals name the nearest feasible totals', () => {
    const e = infeasible(() => allocateLevels([0.5, 0.5], { budget: 160 }));
    expect(e.condition).toBe('no-exact-combination');
    expect(e.feasibleBudget).toEqual({ min: 128, max: 208 });
    expect(infeasible(() => allocateLevels([0.5, 0.5], { budget: 136 })).condition).toBe('budget-not-multiple-of-gcd');
    expect(infeasible(() => allocateLevels([0.5, 0.5], { budget: 64 })).condition).toBe('too-many-regions-for-minimum');
    expect(() => allocateLevels([0.5, 0.5], { budget: NaN })).toThrow(ValueError);
    expect(() => allocateLevels([0.5, 0.5], { budget: 256, levels: [64, 64] })).toThrow(/ascending/);
  });
});
