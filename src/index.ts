/// <reference types="@webgpu/types" preserve="true" />
// (preserved into index.d.ts: the published declarations name WebGPU's types, GPUBuffer and GPUDevice among them,
// which @webgpu/types, a dependency, declares.)
/**
 * vlm-attention: fast, inspectable attention for vision-language models.
 * This entry point is browser-safe; Node-only pieces (worker threads, files, Dawn) live in
 * `vlm-attention/node`.
 */
export * from './errors.js';
export * from './tensor/dtype.js';
export { Tensor, type Layout, type TensorInit, tensor, randn, mulberry32, contiguousStrides, numel, copyInto } from './tensor/tensor.js';
export * from './masks/mask.js';
export { planTiles, visitedFraction, type TilePlan } from './masks/tiles.js';
export { attentionReference, attentionReferenceVarlen, type ReferenceOptions, type ReferenceResult } from './reference/attention-ref.js';
export { attention, attentionVarlen, type AttentionResult, type RunOptions, type DeviceRunOptions, type DeviceAttentionResult } from './attention/attention.js';
export { planAttention, planAttentionVarlen, nominalFlops, type AttentionOptions, type VarlenOptions, type AttentionPlan, type TensorLike } from './attention/plan.js';
export { registerBackend, getBackend, listBackends, setAutoOrder, isDeviceTensor, type HostBackend, type BackendName, type DeviceTensor } from './attention/backend.js';
import './kernels/cpu/backend-ts.js';
import './kernels/cpu/wasm-backend.js';
export { configureCpu, MAX_CPU_THREADS, cpuRuntime, cpuTensor, lastKernelStats, type CpuConfig, type CpuRuntime, type KernelStats } from './kernels/cpu/wasm-backend.js';
export type { ReadAheadMode } from './kernels/cpu/read-ahead.js';
export type { ThreadPool, KernelExports } from './kernels/cpu/thread-pool.js';
export { WasmHeap } from './kernels/cpu/wasm-heap.js';
export { probabilityRows, columnSums, headMeans, topKeys, probabilityMatrix, type CaptureOptions, type CaptureInput } from './attention/capture.js';
export * from './viz/png.js';
export * from './viz/colormap.js';
export * from './viz/overlay.js';
export * from './cost/index.js';
export * from './kvcache/index.js';
export { type ArrayDType, type ArrayData, type NdArray, ARRAY_DTYPES, arrayItemSize, ndarrayFromValues, ndarrayToFloat32, ndarrayToFloat64, ndarrayToTensor, tensorToNdArray, parseNpy, writeNpy, parseNpz, writeNpz, pythonShape, type NpyParseOptions } from './io/npy.js';
export { parseSafetensors, parseSafetensorsHeader, writeSafetensors, safetensorsDType, SAFETENSORS_MAX_HEADER_BYTES, type SafetensorsFile, type SafetensorsParseOptions, type SafetensorsEntry } from './io/safetensors.js';
export { CAPTURE_FORMAT, CAPTURE_VERSION, type Capture, type CaptureInfo, type CaptureInit, type CaptureDType, type ArrayInput, makeCapture, encodeCapture, decodeCapture, withHeadImportance, pngSize } from './viz/capture-file.js';
export { residualAugment, attentionRollout, rolloutRows, rolloutColumns, attentionFlow, flowWork, LayeredFlow, type RolloutOptions, type FlowOptions } from './viz/rollout.js';
export { tokenMap, patchMap, renderMap, renderMapPng, overlayMap, layerMatrices, MAP_MODES, type MapMode, type MapSelection, type GridMap, type TokenValues, type RenderOptions } from './viz/maps.js';
export { discoverHeads, savClassify, headDiscoveryJson, headScores, headHeatmap, headHeatmapPng, type HeadExample, type HeadStats, type HeadDiscovery, type HeadRankMethod, type DiscoverOptions } from './viz/heads.js';
export { handleApi, captureAvailability, headImportanceOf, type ApiResponse } from './viz/api.js';
export { syntheticCapture, syntheticScene, SYNTHETIC_OBJECTS, type SyntheticOptions } from './viz/synthetic.js';
export * from './kernels/webgpu/index.js';
export * from './relevance/index.js';
export { linear } from './modules/linear.js';
export { GroupedQueryAttention, MultiHeadAttention, MultiQueryAttention, type AttentionModuleConfig, type AttentionWeights, type ResolvedAttentionConfig, type AttentionModuleClass, type SafetensorsLayerOptions } from './modules/attention-modules.js';
