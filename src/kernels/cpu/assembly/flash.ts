// FlashAttention forward on WebAssembly SIMD (AssemblyScript).
//
// Algorithm (FlashAttention-2, one Q tile at a time, online softmax with exp2):
//   for each visited KV tile (the host's tile plan lists them; empty tiles never appear):
//     Sᵀ = (K·scale)·Qᵀ                   (4 keys × 8 queries register blocks; K scaled as it is packed)
//     softcap·tanh(·/softcap)             (optional)
//     Sᵀ[¬mask] = −∞                      (partial tiles only: row-bitmask program, 64 keys per word)
//     m_new = max(m, colmax(Sᵀ)); Pᵀ = 2^((Sᵀ − m_new)·log2 e); l = l·2^((m − m_new)·log2 e) + colsum(Pᵀ)
//     acc = acc·2^((m − m_new)·log2 e) + P·V   (4 queries × 8 columns register blocks over a packed V tile)
//   O = acc / l, lse = m + ln l            (fully masked rows: O = 0, lse = −∞)
// Scores stay in natural units and log2 e multiplies S − m, which is exact for the scores that matter
// (Sterbenz): folding scale·log2 e into Q instead moved large scores into the next binade and rounded
// every Q element: on inputs near ±1000 the output error exceeded FlashAttention's rule (2× a naive f32
// implementation's) on 7 of 40 seeds with unfused multiply-adds, by up to 60×; now it tracks the naive error.
// Sᵀ is key-major so the softmax runs down columns with whole vectors of queries (no horizontal
// reductions) and K needs no transpose: the QKᵀ micro-kernel broadcasts K elements against Qᵀ.
// V is copied per tile into a dense buffer: V rows in BSHD are often 4 KiB apart, which would map a
// tile's 64 rows onto one L1 set.
//
// Decode (few queries, long KV): one job per (sequence, split of the visited KV tiles) covering all
// heads, so K and V stream through memory in order (all heads of a key are adjacent in BSHD); the
// rows of a GQA group share each K/V load; partial (m, l, acc) are merged by log-sum-exp.
//
// Threads: every worker instantiates this module over the same shared memory and pulls job indices
// from an atomic counter (runJobs). The kernel keeps no mutable globals: per-thread state lives in
// the thread's scratch region.
//
// Variants: v1 (row-major S, transposed K tiles, natural exp) ran the ViT-L shape at ~50% of one
// core's FMA peak; v2 (this file: key-major Sᵀ, K in place, exp2 with a magic-constant rounding)
// removes the K transpose and the horizontal reductions.

import {
  P_Q_DATA, P_K_DATA, P_V_DATA, P_O_DATA, P_LSE_DATA, P_DTYPE, P_OUT_DTYPE, P_GROUP, P_HEAD_DIM, P_HEAD_DIM_V,
  P_DPAD, P_DVPAD, P_Q_ROW, P_Q_HEAD, P_K_ROW, P_K_HEAD, P_V_ROW, P_V_HEAD, P_O_ROW, P_O_HEAD, P_LSE_ROW, P_LSE_HEAD,
  P_SEQS, P_TILE_PLANS, P_SCALE, P_SOFTCAP, P_MASK_PROG, P_TOPK_THR, P_THR_HEAD_STRIDE, P_TOPK_K, P_TOPK_PROG,
  P_TOPK_TILE_PLANS, P_TILE_Q, P_NUM_KV_HEADS, P_VT_ROWS, P_COLSUM, P_COLSUM_STRIDE, P_Q_START, P_Q_END, P_TOTAL_K, P_BLOCK_SIZE, P_K_SCALES, P_V_SCALES, P_KV_DTYPE, P_PANEL_TILES, P_READ_AHEAD_BYTES, P_SCRATCH, P_SCRATCH_BYTES, P_PARTIALS, P_SPLIT_TILES, P_PARTIAL_ROWS,
  S_Q_BASE, S_K_BASE, S_V_BASE, S_O_BASE, S_LSE_BASE, S_LEN_Q, S_LEN_K, S_TILE_PLAN, S_ROW_GLOBAL, S_ROW_GLOBAL_K, S_BLOCK_TABLE, SEQ_SLOTS,
  T_ROW_START, T_ENTRIES, TILEPLAN_SLOTS, J_SEQ, J_HEAD, J_QTILE, J_SPLIT, JOB_SLOTS,
  KIND_PREFILL, KIND_DECODE_SPLIT, KIND_DECODE_MERGE, KIND_TOPK, KIND_COLSUM, KIND_MATMUL,
  MM_A, MM_W, MM_BIAS, MM_C, MM_M, MM_N, MM_K, MM_A_ROW, MM_C_ROW,
  OP_ALL, OP_NONE, OP_REL, OP_KEYRANGE, OP_STRIDED, OP_BLOCKSPARSE, OP_KEYBITS, OP_DOCS, OP_BITMATRIX, OP_TOPK,
  OP_AND, OP_OR, OP_NOT, OP_END,
} from './abi.generated';

const BC: i32 = 64; // keys per tile (one 64-bit mask word per row)
const NEG_INF: f32 = -Infinity;
const STACK_WORDS: i32 = 32;
const VC: i32 = 8; // keys per in-place P·V chunk in decode

// ---------------------------------------------------------------------------------------------
// Plan access

// @ts-ignore: decorator
@inline function pi(plan: usize, f: i32): i32 { return load<i32>(plan + (<usize>f << 2)); }
// @ts-ignore: decorator
@inline function pu(plan: usize, f: i32): usize { return <usize>load<u32>(plan + (<usize>f << 2)); }
// @ts-ignore: decorator
@inline function pf(plan: usize, f: i32): f32 { return load<f32>(plan + (<usize>f << 2)); }
// @ts-ignore: decorator
@inline function ri(rec: usize, f: i32): i32 { return load<i32>(rec + (<usize>f << 2)); }

// ---------------------------------------------------------------------------------------------
// Scalar conversions (exact; f32 → f16/bf16 round to nearest even)

// @ts-ignore: decorator
@inline function h2f(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const em = h & 0x7fff;
  if (em >= 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | ((em & 0x3ff) << 13));
  const f = reinterpret<f32>(em << 13) * reinterpret<f32>(0x77800000); // × 2^112 handles subnormals too
  return reinterpret<f32>(reinterpret<u32>(f) | sign);
}

// Four f16 (raw bits zero-extended to 32-bit lanes) → f32x4, exactly as h2f.
// @ts-ignore: decorator
@inline function h2f4(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = v128.and(h, i32x4.splat(0x7fff));
  let f = f32x4.mul(i32x4.shl(em, 13), f32x4.splat(reinterpret<f32>(0x77800000))); // normals and subnormals
  const big = i32x4.ge_s(em, i32x4.splat(0x7c00));
  // Inf and NaN (rare): the exponent all ones, the payload kept.
  if (v128.any_true(big)) f = v128.bitselect(v128.or(i32x4.splat(0x7f800000), i32x4.shl(v128.and(em, i32x4.splat(0x3ff)), 13)), f, big);
  return v128.or(f, sign);
}

function f2h(v: f32): u32 {
  let u = reinterpret<u32>(v);
  const sign = (u >> 16) & 0x8000;
  u &= 0x7fffffff;
  if (u >= 0x47800000) return sign | (u > 0x7f800000 ? 0x7e00 : 0x7c00); // overflow → Inf, NaN → qNaN
  if (u < 0x38800000) {
    // Result is subnormal or zero: let the FPU round by adding 0.5 (denorm magic).
    const f = reinterpret<f32>(u) + reinterpret<f32>(0x3f000000);
    return sign | (reinterpret<u32>(f) - 0x3f000000);
  }
  const odd = (u >> 13) & 1;
  u += 0xc8000fff; // ((15 − 127) << 23) + 0xfff, mod 2^32
  u += odd;
  return sign | (u >> 13);
}

// @ts-ignore: decorator
@inline function f2bf(v: f32): u32 {
  const u = reinterpret<u32>(v);
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff;
}

// @ts-ignore: decorator
@inline function loadElem(base: usize, idx: usize, dtype: i32): f32 {
  if (dtype == 0) return load<f32>(base + (idx << 2));
  const h = <u32>load<u16>(base + (idx << 1));
  return dtype == 1 ? h2f(h) : reinterpret<f32>(h << 16);
}

// @ts-ignore: decorator
@inline function storeElem(base: usize, idx: usize, dtype: i32, v: f32): void {
  if (dtype == 0) store<f32>(base + (idx << 2), v);
  else store<u16>(base + (idx << 1), <u16>(dtype == 1 ? f2h(v) : f2bf(v)));
}

// ---------------------------------------------------------------------------------------------
// Vector math

// @ts-ignore: decorator
@inline function fma4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// Lane maximum that need not propagate NaN (a NaN score still poisons the row through 2^(s − m)).
// @ts-ignore: decorator
@inline function vmax(a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_max(a, b);
  return f32x4.pmax(a, b);
}

const MAGIC: f32 = 12582912.0 + 127.0; // 1.5·2^23 + exponent bias

// 2^x for x ≤ 0 (or NaN): rounding by the magic constant (its low mantissa bits become n + 127,
// shifted straight into the exponent field), then Cephes' exp2f polynomial on [−½, ½] (≈1 ulp).
// x < −126 (and −∞) give exactly 0; NaN stays NaN.
// @ts-ignore: decorator
@inline function exp2Neg4(x: v128): v128 {
  const tiny = f32x4.lt(x, f32x4.splat(-126.0));
  const xc = f32x4.pmax(x, f32x4.splat(-126.0)); // (x < −126) ? −126 : x, keeps NaN
  const t = f32x4.add(xc, f32x4.splat(MAGIC));
  const f = f32x4.sub(xc, f32x4.sub(t, f32x4.splat(MAGIC)));
  let p = f32x4.splat(1.535336188319500e-4);
  p = fma4(p, f, f32x4.splat(1.339887440266574e-3));
  p = fma4(p, f, f32x4.splat(9.618437357674640e-3));
  p = fma4(p, f, f32x4.splat(5.550332471162809e-2));
  p = fma4(p, f, f32x4.splat(2.402264791363012e-1));
  p = fma4(p, f, f32x4.splat(6.931472028550421e-1));
  p = fma4(p, f, f32x4.splat(1.0));
  return v128.andnot(f32x4.mul(p, i32x4.shl(t, 23)), tiny);
}

const LOG2E: f32 = 1.4426950408889634;
/** Headroom of the lazily rescaled softmax: unnormalised probabilities stay ≤ 2^8 (8 in base 2). */
const RESCALE_SLACK_NAT: f32 = 8.0 * 0.6931471805599453;
const LN2: f32 = 0.6931471805599453;

