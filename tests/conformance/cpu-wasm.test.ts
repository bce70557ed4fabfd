import { describe, it } from 'vitest';
import { CASES, checkCase, runOn } from './cases.js';

describe('conformance: wasm backend', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c, runOn('wasm'));
    }, 120_000);
  }
});
