/**
 * Typed errors. Every error raised for bad user input names the argument and, where there is one,
 * the dimension, and says what was expected. Internal invariants use `assert` instead.
 */

/** Base class of every error this library throws on purpose. */
export class VlmAttentionError extends Error {
  /** The class name (`'VlmAttentionError'`, or the subclass's): survives minification, unlike `constructor.name`. */
  override name = 'VlmAttentionError';
}

/** A tensor or array has the wrong rank or size. */
export class ShapeError extends VlmAttentionError {
  /** Always `'ShapeError'`. */
  override name = 'ShapeError';
  constructor(
    message: string,
    /** The argument at fault, e.g. `k`. */
    readonly argument?: string,
    /** The dimension at fault, e.g. `headDim`. */
    readonly dimension?: string,
  ) {
    super(message);
  }
}

/** A tensor has a dtype this call cannot take. */
export class DTypeError extends VlmAttentionError {
  /** Always `'DTypeError'`. */
  override name = 'DTypeError';
  constructor(
    message: string,
    /** The argument at fault, e.g. `v`. */
    readonly argument?: string,
  ) {
    super(message);
  }
}

/** A numeric option is out of its domain (NaN, Infinity, negative window, non-monotone offsets...). */
export class ValueError extends VlmAttentionError {
  /** Always `'ValueError'`. */
  override name = 'ValueError';
  constructor(
    message: string,
    /** The argument at fault, e.g. `softcap`. */
    readonly argument?: string,
  ) {
    super(message);
  }
}

/** A feature or combination is not supported; names the nearest supported choice. */
export class UnsupportedError extends VlmAttentionError {
  /** Always `'UnsupportedError'`. */
  override name = 'UnsupportedError';
  constructor(
    message: string,
    /** The nearest supported choice, e.g. `cpu-ts`; also appended to the message. */
    readonly nearestSupported?: string,
    /** The argument whose value is unsupported (e.g. `backend`), when one is. */
    readonly argument?: string,
  ) {
    super(nearestSupported ? `${message} (nearest supported: ${nearestSupported})` : message);
  }
}

/** The KV-cache block pool cannot satisfy an allocation. */
export class OutOfBlocksError extends VlmAttentionError {
  /** Always `'OutOfBlocksError'`. */
  override name = 'OutOfBlocksError';
  constructor(
    message: string,
    /** Blocks the failed allocation needed. */
    readonly requested: number,
    /** Blocks available at the time of the failure: free plus evictable cached blocks. */
    readonly free: number,
    /** Blocks held per sequence id at the time of the failure. */
    readonly heldBy: ReadonlyMap<string | number, number>,
  ) {
    super(message);
  }
}

/** A GPU device problem: no adapter, a lost device, or WGSL compiler messages. */
export class DeviceError extends VlmAttentionError {
  /** Always `'DeviceError'`. */
  override name = 'DeviceError';
  constructor(
    message: string,
    /** WGSL compiler messages (`line:column message` and the source line), also appended to the message; empty for other failures. */
    readonly compilerMessages: readonly string[] = [],
  ) {
    super(compilerMessages.length ? `${message}\n${compilerMessages.join('\n')}` : message);
  }
}

/** A sequence id, block or other handle is unknown, or was already freed. */
export class StateError extends VlmAttentionError {
  /** Always `'StateError'`. */
  override name = 'StateError';
}

/**
 * A file (image, safetensors, .npy) is corrupt, truncated or of an unknown format, or could not be read at all:
 * then `code` is the system's (`ENOENT`, `EISDIR`, `EACCES`) and `cause` the error the file system raised.
 */
export class FormatError extends VlmAttentionError {
  /** Always `'FormatError'`. */
  override name = 'FormatError';
  /** The system error code when the file could not be read (`ENOENT`, …); undefined for bad contents. */
  readonly code?: string;
  constructor(
    message: string,
    /** The file at fault (a path or a name such as `image.png`), when known. */
    readonly path?: string,
    /** The error the file system raised, when the file could not be read. */
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    const code = (cause as { code?: unknown } | undefined)?.code;
    if (typeof code === 'string') this.code = code;
  }
}

/** A relevance allocation is infeasible; says which condition failed and what would be feasible. */
export class InfeasibleError extends VlmAttentionError {
  /** Always `'InfeasibleError'`. */
  override name = 'InfeasibleError';
  /** The argument to change: the budget (`feasibleBudget` says to what, when a range exists). */
  readonly argument = 'budget';
  constructor(
    message: string,
    /** Which condition failed, e.g. `budget-not-multiple-of-quantum`. */
    readonly condition: string,
    /** A budget range that would be feasible, when one exists. */
    readonly feasibleBudget?: { min: number; max: number },
  ) {
    super(message);
  }
}

/** Internal invariant check. Never used for user input. */
export function assert(cond: unknown, message = 'internal invariant violated'): asserts cond {
  if (!cond) throw new Error(`vlm-attention internal error: ${message}`);
}

/** Checks that `value` is a finite number (throws ValueError naming `argument`). */
export function requireFinite(value: number, argument: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ValueError(`${argument} must be a finite number, got ${value}`, argument);
  }
  return value;
}

/** Checks that `value` is an integer ≥ min (throws ValueError naming `argument`). */
export function requireInt(value: number, argument: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ValueError(`${argument} must be an integer ≥ ${min}, got ${value}`, argument);
  }
  return value;
}

/** Levenshtein distance, for "did you mean" hints on misspelt option names. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The option names of an options type, for `checkOptionKeys`: written as `{ name: true, … }` typed against the
 * interface, so the compiler fails when the list and the interface drift apart (a new option left out would be refused).
 */
export function optionNames<T>(names: { readonly [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(names);
}

/**
 * Refuses option names outside `allowed` (a misspelt `casual: true` would otherwise run unmasked): ValueError
 * naming the key, the function and the nearest allowed name. Undefined values are ignored as unset.
 */
export function checkOptionKeys(opts: object, allowed: readonly string[], fn: string): void {
  for (const key of Object.keys(opts)) {
    if (allowed.includes(key) || (opts as Record<string, unknown>)[key] === undefined) continue;
    // The nearest allowed name within a few edits, or one that extends the key or that it extends (blockSize → blockSizeTokens).
    const lk = key.toLowerCase();
    const near = allowed.map((a) => {
      const la = a.toLowerCase();
      return [a, lk.length >= 4 && (la.startsWith(lk) || lk.startsWith(la)) ? 0 : editDistance(lk, la)] as const;
    }).sort((x, y) => x[1] - y[1])[0];
    const hint = near && near[1] <= Math.max(2, Math.floor(key.length / 3)) ? `; did you mean '${near[0]}'?` : '';
    throw new ValueError(`unknown option '${key}' for ${fn} (options: ${allowed.join(', ')})${hint}`, key);
  }
}
