import { describe, it } from 'vitest';
import { CASES, checkCase, runOn } from './cases.js';

describe('conformance: cpu-ts backend', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      await checkCase(c, runOn('cpu-ts'));
    }, 120_000);
  }
});
