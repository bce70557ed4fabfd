/**
 * Device profiles for the roofline: peak FLOP/s per dtype on tensor (matrix) units and on ordinary
 * vector ALUs, memory bandwidth, memory size and on-chip memory. Every figure carries a label:
 *   datasheet  the vendor's published figure (dense, no structured sparsity);
 *   measured   measured on a real device (this project's H200 through WebGPU, the 2-core CPU);
 *   derived    computed from published facts (units × lanes × 2 × clock) where the vendor publishes
 *              no figure; the source string gives the arithmetic.
 * Peaks are per dtype of the inputs with f32 accumulation where the hardware offers a choice
 * (e.g. RTX 4090 f16 tensor: 165.2 TFLOP/s with f32 accumulate, not 330.3 with f16 accumulate).
 * On NVIDIA, the f32 tensor figure is TF32.
 */
import { ValueError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { checkKeys, positive } from './validate.js';

/** Where a figure comes from: the vendor's datasheet (dense), a measurement, or arithmetic on published facts. */
export type FigureLabel = 'datasheet' | 'measured' | 'derived';

/** One number with its provenance. Units: FLOP/s, bytes/s or bytes. */
export interface Figure {
  /** The number in base units (FLOP/s, bytes/s or bytes), > 0. */
  readonly value: number;
  /** datasheet, measured or derived. */
  readonly label: FigureLabel;
  /** The document, measurement or formula behind the value. */
  readonly source: string;
}

/** Peak rates of one dtype: on tensor/matrix units (absent if none) and on vector ALUs. */
export interface DtypePeaks {
  /** FLOP/s on matrix units (tensor cores, subgroup matrix); on NVIDIA, f32 means TF32. */
  readonly tensor?: Figure;
  /** FLOP/s on ordinary vector ALUs (FMA counted as 2 FLOPs). */
  readonly vector?: Figure;
}

/**
 * A device for the roofline: peak FLOP/s, memory bandwidth and sizes, each a labelled Figure
 * (datasheet, measured or derived). Pass one anywhere a device name is accepted; `checkProfile` validates it.
 */
export interface DeviceProfile {
  /** Lookup key, e.g. `h100`. */
  readonly name: string;
  /** Human-readable name, e.g. `NVIDIA H100 SXM5 80GB`. */
  readonly displayName: string;
  /** 'gpu' discrete GPU, 'cpu', or 'soc' for a GPU sharing memory with the CPU (Apple M-series). */
  readonly kind: 'gpu' | 'cpu' | 'soc';
  /** How the figures are reached, e.g. `cuda`, `webgpu`, `wasm-simd`. */
  readonly api: string;
  /** FLOP/s per input dtype. */
  readonly peaks: Readonly<Partial<Record<DType, DtypePeaks>>>;
  /** Main memory (HBM / GDDR / DRAM) bandwidth, bytes/s. */
  readonly memoryBandwidth: Figure;
  /** Main memory size, bytes. */
  readonly memoryBytes: Figure;
  /** On-chip memory that can hold tiles (shared memory + register file, or caches), bytes. */
  readonly onChipBytes: Figure;
  /** Last-level cache, bytes (where published). */
  readonly l2Bytes?: Figure;
  /** Caveats that apply to the whole profile (e.g. which dtypes the API lacks). */
  readonly notes?: string;
}

const ds = (value: number, source: string): Figure => ({ value, label: 'datasheet', source });
const dv = (value: number, source: string): Figure => ({ value, label: 'derived', source });
const ms = (value: number, source: string): Figure => ({ value, label: 'measured', source });
const KiB = 1024, MiB = 1024 ** 2, GiB = 1024 ** 3;

const A100_DS = 'NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB), dense';
const A100_WP = 'NVIDIA A100 Tensor Core GPU Architecture whitepaper, Table 1';
const H100_DS = 'NVIDIA H100 Tensor Core GPU datasheet (SXM5), dense = half the with-sparsity figure';
const H100_WP = 'NVIDIA H100 Tensor Core GPU Architecture whitepaper, Table 3 (SXM5)';
const H200_DS = 'NVIDIA H200 Tensor Core GPU datasheet (SXM), dense = half the with-sparsity figure';
const L4_DS = 'NVIDIA L4 Tensor Core GPU datasheet, dense = half the with-sparsity figure';
const ADA_WP = 'NVIDIA Ada GPU Architecture whitepaper, Appendix A (GeForce RTX 4090)';
const H200_MEASURED = "measured on this project's H200 through Dawn/Vulkan WebGPU (issue 3 bar: f32 FMA 65.5, f16 FMA 66, subgroup-matrix f16→f32 ≈550 TFLOP/s from registers, device copy 4.15 TB/s)";

/**
 * The 2-core CPU this project's CI runs on, through the WebAssembly SIMD128 kernels (Node 20, no
 * relaxed SIMD): `fmaPeak` run on both threads at once, and a 64 MiB typed-array copy. Re-measure
 * with `measureCpuProfile()` (or `vlm-attention cost devices --measure-cpu`).
 */
const CPU2_MEASURED = "measured 2026-11-29 with measureCpu() on the project's shared 2-core machine (Node 20.20.2, WASM SIMD128, no relaxed SIMD; load average ≈1.8 from other jobs, so a lower bound of the idle ceiling; issue 2 quotes ≈100 GFLOP/s idle)";
const CPU2_FMA_FLOPS = 58.2e9; // fmaPeak on 2 threads at once, best of 3 (single thread: 33.0 GFLOP/s)
const CPU2_COPY_BYTES = 16.7e9; // 64 MiB Float32Array copy, read + write bytes, one thread

/**
 * The built-in profiles by name (keys as `listDevices()` lists them). NVIDIA and Apple figures are mostly
 * datasheet, derived where the vendor publishes none (M3/M4 TFLOPS); `cpu-generic` is derived; `h200-webgpu`
 * and `cpu-wasm-2core` are measured. The table is in docs/cost.md.
 */
export const DEVICE_PROFILES: Readonly<Record<string, DeviceProfile>> = Object.freeze({
  a100: {
    name: 'a100', displayName: 'NVIDIA A100 SXM4 80GB', kind: 'gpu', api: 'cuda',
    peaks: {
      f32: { tensor: ds(156e12, `${A100_DS}: TF32 Tensor Core 156 TFLOPS`), vector: ds(19.5e12, `${A100_DS}: FP32 19.5 TFLOPS`) },
      f16: { tensor: ds(312e12, `${A100_DS}: FP16 Tensor Core 312 TFLOPS`), vector: ds(78e12, `${A100_WP}: peak FP16 non-Tensor 78 TFLOPS`) },
      bf16: { tensor: ds(312e12, `${A100_DS}: BF16 Tensor Core 312 TFLOPS`), vector: ds(39e12, `${A100_WP}: peak BF16 non-Tensor 39 TFLOPS`) },
    },
    memoryBandwidth: ds(2039e9, `${A100_DS}: HBM2e 2,039 GB/s`),
    memoryBytes: ds(80 * GiB, `${A100_DS}: 80 GB HBM2e (memory sizes are binary: 80 GiB, as nvidia-smi and the OS count them)`),
    onChipBytes: ds(108 * (164 + 256) * KiB, `${A100_WP}: 108 SMs × (164 KiB shared memory + 256 KiB register file)`),
    l2Bytes: ds(40 * MiB, `${A100_WP}: 40 MB L2`),
  },
  h100: {
    name: 'h100', displayName: 'NVIDIA H100 SXM5 80GB', kind: 'gpu', api: 'cuda',
    peaks: {
      f32: { tensor: ds(494.5e12, `${H100_DS}: TF32 Tensor Core 989 TFLOPS with sparsity`), vector: ds(67e12, `${H100_DS}: FP32 67 TFLOPS`) },
      f16: { tensor: ds(989.5e12, `${H100_DS}: FP16 Tensor Core 1,979 TFLOPS with sparsity`), vector: ds(133.8e12, `${H100_WP}: peak FP16 non-Tensor 133.8 TFLOPS`) },
      bf16: { tensor: ds(989.5e12, `${H100_DS}: BF16 Tensor Core 1,979 TFLOPS with sparsity`), vector: ds(133.8e12, `${H100_WP}: peak BF16 non-Tensor 133.8 TFLOPS`) },
    },
    memoryBandwidth: ds(3.35e12, `${H100_DS}: HBM3 3.35 TB/s`),
    memoryBytes: ds(80 * GiB, `${H100_DS}: 80 GB HBM3 (memory sizes are binary: 80 GiB, as nvidia-smi and the OS count them)`),
    onChipBytes: ds(132 * (228 + 256) * KiB, `${H100_WP}: 132 SMs × (228 KiB shared memory + 256 KiB register file)`),
    l2Bytes: ds(50 * MiB, `${H100_WP}: 50 MB L2`),
  },
  h200: {
    name: 'h200', displayName: 'NVIDIA H200 SXM 141GB', kind: 'gpu', api: 'cuda',
    peaks: {
      f32: { tensor: ds(494.5e12, `${H200_DS}: TF32 Tensor Core 989 TFLOPS with sparsity`), vector: ds(67e12, `${H200_DS}: FP32 67 TFLOPS`) },
      f16: { tensor: ds(989.5e12, `${H200_DS}: FP16 Tensor Core 1,979 TFLOPS with sparsity`), vector: ds(133.8e12, `${H100_WP}: same GH100 SMs as H100 SXM5, FP16 non-Tensor 133.8 TFLOPS`) },
      bf16: { tensor: ds(989.5e12, `${H200_DS}: BF16 Tensor Core 1,979 TFLOPS with sparsity`), vector: ds(133.8e12, `${H100_WP}: same GH100 SMs as H100 SXM5, BF16 non-Tensor 133.8 TFLOPS`) },
    },
    memoryBandwidth: ds(4.8e12, `${H200_DS}: HBM3e 4.8 TB/s`),
    memoryBytes: ds(141 * GiB, `${H200_DS}: 141 GB HBM3e (memory sizes are binary: 141 GiB, as nvidia-smi and the OS count them)`),
    onChipBytes: ds(132 * (228 + 256) * KiB, `${H100_WP}: 132 SMs × (228 KiB shared memory + 256 KiB register file)`),
    l2Bytes: ds(50 * MiB, `${H100_WP}: 50 MB L2`),
  },
  'h200-webgpu': {
    name: 'h200-webgpu', displayName: 'NVIDIA H200 through WebGPU (Dawn/Vulkan), measured', kind: 'gpu', api: 'webgpu',
    peaks: {
      f32: { vector: ms(65.5e12, `${H200_MEASURED}: f32 FMA 65.5 TFLOP/s`) },
      f16: { tensor: ms(550e12, `${H200_MEASURED}: subgroup-matrix f16→f32 ≈550 TFLOP/s, operands in registers (an upper bound for kernels that load tiles from memory)`), vector: ms(66e12, `${H200_MEASURED}: f16 FMA 66 TFLOP/s`) },
    },
    memoryBandwidth: ms(4.15e12, `${H200_MEASURED}: device-to-device copy 4.15 TB/s`),
    memoryBytes: ds(141 * GiB, `${H200_DS}: 141 GB HBM3e (memory sizes are binary: 141 GiB, as nvidia-smi and the OS count them)`),
    onChipBytes: ds(132 * (228 + 256) * KiB, `${H100_WP}: 132 SMs × (228 KiB shared memory + 256 KiB register file); WebGPU exposes at most maxComputeWorkgroupStorageSize per workgroup`),
    l2Bytes: ds(50 * MiB, `${H100_WP}: 50 MB L2`),
    notes: 'bf16 is not available in WGSL; f32 has no tensor path through WebGPU.',
  },
  l4: {
    name: 'l4', displayName: 'NVIDIA L4 24GB', kind: 'gpu', api: 'cuda',
    peaks: {
      f32: { tensor: ds(60e12, `${L4_DS}: TF32 Tensor Core 120 TFLOPS with sparsity`), vector: ds(30.3e12, `${L4_DS}: FP32 30.3 TFLOPS`) },
      f16: { tensor: ds(121e12, `${L4_DS}: FP16 Tensor Core 242 TFLOPS with sparsity`), vector: dv(30.3e12, `${ADA_WP}: Ada runs FP16 non-Tensor at the FP32 rate; L4 FP32 30.3 TFLOPS`) },
      bf16: { tensor: ds(121e12, `${L4_DS}: BF16 Tensor Core 242 TFLOPS with sparsity`), vector: dv(30.3e12, `${ADA_WP}: Ada runs BF16 non-Tensor at the FP32 rate; L4 FP32 30.3 TFLOPS`) },
    },
    memoryBandwidth: ds(300e9, `${L4_DS}: GDDR6 300 GB/s`),
    memoryBytes: ds(24 * GiB, `${L4_DS}: 24 GB GDDR6 (memory sizes are binary: 24 GiB, as nvidia-smi and the OS count them)`),
    onChipBytes: dv(58 * (100 + 256) * KiB, `${ADA_WP}: 58 SMs (L4) × (100 KiB shared memory + 256 KiB register file)`),
    l2Bytes: ds(48 * MiB, 'NVIDIA L4 product brief: 48 MB L2'),
  },
  rtx4090: {
    name: 'rtx4090', displayName: 'NVIDIA GeForce RTX 4090 24GB', kind: 'gpu', api: 'cuda',
    peaks: {
      f32: { tensor: ds(82.6e12, `${ADA_WP}: peak TF32 Tensor 82.6 TFLOPS`), vector: ds(82.6e12, `${ADA_WP}: peak FP32 82.6 TFLOPS`) },
      f16: { tensor: ds(165.2e12, `${ADA_WP}: peak FP16 Tensor with FP32 accumulate 165.2 TFLOPS`), vector: ds(82.6e12, `${ADA_WP}: peak FP16 non-Tensor 82.6 TFLOPS`) },
      bf16: { tensor: ds(165.2e12, `${ADA_WP}: peak BF16 Tensor with FP32 accumulate 165.2 TFLOPS`), vector: ds(82.6e12, `${ADA_WP}: peak BF16 non-Tensor 82.6 TFLOPS`) },
    },
    memoryBandwidth: ds(1008e9, `${ADA_WP}: GDDR6X 1,008 GB/s`),
    memoryBytes: ds(24 * GiB, `${ADA_WP}: 24 GB GDDR6X (memory sizes are binary: 24 GiB, as nvidia-smi and the OS count them)`),
    onChipBytes: ds(128 * (100 + 256) * KiB, `${ADA_WP}: 128 SMs × (100 KiB shared memory + 256 KiB register file)`),
    l2Bytes: ds(72 * MiB, `${ADA_WP}: 72 MB L2`),
  },
  'apple-m2': {
    name: 'apple-m2', displayName: 'Apple M2 (10-core GPU)', kind: 'soc', api: 'metal/webgpu',
    peaks: {
      f32: { vector: ds(3.6e12, 'Apple newsroom, "Apple unveils M2" (June 2022): GPU up to 3.6 TFLOPS') },
      f16: { vector: dv(3.6e12, 'Apple GPU family 8 runs f16 at the f32 rate; M2 GPU 3.6 TFLOPS (Apple). simdgroup_matrix runs on the same ALUs') },
    },
    memoryBandwidth: ds(100e9, 'Apple newsroom (June 2022): 100 GB/s unified memory bandwidth'),
    memoryBytes: ds(24 * GiB, 'Apple M2 specifications: up to 24 GB unified memory (binary: 24 GiB)'),
    onChipBytes: dv(10 * 32 * KiB, '10 GPU cores × 32 KiB threadgroup memory (Metal feature set tables)'),
  },
  'apple-m3': {
    name: 'apple-m3', displayName: 'Apple M3 (10-core GPU)', kind: 'soc', api: 'metal/webgpu',
    peaks: {
      f32: { vector: dv(3.58e12, '10 GPU cores × 128 ALUs × 2 FLOP × ≈1.398 GHz (clock from third-party spec databases; Apple publishes no TFLOPS for M3)') },
      f16: { vector: dv(3.58e12, 'f16 at the f32 rate on Apple GPUs; M3 f32 figure derived as above') },
    },
    memoryBandwidth: ds(100e9, 'Apple M3 MacBook Air technical specifications: 100 GB/s memory bandwidth'),
    memoryBytes: ds(24 * GiB, 'Apple M3 MacBook Air technical specifications: up to 24 GB unified memory (binary: 24 GiB)'),
    onChipBytes: dv(10 * 32 * KiB, '10 GPU cores × 32 KiB threadgroup memory (Metal feature set tables)'),
  },
  'apple-m4': {
    name: 'apple-m4', displayName: 'Apple M4 (10-core GPU)', kind: 'soc', api: 'metal/webgpu',
    peaks: {
      f32: { vector: dv(3.76e12, '1,280 ALUs × 2 FLOP × ≈1.47 GHz (third-party spec databases; Apple publishes no TFLOPS for M4)') },
      f16: { vector: dv(3.76e12, 'f16 at the f32 rate on Apple GPUs; M4 f32 figure derived as above') },
    },
    memoryBandwidth: ds(120e9, 'Apple newsroom, "Apple introduces M4 chip" (May 2024): 120 GB/s memory bandwidth'),
    memoryBytes: ds(32 * GiB, 'Apple Mac mini (M4) technical specifications: up to 32 GB unified memory (binary: 32 GiB)'),
    onChipBytes: dv(10 * 32 * KiB, '10 GPU cores × 32 KiB threadgroup memory (Metal feature set tables)'),
  },
  'cpu-generic': {
    name: 'cpu-generic', displayName: 'Generic 8-core AVX2 desktop CPU (native code)', kind: 'cpu', api: 'native',
    peaks: {
      f32: { vector: dv(768e9, '8 cores × 2 FMA ports × 8 f32 lanes (AVX2) × 2 FLOP × 3.0 GHz') },
      f16: { vector: dv(768e9, 'f16/bf16 converted to f32 (F16C); same rate as f32') },
      bf16: { vector: dv(768e9, 'bf16 converted to f32; same rate as f32') },
    },
    memoryBandwidth: dv(76.8e9, 'dual-channel DDR5-4800: 2 channels × 8 bytes × 4.8 GT/s'),
    memoryBytes: dv(32e9, 'a typical 32 GB desktop'),
    onChipBytes: dv(32 * MiB, '8 × 1 MiB L2 + 24 MiB L3 (typical)'),
  },
  'cpu-wasm-2core': {
    name: 'cpu-wasm-2core', displayName: "This project's 2-core CPU, WebAssembly SIMD128 (measured)", kind: 'cpu', api: 'wasm-simd',
    peaks: {
      f32: { vector: ms(CPU2_FMA_FLOPS, `${CPU2_MEASURED}: fmaPeak (12 f32x4 FMA chains) on both threads at once, 58.2 GFLOP/s`) },
      f16: { vector: ms(CPU2_FMA_FLOPS, `${CPU2_MEASURED}; f16/bf16 are widened to f32 in the kernel, same rate`) },
      bf16: { vector: ms(CPU2_FMA_FLOPS, `${CPU2_MEASURED}; f16/bf16 are widened to f32 in the kernel, same rate`) },
    },
    memoryBandwidth: ms(CPU2_COPY_BYTES, `${CPU2_MEASURED}: 64 MiB Float32Array copy on one thread, 16.7 GB/s read + write`),
    memoryBytes: dv(8e9, 'typical CI runner memory (not measured)'),
    onChipBytes: dv(2 * 2 * MiB, '2 cores × ~2 MiB of L2 (typical server core, not measured)'),
  },
});


/** Names of the built-in profiles. */
export function listDevices(): string[] {
  return Object.keys(DEVICE_PROFILES);
}

/**
 * A built-in profile by name (case-insensitive; `_` and spaces read as `-`), or the profile itself.
 * Unknown names → ValueError listing the known ones.
 */
export function deviceProfile(name: string | DeviceProfile): DeviceProfile {
  if (typeof name === 'object' && name !== null) return checkProfile(name);
  const key = String(name).trim().toLowerCase().replace(/[_\s]+/g, '-');
  const p = DEVICE_PROFILES[key];
  if (!p) throw new ValueError(`unknown device '${name}'; known devices: ${listDevices().join(', ')}`, 'device');
  return p;
}

function checkFigure(f: unknown, path: string): void {
  if (!f || typeof f !== 'object') throw new ValueError(`${path} must be a figure { value, label, source }`, path);
  const fig = f as Figure;
  positive(fig.value, `${path}.value`);
  if (fig.label !== 'datasheet' && fig.label !== 'measured' && fig.label !== 'derived') {
    throw new ValueError(`${path}.label must be datasheet, measured or derived, got ${JSON.stringify(fig.label)}`, `${path}.label`);
  }
  if (typeof fig.source !== 'string' || !fig.source) throw new ValueError(`${path}.source must be a non-empty string`, `${path}.source`);
}

/** Validates a user-supplied profile (every figure labelled, positive values). */
export function checkProfile(p: DeviceProfile): DeviceProfile {
  if (!p || typeof p !== 'object') throw new ValueError('device profile must be an object', 'device');
  if (typeof p.name !== 'string' || !p.name) throw new ValueError('device profile needs a name', 'device.name');
  if (!p.peaks || typeof p.peaks !== 'object') throw new ValueError('device profile needs peaks', 'device.peaks');
  checkKeys(p.peaks, ['f32', 'f16', 'bf16'], 'device.peaks');
  let any = false;
  for (const [dt, pk] of Object.entries(p.peaks)) {
    if (!pk) continue;
    checkKeys(pk, ['tensor', 'vector'], `device.peaks.${dt}`);
    if (pk.tensor) { checkFigure(pk.tensor, `device.peaks.${dt}.tensor`); any = true; }
    if (pk.vector) { checkFigure(pk.vector, `device.peaks.${dt}.vector`); any = true; }
  }
  if (!any) throw new ValueError('device profile has no peak FLOP/s', 'device.peaks');
  checkFigure(p.memoryBandwidth, 'device.memoryBandwidth');
  if (p.memoryBytes) checkFigure(p.memoryBytes, 'device.memoryBytes');
  if (p.onChipBytes) checkFigure(p.onChipBytes, 'device.onChipBytes');
  return p;
}