// tanh(x), Cephes tanhf: polynomial for |x| < 0.625, 1 − 2/(e^{2|x|} + 1) otherwise.
// @ts-ignore: decorator
@inline function tanh4(x: v128): v128 {
  const ax = f32x4.abs(x);
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-5.70498872745e-3);
  p = fma4(p, z, f32x4.splat(2.06390887954e-2));
  p = fma4(p, z, f32x4.splat(-5.37397155531e-2));
  p = fma4(p, z, f32x4.splat(1.33314422036e-1));
  p = fma4(p, z, f32x4.splat(-3.33332819422e-1));
  const small = fma4(f32x4.mul(p, z), x, x);
  const t = exp2Neg4(f32x4.mul(ax, f32x4.splat(-2.0 * LOG2E))); // e^{−2|x|} in (0, 1]
  const big = f32x4.div(f32x4.sub(f32x4.splat(1.0), t), f32x4.add(f32x4.splat(1.0), t));
  const signed = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  return v128.bitselect(small, signed, f32x4.lt(ax, f32x4.splat(0.625)));
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  const a = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  const b = f32x4.add(a, v128.shuffle<f32>(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}

// [Σa, Σb, Σc, Σd]: the four horizontal sums at once (a 4×4 transpose folded into the adds), each lane summed as
// hsum sums it: (x0 + x2) + (x1 + x3).
// @ts-ignore: decorator
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7)); // a0+a2 b0+b2 a1+a3 b1+b3
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

// ---------------------------------------------------------------------------------------------
// Scratch: a thread's region starts with a header of buffer pointers (written by runJobs). No
// module-level objects: all instances share linear memory, so per-thread state lives here.

const HEADER: usize = 64;
// @ts-ignore: decorator
@inline function scf(sc: usize, f: i32): usize { return <usize>load<u32>(sc + (<usize>f << 2)); }
// @ts-ignore: decorator
@inline function sc_q(sc: usize): usize { return scf(sc, 0); }     // Qᵀ (prefill: dpad × 64) or Q rows (decode: rows × dpad)
// @ts-ignore: decorator
@inline function sc_k(sc: usize): usize { return scf(sc, 1); }     // converted K tile rows (64 × dpad)
// @ts-ignore: decorator
@inline function sc_v(sc: usize): usize { return scf(sc, 2); }     // V tile(s): vtRows × dvpad
// @ts-ignore: decorator
@inline function sc_s(sc: usize): usize { return scf(sc, 3); }     // Sᵀ (64 keys × 64 queries) or S (rows × 64)
// @ts-ignore: decorator
@inline function sc_o(sc: usize): usize { return scf(sc, 4); }     // acc: rows × dvpad
// @ts-ignore: decorator
@inline function sc_m(sc: usize): usize { return scf(sc, 5); }
// @ts-ignore: decorator
@inline function sc_l(sc: usize): usize { return scf(sc, 6); }
// @ts-ignore: decorator
@inline function sc_alpha(sc: usize): usize { return scf(sc, 7); }
// @ts-ignore: decorator
@inline function sc_stack(sc: usize): usize { return scf(sc, 8); }
// @ts-ignore: decorator
@inline function sc_heap(sc: usize): usize { return scf(sc, 9); }
// @ts-ignore: decorator
@inline function sc_zero(sc: usize): usize { return scf(sc, 10); } // a zero row (dpad floats)
// @ts-ignore: decorator
@inline function sc_pk(sc: usize): usize { return scf(sc, 11); }   // K panel: tile t packed (packK4) at t·64·D floats
// @ts-ignore: decorator
@inline function sc_pv(sc: usize): usize { return scf(sc, 12); }   // V panel: tile t rows (dvpad floats) at t·64·dvpad
// @ts-ignore: decorator
@inline function sc_ptag(sc: usize): usize { return scf(sc, 13); } // per tile: which (sequence, KV head) + 1 it holds, 0 none

function scratchLayout(base: usize, rows: i32, dpad: i32, dvpad: i32, topk: i32, vtRows: i32, panel: i32, write: bool): usize {
  const r = rows > BC ? rows : BC;
  let p = base + HEADER;
  const put = (f: i32, bytes: usize, base: usize, p: usize, write: bool): usize => {
    if (write) store<u32>(base + (<usize>f << 2), <u32>p);
    return p + ((bytes + 63) & ~63);
  };
  p = put(0, <usize>(r * dpad) << 2, base, p, write);
  p = put(1, <usize>(BC * dpad) << 2, base, p, write);
  p = put(2, <usize>(vtRows * dvpad) << 2, base, p, write);
  p = put(3, <usize>(r * BC) << 2, base, p, write);
  p = put(4, <usize>(r * dvpad) << 2, base, p, write);
  p = put(5, <usize>r << 2, base, p, write);
  p = put(6, <usize>r << 2, base, p, write);
  p = put(7, <usize>r << 2, base, p, write);
  p = put(8, <usize>STACK_WORDS << 3, base, p, write);
  p = put(9, <usize>(r * (topk + 1)) << 2, base, p, write);
  p = put(10, <usize>dpad << 2, base, p, write);
  p = put(11, <usize>(panel * BC * dpad) << 2, base, p, write);
  p = put(12, <usize>(panel * BC * dvpad) << 2, base, p, write);
  p = put(13, <usize>panel << 2, base, p, write);
  return p - base;
}

/** Bytes of one thread's scratch; `panel` K tiles of packed K/V kept across jobs (0: none). */
export function scratchBytes(rows: i32, dpad: i32, dvpad: i32, topk: i32, vtRows: i32, panel: i32): i32 {
  return <i32>((scratchLayout(0, rows, dpad, dvpad, topk, vtRows, panel, false) + 63) & ~63);
}

// ---------------------------------------------------------------------------------------------
// Loads

// Qᵀ for a prefill tile: qt[c·64 + i] = q[row q0 + i, head h, c] (unscaled: packK4 scales K); queries nq..64 are zero.
function loadQT(plan: usize, seq: usize, h: i32, q0: i32, nq: i32, qt: usize): void {
  const D = pi(plan, P_HEAD_DIM), dtype = pi(plan, P_DTYPE);
  const qdata = pu(plan, P_Q_DATA), qRow = pu(plan, P_Q_ROW);
  const base = <usize>ri(seq, S_Q_BASE) + <usize>h * pu(plan, P_Q_HEAD);
  memory.fill(qt, 0, <usize>(D * BC) << 2);
  let i = 0;
  if (dtype == 0) {
    // f32: 4 queries × 4 columns at a time, transposed in registers.
    for (; i + 4 <= nq; i += 4) {
      const r0 = qdata + ((base + <usize>(q0 + i) * qRow) << 2), rs = qRow << 2;
      let c = 0;
      for (; c + 4 <= D; c += 4) {
        const o = <usize>c << 2;
        const a = v128.load(r0 + o), b = v128.load(r0 + rs + o);
        const e = v128.load(r0 + 2 * rs + o), f = v128.load(r0 + 3 * rs + o);
        const ab0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5), ab1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const ef0 = v128.shuffle<f32>(e, f, 0, 4, 1, 5), ef1 = v128.shuffle<f32>(e, f, 2, 6, 3, 7);
        const d = qt + (<usize>(c * BC + i) << 2);
        v128.store(d, v128.shuffle<f32>(ab0, ef0, 0, 1, 4, 5));
        v128.store(d + (<usize>BC << 2), v128.shuffle<f32>(ab0, ef0, 2, 3, 6, 7));
        v128.store(d + (<usize>BC << 3), v128.shuffle<f32>(ab1, ef1, 0, 1, 4, 5));
        v128.store(d + (<usize>(3 * BC) << 2), v128.shuffle<f32>(ab1, ef1, 2, 3, 6, 7));
      }
      for (; c < D; c++) {
        for (let x = 0; x < 4; x++) store<f32>(qt + (<usize>(c * BC + i + x) << 2), load<f32>(r0 + <usize>x * rs + (<usize>c << 2)));
      }
    }
  }
  for (; i < nq; i++) {
    const src = base + <usize>(q0 + i) * qRow;
    for (let c = 0; c < D; c++) store<f32>(qt + (<usize>(c * BC + i) << 2), loadElem(qdata, src + <usize>c, dtype));
  }
}

// Decode rows: row r = h·lenQ + i (all heads; a KV head's rows are contiguous), scaled, zero-padded
// to dpad columns.
function loadQRows(plan: usize, seq: usize, lenQ: i32, rows: i32, qscale: f32, q: usize): void {
  const D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD), dtype = pi(plan, P_DTYPE);
  const qdata = pu(plan, P_Q_DATA), qRow = pu(plan, P_Q_ROW), qHead = pu(plan, P_Q_HEAD);
  const base = <usize>ri(seq, S_Q_BASE);
  memory.fill(q, 0, <usize>(rows * dpad) << 2);
  for (let r = 0; r < rows; r++) {
    const h = r / lenQ, i = r - h * lenQ;
    const src = base + <usize>i * qRow + <usize>h * qHead;
    const dst = q + (<usize>(r * dpad) << 2);
    for (let c = 0; c < D; c++) store<f32>(dst + (<usize>c << 2), loadElem(qdata, src + <usize>c, dtype) * qscale);
  }
}

// Where key j's row (head 0) of K (v = false) or V (v = true) starts, in elements. Contiguous:
// seqBase + j·rowStride. Paged (the sequence has a block table): physical slot table[j / bs]·bs + j % bs.
// @ts-ignore: decorator
@inline function kvRow(plan: usize, seq: usize, v: bool, j: i32): usize {
  const rowStride = pu(plan, v ? P_V_ROW : P_K_ROW);
  const table = <usize>load<u32>(seq + (<usize>S_BLOCK_TABLE << 2));
  if (table == 0) return <usize>load<u32>(seq + (<usize>(v ? S_V_BASE : S_K_BASE) << 2)) + <usize>j * rowStride;
  const bs = pi(plan, P_BLOCK_SIZE);
  const blk = load<i32>(table + (<usize>(j / bs) << 2));
  return <usize>(blk * bs + j % bs) * rowStride;
}

// int8 dequantisation scale of key j's block for KV head hk (paged int8 storage).
// @ts-ignore: decorator
@inline function kvScale(plan: usize, seq: usize, v: bool, j: i32, hk: i32): f32 {
  const table = <usize>load<u32>(seq + (<usize>S_BLOCK_TABLE << 2));
  const blk = load<i32>(table + (<usize>(j / pi(plan, P_BLOCK_SIZE)) << 2));
  return load<f32>(pu(plan, v ? P_V_SCALES : P_K_SCALES) + (<usize>(blk * pi(plan, P_NUM_KV_HEADS) + hk) << 2));
}

