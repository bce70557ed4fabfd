/**
 * Attention modules with Q/K/V/O projections: GroupedQueryAttention, and its special cases
 * MultiHeadAttention (numKvHeads = numHeads) and MultiQueryAttention (numKvHeads = 1). The
 * projections and the attention run on the same backend. Weights follow PyTorch / Hugging Face
 * conventions (Linear weight [outFeatures, inFeatures]) and load from safetensors with either
 * `q_proj`/`k_proj`/`v_proj`/`o_proj` names (Llama, Qwen, SigLIP…) or nn.MultiheadAttention's fused
 * `in_proj_weight`/`out_proj.weight`.
 *
 * forward(x [batch, seqLen, embedDim], { context [batch, seqLenK, embedDim] for cross-attention }) →
 * [batch, seqLen, embedDim].
 */
import { attention } from '../attention/attention.js';
import type { BackendName } from '../attention/backend.js';
import { type AttentionOptions, MAX_HEAD_DIM, UNLAID_OPTION_KEYS } from '../attention/plan.js';
import { DTypeError, ShapeError, UnsupportedError, ValueError, checkOptionKeys, optionNames } from '../errors.js';
import { type NdArray } from '../io/npy.js';
import { decodeSafetensors, parseSafetensorsHeader, writeSafetensors } from '../io/safetensors.js';
import { Tensor, mulberry32 } from '../tensor/tensor.js';
import { linear } from './linear.js';

/** A layer's tensor names under its prefix, in either naming scheme, and the add_bias_kv rows these modules refuse. */
const LAYER_TENSORS = [
  'q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight', 'q_proj.bias', 'k_proj.bias', 'v_proj.bias', 'o_proj.bias',
  'in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias', 'bias_k', 'bias_v',
];

/** Sizes of an attention module; MultiHeadAttention and MultiQueryAttention fix numKvHeads. */
export interface AttentionModuleConfig {
  /** Model width: the last dimension of x, context and the output. */
  embedDim: number;
  /** Query heads. */
  numHeads: number;
  /** Default numHeads (MHA). */
  numKvHeads?: number;
  /** Default embedDim / numHeads. */
  headDim?: number;
  /**
   * Whether the module has projection biases: `init` creates them (default true); with given weights it follows
   * the weights, and a value that contradicts them is refused.
   */
  bias?: boolean;
  /** Backend of the projections and the attention (default 'auto'); `forward`'s `backend` overrides it. */
  backend?: BackendName;
}

/** Projection weights in PyTorch's Linear layout [outFeatures, inFeatures]; any float dtype (projections compute in f32). */
export interface AttentionWeights {
  /** [numHeads·headDim, embedDim]. */
  q: Tensor;
  /** [numKvHeads·headDim, embedDim]. */
  k: Tensor;
  /** [numKvHeads·headDim, embedDim]. */
  v: Tensor;
  /** Output projection [embedDim, numHeads·headDim]. */
  o: Tensor;
  /** [numHeads·headDim]; null or absent = no bias. */
  qBias?: Tensor | null;
  /** [numKvHeads·headDim]; null or absent = no bias. */
  kBias?: Tensor | null;
  /** [numKvHeads·headDim]; null or absent = no bias. */
  vBias?: Tensor | null;
  /** [embedDim]; null or absent = no bias. */
  oBias?: Tensor | null;
}

/** A module's configuration with every default filled in (numKvHeads, headDim); `bias`: whether any projection has a bias. */
export interface ResolvedAttentionConfig { embedDim: number; numHeads: number; numKvHeads: number; headDim: number; bias: boolean; backend?: BackendName }

const CONFIG_KEYS = optionNames<AttentionModuleConfig>({ embedDim: true, numHeads: true, numKvHeads: true, headDim: true, bias: true, backend: true });
/** Options of `fromSafetensors` and `toSafetensors`. */
export interface SafetensorsLayerOptions {
  /** The layer's name prefix, e.g. 'model.layers.0.self_attn.' (default ''). */
  prefix?: string;
}
const LAYER_OPTION_KEYS = optionNames<SafetensorsLayerOptions>({ prefix: true });

function layerPrefix(opts: SafetensorsLayerOptions | undefined, fn: string): string {
  if (opts === undefined || opts === null) return '';
  if (typeof opts !== 'object') throw new ValueError(`${fn}'s options must be an object ({ prefix }), got ${typeof opts}`, 'opts');
  checkOptionKeys(opts, LAYER_OPTION_KEYS, fn);
  const p = opts.prefix ?? '';
  if (typeof p !== 'string') throw new ValueError(`prefix must be a string, got ${typeof p}`, 'prefix');
  return p;
}

