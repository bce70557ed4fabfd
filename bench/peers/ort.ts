/**
 * onnxruntime-node peers. The bench builds every graph itself (onnx-graph.ts), so what ORT runs is
 * visible here:
 *
 *   attention-op     the standard ONNX `Attention` op (opset 23), 3-D inputs [B, S, H·D] (the same
 *                    bytes as our BSHD tensors), q_num_heads / kv_num_heads, is_causal;
 *   mha-contrib      com.microsoft MultiHeadAttention, 3-D inputs (MHA shapes only);
 *   gqa-contrib      com.microsoft GroupQueryAttention (causal prefill; decode with the first
 *                    Sk − 1 keys as past_key/past_value in BNSH and the last as the new token);
 *   matmul-softmax   MatMul → Softmax → MatMul on BHSD inputs with Kᵀ given pre-transposed; GQA
 *                    without copies: non-causal stacks a group's query rows [B, Hk, G·Sq, D],
 *                    causal broadcasts K/V over the group [B, Hk, 1, ·] and adds a [Sq, Sk] mask.
 *
 * Layout conversions of the inputs (when a graph wants BHSD or BNSH) happen before timing; a timed
 * run is `session.run(feeds)`, i.e. ORT's op plus the N-API call and its output tensor.
 */
import * as ort from 'onnxruntime-node';
import type { QKV } from '../lib/check.js';
import type { AttentionShape } from '../lib/shapes.js';
import { ONNX_FLOAT, ONNX_INT32, type OnnxGraph, type OnnxValue, encodeModel, floatRaw } from './onnx-graph.js';

export type OutputLayout = 'bshd' | 'bhsd';

/** A ready-to-time peer: `run` once per timed iteration; `output` reads the last result. */
export interface PeerRun {
  run(): Promise<void>;
  output(): { data: Float32Array; layout: OutputLayout };
  dispose(): Promise<void>;
}

export interface PeerCandidate {
  name: string;
  /** What the graph is, for the JSON and BENCHMARKS.md. */
  description: string;
  /**
   * One session; `run` feeds it the candidate's inputs, or with `layers` each of those inputs in turn (one
   * session over several layers' K/V, as a model's one graph reads them; the output is the last layer's).
   */
  build(layers?: QKV[]): Promise<PeerRun>;
}

export interface OrtOptions {
  /** Intra-op threads (the issue: 2). */
  intraOpThreads: number;
}

export const ORT_VERSION: string = (ort.env as { versions?: { common?: string } }).versions?.common ?? 'unknown';

const f32 = (name: string, dims: (number | string)[]): OnnxValue => ({ name, elemType: ONNX_FLOAT, dims });
const i32 = (name: string, dims: (number | string)[]): OnnxValue => ({ name, elemType: ONNX_INT32, dims });

/** BSHD [B, S, H, D] → BHSD [B, H, S, D]. */
export function toBhsd(src: Float32Array, B: number, S: number, H: number, D: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) {
    out.set(src.subarray(((b * S + s) * H + h) * D, ((b * S + s) * H + h + 1) * D), ((b * H + h) * S + s) * D);
  }
  return out;
}

/** BSHD [B, S, H, D] → [B, H, D, S] (Kᵀ per head). */
export function toBhds(src: Float32Array, B: number, S: number, H: number, D: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) for (let h = 0; h < H; h++) {
    const si = ((b * S + s) * H + h) * D, oi = (b * H + h) * D * S + s;
    for (let d = 0; d < D; d++) out[oi + d * S] = src[si + d]!;
  }
  return out;
}