// int8 code x → its value: x·scale on the uniform grid; a negative scale marks the gaussian grid,
// x·(½ + x²·½/127²)·|scale| (quant.ts).
// @ts-ignore: decorator
@inline function deq8(x: f32, scale: f32): f32 {
  return scale < 0 ? x * (0.5 + x * x * INT8_GAUSSIAN_C) * -scale : x * scale;
}
const INT8_GAUSSIAN_C: f32 = <f32>(0.5 / (127.0 * 127.0));

// Rows [k0, k0+nk) of K or V for KV head hk into a dense f32 buffer (row stride dstStride bytes),
// converting f16/bf16, dequantising int8, zero-padding columns dim..pad.
function packRows(plan: usize, seq: usize, v: bool, hk: i32, k0: i32, nk: i32, dim: i32, pad: i32, dst: usize, dstStride: usize): void {
  for (let j = 0; j < nk; j++) packRow(plan, seq, v, hk, k0 + j, dim, pad, dst + <usize>j * dstStride);
}

// Key j's K or V row of KV head hk as dim f32 values at d (converted, dequantised), zeros up to pad.
function packRow(plan: usize, seq: usize, v: bool, hk: i32, j: i32, dim: i32, pad: i32, d: usize): void {
  const data = pu(plan, v ? P_V_DATA : P_K_DATA), dtype = pi(plan, P_KV_DTYPE);
  const src = kvRow(plan, seq, v, j) + <usize>hk * pu(plan, v ? P_V_HEAD : P_K_HEAD);
  if (dtype == 0) memory.copy(d, data + (src << 2), <usize>dim << 2);
  else if (dtype == 2) {
    let c = 0;
    for (; c + 4 <= dim; c += 4) v128.store(d + (<usize>c << 2), i32x4.shl(v128.load16x4_u(data + ((src + <usize>c) << 1)), 16));
    for (; c < dim; c++) store<f32>(d + (<usize>c << 2), reinterpret<f32>(<u32>load<u16>(data + ((src + <usize>c) << 1)) << 16));
  } else if (dtype == 1) {
    let c = 0;
    for (; c + 4 <= dim; c += 4) v128.store(d + (<usize>c << 2), h2f4(v128.load16x4_u(data + ((src + <usize>c) << 1))));
    for (; c < dim; c++) store<f32>(d + (<usize>c << 2), h2f(<u32>load<u16>(data + ((src + <usize>c) << 1))));
  } else {
    const scale = kvScale(plan, seq, v, j, hk);
    // Eight codes at a time: sign-extended to i32, converted, dequantised as deq8 does (same operation order).
    const gauss = scale < 0, sv = f32x4.splat(gauss ? -scale : scale), half = f32x4.splat(0.5), cv = f32x4.splat(INT8_GAUSSIAN_C);
    let c = 0;
    for (; c + 8 <= dim; c += 8) {
      const w = v128.load8x8_s(data + src + <usize>c);
      let lo = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), hi = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w));
      if (gauss) {
        lo = f32x4.mul(lo, f32x4.add(half, f32x4.mul(f32x4.mul(lo, lo), cv)));
        hi = f32x4.mul(hi, f32x4.add(half, f32x4.mul(f32x4.mul(hi, hi), cv)));
      }
      v128.store(d + (<usize>c << 2), f32x4.mul(lo, sv));
      v128.store(d + (<usize>c << 2), f32x4.mul(hi, sv), 16);
    }
    for (; c < dim; c++) store<f32>(d + (<usize>c << 2), deq8(<f32>load<i8>(data + src + <usize>c), scale));
  }
  for (let c = dim; c < pad; c++) store<f32>(d + (<usize>c << 2), 0);
}

// K tile in 4-key interleaved blocks: kb[(j/4)·4D + c·4 + j%4] = K[k0 + j][c] (keys nk..nk4 zero).
// The Sᵀ micro-kernel then broadcasts four keys' elements from one pointer with immediate offsets.
function packK4(plan: usize, seq: usize, hk: i32, k0: i32, nk: i32, D: i32, kb: usize): void {
  const data = pu(plan, P_K_DATA), dtype = pi(plan, P_KV_DTYPE);
  const headOff = <usize>hk * pu(plan, P_K_HEAD);
  const nk4 = (nk + 3) & ~3;
  // K·scale, rounded once per element as FlashAttention's reordered reference does (see loadQT's callers).
  const ks = pf(plan, P_SCALE), sv = f32x4.splat(ks);
  for (let jb = 0; jb < nk4; jb += 4) {
    const dst = kb + (<usize>(jb * D) << 2);
    if (dtype == 0 && jb + 4 <= nk) {
      const r0 = data + ((kvRow(plan, seq, false, k0 + jb) + headOff) << 2);
      const r1 = data + ((kvRow(plan, seq, false, k0 + jb + 1) + headOff) << 2);
      const r2 = data + ((kvRow(plan, seq, false, k0 + jb + 2) + headOff) << 2);
      const r3 = data + ((kvRow(plan, seq, false, k0 + jb + 3) + headOff) << 2);
      let c = 0;
      for (; c + 4 <= D; c += 4) {
        const o = <usize>c << 2;
        const a = f32x4.mul(v128.load(r0 + o), sv), b = f32x4.mul(v128.load(r1 + o), sv);
        const e = f32x4.mul(v128.load(r2 + o), sv), f = f32x4.mul(v128.load(r3 + o), sv);
        const ab0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5), ab1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const ef0 = v128.shuffle<f32>(e, f, 0, 4, 1, 5), ef1 = v128.shuffle<f32>(e, f, 2, 6, 3, 7);
        const d = dst + (o << 2);
        v128.store(d, v128.shuffle<f32>(ab0, ef0, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<f32>(ab0, ef0, 2, 3, 6, 7), 16);
        v128.store(d, v128.shuffle<f32>(ab1, ef1, 0, 1, 4, 5), 32);
        v128.store(d, v128.shuffle<f32>(ab1, ef1, 2, 3, 6, 7), 48);
      }
      for (; c < D; c++) {
        const o = <usize>c << 2;
        store<f32>(dst + (o << 2), load<f32>(r0 + o) * ks); store<f32>(dst + (o << 2), load<f32>(r1 + o) * ks, 4);
        store<f32>(dst + (o << 2), load<f32>(r2 + o) * ks, 8); store<f32>(dst + (o << 2), load<f32>(r3 + o) * ks, 12);
      }
    } else {
      for (let x = 0; x < 4; x++) {
        const j = jb + x;
        if (j >= nk) { for (let c = 0; c < D; c++) store<f32>(dst + (<usize>(c * 4 + x) << 2), 0); continue; }
        const src = kvRow(plan, seq, false, k0 + j) + headOff;
        const scale: f32 = dtype == 3 ? kvScale(plan, seq, false, k0 + j, hk) : 1;
        for (let c = 0; c < D; c++) {
          const val: f32 = dtype == 3 ? deq8(<f32>load<i8>(data + src + <usize>c), scale) : loadElem(data, src + <usize>c, dtype);
          store<f32>(dst + (<usize>(c * 4 + x) << 2), val * ks);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Prefill micro-kernels (Sᵀ layout: st[j·64 + i])

// st[j][i] = Σ_c K[j][c]·qt[c][i] for keys j < nk4 (kb from packK4) and queries i < nq8.
function qkTileT(qt: usize, kb: usize, st: usize, nk: i32, nq8: i32, D: i32): void {
  const blockBytes = <usize>(D * 16);
  for (let jb = 0; jb < nk; jb += 4) {
    const kblk = kb + <usize>(jb >> 2) * blockBytes;
    const srow = st + (<usize>(jb * BC) << 2);
    for (let ib = 0; ib < nq8; ib += 8) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let qp = qt + (<usize>ib << 2);
      let kp = kblk;
      const kend = kblk + blockBytes;
      while (kp < kend) {
        const q0 = v128.load(qp), q1 = v128.load(qp, 16);
        const x0 = v128.load32_splat(kp);
        a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01);
        const x1 = v128.load32_splat(kp, 4);
        a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11);
        const x2 = v128.load32_splat(kp, 8);
        a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21);
        const x3 = v128.load32_splat(kp, 12);
        a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31);
        qp += <usize>BC << 2;
        kp += 16;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16);
      v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528);
      v128.store(o, a30, 768); v128.store(o, a31, 784);
    }
  }
}

// acc[i][c] += Σ_j Pᵀ[j][i]·V[j][c] for queries i < nq4, keys j < nk, columns c < dvpad.
function pvTileT(st: usize, v: usize, o: usize, nq4: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2;
  const vRow = <usize>dvpad << 2;
  const end = <usize>nk * (<usize>BC << 2);
  for (let ib = 0; ib < nq4; ib += 4) {
    const pcol = st + (<usize>ib << 2);
    const o0 = o + <usize>ib * oRow;
    let cb = 0;
    for (; cb + 8 <= dvpad; cb += 8) {
      const oc = o0 + (<usize>cb << 2);
      let a00 = v128.load(oc), a01 = v128.load(oc, 16);
      let a10 = v128.load(oc + oRow), a11 = v128.load(oc + oRow, 16);
      let a20 = v128.load(oc + 2 * oRow), a21 = v128.load(oc + 2 * oRow, 16);
      let a30 = v128.load(oc + 3 * oRow), a31 = v128.load(oc + 3 * oRow, 16);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += <usize>BC << 2) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        const x0 = v128.load32_splat(pcol + j);
        a00 = fma4(x0, v0, a00); a01 = fma4(x0, v1, a01);
        const x1 = v128.load32_splat(pcol + j, 4);
        a10 = fma4(x1, v0, a10); a11 = fma4(x1, v1, a11);
        const x2 = v128.load32_splat(pcol + j, 8);
        a20 = fma4(x2, v0, a20); a21 = fma4(x2, v1, a21);
        const x3 = v128.load32_splat(pcol + j, 12);
        a30 = fma4(x3, v0, a30); a31 = fma4(x3, v1, a31);
        vp += vRow;
      }
      v128.store(oc, a00); v128.store(oc, a01, 16);
      v128.store(oc + oRow, a10); v128.store(oc + oRow, a11, 16);
      v128.store(oc + 2 * oRow, a20); v128.store(oc + 2 * oRow, a21, 16);
      v128.store(oc + 3 * oRow, a30); v128.store(oc + 3 * oRow, a31, 16);
    }
    if (cb < dvpad) {
      const oc = o0 + (<usize>cb << 2);
      let a0 = v128.load(oc), a1 = v128.load(oc + oRow), a2 = v128.load(oc + 2 * oRow), a3 = v128.load(oc + 3 * oRow);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += <usize>BC << 2) {
        const v0 = v128.load(vp);
        a0 = fma4(v128.load32_splat(pcol + j), v0, a0);
        a1 = fma4(v128.load32_splat(pcol + j, 4), v0, a1);
        a2 = fma4(v128.load32_splat(pcol + j, 8), v0, a2);
        a3 = fma4(v128.load32_splat(pcol + j, 12), v0, a3);
        vp += vRow;
      }
      v128.store(oc, a0); v128.store(oc + oRow, a1); v128.store(oc + 2 * oRow, a2); v128.store(oc + 3 * oRow, a3);
    }
  }
}

