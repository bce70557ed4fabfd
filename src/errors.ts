/**
 * Typed errors. Every error raised for bad user input names the argument and, where there is one,
 * the dimension, and says what was expected. Internal invariants use `assert` instead.
 */

/** Base class of every error this library throws on purpose. */
export class VlmAttentionError extends Error {
  override name = 'VlmAttentionError';
}

/** A tensor or array has the wrong rank or size. */
export class ShapeError extends VlmAttentionError {
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
  override name = 'DTypeError';
  constructor(message: string, readonly argument?: string) {
    super(message);
  }
}

/** A numeric option is out of its domain (NaN, Infinity, negative window, non-monotone offsets...). */
export class ValueError extends VlmAttentionError {
  override name = 'ValueError';
  constructor(message: string, readonly argument?: string) {
    super(message);
  }
}

/** A feature or combination is not supported; names the nearest supported choice. */
export class UnsupportedError extends VlmAttentionError {
  override name = 'UnsupportedError';
  constructor(message: string, readonly nearestSupported?: string) {
    super(nearestSupported ? `${message} (nearest supported: ${nearestSupported})` : message);
  }
}

/** The KV-cache block pool cannot satisfy an allocation. */
export class OutOfBlocksError extends VlmAttentionError {
  override name = 'OutOfBlocksError';
  constructor(
    message: string,
    readonly requested: number,
    readonly free: number,
    /** Blocks held per sequence id at the time of the failure. */
    readonly heldBy: ReadonlyMap<string | number, number>,
  ) {
    super(message);
  }
}

/** A GPU device problem: no adapter, a lost device, or WGSL compiler messages. */
export class DeviceError extends VlmAttentionError {
  override name = 'DeviceError';
  constructor(message: string, readonly compilerMessages: readonly string[] = []) {
    super(compilerMessages.length ? `${message}\n${compilerMessages.join('\n')}` : message);
  }
}

/** A sequence id, block or other handle is unknown, or was already freed. */
export class StateError extends VlmAttentionError {
  override name = 'StateError';
}

/** A file (image, safetensors, .npy) is corrupt, truncated or of an unknown format. */
export class FormatError extends VlmAttentionError {
  override name = 'FormatError';
  constructor(message: string, readonly path?: string) {
    super(message);
  }
}

/** A relevance allocation is infeasible; says which condition failed and what would be feasible. */
export class InfeasibleError extends VlmAttentionError {
  override name = 'InfeasibleError';
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
