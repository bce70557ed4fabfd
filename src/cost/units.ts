/**
 * Units of the cost model. Every count is a plain number in base units: FLOPs, bytes, seconds,
 * FLOP/s, bytes/s. Prefixes are decimal (SI): 1 MB = 10^6 bytes, 1 GB = 10^9 bytes,
 * 1 GFLOP = 10^9 FLOPs, 1 TB/s = 10^12 bytes/s. Binary sizes (KiB, MiB, GiB) are accepted when parsing
 * and used only where a vendor states a cache size in binary units.
 */
import { ValueError } from '../errors.js';

const SI = [
  [1e15, 'P'],
  [1e12, 'T'],
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
] as const;

/** `1107296256` → `1.107 GB` (4 significant digits, decimal prefixes). */
export function formatSI(value: number, unit: string, digits = 4): string {
  if (!Number.isFinite(value)) return `${value} ${unit}`;
  const [scale, prefix] = pickUnit(Math.abs(value), SI_STEPS, digits);
  return `${trimPrecision(value / scale, digits)} ${prefix}${unit}`;
}

/** Units ascending, each [size in base units, suffix]. */
type UnitSteps = ReadonlyArray<readonly [number, string]>;
const SI_STEPS: UnitSteps = [[1, ''], ...[...SI].reverse()];
const SECOND_STEPS: UnitSteps = [[1e-9, 'ns'], [1e-6, 'µs'], [1e-3, 'ms'], [1, 's']];

/**
 * The largest unit not above `abs` (the smallest for tinier values), moved up while the mantissa printed
 * with `digits` significant digits reads 1000 or more: 999.96 kB at 4 digits is `1.000 MB`, not `1000 kB`.
 */
function pickUnit(abs: number, steps: UnitSteps, digits: number): readonly [number, string] {
  let pick = 0;
  for (let i = 0; i < steps.length; i++) if (abs >= steps[i]![0]) pick = i;
  while (pick + 1 < steps.length && abs !== 0 && Math.abs(Number((abs / steps[pick]![0]).toPrecision(digits))) >= 1000) pick++;
  return steps[pick]!;
}

function trimPrecision(x: number, digits: number): string {
  if (x === 0) return '0';
  const s = x.toPrecision(digits);
  return s.includes('e') ? String(Number(s)) : s;
}

/** Bytes with decimal prefixes: `formatBytes(12582912)` → `12.58 MB`. */
export const formatBytes = (bytes: number, digits = 4): string => formatSI(bytes, 'B', digits);
/** FLOPs with decimal prefixes: `formatFlops(407117182976)` → `407.1 GFLOP`. */
export const formatFlops = (flops: number, digits = 4): string => formatSI(flops, 'FLOP', digits);
/** Seconds as a readable duration (ns, µs, ms, s). */
export function formatSeconds(s: number, digits = 4): string {
  if (!Number.isFinite(s)) return `${s} s`;
  const a = Math.abs(s);
  if (a === 0) return '0 s';
  const [scale, name] = pickUnit(a, SECOND_STEPS, digits);
  return `${trimPrecision(s / scale, digits)} ${name}`;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/**
 * Parses a memory size: a number of bytes, or a string such as `80GB`, `80 GB`, `24GiB`, `512MiB`
 * (GB decimal, GiB binary). Throws ValueError naming `argument`.
 */
export function parseBytes(input: number | string, argument = 'memory'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new ValueError(`${argument} must be a non-negative number of bytes, got ${input}`, argument);
    return input;
  }
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z]*)\s*$/i.exec(String(input));
  const scale = m ? SIZE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || scale === undefined) {
    throw new ValueError(`${argument} must be a size such as 80GB, 24GiB or a byte count, got '${input}'`, argument);
  }
  const bytes = Number(m[1]) * scale;
  if (!Number.isFinite(bytes)) throw new ValueError(`${argument} must be a finite size, got '${input}'`, argument);
  return bytes;
}
