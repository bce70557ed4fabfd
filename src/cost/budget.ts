/**
 * What a visual-token budget saves end to end: the LLM's prefill FLOPs (attention and total), its KV
 * cache, and the KV bytes each decode step reads, with the model's native visual-token count as the
 * baseline. The vision encoder still runs at native resolution (its FLOPs are reported, unchanged);
 * a budget acts on the tokens the LLM sees, as ARR-COC, FastV or VisionZip do.
 *
 * Sequence = visual tokens + textTokens (prompt), then generatedTokens decoded one by one.
 */
import { DTypeError, ValueError } from '../errors.js';
import { DTYPES, type DType } from '../tensor/dtype.js';
import type { TilingSpec } from './attention-cost.js';
import { KV_CACHE_DTYPES, type KvCacheDType, kvCacheSize } from './kv-cache.js';
import { type LlmConfig, encoderFlops, llmConfig, llmFlops } from './models.js';
import { type ImageSize, type TokenizerName, type VisualTokenOptions, visualTokens } from './visual-tokens.js';
import { checkKeys, dim, dimOr, oneOf } from './validate.js';

/** A VLM for `budgetSavings`: its tokeniser, vision encoder and LLM. */
export interface VlmPreset {
  /** Key in VLM_PRESETS. */
  name: string;
  tokenizer: TokenizerName;
  /** Key in ENCODERS. */
  encoder: string;
  /** Key in LLMS. */
  llm: string;
}

/** The VLMs `budgetSavings` knows, by name. */
export const VLM_PRESETS: Readonly<Record<string, VlmPreset>> = Object.freeze({
  'llava-1.5-7b': { name: 'llava-1.5-7b', tokenizer: 'clip-vit-l14-336', encoder: 'clip-vit-l14', llm: 'vicuna-7b' },
  'llava-next-7b': { name: 'llava-next-7b', tokenizer: 'llava-next', encoder: 'clip-vit-l14', llm: 'vicuna-7b' },
  'qwen2-vl-7b': { name: 'qwen2-vl-7b', tokenizer: 'qwen2-vl', encoder: 'qwen2-vl-vit', llm: 'qwen2-vl-7b' },
  'qwen2-vl-2b': { name: 'qwen2-vl-2b', tokenizer: 'qwen2-vl', encoder: 'qwen2-vl-vit-2b', llm: 'qwen2-vl-2b' },
  'internvl2-8b': { name: 'internvl2-8b', tokenizer: 'internvl', encoder: 'internvit-300m', llm: 'internlm2.5-7b' },
});

/** Input of `budgetSavings`: a model, an image, and the visual-token budget. */
export interface BudgetSavingsInput {
  /** A VLM preset name (see VLM_PRESETS). */
  model: string;
  /** Image size; needed by dynamic-resolution tokenisers. */
  image?: ImageSize;
  /** Visual tokens the LLM gets under the budget (e.g. 1600 from the relevance allocator). */
  budget: number;
  /** Override the preset's LLM (name or config). */
  llm?: string | LlmConfig;
  /** Prompt text tokens; default 32. */
  textTokens?: number;
  /** Decoded tokens; default 0. */
  generatedTokens?: number;
  /** Compute dtype; default 'f16'. */
  dtype?: DType;
  /** KV-cache dtype; default the compute dtype. */
  kvDtype?: KvCacheDType;
  /** Sequences, one image each; default 1. */
  batch?: number;
  /** Options of the preset's tokeniser (see VisualTokenOptions). */
  tokenizerOptions?: VisualTokenOptions;
  /** Tiles for the attention counts; default 'cpu'. */
  tiling?: TilingSpec;
}

/** One side of the comparison (native or budget): token counts per sequence, FLOPs and bytes over the batch. */
export interface BudgetSide {
  /** Visual tokens the LLM gets per image: the native count or the budget. */
  visualTokens: number;
  /** visual + text tokens at prefill. */
  prefillTokens: number;
  /** LLM attention FLOPs of the prefill, all layers. */
  attentionFlops: number;
  /** All LLM FLOPs of the prefill (projections, MLP, attention, logits of one token). */
  llmFlops: number;
  /** KV cache after prefill and generation, all layers. */
  kvBytes: number;
  /** KV bytes the last decode step reads (the cache it attends over), all layers. */
  decodeStepKvBytes: number;
}

