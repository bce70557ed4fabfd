// Relevance realisation (ARR-COC, corrected): public API of this folder. Browser-safe.
export { planGrid, type GridOptions, type GridPlan, type Region } from './regions.js';
export { type RgbImage, rgbaToRgb, rgbToRgba, resizeRgb, resamplePlanar, checkRgbImage } from './image-ops.js';
export {
  TEXTURE_CHANNELS, NUM_TEXTURE_CHANNELS, CH as TEXTURE_CHANNEL_INDEX, computeTexture, srgbToLab, textureOfColor, poolPatches, poolRegions,
  type TextureArray, type TextureChannel, type TextureOptions,
} from './texture.js';
export { computeTextureGpu } from './texture-gpu.js';
export { parseQuery, lexiconWords, lookupConcept, type Concept, type ConceptToken, type LexiconQuery } from './lexicon.js';
export {
  SCORE_EPS, toDistribution, informationRaw, informationScore, salienceScore, tokensToRegions, participatoryFromAttention, salienceFromAttention,
  participatoryFromEmbeddings, participatoryFromLexicon, lexiconAttentionInputs,
  type AttentionInputs, type AttentionScore, type ScorerRunOptions, type LexiconScoreOptions, type VisualGrid,
} from './scorers.js';
export { opponentProcess, resolveOpponent, type OpponentOptions, type OpponentResult } from './opponent.js';
export { allocateWaterFill, allocateLevels, type Allocation, type WaterFillOptions, type LevelOptions } from './allocate.js';
export {
  realiseTokens, attendRealised, tokenGridShape, adaptiveBounds,
  type RealiseOptions, type RealisedTokens, type LodAttentionOptions, type LodAttentionResult,
} from './realise.js';
export {
  planRelevance, runRelevance, latencyTable, formatLatencyTable, relevancePrecision, regionCover, lexiconQueryFeatures, STAGES, SEED_PLAN_MS,
  type RelevanceOptions, type RelevancePlan, type RelevanceResult, type RelevanceQuery, type LatencyRow, type Stage,
} from './pipeline.js';
export {
  generateScene, demoScene, sceneColourRgb, SCENE_COLOURS, SCENE_TEXTURES, SCENE_SHAPES,
  type Scene, type SceneObject, type SceneOptions, type ObjectSpec, type SceneColour, type SceneTexture, type SceneShape,
} from './scene.js';
export {
  renderRelevancePngs, renderAllocation, renderHtmlReport, allocationRows, formatAllocationTable, buildRelevanceCapture, masksToGrid, fitImage, gridImage,
  type RelevancePngs, type AllocationRow, type ReportContext,
} from './report.js';
export { evaluateRelevance, EVAL_METHODS, type EvaluateOptions, type EvalCase, type EvalSummary, type EvalMethod } from './evaluate.js';
export { decodeImageBrowser } from './browser-image.js';
