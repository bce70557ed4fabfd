// The attention backends register themselves on import; the relevance stages need them even when
// this folder is used without the package's entry point (e.g. deep imports, tests). The WebGPU one
// acquires its device only when first used.
import '../kernels/cpu/backend-ts.js';
import '../kernels/cpu/wasm-backend.js';
import '../kernels/webgpu/index.js';
