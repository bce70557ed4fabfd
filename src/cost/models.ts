/**
 * FLOPs of whole vision encoders and LLM layers from small configs, so that attention's share of a
 * VLM's work is visible. Matmuls count 2 FLOPs per multiply-add; attention comes from
 * `attentionCost` (the kernels' tile classifier, CPU 64×64 tiles unless `tiling` says otherwise).
 * Norms, activations, biases, RoPE and residual adds are not counted (each is O(N·d), under 1% here).
 *
 *   ViT layer, N positions, width d, MLP m:     QKV 6·N·d² + out 2·N·d² + MLP 4·N·d·m + attention
 *   LLM layer, N new tokens, H/Hk heads of hd:  Q 2·N·d·H·hd + KV 4·N·d·Hk·hd + O 2·N·H·hd·d
 *                                               + gated MLP 6·N·d·ffn + causal attention over the KV
 * Configs are the published ones (Hugging Face config.json of each model).
 */
import { ValueError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { type TilingSpec, attentionCost } from './attention-cost.js';
import { checkHeads, checkKeys, dim, dimOr } from './validate.js';

/** A vision encoder (ViT) as the FLOP model needs it; the built-in ones are in ENCODERS. */
export interface EncoderConfig {
  /** Key in ENCODERS, or your own label. */
  name: string;
  /** Transformer layers. */
  numLayers: number;
  /** Model width d. */
  hiddenSize: number;
  /** Attention heads; headDim = hiddenSize / numHeads, which must divide. */
  numHeads: number;
  /** MLP inner width. */
  intermediateSize: number;
  /** Gated MLP (three matrices) instead of two. Default false. */
  gatedMlp?: boolean;
  /** Patch side in pixels. */
  patchSize: number;
  /** Input channels × temporal patch (3, or 3·2 for Qwen2-VL's temporal patch of 2). */
  patchChannels: number;
  /** Projector into the LLM: linear layers [in, out] applied per LLM token. */
  projector: readonly (readonly [number, number])[];
}

/** An LLM as the FLOP model needs it; the built-in ones are in LLMS. */
export interface LlmConfig {
  /** Key in LLMS, or your own label. */
  name: string;
  /** Decoder layers. */
  numLayers: number;
  /** Model width d. */
  hiddenSize: number;
  /** Query heads. */
  numHeads: number;
  /** K/V heads: numHeads for MHA, fewer for GQA; must divide numHeads. */
  numKvHeads: number;
  /** Per head; need not be hiddenSize / numHeads. */
  headDim: number;
  /** Inner width of the gated MLP (three matrices). */
  intermediateSize: number;
  /** LM-head outputs: the logits counted for one token per sequence. */
  vocabSize: number;
}

/** Built-in vision encoders by name, from each model's published config.json. */
export const ENCODERS: Readonly<Record<string, EncoderConfig>> = Object.freeze({
  'clip-vit-l14': { name: 'clip-vit-l14', numLayers: 24, hiddenSize: 1024, numHeads: 16, intermediateSize: 4096, patchSize: 14, patchChannels: 3, projector: [[1024, 4096], [4096, 4096]] },
  'siglip-so400m': { name: 'siglip-so400m', numLayers: 27, hiddenSize: 1152, numHeads: 16, intermediateSize: 4304, patchSize: 14, patchChannels: 3, projector: [[1152, 2048]] },
  'qwen2-vl-vit': { name: 'qwen2-vl-vit', numLayers: 32, hiddenSize: 1280, numHeads: 16, intermediateSize: 5120, patchSize: 14, patchChannels: 6, projector: [[5120, 5120], [5120, 3584]] },
  'qwen2-vl-vit-2b': { name: 'qwen2-vl-vit-2b', numLayers: 32, hiddenSize: 1280, numHeads: 16, intermediateSize: 5120, patchSize: 14, patchChannels: 6, projector: [[5120, 5120], [5120, 1536]] },
  'internvit-300m': { name: 'internvit-300m', numLayers: 24, hiddenSize: 1024, numHeads: 16, intermediateSize: 4096, patchSize: 14, patchChannels: 3, projector: [[4096, 4096], [4096, 4096]] },
});

/** Built-in LLMs by name, from each model's published config.json. */
export const LLMS: Readonly<Record<string, LlmConfig>> = Object.freeze({
  'vicuna-7b': { name: 'vicuna-7b', numLayers: 32, hiddenSize: 4096, numHeads: 32, numKvHeads: 32, headDim: 128, intermediateSize: 11008, vocabSize: 32000 },
  'llama-3-8b': { name: 'llama-3-8b', numLayers: 32, hiddenSize: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 14336, vocabSize: 128256 },
  'qwen2-vl-7b': { name: 'qwen2-vl-7b', numLayers: 28, hiddenSize: 3584, numHeads: 28, numKvHeads: 4, headDim: 128, intermediateSize: 18944, vocabSize: 152064 },
  'qwen2-vl-2b': { name: 'qwen2-vl-2b', numLayers: 28, hiddenSize: 1536, numHeads: 12, numKvHeads: 2, headDim: 128, intermediateSize: 8960, vocabSize: 151936 },
  'internlm2.5-7b': { name: 'internlm2.5-7b', numLayers: 32, hiddenSize: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, intermediateSize: 14336, vocabSize: 92544 },
});

function lookup<T>(table: Readonly<Record<string, T>>, v: string | T, what: string): T {
  if (typeof v !== 'string') return v;
  const c = table[v];
  if (!c) throw new ValueError(`unknown ${what} '${v}'; known: ${Object.keys(table).join(', ')}`, what);
  return c;
}

const ENCODER_KEYS = ['name', 'numLayers', 'hiddenSize', 'numHeads', 'intermediateSize', 'gatedMlp', 'patchSize', 'patchChannels', 'projector'];
const LLM_KEYS = ['name', 'numLayers', 'hiddenSize', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'vocabSize'];

/** Validates an encoder config (by name or object). */
export function encoderConfig(v: string | EncoderConfig): EncoderConfig {
  const c = lookup(ENCODERS, v, 'encoder');
  checkKeys(c, ENCODER_KEYS, 'encoder');
  for (const k of ['numLayers', 'hiddenSize', 'numHeads', 'intermediateSize', 'patchSize', 'patchChannels'] as const) dim(c[k], k, { path: 'encoder' });
  if (c.hiddenSize % c.numHeads !== 0) throw new ValueError(`encoder.hiddenSize (${c.hiddenSize}) must be divisible by numHeads (${c.numHeads})`, 'encoder.numHeads');
  // A config from JSON may leave the projector out: none (encoderFlops reads it as a list of layers).
  const projector = c.projector ?? [];
  if (!Array.isArray(projector)) throw new ValueError('encoder.projector must be a list of [in, out] layer sizes', 'encoder.projector');
  projector.forEach((l, i) => {
    if (!Array.isArray(l)) throw new ValueError(`encoder.projector[${i}] must be [in, out]`, 'encoder.projector');
    dim(l[0], 'in', { path: `encoder.projector[${i}]` }); dim(l[1], 'out', { path: `encoder.projector[${i}]` });
  });
  return c.projector ? c : { ...c, projector };
}

/** Validates an LLM config (by name or object). */
export function llmConfig(v: string | LlmConfig): LlmConfig {
  const c = lookup(LLMS, v, 'llm');
  checkKeys(c, LLM_KEYS, 'llm');
  for (const k of ['numLayers', 'hiddenSize', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'vocabSize'] as const) dim(c[k], k, { path: 'llm' });
  checkHeads(c.numHeads, c.numKvHeads, 'llm');
  return c;
}

/** FLOPs of a model by part (2 per multiply-add); norms, activations, biases and RoPE not counted. */
export interface FlopsBreakdown {
  /** QKV and output projections. */
  projections: number;
  /** MLP: two matrices, or three when gated (LLMs always are). */
  mlp: number;
  /** Attention (QKᵀ, softmax, PV) as the kernels count it. */
  attention: number;
  /** Patch embedding (encoders) or LM head (LLMs: the logits of one token). */
  embedOrHead: number;
  /** Projector into the LLM (encoders only). */
  projector: number;
  /** Sum of the five parts. */
  total: number;
  /** attention / total. */
  attentionShare: number;
}

function breakdown(projections: number, mlp: number, attention: number, embedOrHead: number, projector: number): FlopsBreakdown {
  const total = projections + mlp + attention + embedOrHead + projector;
  return { projections, mlp, attention, embedOrHead, projector, total, attentionShare: total ? attention / total : 0 };
}

/** Input of `encoderFlops`: one image through a vision encoder. */
export interface EncoderFlopsInput {
  /** A name in ENCODERS, or a config. */
  encoder: string | EncoderConfig;
  /** Positions per encoder pass (patches + CLS), e.g. `visualTokens(...).encoderSeqLen`. */
  seqLen: number;
  /** Passes (tiles); default 1. */
  passes?: number;
  /** LLM tokens leaving the projector (after merge / pixel shuffle); default seqLen·passes. */
  outputTokens?: number;
  /** Passed to `attentionCost` (default 'f16'); FLOP counts do not depend on it. */
  dtype?: DType;
  /** Tiles for the attention count; default 'cpu'. */
  tiling?: TilingSpec;
}

/** FLOPs of a vision encoder over one image (all passes), attention counted by the kernel model. */
export function encoderFlops(input: EncoderFlopsInput): FlopsBreakdown {
  checkKeys(input, ['encoder', 'seqLen', 'passes', 'outputTokens', 'dtype', 'tiling'], '');
  const c = encoderConfig(input.encoder);
  const n = dim(input.seqLen, 'seqLen'), passes = dimOr(input.passes, 1, 'passes');
  const out = dimOr(input.outputTokens, n * passes, 'outputTokens', { min: 0 });
  const d = c.hiddenSize, L = c.numLayers, tokens = n * passes;
  const att = attentionCost({ batch: passes, seqLenQ: n, numHeads: c.numHeads, headDim: d / c.numHeads, dtype: input.dtype }, { tiling: input.tiling });
  const mlpMats = c.gatedMlp ? 3 : 2;
  const projections = L * 2 * tokens * d * 4 * d;
  const mlp = L * 2 * tokens * d * c.intermediateSize * mlpMats;
  const embed = 2 * tokens * c.patchChannels * c.patchSize * c.patchSize * d;
  const projector = c.projector.reduce((s, [a, b]) => s + 2 * out * a * b, 0);
  return breakdown(projections, mlp, L * att.flops.total, embed, projector);
}

/** Input of `llmFlops`: a prefill or decode step through all LLM layers. */
export interface LlmFlopsInput {
  /** A name in LLMS, or a config. */
  llm: string | LlmConfig;
  /** New tokens processed (prefill length, or 1 for a decode step). */
  newTokens: number;
  /** Tokens already in the KV cache; default 0. Attention spans pastTokens + newTokens keys, causal. */
  pastTokens?: number;
  /** Sequences, each with newTokens new tokens; default 1. */
  batch?: number;
  /** Passed to `attentionCost` (default 'f16'); FLOP counts do not depend on it. */
  dtype?: DType;
  /** Tiles for the attention count; default 'cpu'. */
  tiling?: TilingSpec;
}

/** FLOPs of all LLM layers for `newTokens` new tokens per sequence (plus the logits of one token each). */
export function llmFlops(input: LlmFlopsInput): FlopsBreakdown & { perLayer: FlopsBreakdown } {
  checkKeys(input, ['llm', 'newTokens', 'pastTokens', 'batch', 'dtype', 'tiling'], '');
  const c = llmConfig(input.llm);
  const n = dim(input.newTokens, 'newTokens', { min: 0 }), past = dimOr(input.pastTokens, 0, 'pastTokens', { min: 0 });
  const batch = dimOr(input.batch, 1, 'batch', { min: 0 });
  const d = c.hiddenSize, tokens = n * batch;
  const att = n > 0
    ? attentionCost({ batch, seqLenQ: n, seqLenK: past + n, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, causal: true, dtype: input.dtype }, { tiling: input.tiling }).flops.total
    : 0;
  const projections = 2 * tokens * d * c.headDim * (2 * c.numHeads + 2 * c.numKvHeads);
  const mlp = 2 * tokens * d * c.intermediateSize * 3;
  const per = breakdown(projections, mlp, att, 0, 0);
  const head = n > 0 ? 2 * batch * d * c.vocabSize : 0;
  const L = c.numLayers;
  return { ...breakdown(L * projections, L * mlp, L * att, head, 0), perLayer: per };
}
