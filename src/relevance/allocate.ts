/**
 * Token allocators: turn a relevance distribution ρ over R regions into per-region token counts
 * under an exact budget (spec relevance.md §4.4, §4.5).
 *
 * - Allocator A (`allocateWaterFill`): quantised water-filling + largest remainder. Σt = budget
 *   exactly, min ≤ t_r ≤ min(max, cap_r), quantum | t_r, deterministic, monotone in ρ for shared
 *   bounds; O(R log R). Optional region dropping (level 0 allowed).
 * - Allocator B (`allocateLevels`): a discrete level set (default {64, 144, 256, 400}, optionally 0)
 *   by dynamic programming over budget units, maximising Σ ρ_r·u(t_r) with u = √ by default, in
 *   exact (Σ = budget) or at-most (Σ ≤ budget) mode.
 *
 * Infeasible requests throw InfeasibleError with the failed condition and a feasible budget range;
 * nothing is clamped silently. (The seed's `allocate_lod_tokens` clamped, truncated and lost the
 * total; see §1.7.)
 */
import { InfeasibleError, ShapeError, ValueError, checkOptionKeys, optionNames } from '../errors.js';

/** Options for {@link allocateWaterFill}. */
export interface WaterFillOptions {
  /** Total tokens B; must be a multiple of `quantum` (no silent rounding). */
  budget: number;
  /** Per-region minimum m (default 64). Rounded up to a multiple of the quantum. */
  min?: number;
  /** Per-region maximum M (default 400). Rounded down to a multiple of the quantum. */
  max?: number;
  /** Quantum q: every t_r is a multiple of q (default 16; 1 for none). */
  quantum?: number;
  /** Native token caps n_r per region (M_r = min(M, n_r)); default none. */
  caps?: ArrayLike<number>;
  /** Allow level 0: keep the top-k regions by ρ with the largest feasible k (spec §4.4, dropping). */
  allowDrop?: boolean;
}

/** The result of an allocator. */
export interface Allocation {
  /** Tokens per region, in region order. */
  tokens: Int32Array;
  /** Σ tokens. */
  total: number;
  /** Regions given 0 tokens (dropping). */
  dropped: number[];
  /** Which allocator produced it. */
  method: 'water-fill' | 'levels';
  /** Water-filling level λ in units (A only). */
  lambda?: number;
  /** Objective Σ ρ_r·u(t_r) (B only). */
  objective?: number;
}

function checkRho(rho: ArrayLike<number>, allowZero: boolean): Float64Array {
  if (!rho || typeof rho.length !== 'number' || rho.length < 1) throw new ShapeError('rho must be a non-empty array of region scores', 'rho', 'regions');
  const out = new Float64Array(rho.length);
  for (let r = 0; r < rho.length; r++) {
    const v = rho[r]!;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
      throw new ValueError(`rho[${r}] must be a finite number ${allowZero ? '≥ 0' : '> 0 (use the explore floor so every region has mass)'}, got ${v}`, 'rho');
    }
    out[r] = v;
  }
  return out;
}

function checkInt(v: number, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ValueError(`${name} must be an integer ≥ ${min}, got ${v}`, name);
  return v;
}

function checkBudget(budget: number): number {
  if (typeof budget !== 'number' || Number.isNaN(budget)) throw new ValueError(`budget must be a number, got ${budget}`, 'budget');
  if (!Number.isFinite(budget) || budget < 0 || !Number.isInteger(budget)) {
    throw new ValueError(`budget must be a finite integer ≥ 0 (tokens), got ${budget}`, 'budget');
  }
  // Allocations are Int32Array counts.
  if (budget > 0x7fffffff) throw new ValueError(`budget must be at most 2^31 − 1 tokens, got ${budget}`, 'budget');
  return budget;
}

/** Deterministic order: larger ρ first, then smaller index. */
function byRhoDesc(rho: Float64Array): number[] {
  return Array.from(rho, (_, i) => i).sort((a, b) => rho[b]! - rho[a]! || a - b);
}