/** What `budgetSavings` returns: both sides, their difference and their ratio. */
export interface BudgetSavings {
  /** The preset's name. */
  model: string;
  /** The LLM config's name. */
  llm: string;
  /** The native tokenisation. */
  baseline: BudgetSide;
  /** With `budget` visual tokens. */
  withBudget: BudgetSide;
  /** baseline − withBudget (negative when the budget exceeds the native count). */
  saved: { visualTokens: number; attentionFlops: number; llmFlops: number; kvBytes: number; decodeStepKvBytes: number };
  /** withBudget / baseline (1 when both are 0, Infinity when only the baseline is). */
  ratio: { attentionFlops: number; llmFlops: number; kvBytes: number };
  /** Vision encoder FLOPs over the batch (unchanged by the budget). */
  encoderFlops: number;
  /** How the native count was reached (VisualTokens.detail). */
  tokenizerDetail: string;
}

function side(llm: LlmConfig, visual: number, text: number, generated: number, batch: number, dtype: DType, kvDtype: KvCacheDType, tiling?: TilingSpec): BudgetSide {
  const prefill = visual + text;
  const f = llmFlops({ llm, newTokens: prefill, batch, dtype, tiling });
  const kv = kvCacheSize({ numLayers: llm.numLayers, numKvHeads: llm.numKvHeads, headDim: llm.headDim, seqLen: prefill + generated, batch, dtype: kvDtype });
  return {
    visualTokens: visual, prefillTokens: prefill, attentionFlops: f.attention, llmFlops: f.total, kvBytes: kv.totalBytes,
    decodeStepKvBytes: generated > 0 ? kv.bytesPerToken * (prefill + generated - 1) * batch : 0,
  };
}

/**
 * End-to-end savings of giving the LLM `budget` visual tokens instead of the model's native count.
 * @example budgetSavings({ model: 'qwen2-vl-7b', image: { width: 1024, height: 1024 }, budget: 400 })
 */
export function budgetSavings(input: BudgetSavingsInput): BudgetSavings {
  if (!input || typeof input !== 'object') throw new ValueError('budgetSavings needs { model, budget, … }', 'input');
  checkKeys(input, ['model', 'image', 'budget', 'llm', 'textTokens', 'generatedTokens', 'dtype', 'kvDtype', 'batch', 'tokenizerOptions', 'tiling'], '');
  const preset = VLM_PRESETS[oneOf(input.model, Object.keys(VLM_PRESETS), 'model')]!;
  const llm = llmConfig(input.llm ?? preset.llm);
  const budget = dim(input.budget, 'budget', { min: 0 });
  const text = dimOr(input.textTokens, 32, 'textTokens', { min: 0 });
  const generated = dimOr(input.generatedTokens, 0, 'generatedTokens', { min: 0 });
  const batch = dimOr(input.batch, 1, 'batch');
  const dtype = input.dtype === undefined ? 'f16' : oneOf(input.dtype, DTYPES, 'dtype', DTypeError);
  const kvDtype = input.kvDtype === undefined ? dtype : oneOf(input.kvDtype, KV_CACHE_DTYPES, 'kvDtype', DTypeError);
  const vt = visualTokens(preset.tokenizer, input.image, input.tokenizerOptions ?? {});
  const base = side(llm, vt.llmTokens, text, generated, batch, dtype, kvDtype, input.tiling);
  const withBudget = side(llm, budget, text, generated, batch, dtype, kvDtype, input.tiling);
  const enc = encoderFlops({ encoder: preset.encoder, seqLen: vt.encoderSeqLen, passes: vt.encoderPasses, outputTokens: vt.llmTokens, dtype, tiling: input.tiling });
  const r = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : a / b);
  return {
    model: preset.name, llm: llm.name, baseline: base, withBudget,
    saved: {
      visualTokens: base.visualTokens - budget, attentionFlops: base.attentionFlops - withBudget.attentionFlops,
      llmFlops: base.llmFlops - withBudget.llmFlops, kvBytes: base.kvBytes - withBudget.kvBytes,
      decodeStepKvBytes: base.decodeStepKvBytes - withBudget.decodeStepKvBytes,
    },
    ratio: { attentionFlops: r(withBudget.attentionFlops, base.attentionFlops), llmFlops: r(withBudget.llmFlops, base.llmFlops), kvBytes: r(withBudget.kvBytes, base.kvBytes) },
    encoderFlops: enc.total * batch,
    tokenizerDetail: vt.detail,
  };
}