function resolve(c: AttentionModuleConfig): ResolvedAttentionConfig {
  if (!c || typeof c !== 'object') throw new ValueError(`config must be { embedDim, numHeads, … }, got ${c === null ? 'null' : typeof c}`, 'config');
  checkOptionKeys(c, CONFIG_KEYS, 'an attention module config');
  if (c.bias !== undefined && typeof c.bias !== 'boolean') throw new ValueError(`bias must be true or false, got ${JSON.stringify(c.bias)}`, 'bias');
  const int = (v: unknown, name: string) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ValueError(`${name} must be an integer ≥ 1, got ${String(v)}`, name);
    return v;
  };
  const embedDim = int(c.embedDim, 'embedDim'), numHeads = int(c.numHeads, 'numHeads');
  const numKvHeads = int(c.numKvHeads ?? numHeads, 'numKvHeads');
  if (numHeads % numKvHeads !== 0) throw new ShapeError(`numHeads (${numHeads}) must be divisible by numKvHeads (${numKvHeads})`, 'numKvHeads', 'numKvHeads');
  const headDim = c.headDim !== undefined ? int(c.headDim, 'headDim') : embedDim / numHeads;
  if (!Number.isInteger(headDim)) throw new ShapeError(`embedDim (${embedDim}) is not divisible by numHeads (${numHeads}); give headDim`, 'headDim', 'headDim');
  if (headDim > MAX_HEAD_DIM) throw new ShapeError(`headDim ${headDim} is over the kernels' ${MAX_HEAD_DIM}`, 'headDim', 'headDim');
  return { embedDim, numHeads, numKvHeads, headDim, bias: c.bias ?? true, backend: c.backend };
}

/** The dtypes a weight may have in a file (projections compute in f32). */
const WEIGHT_DTYPES = ['f32', 'f16', 'bf16', 'f64'] as const;

function toTensor(a: NdArray, name: string): Tensor {
  if (a.dtype !== 'f32' && a.dtype !== 'f16' && a.dtype !== 'bf16' && a.dtype !== 'f64') throw new DTypeError(`${name} has dtype ${a.dtype}; weights must be floating point (f32, f16, bf16 or f64)`, name);
  if (a.dtype === 'f64') return Tensor.fromValues(a.data as Float64Array, a.shape, 'f32');
  return new Tensor(a.data as Float32Array | Uint16Array, a.shape, { dtype: a.dtype });
}

/** The constructor side of an attention module class, as `init` and `fromSafetensors` take `this`. */
export interface AttentionModuleClass<T> {
  new (c: AttentionModuleConfig, w: AttentionWeights): T;
  normalize(c: AttentionModuleConfig): AttentionModuleConfig;
}

/**
 * Grouped-query attention with Q/K/V/O projections: numKvHeads divides numHeads, and query head h
 * uses KV head ⌊h / (numHeads / numKvHeads)⌋. Create with `init` (random), `fromSafetensors` or the
 * constructor (weights checked against the config); run with `forward`:
 * x [batch, seqLen, embedDim] → [batch, seqLen, embedDim].
 */
export class GroupedQueryAttention {
  /** The configuration this class implies (MHA/MQA fix numKvHeads). */
  static normalize(c: AttentionModuleConfig): AttentionModuleConfig {
    return c;
  }

  /** The configuration with defaults filled in (numKvHeads, headDim, bias), frozen. */
  readonly config: Readonly<ResolvedAttentionConfig>;
  /** The weights as given (a frozen shallow copy). */
  readonly weights: Readonly<AttentionWeights>;