async function session(graph: OnnxGraph, opts: OrtOptions): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(graph), {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

function peer(sess: ort.InferenceSession, feedSets: Record<string, ort.Tensor>[], outName: string, layout: OutputLayout): PeerRun {
  let last: Float32Array | null = null;
  return {
    async run() {
      for (const feeds of feedSets) {
        const r = await sess.run(feeds);
        last = r[outName]!.data as Float32Array;
      }
    },
    output() {
      if (!last) throw new Error('bench: ORT peer has not run');
      return { data: last, layout };
    },
    async dispose() { await sess.release(); },
  };
}

/** The standard ONNX Attention op (opset 23). */
export function ortAttentionOp(s: AttentionShape, x: QKV, opts: OrtOptions): PeerCandidate {
  const { batch: B, numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  return {
    name: 'attention-op',
    description: `ONNX Attention (opset 23), 3-D BSHD inputs, q_num_heads=${H}, kv_num_heads=${Hk}${s.causal ? ', is_causal=1' : ''}`,
    async build(layers) {
      const sess = await session({
        name: 'attention-op', opsets: { '': 23 }, irVersion: 11,
        inputs: [f32('Q', [B, Sq, H * D]), f32('K', [B, Sk, Hk * D]), f32('V', [B, Sk, Hk * Dv])],
        outputs: [f32('Y', [B, Sq, H * Dv])],
        nodes: [{
          op: 'Attention', inputs: ['Q', 'K', 'V'], outputs: ['Y'],
          attrs: { q_num_heads: H, kv_num_heads: Hk, scale: { float: 1 / Math.sqrt(D) }, ...(s.causal ? { is_causal: 1 } : {}) },
        }],
      }, opts);
      return peer(sess, (layers ?? [x]).map((xx) => ({
        Q: new ort.Tensor('float32', xx.q, [B, Sq, H * D]),
        K: new ort.Tensor('float32', xx.k, [B, Sk, Hk * D]),
        V: new ort.Tensor('float32', xx.v, [B, Sk, Hk * Dv]),
      })), 'Y', 'bshd');
    },
  };
}

/** com.microsoft MultiHeadAttention (numHeads == numKvHeads only). */
function ortMhaContrib(s: AttentionShape, x: QKV, opts: OrtOptions): PeerCandidate | null {
  const { batch: B, numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  if (H !== Hk) return null;
  return {
    name: 'mha-contrib',
    description: `com.microsoft MultiHeadAttention, 3-D BSHD inputs, num_heads=${H}${s.causal ? ', unidirectional=1' : ''}`,
    async build(layers) {
      const sess = await session({
        name: 'mha-contrib', opsets: { '': 21, 'com.microsoft': 1 }, irVersion: 10,
        inputs: [f32('Q', [B, Sq, H * D]), f32('K', [B, Sk, H * D]), f32('V', [B, Sk, H * Dv])],
        outputs: [f32('Y', [B, Sq, H * Dv])],
        nodes: [{
          op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['Q', 'K', 'V'], outputs: ['Y'],
          attrs: { num_heads: H, scale: { float: 1 / Math.sqrt(D) }, ...(s.causal ? { unidirectional: 1 } : {}) },
        }],
      }, opts);
      return peer(sess, (layers ?? [x]).map((xx) => ({
        Q: new ort.Tensor('float32', xx.q, [B, Sq, H * D]),
        K: new ort.Tensor('float32', xx.k, [B, Sk, H * D]),
        V: new ort.Tensor('float32', xx.v, [B, Sk, H * Dv]),
      })), 'Y', 'bshd');
    },
  };
}

/**
 * com.microsoft GroupQueryAttention: always causal with the queries at the end of the sequence, so
 * it fits causal self-attention (Sq = Sk) and decode (Sq = 1, any Sk), where it equals ours.
 */
function ortGqaContrib(s: AttentionShape, x: QKV, opts: OrtOptions): PeerCandidate | null {
  const { batch: B, numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  const prefill = s.causal && Sq === Sk;
  const decode = Sq === 1 && !s.causal && Sk > 1;
  if (!(prefill || decode) || D !== Dv) return null;
  return {
    name: 'gqa-contrib',
    description: prefill
      ? `com.microsoft GroupQueryAttention (causal), 3-D BSHD inputs, no past, num_heads=${H}, kv_num_heads=${Hk}`
      : `com.microsoft GroupQueryAttention, past_key/past_value BNSH [B, Hk, ${Sk - 1}, D] + 1 new token, num_heads=${H}, kv_num_heads=${Hk}`,
    async build(layers) {
      const scale = { float: 1 / Math.sqrt(D) };
      if (prefill) {
        const sess = await session({
          name: 'gqa-contrib', opsets: { '': 21, 'com.microsoft': 1 }, irVersion: 10,
          inputs: [f32('Q', [B, Sq, H * D]), f32('K', [B, Sk, Hk * D]), f32('V', [B, Sk, Hk * Dv]), i32('seqlens_k', [B]), i32('total_len', [])],
          outputs: [f32('Y', [B, Sq, H * Dv])],
          nodes: [{
            op: 'GroupQueryAttention', domain: 'com.microsoft', inputs: ['Q', 'K', 'V', '', '', 'seqlens_k', 'total_len'], outputs: ['Y', 'present_k', 'present_v'],
            attrs: { num_heads: H, kv_num_heads: Hk, scale },
          }],
        }, opts);
        return peer(sess, (layers ?? [x]).map((xx) => ({
          Q: new ort.Tensor('float32', xx.q, [B, Sq, H * D]),
          K: new ort.Tensor('float32', xx.k, [B, Sk, Hk * D]),
          V: new ort.Tensor('float32', xx.v, [B, Sk, Hk * Dv]),
          seqlens_k: new ort.Tensor('int32', new Int32Array(B).fill(Sk - 1), [B]),
          total_len: new ort.Tensor('int32', Int32Array.of(Sk), []),
        })), 'Y', 'bshd');
      }
      // Decode: keys 0..Sk−2 are the cache (BNSH), key Sk−1 is the new token (BSHD).
      const P = Sk - 1;
      const decodeFeeds = (xx: QKV): Record<string, ort.Tensor> => {
        const pastK = new Float32Array(B * Hk * P * D), pastV = new Float32Array(B * Hk * P * Dv);
        const newK = new Float32Array(B * Hk * D), newV = new Float32Array(B * Hk * Dv);
        for (let b = 0; b < B; b++) for (let j = 0; j < Sk; j++) for (let h = 0; h < Hk; h++) {
          const ks = xx.k.subarray(((b * Sk + j) * Hk + h) * D, ((b * Sk + j) * Hk + h + 1) * D);
          const vs = xx.v.subarray(((b * Sk + j) * Hk + h) * Dv, ((b * Sk + j) * Hk + h + 1) * Dv);
          if (j < P) { pastK.set(ks, ((b * Hk + h) * P + j) * D); pastV.set(vs, ((b * Hk + h) * P + j) * Dv); }
          else { newK.set(ks, (b * Hk + h) * D); newV.set(vs, (b * Hk + h) * Dv); }
        }
        return {
          Q: new ort.Tensor('float32', xx.q, [B, 1, H * D]),
          K: new ort.Tensor('float32', newK, [B, 1, Hk * D]),
          V: new ort.Tensor('float32', newV, [B, 1, Hk * Dv]),
          past_k: new ort.Tensor('float32', pastK, [B, Hk, P, D]),
          past_v: new ort.Tensor('float32', pastV, [B, Hk, P, Dv]),
          seqlens_k: new ort.Tensor('int32', new Int32Array(B).fill(Sk - 1), [B]),
          total_len: new ort.Tensor('int32', Int32Array.of(Sk), []),
        };
      };
      const sess = await session({
        name: 'gqa-contrib-decode', opsets: { '': 21, 'com.microsoft': 1 }, irVersion: 10,
        inputs: [
          f32('Q', [B, 1, H * D]), f32('K', [B, 1, Hk * D]), f32('V', [B, 1, Hk * Dv]),
          f32('past_k', [B, Hk, P, D]), f32('past_v', [B, Hk, P, Dv]), i32('seqlens_k', [B]), i32('total_len', []),
        ],
        outputs: [f32('Y', [B, 1, H * Dv])],
        nodes: [{
          op: 'GroupQueryAttention', domain: 'com.microsoft', inputs: ['Q', 'K', 'V', 'past_k', 'past_v', 'seqlens_k', 'total_len'], outputs: ['Y', 'present_k', 'present_v'],
          attrs: { num_heads: H, kv_num_heads: Hk, scale },
        }],
      }, opts);
      return peer(sess, (layers ?? [x]).map(decodeFeeds), 'Y', 'bshd');
    },
  };
}

/** MatMul → Softmax → MatMul (see the file comment for the GQA arrangement). */
function ortMatmulSoftmax(s: AttentionShape, x: QKV, opts: OrtOptions): PeerCandidate | null {
  const { batch: B, numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  if (s.blockSparse) return null;
  const G = H / Hk;
  const causal = s.causal;
  // BHSD q is [B, Hk, G, Sq, D] in memory: the two arrangements below are free reshapes of it.
  const qDims = causal ? [B, Hk, G, Sq, D] : [B, Hk, G * Sq, D];
  const ktDims = causal ? [B, Hk, 1, D, Sk] : [B, Hk, D, Sk];
  const vDims = causal ? [B, Hk, 1, Sk, Dv] : [B, Hk, Sk, Dv];
  const yDims = causal ? [B, Hk, G, Sq, Dv] : [B, Hk, G * Sq, Dv];
  return {
    name: 'matmul-softmax',
    description: causal
      ? 'MatMul(Q·scale, Kᵀ) + causal mask → Softmax → MatMul(·, V); BHSD inputs, Kᵀ pre-transposed, K/V broadcast over the GQA group'
      : 'MatMul(Q·scale, Kᵀ) → Softmax → MatMul(·, V); BHSD inputs, Kᵀ pre-transposed, GQA group rows stacked',
    async build(layers) {
      const nodes: OnnxGraph['nodes'] = [
        { op: 'Mul', inputs: ['Q', 'scale'], outputs: ['Qs'] },
        { op: 'MatMul', inputs: ['Qs', 'Kt'], outputs: ['S'] },
      ];
      const initializers: NonNullable<OnnxGraph['initializers']> = [{ name: 'scale', dataType: ONNX_FLOAT, dims: [], raw: floatRaw([1 / Math.sqrt(D)]) }];
      let logits = 'S';
      if (causal) {
        const m = new Float32Array(Sq * Sk);
        for (let i = 0; i < Sq; i++) for (let j = 0; j < Sk; j++) m[i * Sk + j] = j <= i + Sk - Sq ? 0 : -Infinity;
        initializers.push({ name: 'mask', dataType: ONNX_FLOAT, dims: [Sq, Sk], raw: new Uint8Array(m.buffer) });
        nodes.push({ op: 'Add', inputs: ['S', 'mask'], outputs: ['Sm'] });
        logits = 'Sm';
      }
      nodes.push({ op: 'Softmax', inputs: [logits], outputs: ['P'], attrs: { axis: -1 } });
      nodes.push({ op: 'MatMul', inputs: ['P', 'V'], outputs: ['Y'] });
      const sess = await session({
        name: 'matmul-softmax', opsets: { '': 21 }, irVersion: 10,
        inputs: [f32('Q', qDims), f32('Kt', ktDims), f32('V', vDims)], outputs: [f32('Y', yDims)], nodes, initializers,
      }, opts);
      return peer(sess, (layers ?? [x]).map((xx) => ({
        Q: new ort.Tensor('float32', toBhsd(xx.q, B, Sq, H, D), qDims),
        Kt: new ort.Tensor('float32', toBhds(xx.k, B, Sk, Hk, D), ktDims),
        V: new ort.Tensor('float32', toBhsd(xx.v, B, Sk, Hk, Dv), vDims),
      })), 'Y', 'bhsd');
    },
  };
}

/** The alternatives to the standard op that apply to a shape (the fastest valid one is reported). */
export function ortAlternatives(s: AttentionShape, x: QKV, opts: OrtOptions): PeerCandidate[] {
  return [ortMhaContrib(s, x, opts), ortGqaContrib(s, x, opts), ortMatmulSoftmax(s, x, opts)].filter((c): c is PeerCandidate => c !== null);
}
