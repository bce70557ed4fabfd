/**
 * Relevance pipeline checks found by probing: the levels DP sized by capacity (a huge at-most budget hung),
 * water-fill reporting every 0-token region as dropped, the levels allocator's cap check first, float RGB
 * values checked, a tiny temperature focusing instead of going uniform, and planRelevance validating more.
 */
import { describe, expect, it } from 'vitest';
import { InfeasibleError, ValueError, checkRgbImage, opponentProcess, planRelevance, runRelevance } from '../../../src/index.js';
import { allocateLevels, allocateWaterFill } from '../../../src/relevance/allocate.js';

describe('relevance probe fixes', () => {
  it('levels at-most with a budget far past capacity answers at once (the DP was sized by the budget)', () => {
    const rho = Array.from({ length: 16 }, (_, i) => 16 - i);
    const t0 = performance.now();
    const a = allocateLevels(rho, { budget: 2 ** 31 - 1, mode: 'at-most' });
    expect(performance.now() - t0).toBeLessThan(2000); // functional bound: it took > 120 s
    expect(Array.from(a.tokens)).toEqual(new Array(16).fill(400));
  });
  it('water-fill with min 0 lists every 0-token region as dropped', () => {
    const a = allocateWaterFill([0.9, 0.05, 0.04, 0.01], { budget: 400, min: 0, max: 400, quantum: 16 });
    const zeros = Array.from(a.tokens).flatMap((t, r) => (t === 0 ? [r] : []));
    expect(zeros.length).toBeGreaterThan(0);
    expect(a.dropped).toEqual(zeros);
    expect(a.tokens.reduce((s, t) => s + t, 0)).toBe(400);
  });
  it('levels: a cap below every level is reported as such, not as a gcd problem with max −∞', () => {
    try {
      allocateLevels([0.5, 0.5], { budget: 100, caps: [10, 400] });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InfeasibleError);
      expect((e as InfeasibleError).condition).toBe('no-aligned-level');
    }
  });
  it('float RGB values outside [0, 1] are refused, naming the pixel (not the salience scorer)', () => {
    const data = new Float32Array(3 * 2 * 2).fill(0.5);
    data[5] = NaN;
    expect(() => checkRgbImage({ width: 2, height: 2, data })).toThrow(/channel G, pixel \(1, 0\)/);
    data[5] = 200;
    expect(() => checkRgbImage({ width: 2, height: 2, data })).toThrow(/divide by 255/);
  });
  it('a tiny temperature puts the weight on the best region (τ = 1e-310 went uniform)', () => {
    for (const temperature of [1e-300, 1e-310]) {
      const r = opponentProcess([0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2], { temperature, explore: 1e-9 });
      expect(Array.from(r.tempered)).toEqual([1, 0, 0]);
    }
  });
  it('position ids stay distinct when a region holds more tokens a side than base patches (the scale grows)', async () => {
    const w = 14, h = 14, data = Float32Array.from({ length: 3 * w * h }, (_, i) => (i % 13) / 13);
    const r = await runRelevance({ width: w, height: h, data }, planRelevance(w, h, { query: 'red', budget: 400, backend: 'cpu-ts' }));
    const ids = new Set<string>();
    for (let i = 0; i < r.tokens.count; i++) ids.add(`${r.tokens.positionIds[2 * i]},${r.tokens.positionIds[2 * i + 1]}`);
    expect(r.tokens.count).toBe(400);
    expect(ids.size).toBe(400); // 81 with the fixed scale 8
    expect(r.tokens.positionScale % 8).toBe(0);
  });

  it('planRelevance checks realise, bandwidth and backend before any pixel', () => {
    expect(() => planRelevance(64, 64, { query: 'red', realise: 'bogus' as never })).toThrow(expect.objectContaining({ argument: 'realise' }));
    for (const bandwidth of [-1, NaN]) expect(() => planRelevance(64, 64, { query: 'red', bandwidth })).toThrow(expect.objectContaining({ argument: 'bandwidth' }));
    expect(() => planRelevance(64, 64, { query: 'red', backend: 'bogus' as never })).toThrow(expect.objectContaining({ argument: 'backend' }));
    expect(planRelevance(64, 64, { query: 'red', budget: 1024 }).budget).toBe(1024);
  });

  it('misspelt option names are refused with the nearest one (planRelevance, grid, opponent, both allocators)', () => {
    const base = { query: 'red', budget: 1024 };
    expect(() => planRelevance(64, 64, { ...base, budjet: 64 } as never)).toThrow(expect.objectContaining({ argument: 'budjet', message: expect.stringMatching(/did you mean 'budget'/) }));
    expect(() => planRelevance(64, 64, { ...base, opponent: { temprature: 5 } } as never)).toThrow(/did you mean 'temperature'/);
    expect(() => planRelevance(64, 64, { ...base, grid: { regionRow: 1 } } as never)).toThrow(/did you mean 'regionRows'/);
    expect(() => allocateWaterFill([0.5, 0.5], { budget: 400, bogus: 1 } as never)).toThrow(ValueError);
    expect(() => allocateLevels([0.5, 0.5], { budget: 400, levle: [64] } as never)).toThrow(ValueError);
  });

  it("each allocator's knobs are refused with the other allocator; levelMode is named as such", () => {
    expect(() => planRelevance(64, 64, { query: 'red', budget: 1024, allocator: 'levels', min: 16 })).toThrow(expect.objectContaining({ argument: 'min' }));
    expect(() => planRelevance(64, 64, { query: 'red', budget: 1024, levelMode: 'at-most' })).toThrow(expect.objectContaining({ argument: 'levelMode' }));
    expect(() => planRelevance(64, 64, { query: 'red', budget: 1024, allocator: 'levels', levelMode: 'most' as never })).toThrow(expect.objectContaining({ argument: 'levelMode' }));
  });

  it('the levels allocator refuses a table past LEVELS_MAX_CELLS by name (it threw RangeError or took gigabytes)', () => {
    expect(() => allocateLevels(new Float64Array(20000).fill(1 / 20000), { budget: 8e6 })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'budget' }));
    expect(() => allocateLevels(new Float64Array(20000).fill(1 / 20000), { budget: 2560000, mode: 'at-most', allowZero: true })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'budget' }));
    // A large but reasonable problem still runs: 1,000 regions, 100,000 tokens.
    expect(allocateLevels(new Float64Array(1000).fill(1 / 1000), { budget: 100_000, mode: 'at-most' }).total).toBeLessThanOrEqual(100_000);
  });
});
