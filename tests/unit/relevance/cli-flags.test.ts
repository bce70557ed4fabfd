/**
 * run / demo flags → pipeline options: flags that contradict each other or do nothing for the chosen
 * allocator are refused (they were silently dropped).
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/command.js';
import { optionsFromFlags } from '../../../src/cli/commands/run.js';

describe('optionsFromFlags', () => {
  it('--regions and --region-patches together are a UsageError', () => {
    expect(() => optionsFromFlags({ query: 'q', regions: '4x4', 'region-patches': '3' })).toThrow(UsageError);
    expect(optionsFromFlags({ query: 'q', regions: '3x5' }).grid).toMatchObject({ regionRows: 3, regionCols: 5 });
    expect(optionsFromFlags({ query: 'q', 'region-patches': '3' }).grid).toMatchObject({ regionPatches: 3 });
  });
  it("a command's water-fill defaults (demo's min 16) are dropped under --allocator levels, which would refuse them", () => {
    const o = optionsFromFlags({ query: 'q', allocator: 'levels' }, { query: 'q', budget: 1600, min: 16, max: 400, quantum: 16 });
    expect([o.min, o.max, o.quantum]).toEqual([undefined, undefined, undefined]);
    expect(optionsFromFlags({ query: 'q' }, { query: 'q', min: 16 }).min).toBe(16);
  });
  it('--min/--max/--quantum with --allocator levels are refused (they bound water-fill)', () => {
    expect(() => optionsFromFlags({ query: 'q', allocator: 'levels', min: '999', max: '1', quantum: '0' })).toThrow(/--min, --max, --quantum bound the water-fill allocator/);
    expect(optionsFromFlags({ query: 'q', allocator: 'water-fill', min: '32' }).min).toBe(32);
    expect(optionsFromFlags({ query: 'q', allocator: 'levels' }).allocator).toBe('levels');
  });
});
