/**
 * One comparison helper for every numeric test. Tolerances are named, never positional.
 * NaN must match NaN; ±Infinity must match exactly.
 */
export interface CloseOptions {
  atol: number;
  rtol?: number;
  label?: string;
  /** Shape for index reporting (row-major). */
  shape?: readonly number[];
}

export interface ErrorStats {
  maxAbs: number;
  maxRel: number;
  /** Index of the worst element. */
  worst: number;
  /** Elements where NaN/Inf disagree. */
  nonFiniteMismatch: number;
}

export function errorStats(actual: ArrayLike<number>, expected: ArrayLike<number>): ErrorStats {
  let maxAbs = 0, maxRel = 0, worst = -1, nf = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)) || a === e)) nf++;
      continue;
    }
    const d = Math.abs(a - e);
    if (d > maxAbs) { maxAbs = d; worst = i; }
    const r = d / Math.max(Math.abs(e), 1e-30);
    if (r > maxRel) maxRel = r;
  }
  return { maxAbs, maxRel, worst, nonFiniteMismatch: nf };
}

function fmtIndex(i: number, shape?: readonly number[]): string {
  if (!shape) return `[${i}]`;
  const idx: number[] = [];
  let r = i;
  for (let d = shape.length - 1; d >= 0; d--) { idx.unshift(r % shape[d]!); r = Math.floor(r / shape[d]!); }
  return `[${idx.join(', ')}]`;
}

/** Throws with max abs/rel error and the first mismatches (with indices) when not close. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions): ErrorStats {
  const { atol, rtol = 0, label = 'values', shape } = opts;
  if (actual.length !== expected.length) throw new Error(`${label}: length ${actual.length} ≠ expected ${expected.length}`);
  const stats = errorStats(actual, expected);
  const bad: string[] = [];
  let nBad = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    let ok: boolean;
    if (Number.isNaN(e)) ok = Number.isNaN(a);
    else if (!Number.isFinite(e)) ok = a === e;
    else ok = Number.isFinite(a) && Math.abs(a - e) <= atol + rtol * Math.abs(e);
    if (!ok) {
      nBad++;
      if (bad.length < 8) bad.push(`  at ${fmtIndex(i, shape)}: got ${a}, expected ${e} (|diff| ${Math.abs(a - e).toExponential(3)})`);
    }
  }
  if (nBad > 0) {
    throw new Error(`${label}: ${nBad}/${expected.length} elements differ (atol ${atol.toExponential(2)}, rtol ${rtol}); max abs err ${stats.maxAbs.toExponential(3)}, max rel err ${stats.maxRel.toExponential(3)}\n${bad.join('\n')}`);
  }
  return stats;
}
