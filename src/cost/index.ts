/**
 * The cost model: FLOPs, bytes, roofline time, KV-cache size and visual-token counts, shared by the
 * benchmarks, the CLI (`vlm-attention cost`), the relevance allocator and the static calculator page.
 * Units: base units (FLOPs, bytes, seconds); printed with decimal prefixes (1 MB = 10^6 bytes).
 */
export {
  attentionCost, attentionCostFromPlan, planAttentionShape, cpuKernelPath, CPU_PREFILL_TILE_Q, CPU_TILE_K,
  SOFTMAX_FLOPS_PER_ELEMENT, SOFTCAP_FLOPS_PER_ELEMENT,
  type AttentionShape, type AttentionCost, type AttentionFlops, type AttentionTiling, type KernelBytes, type CostOptions, type TilingSpec,
} from './attention-cost.js';
export {
  DEVICE_PROFILES, listDevices, deviceProfile, checkProfile,
  type DeviceProfile, type DtypePeaks, type Figure, type FigureLabel,
} from './devices.js';
export { roofline, attentionRoofline, type RooflineInput, type RooflineOptions, type RooflineResult, type AttentionRooflineOptions, type ComputeUnit } from './roofline.js';
export {
  BENCH_SCHEMA, profileFromBenchmark, comparePredictions, shapeFromJson, BENCHMARK_SHAPES, predictBenchmarkShapes,
  type BenchmarkJson, type ShapePrediction, type BenchResult, type JsonAttentionShape, type PredictionRow, type CompareOptions,
} from './benchmark.js';
export { kvCacheSize, maxBatchForMemory, DEFAULT_KV_BLOCK_SIZE, KV_CACHE_DTYPES, type KvCacheInput, type KvCacheSize, type KvCacheDType, type MaxBatchResult } from './kv-cache.js';
export {
  visualTokens, qwen2vlSmartResize, llavaNextBestResolution, internvlGrid, TOKENIZERS, LLAVA_NEXT_PINPOINTS,
  type TokenizerName, type ImageSize, type VisualTokenOptions, type VisualTokens,
} from './visual-tokens.js';
export { encoderFlops, llmFlops, encoderConfig, llmConfig, ENCODERS, LLMS, type EncoderConfig, type LlmConfig, type FlopsBreakdown, type EncoderFlopsInput, type LlmFlopsInput } from './models.js';
export { budgetSavings, VLM_PRESETS, type BudgetSavingsInput, type BudgetSavings, type BudgetSide, type VlmPreset } from './budget.js';
export { runCostConfig, formatCostReport, COST_CONFIG_KEYS, type CostConfig, type CostReport } from './config.js';
export { formatBytes as formatBytesSI, formatFlops as formatFlopsSI, formatSeconds as formatDuration, parseBytes as parseByteSize, formatSI } from './units.js';
export { measureCpu, measureCpuProfile, type CpuMeasurement } from './measure.js';