// Column-wise online softmax over Sᵀ (keys j < nk, queries in blocks of 4 up to nq4); Pᵀ overwrites Sᵀ;
// alpha[i] = 2^(m_old − m_new) rescales acc rows.
// The running max moves only when a tile's max exceeds it by more than RESCALE_SLACK (FlashAttention-4's
// conditional rescaling): P ≤ 2^RESCALE_SLACK then, and most tiles skip rescaling acc altogether.
function softmaxT(sc: usize, nq4: i32, nk: i32, dvpad: i32): void {
  const st = sc_s(sc), m = sc_m(sc), l = sc_l(sc), al = sc_alpha(sc), o = sc_o(sc);
  const colStep: usize = <usize>BC << 2;
  const end = <usize>nk * colStep;
  const log2e = f32x4.splat(LOG2E);
  for (let ib = 0; ib < nq4; ib += 4) {
    const col = st + (<usize>ib << 2);
    const mOld = v128.load(m + (<usize>ib << 2));
    let mt = mOld;
    for (let j: usize = 0; j < end; j += colStep) mt = vmax(v128.load(col + j), mt);
    // Keep m_old unless the new max exceeds it by more than the slack (m_old = −∞: always move).
    const mx = v128.bitselect(mt, mOld, f32x4.gt(f32x4.sub(mt, mOld), f32x4.splat(RESCALE_SLACK_NAT)));
    const ninf = f32x4.eq(mx, f32x4.splat(NEG_INF));
    const mUse = v128.andnot(mx, ninf); // −∞ (nothing visible yet) → 0
    let sum = f32x4.splat(0);
    for (let j: usize = 0; j < end; j += colStep) {
      const e = exp2Neg4(f32x4.mul(f32x4.sub(v128.load(col + j), mUse), log2e));
      v128.store(col + j, e);
      sum = f32x4.add(sum, e);
    }
    const alpha = exp2Neg4(f32x4.mul(f32x4.sub(mOld, mUse), log2e)); // m_old = −∞ → 0
    v128.store(l + (<usize>ib << 2), fma4(v128.load(l + (<usize>ib << 2)), alpha, sum));
    v128.store(m + (<usize>ib << 2), mx);
    v128.store(al + (<usize>ib << 2), alpha);
  }
  for (let i = 0; i < nq4; i++) {
    const a = load<f32>(al + (<usize>i << 2));
    if (a == 1) continue;
    const av = f32x4.splat(a);
    const orow = o + (<usize>(i * dvpad) << 2);
    for (let c = 0; c < dvpad; c += 4) {
      const p = orow + (<usize>c << 2);
      v128.store(p, f32x4.mul(v128.load(p), av));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decode micro-kernels (row-major S: s[r·64 + j])

// s[r][j] = Σ_c q[r][c]·K[j][c] for the 4 rows at q (row stride dpad) and keys j < nk.
// Relaxed-SIMD build: four keys × two rows at a time, eight accumulators, each row's four sums reduced together
// into one vector (sum4) and stored at once: 1.15–1.23× the arithmetic rate of two keys × four rows with a
// horizontal sum per score (scripts/kv-read-order-probe.mjs, Intel Xeon), decode-kv4k 1.04–1.12×. The SIMD128
// build, whose multiply-add needs a register more, keeps two keys × four rows (0.94× with four keys). Both sum in
// the same order: the same scores to the bit.
function qkRows4(q: usize, k: usize, kStride: usize, s: usize, nk: i32, dpad: i32): void {
  const qRow = <usize>dpad << 2;
  const end = <usize>dpad << 2;
  const q1 = q + qRow, q2 = q1 + qRow, q3 = q2 + qRow;
  let kp = k;
  let j = 0;
  for (; ASC_FEATURE_RELAXED_SIMD && j + 4 <= nk; j += 4) {
    const k1 = kp + kStride, k2 = k1 + kStride, k3 = k2 + kStride;
    for (let rp: usize = 0; rp < 4; rp += 2) {
      const qa = q + rp * qRow, qb = qa + qRow;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let c: usize = 0; c < end; c += 16) {
        const x = v128.load(qa + c), y = v128.load(qb + c);
        const v0 = v128.load(kp + c), v1 = v128.load(k1 + c), v2 = v128.load(k2 + c), v3 = v128.load(k3 + c);
        a0 = fma4(x, v0, a0); b0 = fma4(y, v0, b0);
        a1 = fma4(x, v1, a1); b1 = fma4(y, v1, b1);
        a2 = fma4(x, v2, a2); b2 = fma4(y, v2, b2);
        a3 = fma4(x, v3, a3); b3 = fma4(y, v3, b3);
      }
      const o = s + (((rp << 6) + <usize>j) << 2);
      v128.store(o, sum4(a0, a1, a2, a3));
      v128.store(o, sum4(b0, b1, b2, b3), 256);
    }
    kp += kStride << 2;
  }
  // Two keys at a time: eight independent accumulators hide the multiply-add latency.
  for (; j + 2 <= nk; j += 2) {
    const kp1 = kp + kStride;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
    for (let c: usize = 0; c < end; c += 16) {
      const ka = v128.load(kp + c), kb = v128.load(kp1 + c);
      const x0 = v128.load(q + c), x1 = v128.load(q1 + c), x2 = v128.load(q2 + c), x3 = v128.load(q3 + c);
      a0 = fma4(x0, ka, a0); b0 = fma4(x0, kb, b0);
      a1 = fma4(x1, ka, a1); b1 = fma4(x1, kb, b1);
      a2 = fma4(x2, ka, a2); b2 = fma4(x2, kb, b2);
      a3 = fma4(x3, ka, a3); b3 = fma4(x3, kb, b3);
    }
    const o = s + (<usize>j << 2);
    store<f32>(o, hsum(a0)); store<f32>(o, hsum(a1), 256); store<f32>(o, hsum(a2), 512); store<f32>(o, hsum(a3), 768);
    store<f32>(o, hsum(b0), 4); store<f32>(o, hsum(b1), 260); store<f32>(o, hsum(b2), 516); store<f32>(o, hsum(b3), 772);
    kp += kStride << 1;
  }
  if (j < nk) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let c: usize = 0; c < end; c += 16) {
      const kv = v128.load(kp + c);
      a0 = fma4(v128.load(q + c), kv, a0);
      a1 = fma4(v128.load(q1 + c), kv, a1);
      a2 = fma4(v128.load(q2 + c), kv, a2);
      a3 = fma4(v128.load(q3 + c), kv, a3);
    }
    const o = s + (<usize>j << 2);
    store<f32>(o, hsum(a0)); store<f32>(o, hsum(a1), 256); store<f32>(o, hsum(a2), 512); store<f32>(o, hsum(a3), 768);
  }
}

// One row: s[j] = Σ_c q[c]·K[j][c], with four independent partial sums.
function qkRow1(q: usize, k: usize, kStride: usize, s: usize, nk: i32, dpad: i32): void {
  const end = <usize>dpad << 2;
  let kp = k;
  for (let j = 0; j < nk; j++) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
    let c: usize = 0;
    for (; c + 32 <= end; c += 32) {
      a0 = fma4(v128.load(q + c), v128.load(kp + c), a0);
      a1 = fma4(v128.load(q + c, 16), v128.load(kp + c, 16), a1);
    }
    if (c < end) a0 = fma4(v128.load(q + c), v128.load(kp + c), a0);
    store<f32>(s + (<usize>j << 2), hsum(f32x4.add(a0, a1)));
    kp += kStride;
  }
}

// acc[r][c] += Σ_j P[r][j]·V[j][c] for rows [0, rows) at s/o (P row stride 64, acc row stride dvpad),
// V rows at v (vStride bytes apart), keys j < nk.
function pvRows(s: usize, v: usize, vStride: usize, o: usize, rows: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2;
  const pRow: usize = <usize>BC << 2;
  const end = <usize>nk << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const p0 = s + <usize>r * pRow;
    const o0 = o + <usize>r * oRow;
    let cb = 0;
    // Eight columns at a time: eight independent accumulators hide the multiply-add latency.
    for (; cb + 8 <= dvpad; cb += 8) {
      const oc = o0 + (<usize>cb << 2);
      let a0 = v128.load(oc), a1 = v128.load(oc + oRow), a2 = v128.load(oc + 2 * oRow), a3 = v128.load(oc + 3 * oRow);
      let b0 = v128.load(oc, 16), b1 = v128.load(oc + oRow, 16), b2 = v128.load(oc + 2 * oRow, 16), b3 = v128.load(oc + 3 * oRow, 16);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += 4) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        const x0 = v128.load32_splat(p0 + j);
        a0 = fma4(x0, v0, a0); b0 = fma4(x0, v1, b0);
        const x1 = v128.load32_splat(p0 + j, 256);
        a1 = fma4(x1, v0, a1); b1 = fma4(x1, v1, b1);
        const x2 = v128.load32_splat(p0 + j, 512);
        a2 = fma4(x2, v0, a2); b2 = fma4(x2, v1, b2);
        const x3 = v128.load32_splat(p0 + j, 768);
        a3 = fma4(x3, v0, a3); b3 = fma4(x3, v1, b3);
        vp += vStride;
      }
      v128.store(oc, a0); v128.store(oc + oRow, a1); v128.store(oc + 2 * oRow, a2); v128.store(oc + 3 * oRow, a3);
      v128.store(oc, b0, 16); v128.store(oc + oRow, b1, 16); v128.store(oc + 2 * oRow, b2, 16); v128.store(oc + 3 * oRow, b3, 16);
    }
    for (; cb < dvpad; cb += 4) {
      const oc = o0 + (<usize>cb << 2);
      let a0 = v128.load(oc), a1 = v128.load(oc + oRow), a2 = v128.load(oc + 2 * oRow), a3 = v128.load(oc + 3 * oRow);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += 4) {
        const v0 = v128.load(vp);
        a0 = fma4(v128.load32_splat(p0 + j), v0, a0);
        a1 = fma4(v128.load32_splat(p0 + j, 256), v0, a1);
        a2 = fma4(v128.load32_splat(p0 + j, 512), v0, a2);
        a3 = fma4(v128.load32_splat(p0 + j, 768), v0, a3);
        vp += vStride;
      }
      v128.store(oc, a0); v128.store(oc + oRow, a1); v128.store(oc + 2 * oRow, a2); v128.store(oc + 3 * oRow, a3);
    }
  }
  for (; r < rows; r++) {
    const p0 = s + <usize>r * pRow;
    const o0 = o + <usize>r * oRow;
    for (let cb = 0; cb < dvpad; cb += 8) {
      const oc = o0 + (<usize>cb << 2);
      const two = cb + 8 <= dvpad;
      let a0 = v128.load(oc), a1 = two ? v128.load(oc, 16) : f32x4.splat(0);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += 4) {
        const x = v128.load32_splat(p0 + j);
        a0 = fma4(x, v128.load(vp), a0);
        if (two) a1 = fma4(x, v128.load(vp, 16), a1);
        vp += vStride;
      }
      v128.store(oc, a0);
      if (two) v128.store(oc, a1, 16);
    }
  }
}

