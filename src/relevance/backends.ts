// The CPU attention backends register themselves on import; the relevance stages need them even
// when this folder is used without the package's entry point (e.g. deep imports, tests).
import '../kernels/cpu/backend-ts.js';
import '../kernels/cpu/wasm-backend.js';
