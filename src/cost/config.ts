/**
 * The cost calculator as one call over a plain object: what the CLI builds from flags or reads from a
 * JSON/YAML file, and what the static page builds from its form. Unknown keys anywhere → ValueError
 * naming the key (e.g. `attention.seqlen`).
 *
 * ```yaml
 * devices: [h200, a100]          # roofline on these (default: h200)
 * kernel: flash                  # flash | standard
 * unit: auto                     # auto | tensor | vector
 * attention:                     # JSON attention shape (benchmark.ts) + tiling
 *   batch: 1
 *   seqLenQ: 2112
 *   numHeads: 32
 *   numKvHeads: 8
 *   headDim: 128
 *   causal: true
 *   dtype: f16
 *   tiling: { tileQ: 64, tileK: 64 }   # or "cpu" (default)
 * kv: { numLayers: 32, numKvHeads: 8, headDim: 128, seqLen: 2112, batch: 1, dtype: f16,
 *       blockSizeTokens: 16, sharedPrefixTokens: 1600, memory: 80GB, reserved: 16GB }
 * tokens: { tokenizer: qwen2-vl, image: { width: 1024, height: 1024 } }
 * budget: { model: qwen2-vl-7b, image: { width: 1024, height: 1024 }, budget: 400 }
 * ```
 */
import { ValueError } from '../errors.js';
import { type AttentionCost, type TilingSpec, attentionCost } from './attention-cost.js';
import { JSON_SHAPE_KEYS, shapeFromJson } from './benchmark.js';
import { type BudgetSavings, type BudgetSavingsInput, budgetSavings } from './budget.js';
import { deviceProfile } from './devices.js';
import { type KvCacheInput, type KvCacheSize, type MaxBatchResult, kvCacheSize, maxBatchForMemory } from './kv-cache.js';
import { type RooflineResult, attentionRoofline } from './roofline.js';
import { formatBytes, formatFlops, formatSeconds } from './units.js';
import { type VisualTokenOptions, type VisualTokens, visualTokens } from './visual-tokens.js';
import { checkKeys, dim, oneOf } from './validate.js';

/** Input of `runCostConfig` (the YAML above): one optional section per calculation. */
export interface CostConfig {
  /** Device names for the attention roofline; default ['h200']. */
  devices?: string[];
  /** Which kernel's minimum bytes the roofline uses; default 'flash'. */
  kernel?: 'flash' | 'standard';
  /** Compute unit for the roofline; default 'auto'. */
  unit?: 'auto' | 'tensor' | 'vector';
  /** A JsonAttentionShape plus `tiling`: 'cpu' (default), 'cpu-prefill', 'cpu-decode' or { tileQ, tileK }. */
  attention?: Record<string, unknown>;
  /** A KvCacheInput plus `memory` and `reserved` (bytes or sizes such as `80GB`); `memory` adds maxBatch. */
  kv?: Record<string, unknown>;
  /** The arguments of `visualTokens`. */
  tokens?: { tokenizer: string; image?: { width: number; height: number }; options?: VisualTokenOptions };
  /** The input of `budgetSavings`. */
  budget?: BudgetSavingsInput;
}

/** What `runCostConfig` returns: a result for each section the config has. */
export interface CostReport {
  /** The cost, and one roofline per device in config order. */
  attention?: { cost: AttentionCost; roofline: (RooflineResult & { kernel: 'flash' | 'standard' })[] };
  /** The size; maxBatch when the config gives `memory`. */
  kv?: { size: KvCacheSize; maxBatch?: MaxBatchResult };
  /** `visualTokens` of the tokens section. */
  tokens?: VisualTokens;
  /** `budgetSavings` of the budget section. */
  budget?: BudgetSavings;
}

/** The top-level keys a cost config may have; any other → ValueError. */
export const COST_CONFIG_KEYS = ['devices', 'kernel', 'unit', 'attention', 'kv', 'tokens', 'budget'] as const;
const KV_KEYS = ['numLayers', 'numKvHeads', 'numHeads', 'headDim', 'headDimV', 'seqLen', 'batch', 'dtype', 'blockSizeTokens', 'sharedPrefixTokens', 'memory', 'reserved'];

function obj(v: unknown, path: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ValueError(`${path} must be a mapping`, path);
  return v as Record<string, unknown>;
}