// Row-wise online softmax for decode rows [0, rows) of S (row-major); P overwrites S.
function softmaxRows(sc: usize, rows: i32, nk: i32, dvpad: i32): void {
  const s = sc_s(sc), m = sc_m(sc), l = sc_l(sc), o = sc_o(sc);
  for (let r = 0; r < rows; r++) {
    const srow = s + (<usize>(r * BC) << 2);
    for (let j = nk; j < ((nk + 3) & ~3); j++) store<f32>(srow + (<usize>j << 2), NEG_INF);
    const end = <usize>((nk + 3) & ~3) << 2;
    let vm = f32x4.splat(NEG_INF);
    for (let j: usize = 0; j < end; j += 16) vm = vmax(v128.load(srow + j), vm);
    const mOld = load<f32>(m + (<usize>r << 2));
    const a = vmax(vm, v128.shuffle<f32>(vm, vm, 2, 3, 0, 1));
    const mTile = f32x4.extract_lane(vmax(a, v128.shuffle<f32>(a, a, 1, 0, 3, 2)), 0);
    const mNew: f32 = mTile > mOld ? mTile : mOld;
    const mUse: f32 = mNew == NEG_INF ? 0 : mNew;
    const mv = f32x4.splat(mUse);
    let vsum = f32x4.splat(0);
    for (let j: usize = 0; j < end; j += 16) {
      const e = exp2Neg4(f32x4.mul(f32x4.sub(v128.load(srow + j), mv), f32x4.splat(LOG2E)));
      v128.store(srow + j, e);
      vsum = f32x4.add(vsum, e);
    }
    const alpha = f32x4.extract_lane(exp2Neg4(f32x4.splat((mOld - mUse) * LOG2E)), 0);
    store<f32>(l + (<usize>r << 2), load<f32>(l + (<usize>r << 2)) * alpha + hsum(vsum));
    store<f32>(m + (<usize>r << 2), mNew);
    if (alpha != 1) {
      const av = f32x4.splat(alpha);
      const orow = o + (<usize>(r * dvpad) << 2);
      for (let c = 0; c < dvpad; c += 4) {
        const p = orow + (<usize>c << 2);
        v128.store(p, f32x4.mul(v128.load(p), av));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Mask program: per query row, a 64-bit word of visible keys [k0, k0 + 64)

const INF_POS: i64 = 0x40000000;

// @ts-ignore: decorator
@inline function rangeBits(a: i64, b: i64, k0: i64): u64 {
  // keys in [a, b] ∩ [k0, k0 + 63] as bits relative to k0
  const lo = a > k0 ? a - k0 : 0;
  const hi = b < k0 + 63 ? b - k0 : 63;
  if (lo > hi) return 0;
  const width = hi - lo + 1;
  const ones: u64 = width >= 64 ? <u64>-1 : ((<u64>1 << <u64>width) - 1);
  return ones << <u64>lo;
}

function docOf(cu: usize, ndocs: i32, p: i32): i32 {
  let lo = 0, hi = ndocs - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (load<i32>(cu + (<usize>mid << 2)) <= p) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Evaluates the program for query row i (sequence-local) against keys [k0, k0+64). `sv` points at
// the row's first score, `sStride` bytes between keys (for top-k leaves).
function rowBits(prog: usize, i: i32, k0: i32, lenQ: i32, lenK: i32, sv: usize, sStride: usize, thr: f32, stack: usize): u64 {
  let sp: usize = stack;
  let pc = prog;
  const K0 = <i64>k0;
  while (true) {
    const op = load<i32>(pc);
    if (op == OP_END) break;
    let bits: u64 = 0;
    if (op == OP_ALL) { bits = <u64>-1; pc += 4; }
    else if (op == OP_NONE) { bits = 0; pc += 4; }
    else if (op == OP_REL) {
      const lo = <i64>load<i32>(pc, 4), hi = <i64>load<i32>(pc, 8), align = load<i32>(pc, 12);
      const pos = <i64>i + (align ? <i64>(lenK - lenQ) : 0);
      const a = lo <= -INF_POS ? <i64>-INF_POS : pos + lo;
      const b = hi >= INF_POS ? <i64>INF_POS : pos + hi;
      bits = rangeBits(a, b, K0);
      pc += 16;
    } else if (op == OP_KEYRANGE) {
      bits = rangeBits(<i64>load<i32>(pc, 4), <i64>load<i32>(pc, 8) - 1, K0);
      pc += 12;
    } else if (op == OP_STRIDED) {
      const stride = load<i32>(pc, 4), align = load<i32>(pc, 8);
      const pos = i + (align ? lenK - lenQ : 0);
      let first = (pos - k0) % stride; // j − k0 ≡ pos − k0 (mod stride)
      if (first < 0) first += stride;
      for (let t = first; t < 64; t += stride) bits |= <u64>1 << <u64>t;
      pc += 12;
    } else if (op == OP_BLOCKSPARSE) {
      const layout = <usize>load<u32>(pc, 4), rows = load<i32>(pc, 8), cols = load<i32>(pc, 12), bq = load<i32>(pc, 16), bk = load<i32>(pc, 20);
      const rb = i / bq;
      if (rb < rows) {
        const kb0 = k0 / bk, kb1 = (k0 + 63) / bk;
        for (let kb = kb0; kb <= kb1 && kb < cols; kb++) {
          if (load<u8>(layout + <usize>(rb * cols + kb))) bits |= rangeBits(<i64>(kb * bk), <i64>(kb * bk + bk - 1), K0);
        }
      }
      pc += 24;
    } else if (op == OP_KEYBITS) {
      bits = load<u64>(<usize>load<u32>(pc, 4) + (<usize>(k0 >> 6) << 3));
      pc += 8;
    } else if (op == OP_DOCS) {
      const cuq = <usize>load<u32>(pc, 4), cuk = <usize>load<u32>(pc, 8), ndocs = load<i32>(pc, 12);
      const d = docOf(cuq, ndocs, i);
      bits = rangeBits(<i64>load<i32>(cuk + (<usize>d << 2)), <i64>load<i32>(cuk + (<usize>(d + 1) << 2)) - 1, K0);
      pc += 16;
    } else if (op == OP_BITMATRIX) {
      const base = <usize>load<u32>(pc, 4), words = load<i32>(pc, 8);
      bits = load<u64>(base + (<usize>(i * words + (k0 >> 6)) << 3));
      pc += 12;
    } else if (op == OP_TOPK) {
      for (let j = 0; j < 64; j++) if (load<f32>(sv + <usize>j * sStride) >= thr) bits |= <u64>1 << <u64>j;
      pc += 4;
    } else if (op == OP_AND || op == OP_OR) {
      const n = load<i32>(pc, 4);
      bits = op == OP_AND ? <u64>-1 : 0;
      for (let t = 0; t < n; t++) {
        sp -= 8;
        const w = load<u64>(sp);
        bits = op == OP_AND ? bits & w : bits | w;
      }
      pc += 8;
    } else if (op == OP_NOT) {
      sp -= 8;
      bits = ~load<u64>(sp);
      pc += 4;
    } else {
      unreachable();
    }
    store<u64>(sp, bits);
    sp += 8;
  }
  return load<u64>(sp - 8);
}

// Sets the scores of keys j < nk whose bit is clear to −∞ (scores `stride` bytes apart).
function maskScores(sv: usize, stride: usize, bits: u64, nk: i32): void {
  let off = ~bits;
  if (nk < 64) off &= (<u64>1 << <u64>nk) - 1;
  while (off != 0) {
    const j = <usize>ctz(off);
    store<f32>(sv + j * stride, NEG_INF);
    off &= off - 1;
  }
}

// Soft-capping of scores s (natural units): cap·tanh(s/cap).
function softcapScores(p: usize, count: i32, cap: f32): void {
  const inv = f32x4.splat(<f32>1.0 / cap), c = f32x4.splat(cap);
  for (let t = 0; t < count; t += 4) {
    const a = p + (<usize>t << 2);
    v128.store(a, f32x4.mul(c, tanh4(f32x4.mul(v128.load(a), inv))));
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs

// Scores are in natural units throughout: softcap's tanh and top-k thresholds see them as the reference does, and
// the softmax multiplies S − m by log2 e (see the header). Prefill scales K by P_SCALE as it packs it (Q unscaled),
// which is how FlashAttention's reordered naive reference rounds (K·scale per element, then the dot product in
// order): the scores are that reference's to the bit, and at a scale that is not a power of two the output error
// tracks the naive one (scaling Q instead rounded otherwise, up to 2.8× the naive error over a whole output on
// inputs near ±1000 at head dim 65). Decode scales its Q rows (K is read in place there).

// Writes O = acc / l (0 for fully masked rows) and lse = m + ln l for one row.
function finalizeRow(plan: usize, sc: usize, r: i32, oPtr: usize, lsePtr: usize): void {
  const Dv = pi(plan, P_HEAD_DIM_V), dvpad = pi(plan, P_DVPAD), odt = pi(plan, P_OUT_DTYPE);
  const odata = pu(plan, P_O_DATA);
  const l = load<f32>(sc_l(sc) + (<usize>r << 2)), m = load<f32>(sc_m(sc) + (<usize>r << 2));
  const acc = sc_o(sc) + (<usize>(r * dvpad) << 2);
  if (l == 0) {
    for (let c = 0; c < Dv; c++) storeElem(odata, oPtr + <usize>c, odt, 0);
  } else {
    const inv: f32 = l > 0 ? <f32>1.0 / l : <f32>NaN;
    let c = 0;
    if (odt == 0) {
      const iv = f32x4.splat(inv), dst = odata + (oPtr << 2);
      for (; c + 4 <= Dv; c += 4) v128.store(dst + (<usize>c << 2), f32x4.mul(v128.load(acc + (<usize>c << 2)), iv));
    }
    for (; c < Dv; c++) storeElem(odata, oPtr + <usize>c, odt, load<f32>(acc + (<usize>c << 2)) * inv);
  }
  if (lsePtr != <usize>-1) {
    const lse: f32 = l > 0 ? m + Mathf.log2(l) * LN2 : (l == 0 ? NEG_INF : <f32>NaN);
    store<f32>(pu(plan, P_LSE_DATA) + (lsePtr << 2), lse);
  }
}

function initState(sc: usize, rows: i32, dvpad: i32): void {
  const r4 = (rows + 3) & ~3;
  for (let r = 0; r < r4; r++) {
    store<f32>(sc_m(sc) + (<usize>r << 2), NEG_INF);
    store<f32>(sc_l(sc) + (<usize>r << 2), 0);
  }
  memory.fill(sc_o(sc), 0, <usize>(r4 * dvpad) << 2);
}

// Prefill, or (colsum) the capture pass: with the forward pass's log-sum-exp, P = 2^((S − lse)·log2 e) and
// its column sums over the query range accumulate into this thread's row of the COLSUM buffer.
function prefillJob(plan: usize, job: usize, sc: usize, colsum: bool, thread: i32): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const h = ri(job, J_HEAD), qtile = ri(job, J_QTILE);
  const lenQ = ri(seq, S_LEN_Q), lenK = ri(seq, S_LEN_K);
  const D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD), dvpad = pi(plan, P_DVPAD);
  const Dv = pi(plan, P_HEAD_DIM_V), dtype = pi(plan, P_DTYPE);
  const tp = pu(plan, P_TILE_PLANS) + (<usize>(ri(seq, S_TILE_PLAN) * TILEPLAN_SLOTS) << 2);
  const rowStart = <usize>ri(tp, T_ROW_START), entries = <usize>ri(tp, T_ENTRIES);
  const hk = h / pi(plan, P_GROUP);
  const q0 = qtile * BC, nq = min(BC, lenQ - q0), nq4 = (nq + 3) & ~3, nq8 = (nq + 7) & ~7;
  const prog = pu(plan, P_MASK_PROG), cap = pf(plan, P_SOFTCAP);
  const thrTable = pu(plan, P_TOPK_THR);
  const thrBase: usize = thrTable != 0 ? thrTable + (<usize>(h * pi(plan, P_THR_HEAD_STRIDE) + ri(seq, S_ROW_GLOBAL)) << 2) : 0;
  const kBase = <usize>ri(seq, S_K_BASE) + <usize>hk * pu(plan, P_K_HEAD);
  const vBase = <usize>ri(seq, S_V_BASE) + <usize>hk * pu(plan, P_V_HEAD);
  const st = sc_s(sc);
  const panelTiles = pi(plan, P_PANEL_TILES), tag = ri(job, J_SEQ) * pi(plan, P_NUM_KV_HEADS) + hk + 1;
  memory.fill(sc_zero(sc), 0, <usize>dpad << 2);
  loadQT(plan, seq, h, q0, nq, sc_q(sc));
  initState(sc, nq, dvpad);
  let csOut: usize = 0;
  if (colsum) {
    // Per-row LSE in sc_l; rows outside the query range (or past the tile) get +huge → P = 0.
    const lseIn = pu(plan, P_LSE_DATA), lb = <usize>ri(seq, S_LSE_BASE) + <usize>h * pu(plan, P_LSE_HEAD), lr = pu(plan, P_LSE_ROW);
    const qs = pi(plan, P_Q_START), qe = pi(plan, P_Q_END);
    for (let i = 0; i < BC; i++) {
      let v: f32 = 3.0e38;
      const row = q0 + i;
      if (i < nq && row >= qs && row < qe) {
        const x = load<f32>(lseIn + ((lb + <usize>row * lr) << 2));
        if (x != NEG_INF) v = x;
      }
      store<f32>(sc_l(sc) + (<usize>i << 2), v);
    }
    csOut = pu(plan, P_COLSUM) + (<usize>(thread * pi(plan, P_COLSUM_STRIDE) + h * pi(plan, P_TOTAL_K) + ri(seq, S_ROW_GLOBAL_K)) << 2);
  }
  const e0 = load<i32>(rowStart + (<usize>qtile << 2)), e1 = load<i32>(rowStart + (<usize>(qtile + 1) << 2));
  for (let e = e0; e < e1; e++) {
    const ent = load<i32>(entries + (<usize>e << 2));
    const k0 = (ent >> 1) * BC, nk = min(BC, lenK - k0), partial = (ent & 1) != 0;
    // K (and V) of this tile: from the thread's panel when an earlier job of the same (sequence,
    // KV head) packed it, else packed now (into the panel when there is one).
    const kt = ent >> 1;
    let kb = sc_k(sc), vb = sc_v(sc), fresh = true;
    if (kt < panelTiles) {
      kb = sc_pk(sc) + (<usize>(kt * BC * D) << 2);
      vb = sc_pv(sc) + (<usize>(kt * BC * dvpad) << 2);
      const tagAt = sc_ptag(sc) + (<usize>kt << 2);
      fresh = load<i32>(tagAt) != tag;
      if (fresh) {
        store<i32>(tagAt, tag);
        if (!colsum) packRows(plan, seq, true, hk, k0, nk, Dv, dvpad, vb, <usize>dvpad << 2);
      }
    }
    if (fresh) packK4(plan, seq, hk, k0, nk, D, kb);
    qkTileT(sc_q(sc), kb, st, nk, nq8, D);
    if (cap > 0) softcapScores(st, nk * BC, cap);
    if (partial) {
      for (let i = 0; i < nq; i++) {
        const sv = st + (<usize>i << 2);
        const thr = thrBase != 0 ? load<f32>(thrBase + (<usize>(q0 + i) << 2)) : <f32>0;
        maskScores(sv, <usize>BC << 2, rowBits(prog, q0 + i, k0, lenQ, lenK, sv, <usize>BC << 2, thr, sc_stack(sc)), nk);
      }
    }
    if (colsum) {
      for (let j = 0; j < nk; j++) {
        const srow = st + (<usize>(j * BC) << 2);
        let acc = f32x4.splat(0);
        for (let i = 0; i < nq4; i += 4) {
          const o = <usize>i << 2;
          // Rows left out (lse +huge) and −∞ scores (masked, or −∞ itself) add 0, even where the score or the
          // row's lse is NaN, as on the other backends.
          const sv = v128.load(srow + o), lv = v128.load(sc_l(sc) + o);
          const e = exp2Neg4(f32x4.mul(f32x4.sub(sv, lv), f32x4.splat(LOG2E)));
          acc = f32x4.add(acc, v128.andnot(e, v128.or(f32x4.eq(sv, f32x4.splat(NEG_INF)), f32x4.eq(lv, f32x4.splat(3.0e38)))));
        }
        const dst = csOut + (<usize>(k0 + j) << 2);
        store<f32>(dst, load<f32>(dst) + hsum(acc));
      }
      continue;
    }
    softmaxT(sc, nq4, nk, dvpad);
    if (kt >= panelTiles) packRows(plan, seq, true, hk, k0, nk, Dv, dvpad, vb, <usize>dvpad << 2);
    pvTileT(st, vb, sc_o(sc), nq4, nk, dvpad);
  }
  if (colsum) return;
  const oBase = <usize>ri(seq, S_O_BASE) + <usize>h * pu(plan, P_O_HEAD), oRow = pu(plan, P_O_ROW);
  const hasLse = pu(plan, P_LSE_DATA) != 0;
  const lseBase = <usize>ri(seq, S_LSE_BASE) + <usize>h * pu(plan, P_LSE_HEAD), lseRow = pu(plan, P_LSE_ROW);
  for (let i = 0; i < nq; i++) {
    finalizeRow(plan, sc, i, oBase + <usize>(q0 + i) * oRow, hasLse ? lseBase + <usize>(q0 + i) * lseRow : <usize>-1);
  }
}

// Reads keys k0 … k0 + nk − 1 of K (v = false) or V: for each key, each KV head's row of `bytes` bytes (heads
// headStride bytes apart), one load per 64-byte line, in that order — address order for contiguous BSHD — and
// returns a value that depends on every load, so none is dropped. The decode job runs it over a tile's K before
// Q·Kᵀ and its V before P·V: the tile arrives in L2 as one linear stream, which the hardware prefetches well,
// instead of through the micro-kernels' eight-key chunks per head (rows 4 KiB apart), which it does not
// (scripts/kv-read-order-probe.mjs: 37–39 GB/s against 11–16 on one thread, loads alone).
function touchRows(plan: usize, seq: usize, v: bool, k0: i32, nk: i32, heads: i32, headStride: usize, bytes: usize): v128 {
  let t = f32x4.splat(0);
  const base = pu(plan, v ? P_V_DATA : P_K_DATA);
  for (let j = 0; j < nk; j++) {
    let r = base + (kvRow(plan, seq, v, k0 + j) << 2);
    for (let h = 0; h < heads; h++) {
      for (let o: usize = 0; o < bytes; o += 64) t = f32x4.add(t, v128.load(r + o));
      r += headStride;
    }
  }
  return t;
}

// Split-KV decode: job (seq, ·, split) handles visited tiles [split·SPLIT_TILES, …) of the
// sequence's single Q-tile row for every head (rows r = h·lenQ + i) and writes (m, l, acc) partials.
function decodeSplitJob(plan: usize, jobIndex: i32, job: usize, sc: usize): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const split = ri(job, J_SPLIT);
  const lenQ = ri(seq, S_LEN_Q), lenK = ri(seq, S_LEN_K);
  const H = pi(plan, P_GROUP) * pi(plan, P_NUM_KV_HEADS), Hk = pi(plan, P_NUM_KV_HEADS), dtype = pi(plan, P_DTYPE);
  const D = pi(plan, P_HEAD_DIM), Dv = pi(plan, P_HEAD_DIM_V), dpad = pi(plan, P_DPAD), dvpad = pi(plan, P_DVPAD);
  const rows = H * lenQ, rowsPerKv = rows / Hk;
  const tp = pu(plan, P_TILE_PLANS) + (<usize>(ri(seq, S_TILE_PLAN) * TILEPLAN_SLOTS) << 2);
  const rowStart = <usize>ri(tp, T_ROW_START), entries = <usize>ri(tp, T_ENTRIES);
  const prog = pu(plan, P_MASK_PROG), cap = pf(plan, P_SOFTCAP);
  const kRow = pu(plan, P_K_ROW), vRow = pu(plan, P_V_ROW), kHead = pu(plan, P_K_HEAD), vHead = pu(plan, P_V_HEAD);
  // f32 K/V read in place: contiguous, or paged with blocks a multiple of VC keys (a VC-key chunk never
  // crosses a block, so its rows are one base plus a row stride, found through the block table).
  const inPlaceF32 = pi(plan, P_KV_DTYPE) == 0 && (load<u32>(seq + (<usize>S_BLOCK_TABLE << 2)) == 0 || pi(plan, P_BLOCK_SIZE) % VC == 0);
  // Other K/V (f16, bf16, int8, f32 in blocks of other sizes): each VC-key chunk of every head converted into
  // scratch laid out as K/V are ([key][head][dim]), then read by the same in-place kernels — the chunk stays in
  // L1, where converting a whole 64-key tile per head did not (decode over f16 K/V took 2.3× f32's time).
  const chunked = !inPlaceF32 && Hk * VC * D <= BC * dpad;
  const direct = (inPlaceF32 || chunked) && (D & 3) == 0, vDirect = (inPlaceF32 || chunked) && Dv == dvpad;
  const q = sc_q(sc), s = sc_s(sc), o = sc_o(sc), vt = sc_v(sc);
  loadQRows(plan, seq, lenQ, rows, pf(plan, P_SCALE), q);
  initState(sc, rows, dvpad);
  const per = pi(plan, P_SPLIT_TILES);
  const eStart = load<i32>(rowStart), eEnd = load<i32>(rowStart, 4);
  const e0 = eStart + split * per, e1 = min(eEnd, e0 + per);
  // Tiles pulled into L2 by touchRows first where the host asks for it (kernels/cpu/read-ahead.ts: faster where
  // K/V come from DRAM, slower where they stay in the last-level cache, so the host times both).
  const ra = <u64>pu(plan, P_READ_AHEAD_BYTES);
  const touch = ra != 0 && direct && vDirect && inPlaceF32 && <u64>lenK * <u64>(Hk * (D + Dv)) * 4 >= ra;
  let touched = f32x4.splat(0);
  for (let e = e0; e < e1; e++) {
    const ent = load<i32>(entries + (<usize>e << 2));
    const k0 = (ent >> 1) * BC, nk = min(BC, lenK - k0), partial = (ent & 1) != 0;
    if (touch) touched = f32x4.add(touched, touchRows(plan, seq, false, k0, nk, Hk, kHead << 2, <usize>D << 2));
    // Scores for every KV head. In place (f32), VC keys at a time across all heads: a key's heads are
    // adjacent in memory, so K streams in address order and the chunk's rows stay in L1.
    if (direct) {
      for (let kc = 0; kc < nk; kc += VC) {
        const n = min(VC, nk - kc);
        if (!inPlaceF32) for (let j = 0; j < n; j++) for (let hk = 0; hk < Hk; hk++) packRow(plan, seq, false, hk, k0 + kc + j, D, D, sc_k(sc) + (<usize>((j * Hk + hk) * D) << 2));
        // The chunk's first K row (every head's rows start there): in place, or the converted scratch.
        const kc0 = inPlaceF32 ? pu(plan, P_K_DATA) + (kvRow(plan, seq, false, k0 + kc) << 2) : sc_k(sc);
        const kh = inPlaceF32 ? kHead : <usize>D;
        for (let hk = 0; hk < Hk; hk++) {
          const kp = kc0 + (<usize>hk * kh << 2);
          const kStride = inPlaceF32 ? kRow << 2 : <usize>(Hk * D) << 2;
          const r0 = hk * rowsPerKv;
          let r = 0;
          for (; r + 4 <= rowsPerKv; r += 4) qkRows4(q + (<usize>((r0 + r) * dpad) << 2), kp, kStride, s + (<usize>((r0 + r) * BC + kc) << 2), n, dpad);
          for (; r < rowsPerKv; r++) qkRow1(q + (<usize>((r0 + r) * dpad) << 2), kp, kStride, s + (<usize>((r0 + r) * BC + kc) << 2), n, dpad);
        }
      }
    } else {
      for (let hk = 0; hk < Hk; hk++) {
        packRows(plan, seq, false, hk, k0, nk, D, dpad, sc_k(sc), <usize>dpad << 2);
        const r0 = hk * rowsPerKv;
        let r = 0;
        for (; r + 4 <= rowsPerKv; r += 4) qkRows4(q + (<usize>((r0 + r) * dpad) << 2), sc_k(sc), <usize>dpad << 2, s + (<usize>((r0 + r) * BC) << 2), nk, dpad);
        for (; r < rowsPerKv; r++) qkRow1(q + (<usize>((r0 + r) * dpad) << 2), sc_k(sc), <usize>dpad << 2, s + (<usize>((r0 + r) * BC) << 2), nk, dpad);
      }
    }
    if (cap > 0) softcapScores(s, rows * BC, cap);
    if (partial) {
      for (let r = 0; r < rows; r++) {
        const sv = s + (<usize>(r * BC) << 2);
        maskScores(sv, 4, rowBits(prog, r % lenQ, k0, lenQ, lenK, sv, 4, 0, sc_stack(sc)), nk);
      }
    }
    softmaxRows(sc, rows, nk, dvpad);
    if (touch) touched = f32x4.add(touched, touchRows(plan, seq, true, k0, nk, Hk, vHead << 2, <usize>Dv << 2));
    if (vDirect) {
      // f32 V read in place, VC keys at a time across all heads (address order): P·V sweeps a head's
      // chunk once per column block, and VC strided rows stay in L1 where a whole tile's rows (often
      // 4 KiB apart) would alias.
      for (let kc = 0; kc < nk; kc += VC) {
        const n = min(VC, nk - kc);
        if (!inPlaceF32) for (let j = 0; j < n; j++) for (let hk = 0; hk < Hk; hk++) packRow(plan, seq, true, hk, k0 + kc + j, Dv, Dv, vt + (<usize>((j * Hk + hk) * Dv) << 2));
        const vc = inPlaceF32 ? pu(plan, P_V_DATA) + (kvRow(plan, seq, true, k0 + kc) << 2) : vt;
        const vh = inPlaceF32 ? vHead : <usize>Dv, vs = inPlaceF32 ? vRow : <usize>(Hk * Dv);
        for (let hk = 0; hk < Hk; hk++) {
          const r0 = hk * rowsPerKv;
          pvRows(s + (<usize>(r0 * BC + kc) << 2), vc + (<usize>hk * vh << 2), vs << 2, o + (<usize>(r0 * dvpad) << 2), rowsPerKv, n, dvpad);
        }
      }
    } else {
      // V for every head, converted head-major (dense per head, rows contiguous) in key order.
      for (let hk = 0; hk < Hk; hk++) packRows(plan, seq, true, hk, k0, nk, Dv, dvpad, vt + (<usize>(hk * BC * dvpad) << 2), <usize>dvpad << 2);
      for (let hk = 0; hk < Hk; hk++) {
        const r0 = hk * rowsPerKv;
        pvRows(s + (<usize>(r0 * BC) << 2), vt + (<usize>(hk * BC * dvpad) << 2), <usize>dvpad << 2, o + (<usize>(r0 * dvpad) << 2), rowsPerKv, nk, dvpad);
      }
    }
  }
  if (touch) v128.store(sc_stack(sc), touched);
  // Partials: [jobIndex][row] → (m, l, acc[dvpad]).
  const stride = dvpad + 2;
  const part = pu(plan, P_PARTIALS) + (<usize>(jobIndex * pi(plan, P_PARTIAL_ROWS) * stride) << 2);
  for (let r = 0; r < rows; r++) {
    const p = part + (<usize>(r * stride) << 2);
    store<f32>(p, load<f32>(sc_m(sc) + (<usize>r << 2)));
    store<f32>(p, load<f32>(sc_l(sc) + (<usize>r << 2)), 4);
    memory.copy(p + 8, o + (<usize>(r * dvpad) << 2), <usize>dvpad << 2);
  }
}

// Merge job (seq, kvHead): QTILE = index of the first split job, SPLIT = number of splits; merges
// the kvHead's rows.
function decodeMergeJob(plan: usize, job: usize, sc: usize): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const hk = ri(job, J_HEAD), first = ri(job, J_QTILE), nsplit = ri(job, J_SPLIT);
  const lenQ = ri(seq, S_LEN_Q), group = pi(plan, P_GROUP), dvpad = pi(plan, P_DVPAD);
  const rowsPerKv = group * lenQ, stride = dvpad + 2, prows = pi(plan, P_PARTIAL_ROWS);
  const partials = pu(plan, P_PARTIALS);
  const oRow = pu(plan, P_O_ROW), oHead = pu(plan, P_O_HEAD);
  const hasLse = pu(plan, P_LSE_DATA) != 0;
  const lseRow = pu(plan, P_LSE_ROW), lseHead = pu(plan, P_LSE_HEAD);
  for (let rr = 0; rr < rowsPerKv; rr++) {
    const r = hk * rowsPerKv + rr;
    let M: f32 = NEG_INF;
    for (let s = 0; s < nsplit; s++) M = max<f32>(M, load<f32>(partials + (<usize>(((first + s) * prows + r) * stride) << 2)));
    const mUse: f32 = M == NEG_INF ? 0 : M;
    let L: f32 = 0;
    const acc = sc_o(sc);
    memory.fill(acc, 0, <usize>dvpad << 2);
    for (let s = 0; s < nsplit; s++) {
      const p = partials + (<usize>(((first + s) * prows + r) * stride) << 2);
      const ms = load<f32>(p), ls = load<f32>(p, 4);
      if (ls == 0) continue;
      const w = f32x4.extract_lane(exp2Neg4(f32x4.splat((ms - mUse) * LOG2E)), 0);
      L += ls * w;
      const wv = f32x4.splat(w);
      for (let c = 0; c < dvpad; c += 4) {
        const a = acc + (<usize>c << 2);
        v128.store(a, fma4(v128.load(p + 8 + (<usize>c << 2)), wv, v128.load(a)));
      }
    }
    store<f32>(sc_m(sc), M);
    store<f32>(sc_l(sc), L);
    const h = r / lenQ, i = r - h * lenQ;
    const oPtr = <usize>ri(seq, S_O_BASE) + <usize>h * oHead + <usize>i * oRow;
    const lsePtr = hasLse ? <usize>ri(seq, S_LSE_BASE) + <usize>h * lseHead + <usize>i * lseRow : <usize>-1;
    finalizeRow(plan, sc, 0, oPtr, lsePtr);
  }
}

// Top-k thresholds: per query row, the k-th largest score among the keys TOPK_PROG allows
// (−∞ if fewer than k are visible, +∞ if none). A min-heap of size k per row.
function topkJob(plan: usize, job: usize, sc: usize): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const h = ri(job, J_HEAD), qtile = ri(job, J_QTILE);
  const lenQ = ri(seq, S_LEN_Q), lenK = ri(seq, S_LEN_K);
  const D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD), dtype = pi(plan, P_DTYPE);
  const K = pi(plan, P_TOPK_K), cap = pf(plan, P_SOFTCAP);
  const tp = pu(plan, P_TOPK_TILE_PLANS) + (<usize>(ri(seq, S_TILE_PLAN) * TILEPLAN_SLOTS) << 2);
  const rowStart = <usize>ri(tp, T_ROW_START), entries = <usize>ri(tp, T_ENTRIES);
  const hk = h / pi(plan, P_GROUP);
  const q0 = qtile * BC, nq = min(BC, lenQ - q0), nq8 = (nq + 7) & ~7;
  const prog = pu(plan, P_TOPK_PROG);
  const kBase = <usize>ri(seq, S_K_BASE) + <usize>hk * pu(plan, P_K_HEAD);
  const st = sc_s(sc);
  memory.fill(sc_zero(sc), 0, <usize>dpad << 2);
  loadQT(plan, seq, h, q0, nq, sc_q(sc));
  const heapStride = K + 1; // slot 0: count
  for (let r = 0; r < nq; r++) store<i32>(sc_heap(sc) + (<usize>(r * heapStride) << 2), 0);
  const e0 = load<i32>(rowStart + (<usize>qtile << 2)), e1 = load<i32>(rowStart + (<usize>(qtile + 1) << 2));
  for (let e = e0; e < e1; e++) {
    const ent = load<i32>(entries + (<usize>e << 2));
    const k0 = (ent >> 1) * BC, nk = min(BC, lenK - k0), partial = (ent & 1) != 0;
    packK4(plan, seq, hk, k0, nk, D, sc_k(sc));
    qkTileT(sc_q(sc), sc_k(sc), st, nk, nq8, D);
    if (cap > 0) softcapScores(st, nk * BC, cap);
    for (let r = 0; r < nq; r++) {
      const sv = st + (<usize>r << 2);
      if (partial) maskScores(sv, <usize>BC << 2, rowBits(prog, q0 + r, k0, lenQ, lenK, sv, <usize>BC << 2, 0, sc_stack(sc)), nk);
      const hp = sc_heap(sc) + (<usize>(r * heapStride) << 2);
      const data = hp + 4;
      let count = load<i32>(hp);
      for (let j = 0; j < nk; j++) {
        const x = load<f32>(sv + (<usize>(j * BC) << 2));
        if (x == NEG_INF || isNaN(x)) continue;
        if (count < K) {
          let c = count++;
          while (c > 0) {
            const parent = (c - 1) >> 1;
            const pv = load<f32>(data + (<usize>parent << 2));
            if (pv <= x) break;
            store<f32>(data + (<usize>c << 2), pv);
            c = parent;
          }
          store<f32>(data + (<usize>c << 2), x);
        } else if (x > load<f32>(data)) {
          let c = 0;
          while (true) {
            let child = 2 * c + 1;
            if (child >= K) break;
            if (child + 1 < K && load<f32>(data + (<usize>(child + 1) << 2)) < load<f32>(data + (<usize>child << 2))) child++;
            const cv = load<f32>(data + (<usize>child << 2));
            if (cv >= x) break;
            store<f32>(data + (<usize>c << 2), cv);
            c = child;
          }
          store<f32>(data + (<usize>c << 2), x);
        }
      }
      store<i32>(hp, count);
    }
  }
  const thrBase = pu(plan, P_TOPK_THR) + (<usize>(h * pi(plan, P_THR_HEAD_STRIDE) + ri(seq, S_ROW_GLOBAL) + q0) << 2);
  for (let r = 0; r < nq; r++) {
    const hp = sc_heap(sc) + (<usize>(r * heapStride) << 2);
    const count = load<i32>(hp);
    const t: f32 = count == 0 ? <f32>Infinity : count < K ? NEG_INF : load<f32>(hp + 4);
    store<f32>(thrBase + (<usize>r << 2), t);
  }
}

/**
 * Pulls job indices from the atomic counter at `counter` until `numJobs` are taken.
 * `thread` selects this thread's scratch region.
 */
export function runJobs(plan: usize, kind: i32, jobs: usize, numJobs: i32, counter: usize, thread: i32): void {
  if (kind == KIND_MATMUL) { matmulJobs(plan, numJobs, counter); return; }
  const sc = pu(plan, P_SCRATCH) + <usize>thread * pu(plan, P_SCRATCH_BYTES);
  scratchLayout(sc, pi(plan, P_TILE_Q), pi(plan, P_DPAD), pi(plan, P_DVPAD), pi(plan, P_TOPK_K), pi(plan, P_VT_ROWS), pi(plan, P_PANEL_TILES), true);
  memory.fill(sc_ptag(sc), 0, <usize>pi(plan, P_PANEL_TILES) << 2);
  while (true) {
    let j: i32;
    if (ASC_FEATURE_THREADS) j = atomic.add<i32>(counter, 1);
    else { j = load<i32>(counter); store<i32>(counter, j + 1); }
    if (j >= numJobs) break;
    const job = jobs + (<usize>(j * JOB_SLOTS) << 2);
    if (kind == KIND_PREFILL) prefillJob(plan, job, sc, false, thread);
    else if (kind == KIND_COLSUM) prefillJob(plan, job, sc, true, thread);
    else if (kind == KIND_DECODE_SPLIT) decodeSplitJob(plan, j, job, sc);
    else if (kind == KIND_DECODE_MERGE) decodeMergeJob(plan, job, sc);
    else if (kind == KIND_TOPK) topkJob(plan, job, sc);
  }
}

// ---------------------------------------------------------------------------------------------
// Linear layers: C[M×N] = A[M×K]·Wᵀ + bias with W [N×K] row-major (PyTorch's Linear weight), f32.
// Job j covers rows 2⌊j/nb⌋.. +1 and columns 64·(j mod nb) .. +63; inner blocks of 2 rows × 4 columns
// accumulate dot products along K in vectors (8 accumulators), reduced horizontally at the end.

function matmulJobs(d: usize, numJobs: i32, counter: usize): void {
  const A = pu(d, MM_A), W = pu(d, MM_W), bias = pu(d, MM_BIAS), C = pu(d, MM_C);
  const M = pi(d, MM_M), N = pi(d, MM_N), K = pi(d, MM_K);
  const aRow = <usize>pi(d, MM_A_ROW) << 2, cRow = <usize>pi(d, MM_C_ROW) << 2, wRow = <usize>K << 2;
  const nb = (N + 63) >> 6;
  const K4 = <usize>(K & ~3) << 2;
  while (true) {
    let j: i32;
    if (ASC_FEATURE_THREADS) j = atomic.add<i32>(counter, 1);
    else { j = load<i32>(counter); store<i32>(counter, j + 1); }
    if (j >= numJobs) break;
    const r0 = (j / nb) * 2, c0 = (j % nb) * 64;
    const twoRows = r0 + 1 < M;
    const a0 = A + <usize>r0 * aRow, a1 = twoRows ? a0 + aRow : a0;
    const cEnd = min(N, c0 + 64);
    for (let n = c0; n < cEnd; n += 4) {
      const nn = min(4, cEnd - n);
      const w0 = W + <usize>n * wRow;
      const w1 = nn > 1 ? w0 + wRow : w0, w2 = nn > 2 ? w0 + 2 * wRow : w0, w3 = nn > 3 ? w0 + 3 * wRow : w0;
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0), s02 = f32x4.splat(0), s03 = f32x4.splat(0);
      let s10 = f32x4.splat(0), s11 = f32x4.splat(0), s12 = f32x4.splat(0), s13 = f32x4.splat(0);
      for (let k: usize = 0; k < K4; k += 16) {
        const x0 = v128.load(a0 + k), x1 = v128.load(a1 + k);
        const y0 = v128.load(w0 + k), y1 = v128.load(w1 + k), y2 = v128.load(w2 + k), y3 = v128.load(w3 + k);
        s00 = fma4(x0, y0, s00); s01 = fma4(x0, y1, s01); s02 = fma4(x0, y2, s02); s03 = fma4(x0, y3, s03);
        s10 = fma4(x1, y0, s10); s11 = fma4(x1, y1, s11); s12 = fma4(x1, y2, s12); s13 = fma4(x1, y3, s13);
      }
      let t00 = hsum(s00), t01 = hsum(s01), t02 = hsum(s02), t03 = hsum(s03);
      let t10 = hsum(s10), t11 = hsum(s11), t12 = hsum(s12), t13 = hsum(s13);
      for (let k = K & ~3; k < K; k++) {
        const o = <usize>k << 2;
        const x0 = load<f32>(a0 + o), x1 = load<f32>(a1 + o);
        const y0 = load<f32>(w0 + o), y1 = load<f32>(w1 + o), y2 = load<f32>(w2 + o), y3 = load<f32>(w3 + o);
        t00 += x0 * y0; t01 += x0 * y1; t02 += x0 * y2; t03 += x0 * y3;
        t10 += x1 * y0; t11 += x1 * y1; t12 += x1 * y2; t13 += x1 * y3;
      }
      const b0: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
      const b1: f32 = bias && nn > 1 ? load<f32>(bias + (<usize>(n + 1) << 2)) : 0;
      const b2: f32 = bias && nn > 2 ? load<f32>(bias + (<usize>(n + 2) << 2)) : 0;
      const b3: f32 = bias && nn > 3 ? load<f32>(bias + (<usize>(n + 3) << 2)) : 0;
      const c00 = C + <usize>r0 * cRow + (<usize>n << 2);
      store<f32>(c00, t00 + b0);
      if (nn > 1) store<f32>(c00, t01 + b1, 4);
      if (nn > 2) store<f32>(c00, t02 + b2, 8);
      if (nn > 3) store<f32>(c00, t03 + b3, 12);
      if (twoRows) {
        const c10 = c00 + cRow;
        store<f32>(c10, t10 + b0);
        if (nn > 1) store<f32>(c10, t11 + b1, 4);
        if (nn > 2) store<f32>(c10, t12 + b2, 8);
        if (nn > 3) store<f32>(c10, t13 + b3, 12);
      }
    }
  }
}

