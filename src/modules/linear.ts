/**
 * Linear layers (y = x·Wᵀ + b, PyTorch's Linear convention: weight [outFeatures, inFeatures]) on the
 * attention backends: the WebAssembly SIMD kernel (threads, in the kernel heap), plain TypeScript, or
 * WebGPU (a tiled WGSL matmul). f32 arithmetic; other input dtypes are converted.
 */
import { getBackend, type BackendName } from '../attention/backend.js';
import { ShapeError, ValueError } from '../errors.js';
import { Tensor, numel } from '../tensor/tensor.js';
import { MM_A, MM_A_ROW, MM_BIAS, MM_C, MM_C_ROW, MM_K, MM_M, MM_N, MM_W, KIND_MATMUL } from '../kernels/cpu/abi.generated.js';
import { cpuRuntime } from '../kernels/cpu/wasm-backend.js';
import { gpuLinear } from '../kernels/webgpu/linear-gpu.js';

/**
 * x [..., inFeatures] · weightᵀ [inFeatures, outFeatures] + bias → [..., outFeatures] (f32).
 */
export async function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null, opts: { backend?: BackendName } = {}): Promise<Tensor> {
  for (const [t, name] of [[x, 'x'], [weight, 'weight']] as const) if (!(t instanceof Tensor)) throw new ValueError(`${name} must be a Tensor, got ${t === null ? 'null' : typeof t}`, name);
  if (bias !== null && bias !== undefined && !(bias instanceof Tensor)) throw new ValueError(`bias must be a Tensor or null, got ${typeof bias}`, 'bias');
  if (weight.rank !== 2) throw new ShapeError(`weight must be 2-D [outFeatures, inFeatures], got [${weight.shape.join(', ')}]`, 'weight');
  const [N, K] = weight.shape as [number, number];
  if (x.rank < 1 || x.shape[x.rank - 1] !== K) throw new ShapeError(`x's last dimension is ${x.shape[x.rank - 1]}, weight has inFeatures ${K}`, 'x', 'inFeatures');
  if (bias && (bias.rank !== 1 || bias.shape[0] !== N)) throw new ShapeError(`bias must be [${N}], got [${bias.shape.join(', ')}]`, 'bias', 'outFeatures');
  const M = numel(x.shape.slice(0, -1));
  const outShape = [...x.shape.slice(0, -1), N];
  if (M === 0 || N === 0 || K === 0) {
    // Nothing to multiply: an empty output, or (no input features, as PyTorch's Linear(0, n)) the bias alone.
    const C = new Float32Array(M * N);
    if (bias && K === 0) { const B = bias.toFloat32(); for (let i = 0; i < M; i++) C.set(B, i * N); }
    return new Tensor(C, outShape);
  }
  const backend = await getBackend(opts.backend ?? 'auto');
  const a = x.to('f32').contiguous().reshape([M, K]), w = weight.to('f32').contiguous(), b = bias ? bias.to('f32').contiguous() : null;
  if (backend.name === 'wasm') return (await linearWasm(a, w, b, M, N, K)).reshape(outShape);
  if (backend.name === 'webgpu') return (await gpuLinear(a, w, b, M, N, K)).reshape(outShape);
  const A = a.data as Float32Array, W = w.data as Float32Array, B = b?.data as Float32Array | undefined;
  const C = new Float32Array(M * N);
  for (let i = 0; i < M; i++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += A[i * K + k]! * W[n * K + k]!;
    C[i * N + n] = s + (B ? B[n]! : 0);
  }
  return new Tensor(C, outShape);
}

async function linearWasm(a: Tensor, w: Tensor, b: Tensor | null, M: number, N: number, K: number): Promise<Tensor> {
  const { heap } = await cpuRuntime();
  return heap.exclusive(() => linearWasmOnce(a, w, b, M, N, K));
}

async function linearWasmOnce(a: Tensor, w: Tensor, b: Tensor | null, M: number, N: number, K: number): Promise<Tensor> {
  const { heap, pool } = await cpuRuntime();
  const allocs: number[] = [];
  const put = (src: Float32Array) => { const p = heap.alloc(src.byteLength); allocs.push(p); heap.f32(p, src.length).set(src); return p; };
  try {
    const aPtr = put(a.data as Float32Array), wPtr = put(w.data as Float32Array), bPtr = b ? put(b.data as Float32Array) : 0;
    const cPtr = heap.alloc(Math.max(1, M * N) * 4); allocs.push(cPtr);
    const desc = heap.alloc(16 * 4); allocs.push(desc);
    const d = heap.i32(desc, 16);
    d.fill(0);
    d[MM_A] = aPtr; d[MM_W] = wPtr; d[MM_BIAS] = bPtr; d[MM_C] = cPtr; d[MM_M] = M; d[MM_N] = N; d[MM_K] = K; d[MM_A_ROW] = K; d[MM_C_ROW] = N;
    const counter = heap.alloc(4); allocs.push(counter);
    const jobs = Math.ceil(M / 2) * Math.ceil(N / 64);
    await pool.run(desc, KIND_MATMUL, 0, jobs, counter);
    return new Tensor(Float32Array.from(heap.f32(cPtr, M * N)), [M, N]);
  } finally {
    for (const p of allocs) heap.release(p);
  }
}
