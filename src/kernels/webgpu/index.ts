import { registerBackend } from '../../attention/backend.js';
import { webgpuBackend } from './attention-gpu.js';
import { gpuContext } from './device.js';

registerBackend('webgpu', async () => { await gpuContext(); return webgpuBackend; });

export { gpuContext, configureWebGpu, GpuContext, NO_WEBGPU_HELP, type GpuCaps, type WebGpuInit, type SubgroupMatrixConfig } from './device.js';
export { lastGpuStats, setGpuOutputPoisoning, setGpuKernelPreference, setGpuF32Policy, type GpuF32Policy, prepareGpuAttention, GpuTensor, isGpuTensor, readBuffer, TOPK_MAX, type GpuPaged, type GpuCapture, type GpuRunStats, type GpuKernelPreference, type PreparedGpuAttention } from './attention-gpu.js';
export { sgmatGeometry, SGMAT_MAX_HEAD_DIM } from './sgmat.js';
