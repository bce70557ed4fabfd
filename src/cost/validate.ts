/**
 * Boundary checks shared by the cost model. Dimensions get a ShapeError naming the argument (its path
 * in the options, e.g. `llm.numKvHeads`) and the dimension; other numbers get a ValueError.
 */
import { DTypeError, ShapeError, ValueError } from '../errors.js';

/** An integer dimension ≥ min (default 1). `path` prefixes the argument name (e.g. `llm`). */
export function dim(value: unknown, name: string, opts: { min?: number; path?: string } = {}): number {
  const min = opts.min ?? 1;
  const arg = opts.path ? `${opts.path}.${name}` : name;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const what = typeof value === 'number' && Number.isFinite(value) && !Number.isInteger(value) ? `${value} (not an integer)` : describe(value);
    throw new ShapeError(`${arg} must be an integer ≥ ${min}, got ${what}`, arg, name);
  }
  return value;
}

/** A value for an error message, its type shown when it is not a number: the string "128" reads as a number otherwise. */
export function describe(value: unknown): string {
  if (typeof value === 'number' || value === undefined || value === null) return String(value);
  if (typeof value === 'string') return `${JSON.stringify(value)} (a string)`;
  if (typeof value === 'bigint') return `${value}n (a bigint)`;
  return `${typeof value === 'object' ? (Array.isArray(value) ? 'an array' : 'an object') : `a ${typeof value}`}`;
}

/** Optional integer dimension with a default. */
export function dimOr(value: unknown, fallback: number, name: string, opts: { min?: number; path?: string } = {}): number {
  return value === undefined || value === null ? fallback : dim(value, name, opts);
}

/** numHeads must be a multiple of numKvHeads (MHA, GQA, MQA). */
export function checkHeads(numHeads: number, numKvHeads: number, path?: string): void {
  if (numHeads % numKvHeads !== 0) {
    const arg = path ? `${path}.numKvHeads` : 'numKvHeads';
    throw new ShapeError(`numHeads (${numHeads}) must be divisible by numKvHeads (${numKvHeads}) for MHA/GQA/MQA`, arg, 'numKvHeads');
  }
}

/** A finite number > 0 (or ≥ 0 with allowZero). */
export function positive(value: unknown, name: string, opts: { allowZero?: boolean } = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (value === 0 && !opts.allowZero)) {
    throw new ValueError(`${name} must be a finite number ${opts.allowZero ? '≥' : '>'} 0, got ${describe(value)}`, name);
  }
  return value;
}

/** Rejects keys of `obj` not in `allowed` (config files, option objects from JSON). */
export function checkKeys(obj: object, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      const arg = path ? `${path}.${key}` : key;
      throw new ValueError(`unknown key '${arg}' (allowed${path ? ` in ${path}` : ''}: ${allowed.join(', ')})`, arg);
    }
  }
}

/** One of a fixed set of strings: a ValueError naming `name` otherwise (DTypeError for `error: DTypeError`, dtype names). */
export function oneOf<T extends string>(value: unknown, allowed: readonly T[], name: string, error: typeof ValueError | typeof DTypeError = ValueError): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new error(`${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`, name);
  }
  return value as T;
}