/** Σ_r clamp(λ ρ_r, lo, hi_r). */
function filled(lambda: number, rho: Float64Array, lo: number, hi: Float64Array, idx: readonly number[]): number {
  let s = 0;
  for (const r of idx) s += Math.min(hi[r]!, Math.max(lo, lambda * rho[r]!));
  return s;
}

/** Exact λ over the sorted breakpoints lo/ρ_r, hi_r/ρ_r (f is piecewise linear, non-decreasing). */
function solveLambda(rho: Float64Array, lo: number, hi: Float64Array, idx: readonly number[], U: number): number {
  const bps: number[] = [0];
  for (const r of idx) { bps.push(lo / rho[r]!, hi[r]! / rho[r]!); }
  bps.sort((a, b) => a - b);
  // Distinct breakpoints, ascending; f is non-decreasing, so the first one where f reaches U is found by
  // bisection: O(R log R) in all (a scan evaluating f at each of the 2R breakpoints was O(R²)).
  const pts: number[] = [];
  for (const b of bps) if (pts.length === 0 || b > pts[pts.length - 1]!) pts.push(b);
  if (filled(0, rho, lo, hi, idx) >= U) return 0;
  let a = 0, z = pts.length - 1; // f(pts[a]) < U
  if (filled(pts[z]!, rho, lo, hi, idx) < U) return pts[z]!; // Σhi = U reached only at the last breakpoint
  while (z - a > 1) {
    const m = (a + z) >> 1;
    if (filled(pts[m]!, rho, lo, hi, idx) >= U) z = m; else a = m;
  }
  const prev = pts[a]!, b = pts[z]!;
  const fPrev = filled(prev, rho, lo, hi, idx), fb = filled(b, rho, lo, hi, idx);
  // Linear on (prev, b]: interpolate.
  return fb === fPrev ? b : prev + ((U - fPrev) * (b - prev)) / (fb - fPrev);
}

const REM_TOL = 1e-9;

/**
 * Allocator A: quantised water-filling + largest remainder (spec §4.4).
 *
 * @param rho region scores, [R], all > 0 (normalisation is not required).
 * @returns tokens [R], Σ = budget, each in {0 (dropped)} ∪ [m, min(M, cap_r)] and a multiple of q.
 * @throws InfeasibleError with `condition` one of `budget-not-multiple-of-quantum`,
 *   `no-aligned-level`, `too-many-regions-for-minimum`, `budget-exceeds-capacity`,
 *   `no-feasible-region-count` (dropping), and `feasibleBudget` when one exists.
 */