  constructor(config: AttentionModuleConfig, weights: AttentionWeights) {
    const c = resolve(config);
    const { embedDim: E, numHeads: H, numKvHeads: Hk, headDim: Dh } = c;
    const expect = (t: Tensor | null | undefined, shape: number[], name: string, required = false) => {
      if (!t) {
        if (required) throw new ValueError(`weights.${name} is required: [${shape.join(', ')}]`, name);
        return;
      }
      if (!(t instanceof Tensor)) throw new ValueError(`weights.${name} must be a Tensor`, name);
      if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new ShapeError(`${name} must be [${shape.join(', ')}], got [${t.shape.join(', ')}]`, name);
    };
    if (!weights || typeof weights !== 'object') throw new ValueError('weights must be { q, k, v, o } (and optional biases)', 'weights');
    expect(weights.q, [H * Dh, E], 'q', true); expect(weights.k, [Hk * Dh, E], 'k', true); expect(weights.v, [Hk * Dh, E], 'v', true); expect(weights.o, [E, H * Dh], 'o', true);
    expect(weights.qBias, [H * Dh], 'qBias'); expect(weights.kBias, [Hk * Dh], 'kBias'); expect(weights.vBias, [Hk * Dh], 'vBias'); expect(weights.oBias, [E], 'oBias');
    // config.bias says whether the module has biases: it follows the weights, and a config that says otherwise is refused.
    const held = (['qBias', 'kBias', 'vBias', 'oBias'] as const).filter((n) => weights[n]);
    if (config.bias === false && held.length) throw new ValueError(`config.bias is false, but the weights hold ${held.join(', ')}`, 'bias');
    if (config.bias === true && !held.length) throw new ValueError('config.bias is true, but the weights hold no bias', 'bias');
    c.bias = held.length > 0;
    this.config = Object.freeze(c);
    this.weights = Object.freeze({ ...weights });
  }

  /** Random weights (uniform ±1/√inFeatures, as PyTorch's Linear init), seeded. */
  static init<T extends GroupedQueryAttention>(this: AttentionModuleClass<T>, config: AttentionModuleConfig, seed = 1): T {
    const c = resolve(this.normalize(config));
    const rng = mulberry32(seed);
    const mat = (rows: number, cols: number) => Tensor.fromValues(Float32Array.from({ length: rows * cols }, () => (rng() * 2 - 1) / Math.sqrt(cols)), [rows, cols]);
    const vec = (n: number, fan: number) => (c.bias ? Tensor.fromValues(Float32Array.from({ length: n }, () => (rng() * 2 - 1) / Math.sqrt(fan)), [n]) : null);
    const { embedDim: E, numHeads: H, numKvHeads: Hk, headDim: Dh } = c;
    return new this(config, {
      q: mat(H * Dh, E), k: mat(Hk * Dh, E), v: mat(Hk * Dh, E), o: mat(E, H * Dh),
      qBias: vec(H * Dh, E), kBias: vec(Hk * Dh, E), vBias: vec(Hk * Dh, E), oBias: vec(E, H * Dh),
    });
  }