function tilingFrom(v: unknown): TilingSpec | undefined {
  if (v === undefined || v === 'cpu' || v === 'cpu-prefill' || v === 'cpu-decode') return v as TilingSpec | undefined;
  const t = obj(v, 'attention.tiling');
  checkKeys(t, ['tileQ', 'tileK'], 'attention.tiling');
  return { tileQ: dim(t.tileQ, 'tileQ', { path: 'attention.tiling' }), tileK: dim(t.tileK, 'tileK', { path: 'attention.tiling' }) };
}

/** Runs every section present in `config` (validated first; unknown keys → ValueError naming the key). */
export function runCostConfig(config: unknown): CostReport {
  const c = obj(config, 'config');
  checkKeys(c, COST_CONFIG_KEYS, '');
  const report: CostReport = {};
  const devices = c.devices === undefined ? ['h200'] : c.devices;
  if (!Array.isArray(devices) || devices.length === 0) throw new ValueError('devices must be a non-empty list of device names', 'devices');
  const profiles = devices.map((d) => deviceProfile(String(d)));
  const kernel = c.kernel === undefined ? 'flash' : oneOf(c.kernel, ['flash', 'standard'] as const, 'kernel');
  const unit = c.unit === undefined ? 'auto' : oneOf(c.unit, ['auto', 'tensor', 'vector'] as const, 'unit');
  if (c.attention !== undefined) {
    const a = obj(c.attention, 'attention');
    checkKeys(a, [...JSON_SHAPE_KEYS, 'tiling'], 'attention');
    const { tiling, ...shapeJson } = a;
    const cost = attentionCost(shapeFromJson(shapeJson, 'attention'), { tiling: tilingFrom(tiling) });
    report.attention = { cost, roofline: profiles.map((p) => attentionRoofline(cost, p, { kernel, unit })) };
  }
  if (c.kv !== undefined) {
    const k = obj(c.kv, 'kv');
    checkKeys(k, KV_KEYS, 'kv');
    const { memory, reserved, ...rest } = k;
    const input = rest as unknown as KvCacheInput;
    const size = kvCacheSize(input);
    report.kv = { size };
    if (memory !== undefined) {
      const { batch: _batch, ...perSequence } = input; // the batch is what maxBatchForMemory finds
      report.kv.maxBatch = maxBatchForMemory({ ...perSequence, memoryBytes: memory as string | number, ...(reserved !== undefined ? { reservedBytes: reserved as string | number } : {}) });
    }
  }
  if (c.tokens !== undefined) {
    const t = obj(c.tokens, 'tokens');
    checkKeys(t, ['tokenizer', 'image', 'options'], 'tokens');
    report.tokens = visualTokens(String(t.tokenizer), t.image as { width: number; height: number } | undefined, (t.options ?? {}) as VisualTokenOptions);
  }
  if (c.budget !== undefined) report.budget = budgetSavings(obj(c.budget, 'budget') as unknown as BudgetSavingsInput);
  return report;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** Plain-text tables of a report (what `vlm-attention cost` prints). */
export function formatCostReport(r: CostReport): string {
  const out: string[] = [];
  if (r.attention) {
    const { cost: a } = r.attention, s = a.shape;
    out.push(`attention  B${s.batch} H${s.numHeads}/${s.numKvHeads} Sq${s.seqLenQ} Sk${s.seqLenK} d${s.headDim}${s.headDimV !== s.headDim ? `/${s.headDimV}` : ''} ${s.dtype} mask=${s.mask}${s.varlen ? ' (varlen)' : ''}`);
    out.push(`tiles      ${a.tiling.path} ${a.tiling.tileQ}×${a.tiling.tileK}: ${a.tiling.visitedTiles} of ${a.tiling.totalTiles} visited (${pct(a.tiling.visitedFraction)}; ${a.tiling.fullTiles} full, ${a.tiling.partialTiles} partial)`);
    out.push(table([
      ['FLOPs', 'QKᵀ', 'PV', 'softmax', 'top-k', 'total', 'nominal'],
      ['', formatFlops(a.flops.qk), formatFlops(a.flops.pv), formatFlops(a.flops.softmax), formatFlops(a.flops.topkPass), formatFlops(a.flops.total), formatFlops(a.flops.nominal)],
    ]));
    out.push(table([
      ['bytes', 'Q', 'K', 'V', 'O+LSE', 'S,P', 'total', 'FLOP/B'],
      ['flash', formatBytes(a.bytes.flash.q), formatBytes(a.bytes.flash.k), formatBytes(a.bytes.flash.v), formatBytes(a.bytes.flash.o + a.bytes.flash.lse), '-', formatBytes(a.bytes.flash.total), a.intensity.flash.toFixed(1)],
      ['standard', formatBytes(a.bytes.standard.q), formatBytes(a.bytes.standard.k), formatBytes(a.bytes.standard.v), formatBytes(a.bytes.standard.o + a.bytes.standard.lse), formatBytes(a.bytes.standard.scores), formatBytes(a.bytes.standard.total), a.intensity.standard.toFixed(1)],
    ]));
    out.push(table([
      ['device', 'kernel', 'unit', 'peak', 'bandwidth', 'compute', 'memory', 'time ≥', 'bound', 'labels'],
      ...r.attention.roofline.map((x) => [
        x.device, x.kernel, x.unit, `${formatSI(x.peak.value)}FLOP/s`, `${formatSI(x.bandwidth.value)}B/s`, formatSeconds(x.computeSeconds), formatSeconds(x.memorySeconds),
        formatSeconds(x.seconds), x.bound, `${x.peak.label}/${x.bandwidth.label}`,
      ]),
    ]));
  }
  if (r.kv) {
    const k = r.kv.size;
    if (out.length) out.push('');
    out.push(`kv cache   ${k.dtype}: ${formatBytes(k.bytesPerToken)} per token (all layers), ${formatBytes(k.perLayerBytes)} per layer, contiguous ${formatBytes(k.contiguousBytes)}`);
    if (k.paged) out.push(`paged      ${k.paged.blockSizeTokens}-token blocks: ${k.paged.totalBlocks} blocks (${k.paged.blocksPerSequence} per sequence, ${k.paged.sharedBlocks} shared) × ${formatBytes(k.paged.blockBytes)}; waste ${k.paged.wasteTokens} tokens = ${formatBytes(k.paged.wasteBytes)}`);
    if (k.sharedTokens) out.push(`shared     ${k.sharedTokens} prefix tokens stored once (${formatBytes(k.sharedBytes)})`);
    if (k.scaleBytes) out.push(`int8       scales ${formatBytes(k.scaleBytes)}`);
    out.push(`total      ${formatBytes(k.totalBytes)}`);
    if (r.kv.maxBatch) {
      const m = r.kv.maxBatch;
      // Nothing per sequence (seqLen 0, or all of it a shared prefix): no memory bound on the batch.
      const count = m.perSequenceBytes === 0 && m.batch > 0 ? 'unbounded (nothing stored per sequence)' : `${m.batch} sequences`;
      out.push(`max batch  ${count} in ${formatBytes(m.availableBytes)} (${formatBytes(m.perSequenceBytes)} per sequence)`);
    }
  }
  if (r.tokens) {
    if (out.length) out.push('');
    out.push(`tokens     ${r.tokens.tokenizer}: ${r.tokens.llmTokens} LLM tokens; encoder ${r.tokens.encoderPasses} × ${r.tokens.encoderSeqLen} positions`);
    out.push(`           ${r.tokens.detail}`);
  }
  if (r.budget) {
    const b = r.budget;
    if (out.length) out.push('');
    out.push(`budget     ${b.model} (LLM ${b.llm}): ${b.tokenizerDetail}`);
    out.push(table([
      ['', 'visual', 'prefill', 'attn FLOPs', 'LLM FLOPs', 'KV bytes', 'decode KV read'],
      ['native', String(b.baseline.visualTokens), String(b.baseline.prefillTokens), formatFlops(b.baseline.attentionFlops), formatFlops(b.baseline.llmFlops), formatBytes(b.baseline.kvBytes), formatBytes(b.baseline.decodeStepKvBytes)],
      ['budget', String(b.withBudget.visualTokens), String(b.withBudget.prefillTokens), formatFlops(b.withBudget.attentionFlops), formatFlops(b.withBudget.llmFlops), formatBytes(b.withBudget.kvBytes), formatBytes(b.withBudget.decodeStepKvBytes)],
      ['saved', String(b.saved.visualTokens), '', formatFlops(b.saved.attentionFlops), formatFlops(b.saved.llmFlops), formatBytes(b.saved.kvBytes), formatBytes(b.saved.decodeStepKvBytes)],
    ]));
    out.push(`           vision encoder ${formatFlops(b.encoderFlops)} (unchanged by the budget)`);
  }
  return out.join('\n');
}

function formatSI(v: number): string {
  return formatFlops(v).replace(/FLOP$/, '');
}