export function allocateWaterFill(rho: ArrayLike<number>, options: WaterFillOptions): Allocation {
  if (options && typeof options === 'object') checkOptionKeys(options, optionNames<WaterFillOptions>({ budget: true, min: true, max: true, quantum: true, caps: true, allowDrop: true }), 'allocateWaterFill');
  const p = checkRho(rho, false);
  const R = p.length;
  const B = checkBudget(options?.budget);
  const q = checkInt(options.quantum ?? 16, 'quantum', 1);
  const m = checkInt(options.min ?? 64, 'min', 0);
  const M = checkInt(options.max ?? 400, 'max', 0);
  if (m > M) throw new ValueError(`min (${m}) must be ≤ max (${M})`, 'min');
  if (options.caps !== undefined && options.caps.length !== R) throw new ShapeError(`caps has ${options.caps.length} entries, rho has ${R}`, 'caps', 'regions');
  const lo = Math.ceil(m / q);
  const hi = new Float64Array(R); // caps and max may exceed 2^31 (Int32Array wrapped them)
  for (let r = 0; r < R; r++) {
    const cap = options.caps ? checkInt(options.caps[r]!, `caps[${r}]`, 0) : Infinity;
    hi[r] = Math.floor(Math.min(M, cap) / q);
  }
  const drop = !!options.allowDrop;
  const usable = Array.from(p, (_, r) => r).filter((r) => hi[r]! >= lo);
  const sumHi = (idx: readonly number[]) => idx.reduce((s, r) => s + hi[r]!, 0);
  const range = (idx: readonly number[]) => ({ min: idx.length * lo * q, max: sumHi(idx) * q });

  if (!drop) {
    const bad = Array.from(p, (_, r) => r).find((r) => hi[r]! < lo);
    if (bad !== undefined) {
      throw new InfeasibleError(`region ${bad} has no level that is a multiple of ${q} in [${m}, ${Math.min(M, options.caps?.[bad] ?? Infinity)}] (lo ${lo * q} > hi ${hi[bad]! * q}); lower min, raise the cap, or allow dropping`, 'no-aligned-level');
    }
  }
  if (B % q !== 0) {
    const rg = drop ? { min: 0, max: sumHi(usable) * q } : range(usable);
    throw new InfeasibleError(`budget ${B} is not a multiple of quantum ${q}; nearest: ${Math.floor(B / q) * q} or ${Math.ceil(B / q) * q}`, 'budget-not-multiple-of-quantum', rg);
  }
  const U = B / q;
  let idx: number[];
  if (!drop) {
    idx = usable;
    if (R * lo > U) {
      throw new InfeasibleError(`${R} regions × minimum ${lo * q} = ${R * lo * q} tokens > budget ${B}; raise the budget, lower min, use fewer regions or allow dropping`, 'too-many-regions-for-minimum', range(idx));
    }
    if (sumHi(idx) < U) {
      throw new InfeasibleError(`budget ${B} exceeds the capacity Σ min(max, cap_r) = ${sumHi(idx) * q} tokens`, 'budget-exceeds-capacity', range(idx));
    }
  } else {
    // Keep the top k usable regions by ρ, k* = max{k : k·lo ≤ U ≤ Σ_{top k} hi}.
    const order = byRhoDesc(p).filter((r) => hi[r]! >= lo);
    let kStar = -1, acc = 0;
    const prefix: number[] = [0];
    for (const r of order) { acc += hi[r]!; prefix.push(acc); }
    for (let k = order.length; k >= 0; k--) {
      if (k * lo <= U && U <= prefix[k]!) { kStar = k; break; }
    }
    if (kStar < 0) {
      // Nearest feasible interval [k·lo, Σ_{top k} hi] to U.
      let best = { min: 0, max: 0 }, dist = Infinity;
      for (let k = 0; k <= order.length; k++) {
        const a = k * lo, b = prefix[k]!;
        if (a > b) continue;
        const d = U < a ? a - U : U > b ? U - b : 0;
        if (d < dist) { dist = d; best = { min: a * q, max: b * q }; }
      }
      // Say where the top-k rule breaks: the most regions that still hold too little, and the fewest that need too much.
      let under = -1, over = -1;
      for (let k = 0; k <= order.length; k++) {
        if (k * lo <= U && prefix[k]! < U) under = k;
        if (k * lo > U && over < 0) over = k;
      }
      const why = [
        under >= 0 ? `the top ${under} hold at most ${prefix[under]! * q}` : '',
        over >= 0 ? `the top ${over} need at least ${over * lo * q}` : '',
      ].filter(Boolean).join(', ');
      throw new InfeasibleError(`allowDrop keeps the most relevant regions first, and no number of them fits budget ${B} (${why}; nearest feasible budgets ${best.min}–${best.max})`, 'no-feasible-region-count', best);
    }
    idx = order.slice(0, kStar).sort((a, b) => a - b);
  }

  const tokens = new Int32Array(R);
  const kept = new Set(idx);
  const dropped = Array.from(p, (_, r) => r).filter((r) => !kept.has(r));
  if (idx.length === 0) return { tokens, total: 0, dropped, method: 'water-fill', lambda: 0 };

  const lambda = solveLambda(p, lo, hi, idx, U);
  const x = new Float64Array(R), f = new Int32Array(R);
  let sumF = 0;
  for (const r of idx) {
    const xr = Math.min(hi[r]!, Math.max(lo, lambda * p[r]!));
    x[r] = xr;
    // Snap values within FP noise of an integer so that the remainder order is stable.
    const near = Math.round(xr);
    f[r] = Math.abs(xr - near) < REM_TOL ? near : Math.floor(xr);
    sumF += f[r]!;
  }
  // Largest remainder, ties by larger ρ then smaller index; the ±1 loops also repair FP error.
  const rem = (r: number) => x[r]! - f[r]!;
  const cmpUp = (a: number, b: number) => {
    const d = rem(b) - rem(a);
    if (Math.abs(d) > REM_TOL) return d;
    return p[b]! - p[a]! || a - b;
  };
  while (sumF < U) {
    const cand = idx.filter((r) => f[r]! < hi[r]!).sort(cmpUp);
    if (cand.length === 0) break;
    const take = Math.min(U - sumF, cand.length);
    for (let i = 0; i < take; i++) f[cand[i]!]! += 1;
    sumF += take;
  }
  while (sumF > U) {
    const cand = idx.filter((r) => f[r]! > lo).sort((a, b) => -cmpUp(a, b));
    if (cand.length === 0) break;
    f[cand[0]!]! -= 1;
    sumF -= 1;
  }
  if (sumF !== U) throw new Error(`vlm-attention internal error: water-filling repair ended at ${sumF} ≠ ${U}`);
  let total = 0;
  for (const r of idx) { tokens[r] = f[r]! * q; total += tokens[r]!; }
  // Every region left with 0 tokens is dropped, kept ones that min 0 let reach 0 included (levels reports them alike).
  for (const r of idx) if (tokens[r] === 0) dropped.push(r); // the regions not kept are in already
  dropped.sort((a, b) => a - b);
  return { tokens, total, dropped, method: 'water-fill', lambda };
}

