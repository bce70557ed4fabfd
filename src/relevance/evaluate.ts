/**
 * Evaluation on procedural scenes (which have ground-truth masks): relevance precision of the
 * allocation for colour and texture queries against uniform, salience-only and information-only
 * allocation, and the stability of the allocation under small image noise.
 *
 * - Colour query: the colour word of one object (scene colours are distinct, so it names exactly
 *   that object).
 * - Texture query: "striped" (the lexicon's patterned concept), naming every patterned object
 *   (striped, checkered or dotted).
 * - Precision: the share of the budget on the regions the named objects cover (≥ `minCover` of a
 *   region). Uniform allocation puts (#target regions / R) there.
 * - Stability: the fraction of tokens that move, Σ|t − t'| / (2B), between the allocation for the
 *   scene and for the same scene with extra Gaussian noise of σ = `noiseSigma`.
 */
import { mulberry32 } from '../tensor/tensor.js';
import type { OpponentOptions } from './opponent.js';
import { type RelevanceOptions, planRelevance, relevancePrecision, runRelevance } from './pipeline.js';
import { type Scene, generateScene } from './scene.js';

/** Options for {@link evaluateRelevance}. */
export interface EvaluateOptions {
  /** Scene seeds (default 1..20). */
  seeds?: readonly number[];
  /** Scene size (default 784). */
  size?: number;
  /** Pipeline options shared by all runs (query and opponent weights are set per method); default (replaced whole when given) budget 1600, min 16, 7×7 regions, no LOD attention. */
  pipeline?: Omit<RelevanceOptions, 'query'>;
  /** Region cover threshold (default 0.1). */
  minCover?: number;
  /** σ of the extra noise for the stability test (default 0.01). */
  noiseSigma?: number;
  /** Called after each scene with the scenes done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Methods compared. */
export const EVAL_METHODS = ['relevance', 'uniform', 'salience-only', 'information-only'] as const;
/** An allocation method compared (see EVAL_METHODS): the full mix, ρ uniform, or one scorer alone, all with the same allocator and bounds. */
export type EvalMethod = (typeof EVAL_METHODS)[number];

/** One (scene, query) evaluation. */
export interface EvalCase {
  /** The scene's seed. */
  seed: number;
  /** 'colour': one object's colour word; 'texture': "striped", naming every patterned object. */
  kind: 'colour' | 'texture';
  /** The query text. */
  query: string;
  /** Names of the objects the query names (SceneObject.name). */
  targets: string[];
  /** Share of the budget on the target regions, in [0, 1], per method. */
  precision: Record<EvalMethod, number>;
  /** Fraction of tokens moved under noise (relevance method). */
  instability: number;
}

/** Aggregates. */
export interface EvalSummary {
  /** Every (scene, query) case, in seed order (scenes without a patterned object have no texture case). */
  cases: EvalCase[];
  /** Mean precision per query kind and method. */
  mean: Record<'colour' | 'texture', Record<EvalMethod, number>>;
  /** Mean ratio precision / uniform precision per kind (relevance method), over the cases whose uniform precision is positive (NaN when none is). */
  ratioToUniform: Record<'colour' | 'texture', number>;
  /** Mean and max fraction of tokens moved under noise. */
  instability: { mean: number; max: number };
}

function union(objs: Scene['objects'], n: number): Uint8Array {
  const m = new Uint8Array(n);
  for (const o of objs) for (let i = 0; i < n; i++) if (o.mask[i]) m[i] = 1;
  return m;
}

function noisy(scene: Scene, sigma: number, seed: number): Scene['image'] {
  const rnd = mulberry32(seed);
  const data = scene.image.data.slice();
  for (let i = 0; i < data.length; i += 2) {
    let u = rnd(); while (u === 0) u = rnd();
    const r = sigma * Math.sqrt(-2 * Math.log(u)), t = 2 * Math.PI * rnd();
    data[i] = Math.min(1, Math.max(0, data[i]! + r * Math.cos(t)));
    if (i + 1 < data.length) data[i + 1] = Math.min(1, Math.max(0, data[i + 1]! + r * Math.sin(t)));
  }
  return { ...scene.image, data };
}

/** Runs the evaluation. Deterministic for given seeds. */
export async function evaluateRelevance(options: EvaluateOptions = {}): Promise<EvalSummary> {
  const seeds = options.seeds ?? Array.from({ length: 20 }, (_, i) => i + 1);
  const size = options.size ?? 784;
  const base: Omit<RelevanceOptions, 'query'> = options.pipeline ?? { budget: 1600, min: 16, grid: { regionRows: 7, regionCols: 7 }, lodAttention: 'none' };
  const minCover = options.minCover ?? 0.1;
  const sigma = options.noiseSigma ?? 0.01;
  const weightsOf: Record<EvalMethod, OpponentOptions['weights'] | null> = {
    relevance: base.opponent?.weights ?? [0.15, 0.15, 0.7], uniform: null, 'salience-only': [0, 1, 0], 'information-only': [1, 0, 0],
  };
  const cases: EvalCase[] = [];
  let done = 0;
  for (const seed of seeds) {
    const scene = generateScene({ width: size, height: size, seed });
    const n = size * size;
    const rnd = mulberry32(seed * 7919);
    const target = scene.objects[Math.floor(rnd() * scene.objects.length)]!;
    const patterned = scene.objects.filter((o) => o.texture !== 'solid');
    const queries: Array<{ kind: 'colour' | 'texture'; query: string; objs: Scene['objects'] }> = [{ kind: 'colour', query: target.colour, objs: [target] }];
    if (patterned.length > 0) queries.push({ kind: 'texture', query: 'striped', objs: patterned });
    for (const q of queries) {
      const mask = union(q.objs, n);
      const precision = {} as Record<EvalMethod, number>;
      let relTokens: Int32Array | null = null;
      for (const m of EVAL_METHODS) {
        const w = weightsOf[m];
        const plan = planRelevance(size, size, { ...base, query: q.query, opponent: w ? { ...(base.opponent ?? {}), weights: w } : { ...(base.opponent ?? {}), explore: 1 } });
        const res = await runRelevance(scene.image, plan);
        precision[m] = relevancePrecision(res.allocation.tokens, plan.grid, mask, minCover).precision;
        if (m === 'relevance') relTokens = res.allocation.tokens;
      }
      const plan = planRelevance(size, size, { ...base, query: q.query });
      const res2 = await runRelevance(noisy(scene, sigma, seed + 1000), plan);
      let moved = 0;
      for (let r = 0; r < res2.allocation.tokens.length; r++) moved += Math.abs(res2.allocation.tokens[r]! - relTokens![r]!);
      cases.push({ seed, kind: q.kind, query: q.query, targets: q.objs.map((o) => o.name), precision, instability: moved / (2 * plan.budget) });
    }
    options.onProgress?.(++done, seeds.length);
  }
  const mean = { colour: {}, texture: {} } as EvalSummary['mean'];
  const ratioToUniform = { colour: 0, texture: 0 };
  for (const kind of ['colour', 'texture'] as const) {
    const ks = cases.filter((c) => c.kind === kind);
    for (const m of EVAL_METHODS) mean[kind][m] = ks.reduce((s, c) => s + c.precision[m], 0) / Math.max(1, ks.length);
    // A case whose uniform allocation covers none of the target (precision 0) has no ratio.
    const rated = ks.filter((c) => c.precision.uniform > 0);
    ratioToUniform[kind] = rated.length ? rated.reduce((s, c) => s + c.precision.relevance / c.precision.uniform, 0) / rated.length : NaN;
  }
  const inst = cases.map((c) => c.instability);
  return { cases, mean, ratioToUniform, instability: { mean: inst.reduce((a, b) => a + b, 0) / Math.max(1, inst.length), max: Math.max(0, ...inst) } };
}
