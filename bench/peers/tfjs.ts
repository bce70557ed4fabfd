/**
 * TensorFlow.js peers on the WASM backend (tfjs-core + tfjs-backend-wasm, XNNPACK inside). Two
 * formulations of the same math; the bench reports the faster valid one:
 *
 *   batched      one batched matMul(Q·scale, Kᵀ) → (+ causal mask) → softmax → matMul(·, V) over
 *                [B·Hk, G·Sq, ·] (the GQA group's query rows stacked, so K/V are never repeated);
 *   per-head-2d  the same per (batch, KV head) with 2-D matMuls against a pre-transposed Kᵀ
 *                (tfjs-wasm's 2-D matMul is much faster than its batched or transposed-B paths).
 *
 * Inputs are uploaded once in the arrangement each formulation wants (not timed). A timed run
 * includes reading the output back (dataSync), as a caller would. Node has no threaded tfjs-wasm
 * build, so it runs on one thread; `threads` reports what tfjs says.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import type { QKV } from '../lib/check.js';
import type { AttentionShape } from '../lib/shapes.js';
import type { PeerCandidate, PeerRun } from './ort.js';
import { toBhds, toBhsd } from './ort.js';

export interface TfjsInfo {
  version: string;
  backend: string;
  threads: number;
  simd: boolean;
  multithreadSupport: boolean;
}

let ready: Promise<TfjsInfo> | null = null;

/** Initialises the WASM backend once, asking for `threads` threads. */
export function initTfjs(threads: number): Promise<TfjsInfo> {
  if (!ready) {
    ready = (async () => {
      tfwasm.setThreadsCount(threads);
      const ok = await tf.setBackend('wasm');
      if (!ok) throw new Error('bench: tfjs could not start its wasm backend');
      await tf.ready();
      return {
        version: tf.version_core,
        backend: tf.getBackend(),
        threads: tfwasm.getThreadsCount(),
        simd: Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')),
        multithreadSupport: Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')),
      };
    })();
  }
  return ready;
}

function causalBias(Sq: number, Sk: number, G: number): Float32Array {
  // Rows are (g, i) stacked: row g·Sq + i sees keys j ≤ i + Sk − Sq.
  const m = new Float32Array(G * Sq * Sk);
  for (let g = 0; g < G; g++) for (let i = 0; i < Sq; i++) for (let j = i + Sk - Sq + 1; j < Sk; j++) m[(g * Sq + i) * Sk + j] = -Infinity;
  return m;
}

function tfPeer(run: () => tf.Tensor, inputs: tf.Tensor[]): PeerRun {
  let last: Float32Array | null = null;
  return {
    async run() {
      const y = run();
      last = y.dataSync() as Float32Array;
      y.dispose();
    },
    output() {
      if (!last) throw new Error('bench: tfjs peer has not run');
      return { data: last, layout: 'bhsd' };
    },
    async dispose() { tf.dispose(inputs); },
  };
}

export function tfjsCandidates(s: AttentionShape, x: QKV): PeerCandidate[] {
  const { batch: B, numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  if (s.blockSparse) return [];
  const G = H / Hk, rows = G * Sq, BH = B * Hk;
  const scale = 1 / Math.sqrt(D);
  const prep = () => ({ q: toBhsd(x.q, B, Sq, H, D), kt: toBhds(x.k, B, Sk, Hk, D), v: toBhsd(x.v, B, Sk, Hk, Dv) });
  // The batched formulation holds scores and probabilities for every head at once in the wasm32 heap
  // (at most 4 GiB, shared with everything else): skip it where that cannot fit.
  const batchedBytes = 2 * BH * rows * Sk * 4;
  const batchedFits = batchedBytes <= 1.5 * 2 ** 30;
  return [
    ...(batchedFits ? [] : [{
      name: 'batched',
      description: `skipped: its scores and probabilities need ${(batchedBytes / 2 ** 30).toFixed(1)} GiB of the 4 GiB wasm32 heap`,
      build: () => Promise.reject(new Error(`skipped: needs ${(batchedBytes / 2 ** 30).toFixed(1)} GiB of wasm32 heap for N² scores and probabilities`)),
    }]),
    ...(!batchedFits ? [] : [{
      name: 'batched',
      description: 'batched matMul(Q·scale, Kᵀ) → softmax → matMul(·, V) over [B·Hk, G·Sq, ·]',
      async build() {
        const p = prep();
        const q = tf.tensor3d(p.q, [BH, rows, D]), kt = tf.tensor3d(p.kt, [BH, D, Sk]), v = tf.tensor3d(p.v, [BH, Sk, Dv]);
        const bias = s.causal ? tf.tensor2d(causalBias(Sq, Sk, G), [rows, Sk]) : null;
        const inputs = [q, kt, v, ...(bias ? [bias] : [])];
        return tfPeer(() => tf.tidy(() => {
          let sc = tf.matMul(tf.mul(q, scale), kt);
          if (bias) sc = tf.add(sc, bias);
          return tf.matMul(tf.softmax(sc), v);
        }), inputs);
      },
    }]),
    {
      name: 'per-head-2d',
      description: '2-D matMul(Q·scale, Kᵀ) → softmax → matMul(·, V) per (batch, KV head), outputs concatenated',
      async build() {
        const p = prep();
        const qs: tf.Tensor2D[] = [], kts: tf.Tensor2D[] = [], vs: tf.Tensor2D[] = [];
        for (let n = 0; n < BH; n++) {
          qs.push(tf.tensor2d(p.q.subarray(n * rows * D, (n + 1) * rows * D), [rows, D]));
          kts.push(tf.tensor2d(p.kt.subarray(n * D * Sk, (n + 1) * D * Sk), [D, Sk]));
          vs.push(tf.tensor2d(p.v.subarray(n * Sk * Dv, (n + 1) * Sk * Dv), [Sk, Dv]));
        }
        const bias = s.causal ? tf.tensor2d(causalBias(Sq, Sk, G), [rows, Sk]) : null;
        const inputs = [...qs, ...kts, ...vs, ...(bias ? [bias] : [])];
        return tfPeer(() => {
          // One tidy per head, so each head's N² scores are freed before the next head starts.
          const outs: tf.Tensor[] = [];
          for (let n = 0; n < BH; n++) {
            outs.push(tf.tidy(() => {
              let sc = tf.matMul(tf.mul(qs[n]!, scale), kts[n]!);
              if (bias) sc = tf.add(sc, bias);
              return tf.matMul(tf.softmax(sc), vs[n]!);
            }));
          }
          const y = tf.concat(outs, 0);
          tf.dispose(outs);
          return y;
        }, inputs);
      },
    },
  ];
}
