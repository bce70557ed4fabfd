/**
 * Paged KV cache: block pool, block tables, prefix caching with image-aware hashes, int8 blocks
 * with Hadamard rotation, the paged-attention reference, sizing, simulations and the vision-feature
 * cache. Browser-safe; the Redis store is exported from `vlm-attention/node`.
 */
export { PagedKvCache, planKvCache, type PagedKvCacheOptions, type KvCachePlan, type SeqId, type ImageSpan, type AddSequenceOptions, type AddSequenceResult, type KvInput, type BatchTables, type KvCacheStats } from './kv-cache.js';
export { BlockPool } from './block-pool.js';
export { KvBlockStorage, bytesPerBlock, type KvDType, type KvLayerStorage, type KvStorageObserver } from './kv-storage.js';
export { GpuKvMirror, gpuKvMirror, type GpuKvLayer } from './kv-gpu.js';
export type { InFormat as GpuKvFormat } from '../kernels/webgpu/variants.js';
export { sha256, blockHash, noneHash, imageContentHash, type ExtraKey, type PixelData } from './hash.js';
export { rotateQuery, unrotateOutput, rotationSigns, hadamardChunks, makeRotation, int8Scale, int8Level, int8ScaleOf, storedInt8Scale, quantizeInt8, dequantizeInt8, INT8_GAUSSIAN_C, type HadamardRotation, type Int8Grid, type Int8GridMode, type KRounding, type RotationSource } from './quant.js';
export { pagedAttentionReference, gatherContiguous, packBlockTables, type PagedReferenceOptions, type PagedReferenceResult, type BlockTablesInput, type KvStorageLike } from './paged-reference.js';
export { kvVariants, memoryWaste, type AttentionVariantKv, type WasteReport } from './calculator.js';
export { simulateWaste, simulateImagePrefix, simulateServing, IMAGE_PAD_TOKEN, type WasteSimulation, type ImagePrefixOptions, type ImagePrefixReport, type PromptOrder, type ServingOptions, type ServingReport } from './simulate.js';
export { VisionFeatureCache, MemoryFeatureStore, featureKey, canonicalJson, encodeTensor, decodeTensor, type FeatureStore, type FeatureKeyInput, type VisionFeatureCacheOptions, type FeatureCacheStats } from './feature-cache.js';
export { attentionPaged, type PagedAttentionOptions } from './paged-attention.js';
