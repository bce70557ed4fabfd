import { afterAll, describe, expect, it } from 'vitest';
import { UnsupportedError, attention, configureCpu, lastKernelStats, randn } from '../../../src/index.js';
import { ReadAheadTuner } from '../../../src/kernels/cpu/read-ahead.js';
import { CASES, checkCase, runOn } from '../../conformance/cases.js';

describe('ReadAheadTuner', () => {
  it('alternates while exploring, then keeps the faster arm and re-times the other every `every` calls', () => {
    const t = new ReadAheadTuner({ warmup: 0, explore: 3, every: 8, window: 5 });
    const time = (on: boolean) => (on ? 1.0 : 1.5);
    const seen: boolean[] = [];
    for (let i = 0; i < 6; i++) { const on = t.choose('k'); seen.push(on); t.record('k', on, time(on)); }
    expect(seen.filter((x) => x)).toHaveLength(3);
    expect(t.best('k')).toBe(true);
    const later: boolean[] = [];
    for (let i = 0; i < 32; i++) { const on = t.choose('k'); later.push(on); t.record('k', on, time(on)); }
    expect(later.filter((x) => !x)).toHaveLength(4); // calls 8, 16, 24, 32 of the key
    expect(t.summary()['k']).toEqual({ off: 1.5, on: 1.0, best: true });
  });

  it('keys are independent; a single slow outlier does not flip the choice', () => {
    const t = new ReadAheadTuner({ warmup: 0, explore: 4, every: 16, window: 5 });
    for (let i = 0; i < 8; i++) {
      const a = t.choose('a'); t.record('a', a, a ? 2 : 1);
      const b = t.choose('b'); t.record('b', b, b ? 1 : 2);
    }
    expect(t.best('a')).toBe(false);
    expect(t.best('b')).toBe(true);
    t.record('a', false, 100);
    expect(t.best('a')).toBe(false);
    expect(t.best('unseen')).toBeNull();
  });

  it('follows a change of regime: the chosen arm slows down and the other one, re-timed, wins', () => {
    const t = new ReadAheadTuner({ warmup: 0, explore: 2, every: 4, window: 3 });
    let onCost = 1, offCost = 2;
    const step = () => { const on = t.choose('k'); t.record('k', on, on ? onCost : offCost); return on; };
    for (let i = 0; i < 8; i++) step();
    expect(t.best('k')).toBe(true);
    onCost = 3; // e.g. the caller's K/V now stay in the last-level cache
    for (let i = 0; i < 40; i++) step();
    expect(t.best('k')).toBe(false);
    const tail = Array.from({ length: 12 }, step);
    expect(tail.filter((x) => x)).toHaveLength(3); // only the periodic re-timing of the slower arm
  });

  it("drops a class's first `warmup` timings (cold calls), alternating through them", () => {
    const t = new ReadAheadTuner({ warmup: 4, explore: 2, every: 100, window: 3 });
    // Cold first calls: the "off" calls 0 and 2 are very slow; without the warm-up they would decide.
    const cold = [50, 3, 40, 3];
    const seen: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      const on = t.choose('k');
      seen.push(on);
      t.record('k', on, i < 4 ? cold[i]! : on ? 2 : 1);
    }
    expect(seen).toEqual([false, true, false, true, false, true, false, true]);
    expect(t.best('k')).toBe(false);
    expect(t.medians('k')).toEqual({ off: 1, on: 2, best: false });
  });

  it('ignores non-finite or negative timings', () => {
    const t = new ReadAheadTuner({ warmup: 0, explore: 1 });
    t.record('k', true, NaN); t.record('k', true, -1); t.record('k', false, Infinity);
    expect(t.best('k')).toBeNull();
  });
});

// Decode over ≥ 8 MiB of f32 K/V a sequence: both ways of reading the tiles give the reference's answer, and
// lastKernelStats says which ran. Fewer bytes, or K/V the kernel converts, never read ahead.
describe('wasm decode read-ahead', () => {
  afterAll(async () => { await configureCpu({ decodeReadAhead: 'auto' }); });
  const big = CASES.find((c) => c.name === 'decode over 9 MB of K/V Sq1 Sk1100 GQA4 d128 window')!;
  const bhsd = CASES.find((c) => c.name === 'decode over 9 MB of K/V, layout BHSD')!;

  for (const mode of ['on', 'off'] as const) {
    it(`decodeReadAhead '${mode}': BSHD and BHSD match the float64 reference`, async () => {
      await configureCpu({ decodeReadAhead: mode });
      for (const c of [big, bhsd]) {
        await checkCase(c, runOn('wasm'));
        expect(lastKernelStats?.path, c.name).toBe('decode');
        expect(lastKernelStats?.readAhead, c.name).toBe(mode === 'on');
      }
    }, 120_000);
  }

  it('both ways give bit-identical outputs and log-sum-exp (the choice only orders the reads)', async () => {
    const q = randn([1, 1, 32, 128], 1), k = randn([1, 1100, 8, 128], 2), v = randn([1, 1100, 8, 128], 3);
    const run = async (mode: 'on' | 'off') => {
      await configureCpu({ decodeReadAhead: mode });
      const r = await attention(q, k, v, { backend: 'wasm', returnLse: true });
      expect(lastKernelStats?.readAhead).toBe(mode === 'on');
      return r;
    };
    const on = await run('on'), off = await run('off');
    expect(Buffer.from(on.out.data.buffer).equals(Buffer.from(off.out.data.buffer))).toBe(true);
    expect(Buffer.from(on.lse!.data.buffer).equals(Buffer.from(off.lse!.data.buffer))).toBe(true);
  }, 120_000);

  it("'auto' times both ways on the first calls of a size, each matching the reference", async () => {
    await configureCpu({ decodeReadAhead: 'auto' });
    const seen = new Set<boolean | undefined>();
    for (let i = 0; i < 4; i++) {
      await checkCase({ ...big, seed: 100 + i }, runOn('wasm'));
      seen.add(lastKernelStats?.readAhead);
    }
    expect([...seen].sort()).toEqual([false, true]);
  }, 120_000);

  it('does not apply under 8 MiB of K/V a sequence, or to f16 K/V', async () => {
    await configureCpu({ decodeReadAhead: 'on' });
    await checkCase({ ...big, name: 'decode Sk300', seqLenK: 300 }, runOn('wasm'));
    expect(lastKernelStats?.readAhead).toBeUndefined();
    await checkCase({ ...big, name: 'decode f16 Sk1100', dtype: 'f16' }, runOn('wasm'));
    expect(lastKernelStats?.path).toBe('decode');
    expect(lastKernelStats?.readAhead).toBeUndefined();
  }, 120_000);

  it('rejects an unknown mode, naming the modes', async () => {
    await expect(configureCpu({ decodeReadAhead: 'always' as never })).rejects.toThrow(UnsupportedError);
    await expect(configureCpu({ decodeReadAhead: 'always' as never })).rejects.toThrow(/'auto', 'on' or 'off'/);
  });
});
