/**
 * The naive TypeScript peer: what a careful but unoptimised implementation does. Per (batch, head,
 * query row): all scores into a Float32Array, max, exp and sum, then P·V accumulated row by row.
 * No tiling, no SIMD, no threads. Causal masks bound the key loop; other masks are evaluated per
 * element with Mask.allows.
 */
import type { Mask } from '../../src/index.js';
import type { QKV } from '../lib/check.js';
import type { AttentionShape } from '../lib/shapes.js';

/**
 * Computes the output rows of the given query indices (every batch and head) into `out`
 * (BSHD [B, Sq, H, Dv]); other rows are left untouched.
 */
export function naiveAttention(s: AttentionShape, x: QKV, mask: Mask | null, out: Float32Array, queries: readonly number[]): void {
  const { batch: B, numHeads: H, numKvHeads: Hk, seqLenQ: Sq, seqLenK: Sk, headDim: D, headDimV: Dv } = s;
  const scale = 1 / Math.sqrt(D);
  const group = H / Hk;
  const scores = new Float32Array(Sk);
  const acc = new Float32Array(Dv);
  const ctx = { seqLenQ: Sq, seqLenK: Sk };
  const causalOnly = s.causal && !s.blockSparse;
  const general = causalOnly ? null : mask;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / group);
      for (const i of queries) {
        const qo = ((b * Sq + i) * H + h) * D;
        // Keys [0, jEnd) for causal (bottom-right aligned); everything else goes through the mask.
        const jEnd = causalOnly ? Math.min(Sk, i + Sk - Sq + 1) : Sk;
        let mx = -Infinity;
        for (let j = 0; j < jEnd; j++) {
          if (general && !general.allows(i, j, ctx)) { scores[j] = -Infinity; continue; }
          const ko = ((b * Sk + j) * Hk + hk) * D;
          let dot = 0;
          for (let c = 0; c < D; c++) dot += x.q[qo + c]! * x.k[ko + c]!;
          const sc = dot * scale;
          scores[j] = sc;
          if (sc > mx) mx = sc;
        }
        acc.fill(0);
        const oo = ((b * Sq + i) * H + h) * Dv;
        if (mx === -Infinity) { out.fill(0, oo, oo + Dv); continue; }
        let sum = 0;
        for (let j = 0; j < jEnd; j++) {
          const p = Math.exp(scores[j]! - mx);
          if (p === 0) continue;
          sum += p;
          const vo = ((b * Sk + j) * Hk + hk) * Dv;
          for (let c = 0; c < Dv; c++) acc[c]! += p * x.v[vo + c]!;
        }
        for (let c = 0; c < Dv; c++) out[oo + c] = acc[c]! / sum;
      }
    }
  }
}

/**
 * Query rows to time: every k-th row, so the subset has the shape's average work per row (a
 * causal mask's rows grow with i). Whole shape when its FLOPs fit `maxFlops`.
 */
export function naiveTimedRows(s: AttentionShape, flops: number, maxFlops: number): number[] {
  const count = Math.max(1, Math.min(s.seqLenQ, Math.round(s.seqLenQ * Math.min(1, maxFlops / flops))));
  const rows: number[] = [];
  for (let n = 0; n < count; n++) rows.push(Math.floor(((n + 0.5) * s.seqLenQ) / count));
  return rows;
}