  /**
   * Loads weights from a safetensors file. `prefix` selects a layer, e.g. 'model.layers.0.self_attn.'.
   * Names: `{prefix}q_proj.weight` (… k_proj, v_proj, o_proj, with optional .bias), or the fused
   * `{prefix}in_proj_weight` / `in_proj_bias` / `out_proj.weight` / `out_proj.bias`.
   */
  static fromSafetensors<T extends GroupedQueryAttention>(this: AttentionModuleClass<T>, bytes: Uint8Array, config: AttentionModuleConfig, opts: SafetensorsLayerOptions = {}): T {
    const c = resolve(this.normalize(config));
    const p = layerPrefix(opts, 'fromSafetensors');
    // Decode this layer's tensors only: a checkpoint's other tensors (other layers, F8 weights) are not copied.
    const wanted = LAYER_TENSORS.map((n) => p + n);
    const header = parseSafetensorsHeader(bytes, { only: wanted, dtypes: WEIGHT_DTYPES });
    const all = header.entries.map((e) => e.name);
    const file = decodeSafetensors(bytes, header, { only: wanted.filter((n) => all.includes(n)) });
    // PyTorch's add_bias_kv appends learned rows to K and V: weights without them would silently compute something else.
    const extra = ['bias_k', 'bias_v'].filter((n) => file.tensors.has(p + n));
    if (extra.length) throw new UnsupportedError(`safetensors has ${extra.map((n) => `'${p}${n}'`).join(' and ')} (nn.MultiheadAttention with add_bias_kv=True), which these modules do not implement`, 'add_bias_kv=False');
    const get = (name: string) => { const a = file.tensors.get(p + name); return a ? toTensor(a, p + name) : null; };
    const names = () => `${all.slice(0, 12).join(', ')}${all.length > 12 ? ', …' : ''}`;
    const need = (name: string) => { const t = get(name); if (!t) throw new ValueError(`safetensors has no tensor '${p + name}' (names: ${names()})`, 'bytes'); return t; };
    if (!get('q_proj.weight') && !get('in_proj_weight')) {
      // Neither naming scheme under this prefix: say so, and suggest the prefix the file's names suggest.
      const hit = all.find((n) => n.endsWith('q_proj.weight') || n.endsWith('in_proj_weight'));
      const hint = hit ? `; did you mean prefix '${hit.slice(0, hit.length - (hit.endsWith('q_proj.weight') ? 'q_proj.weight' : 'in_proj_weight').length)}'?` : '';
      throw new ValueError(`safetensors has neither '${p}q_proj.weight' nor '${p}in_proj_weight' (prefix '${p}'; names: ${names()})${hint}`, 'bytes');
    }
    const { embedDim: E, numHeads: H, numKvHeads: Hk, headDim: Dh } = c;
    // Shapes checked here under the file's names (the constructor would name its own q, k, …).
    const shaped = (name: string, t: Tensor | null, shape: number[], what: string) => {
      if (t && (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
        throw new ShapeError(`${p}${name} must be [${shape.join(', ')}] (${what}), got [${t.shape.join(', ')}]`, 'bytes', name);
      }
      return t;
    };
    const cfg = `numHeads ${H}, numKvHeads ${Hk}, headDim ${Dh}, embedDim ${E}`;
    let w: AttentionWeights;
    if (get('q_proj.weight')) {
      w = {
        q: shaped('q_proj.weight', need('q_proj.weight'), [H * Dh, E], cfg)!, k: shaped('k_proj.weight', need('k_proj.weight'), [Hk * Dh, E], cfg)!,
        v: shaped('v_proj.weight', need('v_proj.weight'), [Hk * Dh, E], cfg)!, o: shaped('o_proj.weight', need('o_proj.weight'), [E, H * Dh], cfg)!,
        qBias: shaped('q_proj.bias', get('q_proj.bias'), [H * Dh], cfg), kBias: shaped('k_proj.bias', get('k_proj.bias'), [Hk * Dh], cfg),
        vBias: shaped('v_proj.bias', get('v_proj.bias'), [Hk * Dh], cfg), oBias: shaped('o_proj.bias', get('o_proj.bias'), [E], cfg),
      };
    } else {
      const inW = need('in_proj_weight'), inB = get('in_proj_bias');
      const rows = [H * Dh, Hk * Dh, Hk * Dh];
      // The fused projection must be exactly q, k and v stacked: a taller or shorter one is another layout.
      const total = rows[0]! + rows[1]! + rows[2]!;
      if (inW.rank !== 2 || inW.shape[0] !== total || inW.shape[1] !== E) throw new ShapeError(`${p}in_proj_weight must be [${total}, ${E}] (q ${rows[0]} + k ${rows[1]} + v ${rows[2]} rows for numHeads ${H}, numKvHeads ${Hk}, headDim ${Dh}; embedDim ${E} columns), got [${inW.shape.join(', ')}]`, 'bytes', 'in_proj_weight');
      if (inB && (inB.rank !== 1 || inB.shape[0] !== total)) throw new ShapeError(`${p}in_proj_bias must be [${total}], got [${inB.shape.join(', ')}]`, 'bytes', 'in_proj_bias');
      const cut = (t: Tensor, i: number) => t.slice(0, rows.slice(0, i).reduce((x, y) => x + y, 0), rows.slice(0, i + 1).reduce((x, y) => x + y, 0)).contiguous();
      w = {
        q: cut(inW, 0), k: cut(inW, 1), v: cut(inW, 2), o: shaped('out_proj.weight', need('out_proj.weight'), [E, H * Dh], cfg)!,
        qBias: inB && cut(inB, 0), kBias: inB && cut(inB, 1), vBias: inB && cut(inB, 2), oBias: shaped('out_proj.bias', get('out_proj.bias'), [E], cfg),
      };
    }
    return new this(config, w);
  }

  /** The weights as safetensors with q_proj/k_proj/v_proj/o_proj names under `prefix`. */
  toSafetensors(opts: SafetensorsLayerOptions = {}): Uint8Array {
    const p = layerPrefix(opts, 'toSafetensors');
    const entries: [string, NdArray][] = [];
    const add = (name: string, t: Tensor | null | undefined) => {
      if (!t) return;
      const c = t.contiguous();
      entries.push([p + name, { dtype: c.dtype, shape: [...c.shape], data: c.data }]);
    };
    const w = this.weights;
    add('q_proj.weight', w.q); add('k_proj.weight', w.k); add('v_proj.weight', w.v); add('o_proj.weight', w.o);
    add('q_proj.bias', w.qBias); add('k_proj.bias', w.kBias); add('v_proj.bias', w.vBias); add('o_proj.bias', w.oBias);
    return writeSafetensors(entries);
  }

  /**
   * x [batch, seqLen, embedDim] → [batch, seqLen, embedDim]. With `context` [batch, seqLenK, embedDim],
   * keys and values come from it (cross-attention). Attention options (mask, causal, scale, softcap)
   * pass through; causal masks align bottom-right when seqLen ≠ seqLenK.
   */
  async forward(x: Tensor, opts: Omit<AttentionOptions, 'layout'> & { context?: Tensor; backend?: BackendName } = {}): Promise<{ out: Tensor; lse?: Tensor }> {
    opts ??= {}; // null reads as no options
    // layout is not an option here (the module's own tensors are BSHD): a JavaScript caller's would reinterpret them.
    if ((opts as { layout?: unknown }).layout !== undefined) throw new UnsupportedError("layout in a module's forward (x is [batch, seqLen, embedDim])", "no layout (the module's tensors are BSHD)");
    checkOptionKeys(opts, [...UNLAID_OPTION_KEYS, 'context', 'backend'], 'forward');
    const { embedDim: E, numHeads: H, numKvHeads: Hk, headDim: Dh } = this.config;
    const backend = opts.backend ?? this.config.backend;
    const ctx = opts.context ?? x;
    for (const [t, name] of [[x, 'x'], [ctx, 'context']] as const) {
      if (!(t instanceof Tensor)) throw new ValueError(`${name} must be a Tensor [batch, seqLen, ${E}], got ${t === null ? 'null' : (t as object)?.constructor?.name ?? typeof t}`, name);
      if (t.rank !== 3 || t.shape[2] !== E) throw new ShapeError(`${name} must be [batch, seqLen, ${E}], got [${t.shape.join(', ')}]`, name, 'embedDim');
    }
    if (ctx.shape[0] !== x.shape[0]) throw new ShapeError(`context has batch ${ctx.shape[0]}, x has ${x.shape[0]}`, 'context', 'batch');
    const [B, S] = x.shape as [number, number];
    const Sk = ctx.shape[1]!;
    const w = this.weights;
    const [q, k, v] = await Promise.all([
      linear(x, w.q, w.qBias ?? null, { backend }), linear(ctx, w.k, w.kBias ?? null, { backend }), linear(ctx, w.v, w.vBias ?? null, { backend }),
    ]);
    const { context: _c, backend: _b, ...attnOpts } = opts;
    const r = await attention(q.reshape([B, S, H, Dh]), k.reshape([B, Sk, Hk, Dh]), v.reshape([B, Sk, Hk, Dh]), { ...attnOpts, backend });
    const out = await linear(r.out.reshape([B, S, H * Dh]), w.o, w.oBias ?? null, { backend });
    return r.lse ? { out, lse: r.lse } : { out };
  }
}

/** Multi-head attention: every query head has its own K/V head. */
export class MultiHeadAttention extends GroupedQueryAttention {
  static override normalize(c: AttentionModuleConfig): AttentionModuleConfig {
    if (c.numKvHeads !== undefined && c.numKvHeads !== c.numHeads) throw new ValueError('MultiHeadAttention has numKvHeads = numHeads; use GroupedQueryAttention', 'numKvHeads');
    return { ...c, numKvHeads: c.numHeads };
  }

  constructor(config: AttentionModuleConfig, weights: AttentionWeights) {
    if (config.numKvHeads !== undefined && config.numKvHeads !== config.numHeads) throw new ValueError('MultiHeadAttention has numKvHeads = numHeads; use GroupedQueryAttention', 'numKvHeads');
    super({ ...config, numKvHeads: config.numHeads }, weights);
  }
}

/** Multi-query attention: all query heads share one K/V head. */
export class MultiQueryAttention extends GroupedQueryAttention {
  static override normalize(c: AttentionModuleConfig): AttentionModuleConfig {
    if (c.numKvHeads !== undefined && c.numKvHeads !== 1) throw new ValueError('MultiQueryAttention has numKvHeads = 1; use GroupedQueryAttention', 'numKvHeads');
    return { ...c, numKvHeads: 1 };
  }

  constructor(config: AttentionModuleConfig, weights: AttentionWeights) {
    if (config.numKvHeads !== undefined && config.numKvHeads !== 1) throw new ValueError('MultiQueryAttention has numKvHeads = 1; use GroupedQueryAttention', 'numKvHeads');
    super({ ...config, numKvHeads: 1 }, weights);
  }
}
