/**
 * Unit formatting and parsing of the cost model: prefixes roll over when rounding reaches 1000, and
 * sizes that overflow to Infinity are refused.
 */
import { describe, expect, it } from 'vitest';
import { ValueError, formatBytesSI, formatDuration, formatSI, parseByteSize } from '../../../src/index.js';

describe('formatSI', () => {
  it('picks the decimal prefix', () => {
    expect(formatBytesSI(1107296256)).toBe('1.107 GB');
    expect(formatBytesSI(999)).toBe('999.0 B');
    expect(formatBytesSI(0)).toBe('0 B');
    expect(formatSI(-2500, 'FLOP')).toBe('-2.500 kFLOP');
  });
  it('moves to the next prefix when the mantissa rounds to 1000', () => {
    expect(formatBytesSI(999_960)).toBe('1.000 MB');
    expect(formatBytesSI(999.96)).toBe('1.000 kB');
    expect(formatBytesSI(-999_960)).toBe('-1.000 MB');
    expect(formatBytesSI(999_940)).toBe('999.9 kB');
    expect(formatSI(999.6, 'B', 3)).toBe('1.00 kB');
    // The largest prefix has nowhere to go.
    expect(formatBytesSI(1e18)).toBe('1000 PB');
  });
});

describe('formatDuration', () => {
  it('picks ns, µs, ms or s', () => {
    expect(formatDuration(2.5e-9)).toBe('2.500 ns');
    expect(formatDuration(0.0125)).toBe('12.50 ms');
    expect(formatDuration(3)).toBe('3.000 s');
  });
  it('moves to the next unit when rounding reaches 1000', () => {
    expect(formatDuration(0.99999)).toBe('1.000 s');
    expect(formatDuration(999.99e-9)).toBe('1.000 µs');
    expect(formatDuration(-0.99999e-3)).toBe('-1.000 ms');
    expect(formatDuration(5000)).toBe('5000 s');
  });
});

describe('parseByteSize', () => {
  it('parses decimal and binary units', () => {
    expect(parseByteSize('80GB')).toBe(80e9);
    expect(parseByteSize('24 GiB')).toBe(24 * 2 ** 30);
    expect(parseByteSize(12)).toBe(12);
  });
  it('refuses sizes that overflow, naming the argument', () => {
    expect(() => parseByteSize('1e400GB', 'gpuMemory')).toThrow(ValueError);
    try { parseByteSize('1e400GB', 'gpuMemory'); } catch (e) { expect((e as ValueError).message).toMatch(/gpuMemory/); }
    expect(() => parseByteSize('1e300TB')).toThrow(/finite/);
  });
});
