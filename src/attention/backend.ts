/**
 * Backend registry. A backend runs a validated plan on host tensors (CPU backends compute in place;
 * the WebGPU backend uploads, computes and downloads). Device-resident tensors go through the
 * backend that owns them (see kernels/webgpu).
 */
import { UnsupportedError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AttentionPlan } from './plan.js';

/**
 * An attention backend: runs validated plans on host tensors and, optionally, on tensors that live on
 * its device. Register one with `registerBackend`, or pass the object itself as `RunOptions.backend`.
 */
export interface HostBackend {
  /** The name it is registered under, e.g. `'wasm'`; capture and `linear` choose their fast path by it. */
  readonly name: string;
  /** Computes out (and lse when given) for the plan. q/k/v/out are BSHD views (or varlen [total, H, D]). */
  run(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor | null): void | Promise<void>;
  /**
   * Device-resident tensors (e.g. GpuTensor): computes without copies to the host and returns device
   * outputs. `lse` undefined = allocate when the plan asks for it; null = none.
   */
  runDevice?(plan: AttentionPlan, q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, out?: DeviceTensor, lse?: DeviceTensor | null): Promise<{ out: DeviceTensor; lse: DeviceTensor | null }>;
}

/** A tensor owned by a device backend (shape, dtype and element strides; storage elsewhere). */
export interface DeviceTensor {
  /** Dimensions, as for a host Tensor (BSHD `[batch, seqLen, numHeads, headDim]` for attention by default). */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: Tensor['dtype'];
  /** Step per index of each dimension in the device storage, in elements. */
  readonly strides: readonly number[];
  /** Index of element [0,…,0] in the device storage, in elements. */
  readonly offset: number;
  /** The backend that owns the storage, e.g. 'webgpu'. */
  readonly device: string;
  /** Zero-copy permutation of dimensions (as `Tensor.permute`). */
  permute(order: readonly number[]): DeviceTensor;
}

/** Whether `x` is a device-resident tensor (an object with a string `device` and `strides`, e.g. a GpuTensor); host Tensors are not. */
export function isDeviceTensor(x: unknown): x is DeviceTensor {
  return typeof x === 'object' && x !== null && typeof (x as DeviceTensor).device === 'string' && 'strides' in x;
}

/**
 * Built-in backends. `'auto'` (the default) and its alias `'cpu'` take the first backend of the auto
 * order that loads (`'wasm'`, then `'cpu-ts'`; see `setAutoOrder`). `'wasm'`: WebAssembly SIMD kernels
 * on a thread pool; `'cpu-ts'`: plain single-threaded TypeScript, runs anywhere; `'webgpu'`: WGSL
 * kernels (host tensors are uploaded and the results downloaded).
 */
export type BackendName = 'auto' | 'cpu' | 'wasm' | 'cpu-ts' | 'webgpu';

const backends = new Map<string, () => HostBackend | Promise<HostBackend>>();
const resolved = new Map<string, Promise<HostBackend>>();
let autoOrder: string[] = ['wasm', 'cpu-ts'];

/**
 * Registers a backend under `name`. The factory runs on first use (see `getBackend`), may be async
 * (e.g. to acquire a device) and throws when the backend cannot run here, which makes `'auto'` move on.
 * Registering a name again replaces it: the next call loads the new factory.
 */
export function registerBackend(name: string, factory: () => HostBackend | Promise<HostBackend>): void {
  backends.set(name, factory);
  resolved.delete(name);
}

/** Order in which 'auto' tries backends (the first that loads wins). */
export function setAutoOrder(order: string[]): void {
  autoOrder = [...order];
}

/** Names of the registered backends, in registration order (whether each can load here shows only on use). */
export function listBackends(): string[] {
  return [...backends.keys()];
}


/**
 * Resolves a backend: an object is returned as is; a name is loaded once and cached (a failed load is
 * retried on the next call). `'auto'` / `'cpu'` return the first backend of the auto order that loads
 * and rethrow the last failure when none does; an unknown name raises UnsupportedError listing the
 * registered ones.
 */
export async function getBackend(name: BackendName | HostBackend | string = 'auto'): Promise<HostBackend> {
  if (typeof name === 'object') return name;
  if (name === 'auto' || name === 'cpu') {
    let lastErr: unknown;
    for (const n of autoOrder) {
      if (!backends.has(n)) continue;
      try { return await getBackend(n); } catch (e) { lastErr = e; }
    }
    throw lastErr ?? new UnsupportedError('no attention backend is available', 'cpu-ts');
  }
  const factory = backends.get(name);
  if (!factory) throw new UnsupportedError(`unknown backend '${name}'`, [...backends.keys(), 'auto'].join(', '), 'backend');
  let p = resolved.get(name);
  if (!p) {
    p = Promise.resolve().then(factory);
    resolved.set(name, p);
    p.catch(() => resolved.delete(name));
  }
  return p;
}
