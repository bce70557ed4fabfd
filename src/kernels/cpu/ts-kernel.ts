/**
 * Plain TypeScript flash attention: the fallback where WebAssembly SIMD is missing, and the readable
 * twin of the WASM kernel (same tiling, same tile plans, same online softmax).
 *
 * Per (sequence, head, Q tile of TILE_Q rows), over the KV tiles the tile plan lists:
 *   S = Q·Kᵀ·scale (softcap), element predicate only on partial tiles, then
 *   m_new = max(m, rowmax(S)); P = exp(S − m_new); l = l·exp(m − m_new) + rowsum(P);
 *   acc = acc·exp(m − m_new) + P·V.
 * Finally O = acc / l and lse = m + log(l). Extra memory: O(TILE_Q · (headDim + TILE_K)).
 */
import type { AttentionPlan } from '../../attention/plan.js';
import { type RowView, lseView, rowView } from '../../attention/views.js';
import { type MaskContext, type TopKThresholds, allowsScored, findTopK, topKThresholds } from '../../masks/mask.js';
import { planTiles } from '../../masks/tiles.js';
import { decoder, encoder } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';

export const TS_TILE_Q = 32;
export const TS_TILE_K = 64;

function loadRows(view: RowView, dec: (x: number) => number, b: number, row0: number, rows: number, h: number, dim: number, scale: number, dst: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const base = view.seqBase[b]! + (row0 + r) * view.rowStride + h * view.headStride;
    for (let c = 0; c < dim; c++) dst[r * dim + c] = dec(view.data[base + c * view.dimStride]!) * scale;
  }
}

function softcapped(x: number, softcap: number): number {
  return softcap > 0 ? softcap * Math.tanh(x / softcap) : x;
}

/** Per-row top-k thresholds for one (sequence, head), from the same f32 scores the kernel uses. */
function thresholdsFor(plan: AttentionPlan, Q: RowView, K: RowView, b: number, h: number, ctx: MaskContext): TopKThresholds {
  const node = findTopK(plan.mask!.node)!;
  const dec = decoder(plan.dtype);
  const D = plan.headDim, hk = Math.floor(h / plan.groupSize);
  const qrow = new Float32Array(D), krows = new Float32Array(ctx.seqLenK * D);
  loadRows(K, dec, b, 0, ctx.seqLenK, hk, D, 1, krows);
  // Float64, as the main loop's scores are: an f32 threshold rounded up above the k-th soft-capped score dropped it.
  const scores = new Float64Array(ctx.seqLenK);
  const cache = new Map<number, Float64Array>();
  return topKThresholds(node, ctx, (i, j) => {
    let row = cache.get(i);
    if (!row) {
      cache.clear();
      loadRows(Q, dec, b, i, 1, h, D, plan.scale, qrow);
      for (let jj = 0; jj < ctx.seqLenK; jj++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += qrow[c]! * krows[jj * D + c]!;
        scores[jj] = softcapped(Math.fround(dot), plan.softcap);
      }
      row = scores;
      cache.set(i, row);
    }
    return row[j]!;
  });
}

export function flashAttentionTS(plan: AttentionPlan, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor | null): void {
  const Q = rowView(plan, q, 'q'), K = rowView(plan, k, 'k'), V = rowView(plan, v, 'k'), O = rowView(plan, out, 'o');
  const L = lse ? lseView(plan, lse) : null;
  const dec = decoder(plan.dtype), enc = encoder(out.dtype);
  const D = plan.headDim, Dv = plan.headDimV;
  const tq = TS_TILE_Q, tk = TS_TILE_K;
  const qt = new Float32Array(tq * D), kt = new Float32Array(tk * D), vt = new Float32Array(tk * Dv);
  const s = new Float32Array(tq * tk), acc = new Float32Array(tq * Dv);
  const m = new Float32Array(tq), l = new Float32Array(tq);
  const hasTopK = plan.mask !== null && findTopK(plan.mask.node) !== null;
  for (let b = 0; b < plan.batch; b++) {
    const lq = plan.cuSeqlensQ[b + 1]! - plan.cuSeqlensQ[b]!, lk = plan.cuSeqlensK[b + 1]! - plan.cuSeqlensK[b]!;
    if (lq === 0) continue;
    const ctx = { seqLenQ: lq, seqLenK: lk };
    const tiles = planTiles(plan.mask, ctx, tq, tk);
    for (let h = 0; h < plan.numHeads; h++) {
      const hk = Math.floor(h / plan.groupSize);
      const thr = hasTopK && lk > 0 ? thresholdsFor(plan, Q, K, b, h, ctx) : null;
      for (let qi = 0; qi < tiles.numQTiles; qi++) {
        const q0 = qi * tq, nq = Math.min(tq, lq - q0);
        loadRows(Q, dec, b, q0, nq, h, D, plan.scale, qt);
        m.fill(-Infinity);
        l.fill(0);
        acc.fill(0);
        for (let e = tiles.rowStart[qi]!; e < tiles.rowStart[qi + 1]!; e++) {
          const ent = tiles.entries[e]!, k0 = (ent >> 1) * tk, partial = (ent & 1) === 1;
          const nk = Math.min(tk, lk - k0);
          loadRows(K, dec, b, k0, nk, hk, D, 1, kt);
          loadRows(V, dec, b, k0, nk, hk, Dv, 1, vt);
          for (let r = 0; r < nq; r++) {
            // S row, masked, and its max.
            let mx = m[r]!;
            for (let j = 0; j < nk; j++) {
              let dot = 0;
              for (let c = 0; c < D; c++) dot += qt[r * D + c]! * kt[j * D + c]!;
              let x = softcapped(Math.fround(dot), plan.softcap);
              if (partial && !allowsScored(plan.mask!, q0 + r, k0 + j, ctx, thr, x)) x = -Infinity;
              s[r * tk + j] = x;
              mx = Number.isNaN(x) || Number.isNaN(mx) ? NaN : Math.max(mx, x);
            }
            // Online softmax update; a row that has seen only −∞ keeps m = −∞ and contributes nothing.
            const mUse = mx === -Infinity ? 0 : mx;
            const alpha = Math.exp(m[r]! - mUse);
            let rowSum = 0;
            for (let j = 0; j < nk; j++) {
              const p = Math.exp(s[r * tk + j]! - mUse);
              s[r * tk + j] = p;
              rowSum += p;
            }
            l[r] = l[r]! * alpha + rowSum;
            m[r] = mx;
            const ao = r * Dv;
            for (let c = 0; c < Dv; c++) acc[ao + c]! *= alpha;
            for (let j = 0; j < nk; j++) {
              const p = s[r * tk + j]!;
              if (p === 0) continue;
              const vo = j * Dv;
              for (let c = 0; c < Dv; c++) acc[ao + c] = acc[ao + c]! + p * vt[vo + c]!;
            }
          }
        }
        for (let r = 0; r < nq; r++) {
          const base = O.seqBase[b]! + (q0 + r) * O.rowStride + h * O.headStride;
          const inv = l[r]! > 0 ? 1 / l[r]! : 0;
          const nan = Number.isNaN(m[r]!) || Number.isNaN(l[r]!);
          for (let c = 0; c < Dv; c++) O.data[base + c * O.dimStride] = enc(nan ? NaN : acc[r * Dv + c]! * inv);
          if (L) L.data[L.seqBase[b]! + h * L.headStride + (q0 + r) * L.rowStride] = nan ? NaN : l[r]! > 0 ? m[r]! + Math.log(l[r]!) : -Infinity;
        }
      }
    }
  }
}
