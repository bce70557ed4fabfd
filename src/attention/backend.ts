/**
 * Backend registry. A backend runs a validated plan on host tensors (CPU backends compute in place;
 * the WebGPU backend uploads, computes and downloads). Device-resident tensors go through the
 * backend that owns them (see kernels/webgpu).
 */
import { UnsupportedError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AttentionPlan } from './plan.js';

export interface HostBackend {
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
  readonly shape: readonly number[];
  readonly dtype: Tensor['dtype'];
  readonly strides: readonly number[];
  readonly offset: number;
  /** The backend that owns the storage, e.g. 'webgpu'. */
  readonly device: string;
  permute(order: readonly number[]): DeviceTensor;
}

export function isDeviceTensor(x: unknown): x is DeviceTensor {
  return typeof x === 'object' && x !== null && typeof (x as DeviceTensor).device === 'string' && 'strides' in x;
}

export type BackendName = 'auto' | 'cpu' | 'wasm' | 'cpu-ts' | 'webgpu';

const backends = new Map<string, () => HostBackend | Promise<HostBackend>>();
let autoOrder: string[] = ['wasm', 'cpu-ts'];

export function registerBackend(name: string, factory: () => HostBackend | Promise<HostBackend>): void {
  backends.set(name, factory);
}

/** Order in which 'auto' tries backends (the first that loads wins). */
export function setAutoOrder(order: string[]): void {
  autoOrder = [...order];
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

const resolved = new Map<string, Promise<HostBackend>>();

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
  if (!factory) throw new UnsupportedError(`unknown backend '${name}'`, [...backends.keys(), 'auto'].join(', '));
  let p = resolved.get(name);
  if (!p) {
    p = Promise.resolve().then(factory);
    resolved.set(name, p);
    p.catch(() => resolved.delete(name));
  }
  return p;
}
