/** Per-call GPU time (ms) of `encode`: see gpu-time.mjs. */
export function timeGpu(
  device: GPUDevice,
  encode: (encoder: GPUCommandEncoder) => void,
  options?: { warmMs?: number; minMs?: number; samples?: number; maxIters?: number },
): Promise<number>;
