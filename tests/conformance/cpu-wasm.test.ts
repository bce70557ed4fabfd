import { describe, it } from 'vitest';
import { CASES, checkCase, checkTracksNaiveAtScale65, runOn } from './cases.js';

describe('conformance: wasm backend', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c, runOn('wasm'));
    }, 120_000);
  }
});

// A scale that is not a power of two (head dim 65) on inputs near ±1000: prefill scales K as it packs it, as the
// naive reference does, so its scores are the naive fused implementation's to the bit and the error tracks the
// naive one seed by seed (scaling Q instead reached 2.6–2.8× the naive error on 2–4 of 40 seeds).
describe('wasm backend (relaxed SIMD): inputs near ±1000 at head dim 65, 12 seeds', () => {
  it('each within 1.01× the naive f32 error + floor', () => checkTracksNaiveAtScale65(runOn('wasm'), 'yardstick'), 120_000);
});