/** Allocator B's default levels: side² for token grids of 8, 12, 16 and 20. */
export const DEFAULT_LEVELS: readonly number[] = [64, 144, 256, 400];

/** Options for {@link allocateLevels}. */
export interface LevelOptions {
  /** Total tokens B. */
  budget: number;
  /** Allowed levels, ascending, each > 0 (default [64, 144, 256, 400] = side² for 8, 12, 16, 20). */
  levels?: readonly number[];
  /** Also allow level 0 (dropping a region). Default false. */
  allowZero?: boolean;
  /** 'exact' (Σ = B, default) or 'at-most' (Σ ≤ B). */
  mode?: 'exact' | 'at-most';
  /** Concave increasing utility, u(0) = 0 (default √ℓ, the side length). */
  utility?: (level: number) => number;
  /** Native caps n_r: region r may only take levels ≤ caps[r]. */
  caps?: ArrayLike<number>;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const DP_TOL = 1e-12;
/** Most entries of the levels allocator's dynamic-programming table (2^25 doubles, 256 MiB). */
export const LEVELS_MAX_CELLS = 2 ** 25;

/**
 * Allocator B: discrete levels by dynamic programming (spec §4.5). Maximises Σ ρ_r·u(t_r) subject
 * to Σ t_r = B (or ≤ B). Regions are processed sorted by (−ρ, index) and the reconstruction takes
 * the largest level whose suffix stays optimal (tolerance 1e-12), so the result is deterministic.
 * Cost O(R·|levels|·B/g) with g = gcd(levels ∪ {B}).
 * @throws InfeasibleError (`budget-not-multiple-of-gcd`, `too-many-regions-for-minimum`,
 *   `budget-exceeds-capacity`, `no-exact-combination`) with the nearest feasible budgets.
 */
export function allocateLevels(rho: ArrayLike<number>, options: LevelOptions): Allocation {
  if (options && typeof options === 'object') checkOptionKeys(options, optionNames<LevelOptions>({ budget: true, levels: true, allowZero: true, mode: true, utility: true, caps: true }), 'allocateLevels');
  const p = checkRho(rho, true);
  const R = p.length;
  const B = checkBudget(options?.budget);
  const mode = options.mode ?? 'exact';
  if (mode !== 'exact' && mode !== 'at-most') throw new ValueError(`mode must be 'exact' or 'at-most', got ${String(mode)}`, 'mode');
  const base = [...(options.levels ?? DEFAULT_LEVELS)];
  if (base.length === 0) throw new ValueError('levels must not be empty', 'levels');
  base.forEach((l, i) => {
    checkInt(l, `levels[${i}]`, 1);
    if (i > 0 && l <= base[i - 1]!) throw new ValueError(`levels must be strictly ascending, got ${base.join(', ')}`, 'levels');
  });
  const levels = options.allowZero ? [0, ...base] : base;
  const u = options.utility ?? Math.sqrt;
  const util = levels.map((l) => (l === 0 ? 0 : u(l)));
  util.forEach((v, i) => { if (!Number.isFinite(v)) throw new ValueError(`utility(${levels[i]}) is not finite`, 'utility'); });
  if (options.caps !== undefined && options.caps.length !== R) throw new ShapeError(`caps has ${options.caps.length} entries, rho has ${R}`, 'caps', 'regions');
  const caps = Array.from({ length: R }, (_, r) => (options.caps ? checkInt(options.caps[r]!, `caps[${r}]`, 0) : Infinity));

  const g = levels.reduce((a, l) => gcd(a, l), B);
  const gl = levels.reduce((a, l) => gcd(a, l), 0);
  const minL = levels[0]!, maxL = levels[levels.length - 1]!;
  const capMax = caps.reduce((s, c) => s + levels.filter((l) => l <= c).reduce((a, l) => Math.max(a, l), -Infinity), 0);
  const minTotal = R * minL;
  // Caps first: a cap below every level leaves capMax −∞, which the other messages would report.
  if (caps.some((c) => c < minL)) {
    const r = caps.findIndex((c) => c < minL);
    throw new InfeasibleError(`region ${r} has cap ${caps[r]} below the smallest level ${minL}; allow level 0`, 'no-aligned-level');
  }
  if (mode === 'exact' && B % gl !== 0) {
    throw new InfeasibleError(`budget ${B} is not a multiple of gcd(levels) = ${gl}; nearest: ${Math.floor(B / gl) * gl} or ${Math.ceil(B / gl) * gl}`, 'budget-not-multiple-of-gcd', { min: minTotal, max: capMax });
  }
  if (minTotal > B) {
    throw new InfeasibleError(`${R} regions × smallest level ${minL} = ${minTotal} > budget ${B}; allow level 0 or raise the budget`, 'too-many-regions-for-minimum', { min: minTotal, max: capMax });
  }
  if (mode === 'exact' && capMax < B) {
    throw new InfeasibleError(`budget ${B} exceeds the capacity ${capMax} (${R} regions at their largest level)`, 'budget-exceeds-capacity', { min: minTotal, max: capMax });
  }
  void maxL;

  const unit = mode === 'exact' ? g : gl;
  // No allocation uses more than the capacity: past it the table would only grow (B = 2³¹ − 1 took ~18 GB).
  const U = Math.floor(Math.min(B, capMax) / unit);
  // The table holds (R + 1)·(U + 1) doubles: past LEVELS_MAX_CELLS it is refused by name, not left to fail as a RangeError
  // (or to take gigabytes) when it is allocated.
  if ((R + 1) * (U + 1) > LEVELS_MAX_CELLS) {
    throw new ValueError(`the levels allocator's table for ${R} regions and budget ${B} (steps of ${unit} tokens) would hold ${((R + 1) * (U + 1)).toExponential(2)} entries, over ${LEVELS_MAX_CELLS.toExponential(2)} (${LEVELS_MAX_CELLS * 8 / 2 ** 20} MiB); use the water-fill allocator, fewer regions or a budget in coarser steps`, 'budget');
  }
  const lu = levels.map((l) => l / unit);
  const order = byRhoDesc(p);
  // best[i][b]: max value of regions order[i..] using exactly b units (−∞ unreachable).
  const W = U + 1;
  const best = new Float64Array((R + 1) * W).fill(-Infinity);
  best[R * W] = 0;
  for (let i = R - 1; i >= 0; i--) {
    const r = order[i]!;
    const row = i * W, next = (i + 1) * W;
    for (let li = 0; li < levels.length; li++) {
      if (levels[li]! > caps[r]!) continue;
      const c = lu[li]!, v = p[r]! * util[li]!;
      for (let b = c; b <= U; b++) {
        const s = best[next + b - c]!;
        if (s === -Infinity) continue;
        const t = s + v;
        if (t > best[row + b]!) best[row + b] = t;
      }
    }
  }
  let target = U;
  if (mode === 'at-most') {
    let bestV = -Infinity;
    for (let b = 0; b <= U; b++) if (best[b]! > bestV + DP_TOL) { bestV = best[b]!; target = b; }
    if (bestV === -Infinity) throw new InfeasibleError(`no combination of levels fits within budget ${B}`, 'no-exact-combination', { min: minTotal, max: capMax });
  } else if (best[U] === -Infinity) {
    // Reachable totals over all regions (error path only), for the nearest feasible budgets.
    const top = Math.floor(capMax / unit);
    let reach = new Uint8Array(top + 1);
    reach[0] = 1;
    for (let r = 0; r < R; r++) {
      const nxt = new Uint8Array(top + 1);
      for (let s = 0; s <= top; s++) {
        if (!reach[s]) continue;
        for (let li = 0; li < levels.length; li++) if (levels[li]! <= caps[r]! && s + lu[li]! <= top) nxt[s + lu[li]!] = 1;
      }
      reach = nxt;
    }
    let below = -1, above = -1;
    for (let s = U - 1; s >= 0; s--) if (reach[s]) { below = s; break; }
    for (let s = U + 1; s <= top; s++) if (reach[s]) { above = s; break; }
    const near = [below, above].filter((s) => s >= 0).map((s) => s * unit);
    throw new InfeasibleError(
      `no combination of levels {${levels.join(', ')}} over ${R} regions sums to exactly ${B}${near.length ? `; nearest feasible totals: ${near.join(' or ')}` : ''}; or use mode 'at-most'`,
      'no-exact-combination', near.length ? { min: near[0]!, max: near[near.length - 1]! } : undefined,
    );
  }
  const tokens = new Int32Array(R);
  let b = target, objective = 0;
  for (let i = 0; i < R; i++) {
    const r = order[i]!;
    const goal = best[i * W + b]!;
    let chosen = -1;
    for (let li = levels.length - 1; li >= 0; li--) {
      if (levels[li]! > caps[r]! || lu[li]! > b) continue;
      const s = best[(i + 1) * W + b - lu[li]!]!;
      if (s === -Infinity) continue;
      if (s + p[r]! * util[li]! >= goal - DP_TOL) { chosen = li; break; }
    }
    if (chosen < 0) throw new Error('vlm-attention internal error: level DP reconstruction failed');
    tokens[r] = levels[chosen]!;
    objective += p[r]! * util[chosen]!;
    b -= lu[chosen]!;
  }
  const total = tokens.reduce((s, t) => s + t, 0);
  const dropped = Array.from(tokens, (t, r) => (t === 0 ? r : -1)).filter((r) => r >= 0);
  return { tokens, total, dropped, method: 'levels', objective };
}
