/**
 * Opponent processing (spec relevance.md §4.3): three explicit, testable knobs that turn the three
 * scorer distributions into the allocation target ρ. The budget itself is the fourth knob
 * (compress ↔ particularise), chosen by the caller.
 *
 *   1. mix:              ρ⁰ = w_I·p^I + w_S·p^S + w_P·p^P,  w on the simplex (default 0.15, 0.15, 0.7)
 *   2. focus↔diversify:  ρ¹_r ∝ (ρ⁰_r)^{1/τ},  τ > 0 (τ < 1 sharpens, τ > 1 flattens)
 *   3. exploit↔explore:  ρ_r = (1 − ε_x)·ρ¹_r + ε_x / R,  ε_x ∈ (0, 1]  (every ρ_r > 0)
 */
import { ShapeError, ValueError, checkOptionKeys, optionNames } from '../errors.js';

/** The three knobs. */
export interface OpponentOptions {
  /** Mix weights [w_I, w_S, w_P] ≥ 0 summing to 1 (within 1e-9). Default [0.15, 0.15, 0.7]. */
  weights?: readonly [number, number, number];
  /** Temperature τ > 0 (default 0.5: focus). */
  temperature?: number;
  /** Explore floor ε_x ∈ (0, 1] (default 0.05). */
  explore?: number;
}

/** The resolved knobs and the intermediate distributions. */
export interface OpponentResult {
  /** Mix weights [w_I, w_S, w_P] used (defaults applied). */
  weights: [number, number, number];
  /** Temperature τ used. */
  temperature: number;
  /** Explore floor ε_x used. */
  explore: number;
  /** ρ⁰ (mix), ρ¹ (tempered) and ρ (floored), each a distribution over regions. */
  mixed: Float64Array;
  /** ρ¹ ∝ (ρ⁰)^{1/τ}, [R]. */
  tempered: Float64Array;
  /** ρ = (1 − ε_x)·ρ¹ + ε_x / R, [R], every entry > 0: the allocators' input. */
  rho: Float64Array;
}

function checkDist(p: ArrayLike<number>, name: string, R: number): void {
  if (p.length !== R) throw new ShapeError(`${name} has ${p.length} regions, expected ${R}`, name, 'regions');
  let s = 0;
  for (let i = 0; i < R; i++) {
    const v = p[i]!;
    if (!Number.isFinite(v) || v < 0) throw new ValueError(`${name}[${i}] must be finite and ≥ 0, got ${v}`, name);
    s += v;
  }
  if (Math.abs(s - 1) > 1e-6) throw new ValueError(`${name} must sum to 1 (a distribution over regions), sums to ${s}`, name);
}

/** Validates the knobs (ValueError naming the knob). */
export function resolveOpponent(options: OpponentOptions = {}): { weights: [number, number, number]; temperature: number; explore: number } {
  if (options && typeof options === 'object') checkOptionKeys(options, optionNames<OpponentOptions>({ weights: true, temperature: true, explore: true }), 'opponent');
  const w = options.weights ?? [0.15, 0.15, 0.7];
  if (!w || w.length !== 3) throw new ValueError('weights must be [w_I, w_S, w_P]', 'weights');
  let s = 0;
  for (let i = 0; i < 3; i++) {
    if (!Number.isFinite(w[i]!) || w[i]! < 0) throw new ValueError(`weights[${i}] must be finite and ≥ 0, got ${w[i]}`, 'weights');
    s += w[i]!;
  }
  if (Math.abs(s - 1) > 1e-9) throw new ValueError(`weights must sum to 1 (the simplex), sum to ${s}`, 'weights');
  const temperature = options.temperature ?? 0.5;
  if (!Number.isFinite(temperature) || temperature <= 0) throw new ValueError(`temperature τ must be a finite number > 0, got ${temperature}`, 'temperature');
  const explore = options.explore ?? 0.05;
  if (!Number.isFinite(explore) || explore <= 0 || explore > 1) throw new ValueError(`explore ε_x must be in (0, 1], got ${explore}`, 'explore');
  return { weights: [w[0]!, w[1]!, w[2]!], temperature, explore };
}

/**
 * Combines information, salience and participatory distributions (each over R regions) into ρ.
 * Tempering is computed in the log domain, so tiny masses do not underflow for small τ.
 */
export function opponentProcess(information: ArrayLike<number>, salience: ArrayLike<number>, participatory: ArrayLike<number>, options: OpponentOptions = {}): OpponentResult {
  const R = information.length;
  if (R < 1) throw new ShapeError('information must have at least one region', 'information', 'regions');
  checkDist(information, 'information', R);
  checkDist(salience, 'salience', R);
  checkDist(participatory, 'participatory', R);
  const { weights, temperature, explore } = resolveOpponent(options);
  const mixed = new Float64Array(R);
  for (let r = 0; r < R; r++) mixed[r] = weights[0] * information[r]! + weights[1] * salience[r]! + weights[2] * participatory[r]!;
  const tempered = new Float64Array(R);
  // (log ρ⁰_r − log max ρ⁰) / τ: relative to the largest before dividing, so a tiny τ cannot overflow every term
  // to −∞ (τ = 1e-310 gave the uniform fallback instead of all weight on the best region).
  let lmx = -Infinity;
  for (let r = 0; r < R; r++) if (mixed[r]! > 0) lmx = Math.max(lmx, Math.log(mixed[r]!));
  for (let r = 0; r < R; r++) tempered[r] = mixed[r]! > 0 ? (Math.log(mixed[r]!) - lmx) / temperature : -Infinity;
  const mx = lmx === -Infinity ? -Infinity : 0;
  let s = 0;
  for (let r = 0; r < R; r++) { tempered[r] = mx === -Infinity ? 1 : Math.exp(tempered[r]! - mx); s += tempered[r]!; }
  for (let r = 0; r < R; r++) tempered[r] = tempered[r]! / s;
  const rho = new Float64Array(R);
  for (let r = 0; r < R; r++) rho[r] = (1 - explore) * tempered[r]! + explore / R;
  return { weights, temperature, explore, mixed, tempered, rho };
}