// Machine-ceiling probe for the benchmarks: `iters` rounds of 12 independent vector FMAs (96 flops).
export function fmaPeak(iters: i32): f32 {
  let a0 = f32x4.splat(1.0), a1 = f32x4.splat(1.1), a2 = f32x4.splat(1.2), a3 = f32x4.splat(1.3);
  let a4 = f32x4.splat(1.4), a5 = f32x4.splat(1.5), a6 = f32x4.splat(1.6), a7 = f32x4.splat(1.7);
  let a8 = f32x4.splat(1.8), a9 = f32x4.splat(1.9), aa = f32x4.splat(2.0), ab = f32x4.splat(2.1);
  const b = f32x4.splat(0.999), c = f32x4.splat(0.001);
  for (let i = 0; i < iters; i++) {
    a0 = fma4(a0, b, c); a1 = fma4(a1, b, c); a2 = fma4(a2, b, c); a3 = fma4(a3, b, c);
    a4 = fma4(a4, b, c); a5 = fma4(a5, b, c); a6 = fma4(a6, b, c); a7 = fma4(a7, b, c);
    a8 = fma4(a8, b, c); a9 = fma4(a9, b, c); aa = fma4(aa, b, c); ab = fma4(ab, b, c);
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)), f32x4.add(f32x4.add(a8, a9), f32x4.add(aa, ab)))), 0);
}
