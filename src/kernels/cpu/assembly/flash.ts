// FlashAttention forward on WebAssembly SIMD (AssemblyScript).
//
// Algorithm (FlashAttention-2, one Q tile at a time, online softmax):
//   for each visited KV tile (the host's tile plan lists them; empty tiles never appear):
//     S = Q·Kᵀ·scale                      (4×8 register-blocked micro-kernel over a transposed K tile)
//     S = softcap·tanh(S/softcap)         (optional)
//     S[¬mask] = −∞                       (partial tiles only: row-bitmask program, 64 keys per word)
//     m_new = max(m, rowmax(S)); P = exp(S − m_new); l = l·exp(m − m_new) + rowsum(P)
//     acc = acc·exp(m − m_new) + P·V      (4×8 register-blocked micro-kernel)
//   O = acc / l, lse = m + log(l)          (fully masked rows: O = 0, lse = −∞)
//
// Tiling: TILE_Q query rows (host-chosen, 64 for prefill) × 64 keys. Per-thread scratch holds the
// scaled Q tile, the transposed K tile, the V tile (f32), S, acc, m, l: O(TILE_Q·(d + 64)) floats.
// Decode (few queries, long KV) packs a GQA group's rows into one tile, splits the visited KV tiles
// across jobs (flash-decoding) and merges the partial (m, l, acc) by log-sum-exp.
//
// Threads: every worker instantiates this module over the same shared memory and pulls job indices
// from an atomic counter (runJobs). The kernel keeps no mutable globals.
import {
  P_Q_DATA, P_K_DATA, P_V_DATA, P_O_DATA, P_LSE_DATA, P_DTYPE, P_OUT_DTYPE, P_GROUP, P_HEAD_DIM, P_HEAD_DIM_V,
  P_DPAD, P_DVPAD, P_Q_ROW, P_Q_HEAD, P_K_ROW, P_K_HEAD, P_V_ROW, P_V_HEAD, P_O_ROW, P_O_HEAD, P_LSE_ROW, P_LSE_HEAD,
  P_SEQS, P_TILE_PLANS, P_SCALE, P_SOFTCAP, P_MASK_PROG, P_TOPK_THR, P_THR_HEAD_STRIDE, P_TOPK_K, P_TOPK_PROG,
  P_TOPK_TILE_PLANS, P_TILE_Q, P_SCRATCH, P_SCRATCH_BYTES, P_PARTIALS, P_SPLIT_TILES, P_PARTIAL_ROWS,
  S_Q_BASE, S_K_BASE, S_V_BASE, S_O_BASE, S_LSE_BASE, S_LEN_Q, S_LEN_K, S_TILE_PLAN, S_ROW_GLOBAL, SEQ_SLOTS,
  T_ROW_START, T_ENTRIES, TILEPLAN_SLOTS, J_SEQ, J_HEAD, J_QTILE, J_SPLIT, JOB_SLOTS,
  KIND_PREFILL, KIND_DECODE_SPLIT, KIND_DECODE_MERGE, KIND_TOPK,
  OP_ALL, OP_NONE, OP_REL, OP_KEYRANGE, OP_STRIDED, OP_BLOCKSPARSE, OP_KEYBITS, OP_DOCS, OP_BITMATRIX, OP_TOPK,
  OP_AND, OP_OR, OP_NOT, OP_END,
} from './abi.generated';

const BC: i32 = 64; // keys per tile (one 64-bit mask word per row)
const NEG_INF: f32 = -Infinity;
const STACK_WORDS: i32 = 32;

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

// exp(x) for x ≤ 0 (or NaN): Cephes expf range reduction and polynomial (≈1 ulp); −∞ and
// x < −87.3 give exactly 0; NaN stays NaN.
// @ts-ignore: decorator
@inline function expNeg4(x: v128): v128 {
  const tiny = f32x4.lt(x, f32x4.splat(-87.3));
  const xc = f32x4.max(x, f32x4.splat(-87.3));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  let r = fma4(n, f32x4.splat(-0.693359375), xc);
  r = fma4(n, f32x4.splat(2.12194440e-4), r);
  let p = f32x4.splat(1.9875691500e-4);
  p = fma4(p, r, f32x4.splat(1.3981999507e-3));
  p = fma4(p, r, f32x4.splat(8.3334519073e-3));
  p = fma4(p, r, f32x4.splat(4.1665795894e-2));
  p = fma4(p, r, f32x4.splat(1.6666665459e-1));
  p = fma4(p, r, f32x4.splat(5.0000001201e-1));
  const r2 = f32x4.mul(r, r);
  const y = f32x4.add(fma4(p, r2, r), f32x4.splat(1.0));
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(y, pow2), tiny);
}

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
  const t = expNeg4(f32x4.mul(ax, f32x4.splat(-2.0))); // e^{−2|x|} in (0, 1]
  const big = f32x4.div(f32x4.sub(f32x4.splat(1.0), t), f32x4.add(f32x4.splat(1.0), t));
  const signed = v128.or(big, v128.and(x, i32x4.splat(0x80000000)));
  return v128.bitselect(small, signed, f32x4.lt(ax, f32x4.splat(0.625)));
}

// @ts-ignore: decorator
@inline function hmax(v: v128): f32 {
  const a = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  const b = f32x4.max(a, v128.shuffle<f32>(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  const a = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  const b = f32x4.add(a, v128.shuffle<f32>(a, a, 1, 0, 3, 2));
  return f32x4.extract_lane(b, 0);
}

// ---------------------------------------------------------------------------------------------
// Scratch layout (per thread). The host sizes scratch with scratchBytes(), exported below.

// A thread's scratch region starts with a header of pointers (written by runJobs), then the buffers.
// No module-level objects: every instance shares linear memory, so per-thread state lives in scratch.
const HEADER: usize = 64;
// @ts-ignore: decorator
@inline function scf(sc: usize, f: i32): usize { return <usize>load<u32>(sc + (<usize>f << 2)); }
// @ts-ignore: decorator
@inline function sc_qt(sc: usize): usize { return scf(sc, 0); }
// @ts-ignore: decorator
@inline function sc_kt(sc: usize): usize { return scf(sc, 1); }
// @ts-ignore: decorator
@inline function sc_vt(sc: usize): usize { return scf(sc, 2); }
// @ts-ignore: decorator
@inline function sc_s(sc: usize): usize { return scf(sc, 3); }
// @ts-ignore: decorator
@inline function sc_o(sc: usize): usize { return scf(sc, 4); }
// @ts-ignore: decorator
@inline function sc_m(sc: usize): usize { return scf(sc, 5); }
// @ts-ignore: decorator
@inline function sc_l(sc: usize): usize { return scf(sc, 6); }
// @ts-ignore: decorator
@inline function sc_stack(sc: usize): usize { return scf(sc, 7); }
// @ts-ignore: decorator
@inline function sc_heap(sc: usize): usize { return scf(sc, 8); }

// Lays out the buffers after `base`'s header (writing the header when `write`); returns the bytes used.
function scratchLayout(base: usize, tileQ: i32, dpad: i32, dvpad: i32, topk: i32, write: bool): usize {
  let p = base + HEADER;
  // qt, kt, vt, s, o, m, l, stack, heap, rowbuf
  const bytes0 = <usize>(tileQ * dpad) << 2;
  const bytes1 = <usize>(dpad * BC) << 2;
  const bytes2 = <usize>(BC * dvpad) << 2;
  const bytes3 = <usize>(tileQ * BC) << 2;
  const bytes4 = <usize>(tileQ * dvpad) << 2;
  const bytes5 = <usize>tileQ << 2;
  const bytes6 = <usize>tileQ << 2;
  const bytes7 = <usize>STACK_WORDS << 3;
  const bytes8 = <usize>(tileQ * (topk + 1)) << 2;
  const bytes9 = <usize>(dpad > dvpad ? dpad : dvpad) << 2;
  if (write) store<u32>(base, <u32>p, 0); p += (bytes0 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 4); p += (bytes1 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 8); p += (bytes2 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 12); p += (bytes3 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 16); p += (bytes4 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 20); p += (bytes5 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 24); p += (bytes6 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 28); p += (bytes7 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 32); p += (bytes8 + 15) & ~15;
  if (write) store<u32>(base, <u32>p, 36); p += (bytes9 + 15) & ~15;
  return p - base;
}

export function scratchBytes(tileQ: i32, dpad: i32, dvpad: i32, topk: i32): i32 {
  return <i32>((scratchLayout(0, tileQ, dpad, dvpad, topk, false) + 63) & ~63);
}

// ---------------------------------------------------------------------------------------------
// Tile loads

// Q tile, scaled: qt[r·dpad + c] = q[row q0 + r, head h, c] · scale; rows nq..rowsPad and columns
// D..dpad are zero.
function loadQ(plan: usize, seq: usize, h: i32, q0: i32, nq: i32, rowsPad: i32, qt: usize): void {
  const D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD), dtype = pi(plan, P_DTYPE);
  const qdata = pu(plan, P_Q_DATA), scale = pf(plan, P_SCALE);
  const qRow = pu(plan, P_Q_ROW), base = <usize>load<u32>(seq + (<usize>S_Q_BASE << 2)) + <usize>h * pu(plan, P_Q_HEAD);
  memory.fill(qt, 0, <usize>(rowsPad * dpad) << 2);
  for (let r = 0; r < nq; r++) {
    const src = base + <usize>(q0 + r) * qRow;
    const dst = qt + (<usize>(r * dpad) << 2);
    for (let c = 0; c < D; c++) store<f32>(dst + (<usize>c << 2), loadElem(qdata, src + <usize>c, dtype) * scale);
  }
}

// Packed-GQA Q tile for decode: row r = g·lenQ + i ↦ head hk·group + g, query i.
function loadQPacked(plan: usize, seq: usize, hk: i32, lenQ: i32, rows: i32, rowsPad: i32, qt: usize): void {
  const D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD), dtype = pi(plan, P_DTYPE), group = pi(plan, P_GROUP);
  const qdata = pu(plan, P_Q_DATA), scale = pf(plan, P_SCALE);
  const qRow = pu(plan, P_Q_ROW), qHead = pu(plan, P_Q_HEAD);
  const base = <usize>load<u32>(seq + (<usize>S_Q_BASE << 2));
  memory.fill(qt, 0, <usize>(rowsPad * dpad) << 2);
  for (let r = 0; r < rows; r++) {
    const g = r / lenQ, i = r - g * lenQ;
    const src = base + <usize>i * qRow + <usize>(hk * group + g) * qHead;
    const dst = qt + (<usize>(r * dpad) << 2);
    for (let c = 0; c < D; c++) store<f32>(dst + (<usize>c << 2), loadElem(qdata, src + <usize>c, dtype) * scale);
  }
}

// K tile transposed: kt[c·64 + j] = k[key k0 + j, head hk, c]; keys nk..nk8 are zero.
function packKT(plan: usize, seq: usize, hk: i32, k0: i32, nk: i32, kt: usize): void {
  const D = pi(plan, P_HEAD_DIM), dtype = pi(plan, P_DTYPE);
  const kdata = pu(plan, P_K_DATA), kRow = pu(plan, P_K_ROW);
  const base = <usize>load<u32>(seq + (<usize>S_K_BASE << 2)) + <usize>hk * pu(plan, P_K_HEAD);
  const nk8 = (nk + 7) & ~7;
  if (dtype == 0) {
    for (let j = 0; j < nk; j++) {
      const src = kdata + ((base + <usize>(k0 + j) * kRow) << 2);
      const dst = kt + (<usize>j << 2);
      for (let c = 0; c < D; c++) store<f32>(dst + (<usize>(c * BC) << 2), load<f32>(src + (<usize>c << 2)));
    }
  } else {
    for (let j = 0; j < nk; j++) {
      const src = base + <usize>(k0 + j) * kRow;
      const dst = kt + (<usize>j << 2);
      for (let c = 0; c < D; c++) store<f32>(dst + (<usize>(c * BC) << 2), loadElem(kdata, src + <usize>c, dtype));
    }
  }
  for (let j = nk; j < nk8; j++) for (let c = 0; c < D; c++) store<f32>(kt + (<usize>(c * BC + j) << 2), 0);
}

// Rows [k0, k0+nk) of K or V (head hk) into a dense f32 buffer with row stride `pad`, zero-padded.
function packRows(data: usize, dtype: i32, base: usize, rowStride: usize, k0: i32, nk: i32, dim: i32, pad: i32, dst: usize): void {
  for (let j = 0; j < nk; j++) {
    const src = base + <usize>(k0 + j) * rowStride;
    const d = dst + (<usize>(j * pad) << 2);
    if (dtype == 0) memory.copy(d, data + (src << 2), <usize>dim << 2);
    else if (dtype == 2) {
      let c = 0;
      for (; c + 4 <= dim; c += 4) v128.store(d + (<usize>c << 2), i32x4.shl(v128.load16x4_u(data + ((src + <usize>c) << 1)), 16));
      for (; c < dim; c++) store<f32>(d + (<usize>c << 2), reinterpret<f32>(<u32>load<u16>(data + ((src + <usize>c) << 1)) << 16));
    } else {
      for (let c = 0; c < dim; c++) store<f32>(d + (<usize>c << 2), h2f(<u32>load<u16>(data + ((src + <usize>c) << 1))));
    }
    for (let c = dim; c < pad; c++) store<f32>(d + (<usize>c << 2), 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Micro-kernels

// S[r][j] = Σ_c qt[r][c]·kt[c][j] for r < rows4 (multiple of 4), j < cols8 (multiple of 8).
function qkTile(qt: usize, kt: usize, s: usize, rows4: i32, cols8: i32, D: i32, dpad: i32): void {
  const rowBytes = <usize>dpad << 2;
  for (let r = 0; r < rows4; r += 4) {
    const q0 = qt + <usize>r * rowBytes, q1 = q0 + rowBytes, q2 = q1 + rowBytes, q3 = q2 + rowBytes;
    const srow = s + (<usize>(r * BC) << 2);
    for (let jb = 0; jb < cols8; jb += 8) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let kp = kt + (<usize>jb << 2);
      const end = <usize>D << 2;
      for (let c: usize = 0; c < end; c += 4) {
        const k0 = v128.load(kp), k1 = v128.load(kp, 16);
        const x0 = v128.load32_splat(q0 + c);
        a00 = fma4(x0, k0, a00); a01 = fma4(x0, k1, a01);
        const x1 = v128.load32_splat(q1 + c);
        a10 = fma4(x1, k0, a10); a11 = fma4(x1, k1, a11);
        const x2 = v128.load32_splat(q2 + c);
        a20 = fma4(x2, k0, a20); a21 = fma4(x2, k1, a21);
        const x3 = v128.load32_splat(q3 + c);
        a30 = fma4(x3, k0, a30); a31 = fma4(x3, k1, a31);
        kp += <usize>BC << 2;
      }
      const o = srow + (<usize>jb << 2);
      v128.store(o, a00); v128.store(o, a01, 16);
      v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528);
      v128.store(o, a30, 768); v128.store(o, a31, 784);
    }
  }
}

// acc[r][c] += Σ_j P[r][j]·V[j][c], rows r < rows4, keys j < nk, columns c < dvpad (multiple of 4).
// V rows are `vStride` bytes apart.
function pvTile(s: usize, v: usize, vStride: usize, o: usize, rows4: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2;
  const pRow: usize = <usize>BC << 2;
  for (let r = 0; r < rows4; r += 4) {
    const p0 = s + <usize>r * pRow;
    const o0 = o + <usize>r * oRow;
    let cb = 0;
    for (; cb + 8 <= dvpad; cb += 8) {
      const oc = o0 + (<usize>cb << 2);
      let a00 = v128.load(oc), a01 = v128.load(oc, 16);
      let a10 = v128.load(oc + oRow), a11 = v128.load(oc + oRow, 16);
      let a20 = v128.load(oc + 2 * oRow), a21 = v128.load(oc + 2 * oRow, 16);
      let a30 = v128.load(oc + 3 * oRow), a31 = v128.load(oc + 3 * oRow, 16);
      let vp = v + (<usize>cb << 2);
      const end = <usize>nk << 2;
      for (let j: usize = 0; j < end; j += 4) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        const x0 = v128.load32_splat(p0 + j);
        a00 = fma4(x0, v0, a00); a01 = fma4(x0, v1, a01);
        const x1 = v128.load32_splat(p0 + j, 256);
        a10 = fma4(x1, v0, a10); a11 = fma4(x1, v1, a11);
        const x2 = v128.load32_splat(p0 + j, 512);
        a20 = fma4(x2, v0, a20); a21 = fma4(x2, v1, a21);
        const x3 = v128.load32_splat(p0 + j, 768);
        a30 = fma4(x3, v0, a30); a31 = fma4(x3, v1, a31);
        vp += vStride;
      }
      v128.store(oc, a00); v128.store(oc, a01, 16);
      v128.store(oc + oRow, a10); v128.store(oc + oRow, a11, 16);
      v128.store(oc + 2 * oRow, a20); v128.store(oc + 2 * oRow, a21, 16);
      v128.store(oc + 3 * oRow, a30); v128.store(oc + 3 * oRow, a31, 16);
    }
    if (cb < dvpad) { // one 4-wide column block left
      const oc = o0 + (<usize>cb << 2);
      let a0 = v128.load(oc), a1 = v128.load(oc + oRow), a2 = v128.load(oc + 2 * oRow), a3 = v128.load(oc + 3 * oRow);
      let vp = v + (<usize>cb << 2);
      const end = <usize>nk << 2;
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
}

// Decode S: S[r][j] = Σ_c qt[r][c]·K[j][c] with K rows `kStride` bytes apart (dot products along d).
function qkRows(qt: usize, k: usize, kStride: usize, s: usize, rows4: i32, nk: i32, dpad: i32): void {
  const qRow = <usize>dpad << 2;
  const end = <usize>dpad << 2;
  for (let r = 0; r < rows4; r += 4) {
    const q0 = qt + <usize>r * qRow, q1 = q0 + qRow, q2 = q1 + qRow, q3 = q2 + qRow;
    const srow = s + (<usize>(r * BC) << 2);
    let kp = k;
    for (let j = 0; j < nk; j++) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let c: usize = 0; c < end; c += 16) {
        const kv = v128.load(kp + c);
        a0 = fma4(v128.load(q0 + c), kv, a0);
        a1 = fma4(v128.load(q1 + c), kv, a1);
        a2 = fma4(v128.load(q2 + c), kv, a2);
        a3 = fma4(v128.load(q3 + c), kv, a3);
      }
      const o = srow + (<usize>j << 2);
      store<f32>(o, hsum(a0)); store<f32>(o, hsum(a1), 256); store<f32>(o, hsum(a2), 512); store<f32>(o, hsum(a3), 768);
      kp += kStride;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Mask program: per row, a 64-bit word of visible keys [k0, k0 + 64)

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

// Evaluates the program for query row i (sequence-local) against keys [k0, k0+64).
function rowBits(prog: usize, i: i32, k0: i32, lenQ: i32, lenK: i32, srow: usize, thr: f32, stack: usize): u64 {
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
      for (let j = 0; j < 64; j++) if (load<f32>(srow + (<usize>j << 2)) >= thr) bits |= <u64>1 << <u64>j;
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

// S[j] = −∞ where bit j is clear.
function applyBits(srow: usize, bits: u64): void {
  if (bits == <u64>-1) return;
  const ninf = f32x4.splat(NEG_INF);
  const lane = i32x4(1, 2, 4, 8);
  for (let j = 0; j < 64; j += 4) {
    const nib = <i32>((bits >> <u64>j) & 15);
    const keep = i32x4.ne(v128.and(i32x4.splat(nib), lane), i32x4.splat(0));
    const p = srow + (<usize>j << 2);
    v128.store(p, v128.bitselect(v128.load(p), ninf, keep));
  }
}

// ---------------------------------------------------------------------------------------------
// The online-softmax tile step shared by prefill and decode

function softcapRows(s: usize, rows: i32, cap: f32): void {
  const inv = f32x4.splat(<f32>1.0 / cap), c = f32x4.splat(cap);
  const n = rows * BC;
  for (let t = 0; t < n; t += 4) {
    const p = s + (<usize>t << 2);
    v128.store(p, f32x4.mul(c, tanh4(f32x4.mul(v128.load(p), inv))));
  }
}

// Masks, tails and the online-softmax update for rows [0, rows); P overwrites S.
function softmaxStep(plan: usize, sc: usize, rows: i32, rowPos0: i32, posPeriod: i32, k0: i32, nk: i32, partial: bool,
                     prog: usize, lenQ: i32, lenK: i32, thrBase: usize, dvpad: i32): void {
  const ninf = f32x4.splat(NEG_INF);
  for (let r = 0; r < rows; r++) {
    const srow = sc_s(sc) + (<usize>(r * BC) << 2);
    if (partial) {
      // Query position of this row: prefill rows are consecutive; packed decode rows repeat every lenQ.
      const i = posPeriod > 0 ? r % posPeriod : rowPos0 + r;
      const thr = thrBase != 0 ? load<f32>(thrBase + (<usize>i << 2)) : <f32>0;
      applyBits(srow, rowBits(prog, i, k0, lenQ, lenK, srow, thr, sc_stack(sc)));
    }
    if (nk < BC) for (let j = nk; j < BC; j++) store<f32>(srow + (<usize>j << 2), NEG_INF);
    let vmax = ninf;
    for (let j = 0; j < BC; j += 4) vmax = f32x4.max(vmax, v128.load(srow + (<usize>j << 2)));
    const mOld = load<f32>(sc_m(sc) + (<usize>r << 2));
    const mNew = max<f32>(mOld, hmax(vmax));
    const mUse: f32 = mNew == NEG_INF ? 0 : mNew;
    const alpha = mOld == NEG_INF ? <f32>0 : Mathf.exp(mOld - mUse);
    const mv = f32x4.splat(mUse);
    let vsum = f32x4.splat(0);
    for (let j = 0; j < BC; j += 4) {
      const p = srow + (<usize>j << 2);
      const e = expNeg4(f32x4.sub(v128.load(p), mv));
      v128.store(p, e);
      vsum = f32x4.add(vsum, e);
    }
    const lOld = load<f32>(sc_l(sc) + (<usize>r << 2));
    store<f32>(sc_l(sc) + (<usize>r << 2), lOld * alpha + hsum(vsum));
    store<f32>(sc_m(sc) + (<usize>r << 2), mNew);
    if (alpha != 1) {
      const av = f32x4.splat(alpha);
      const orow = sc_o(sc) + (<usize>(r * dvpad) << 2);
      for (let c = 0; c < dvpad; c += 4) {
        const p = orow + (<usize>c << 2);
        v128.store(p, f32x4.mul(v128.load(p), av));
      }
    }
  }
}

function initState(sc: usize, rowsPad: i32, dvpad: i32): void {
  for (let r = 0; r < rowsPad; r++) {
    store<f32>(sc_m(sc) + (<usize>r << 2), NEG_INF);
    store<f32>(sc_l(sc) + (<usize>r << 2), 0);
  }
  memory.fill(sc_o(sc), 0, <usize>(rowsPad * dvpad) << 2);
}

// Writes O = acc / l (0 for fully masked rows) and lse for one row.
function finalizeRow(plan: usize, sc: usize, r: i32, oPtr: usize, lsePtr: usize): void {
  const Dv = pi(plan, P_HEAD_DIM_V), dvpad = pi(plan, P_DVPAD), odt = pi(plan, P_OUT_DTYPE);
  const odata = pu(plan, P_O_DATA);
  const l = load<f32>(sc_l(sc) + (<usize>r << 2)), m = load<f32>(sc_m(sc) + (<usize>r << 2));
  const acc = sc_o(sc) + (<usize>(r * dvpad) << 2);
  if (l == 0) {
    for (let c = 0; c < Dv; c++) storeElem(odata, oPtr + <usize>c, odt, 0);
  } else {
    const inv: f32 = l > 0 ? <f32>1.0 / l : <f32>NaN;
    for (let c = 0; c < Dv; c++) storeElem(odata, oPtr + <usize>c, odt, load<f32>(acc + (<usize>c << 2)) * inv);
  }
  if (lsePtr != <usize>-1) {
    const lse: f32 = l > 0 ? m + Mathf.log(l) : (l == 0 ? NEG_INF : <f32>NaN);
    store<f32>(pu(plan, P_LSE_DATA) + (lsePtr << 2), lse);
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs

function prefillJob(plan: usize, job: usize, sc: usize): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const h = ri(job, J_HEAD), qtile = ri(job, J_QTILE);
  const lenQ = ri(seq, S_LEN_Q), lenK = ri(seq, S_LEN_K);
  const tileQ = pi(plan, P_TILE_Q), D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD), dvpad = pi(plan, P_DVPAD);
  const Dv = pi(plan, P_HEAD_DIM_V), dtype = pi(plan, P_DTYPE);
  const tp = pu(plan, P_TILE_PLANS) + (<usize>(ri(seq, S_TILE_PLAN) * TILEPLAN_SLOTS) << 2);
  const rowStart = <usize>ri(tp, T_ROW_START), entries = <usize>ri(tp, T_ENTRIES);
  const hk = h / pi(plan, P_GROUP);
  const q0 = qtile * tileQ, nq = min(tileQ, lenQ - q0), rows4 = (nq + 3) & ~3;
  const prog = pu(plan, P_MASK_PROG);
  const thrTable = pu(plan, P_TOPK_THR);
  const thrBase: usize = thrTable != 0 ? thrTable + (<usize>(h * pi(plan, P_THR_HEAD_STRIDE) + ri(seq, S_ROW_GLOBAL)) << 2) : 0;
  const vBase = <usize>ri(seq, S_V_BASE) + <usize>hk * pu(plan, P_V_HEAD);
  loadQ(plan, seq, h, q0, nq, rows4, sc_qt(sc));
  initState(sc, rows4, dvpad);
  const e0 = load<i32>(rowStart + (<usize>qtile << 2)), e1 = load<i32>(rowStart + (<usize>(qtile + 1) << 2));
  for (let e = e0; e < e1; e++) {
    const ent = load<i32>(entries + (<usize>e << 2));
    const k0 = (ent >> 1) * BC, nk = min(BC, lenK - k0), partial = (ent & 1) != 0;
    packKT(plan, seq, hk, k0, nk, sc_kt(sc));
    packRows(pu(plan, P_V_DATA), dtype, vBase, pu(plan, P_V_ROW), k0, nk, Dv, dvpad, sc_vt(sc));
    qkTile(sc_qt(sc), sc_kt(sc), sc_s(sc), rows4, (nk + 7) & ~7, D, dpad);
    const cap = pf(plan, P_SOFTCAP);
    if (cap > 0) softcapRows(sc_s(sc), rows4, cap);
    softmaxStep(plan, sc, nq, q0, 0, k0, nk, partial, prog, lenQ, lenK, thrBase, dvpad);
    pvTile(sc_s(sc), sc_vt(sc), <usize>dvpad << 2, sc_o(sc), rows4, nk, dvpad);
  }
  const oBase = <usize>ri(seq, S_O_BASE) + <usize>h * pu(plan, P_O_HEAD), oRow = pu(plan, P_O_ROW);
  const hasLse = pu(plan, P_LSE_DATA) != 0;
  const lseBase = <usize>ri(seq, S_LSE_BASE) + <usize>h * pu(plan, P_LSE_HEAD), lseRow = pu(plan, P_LSE_ROW);
  for (let r = 0; r < nq; r++) {
    finalizeRow(plan, sc, r, oBase + <usize>(q0 + r) * oRow, hasLse ? lseBase + <usize>(q0 + r) * lseRow : <usize>-1);
  }
}

// Split-KV decode: job (seq, kvHead, split) handles visited tiles [split·SPLIT_TILES, …) of the
// sequence's single Q-tile row for all group·lenQ packed rows, and writes (m, l, acc) partials.
function decodeSplitJob(plan: usize, jobIndex: i32, job: usize, sc: usize): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const hk = ri(job, J_HEAD), split = ri(job, J_SPLIT);
  const lenQ = ri(seq, S_LEN_Q), lenK = ri(seq, S_LEN_K);
  const group = pi(plan, P_GROUP), dtype = pi(plan, P_DTYPE);
  const D = pi(plan, P_HEAD_DIM), Dv = pi(plan, P_HEAD_DIM_V), dpad = pi(plan, P_DPAD), dvpad = pi(plan, P_DVPAD);
  const rows = group * lenQ, rows4 = (rows + 3) & ~3;
  const tp = pu(plan, P_TILE_PLANS) + (<usize>(ri(seq, S_TILE_PLAN) * TILEPLAN_SLOTS) << 2);
  const rowStart = <usize>ri(tp, T_ROW_START), entries = <usize>ri(tp, T_ENTRIES);
  const prog = pu(plan, P_MASK_PROG);
  const kBase = <usize>ri(seq, S_K_BASE) + <usize>hk * pu(plan, P_K_HEAD);
  const vBase = <usize>ri(seq, S_V_BASE) + <usize>hk * pu(plan, P_V_HEAD);
  const kRow = pu(plan, P_K_ROW), vRow = pu(plan, P_V_ROW);
  const directK = dtype == 0 && (D & 3) == 0, directV = dtype == 0 && (Dv & 3) == 0;
  loadQPacked(plan, seq, hk, lenQ, rows, rows4, sc_qt(sc));
  initState(sc, rows4, dvpad);
  const per = pi(plan, P_SPLIT_TILES);
  const eStart = load<i32>(rowStart), eEnd = load<i32>(rowStart, 4);
  const e0 = eStart + split * per, e1 = min(eEnd, e0 + per);
  for (let e = e0; e < e1; e++) {
    const ent = load<i32>(entries + (<usize>e << 2));
    const k0 = (ent >> 1) * BC, nk = min(BC, lenK - k0), partial = (ent & 1) != 0;
    let kp: usize, kStride: usize;
    if (directK) { kp = pu(plan, P_K_DATA) + ((kBase + <usize>k0 * kRow) << 2); kStride = kRow << 2; }
    else { packRows(pu(plan, P_K_DATA), dtype, kBase, kRow, k0, nk, D, dpad, sc_kt(sc)); kp = sc_kt(sc); kStride = <usize>dpad << 2; }
    qkRows(sc_qt(sc), kp, kStride, sc_s(sc), rows4, nk, dpad);
    const cap = pf(plan, P_SOFTCAP);
    if (cap > 0) softcapRows(sc_s(sc), rows4, cap);
    softmaxStep(plan, sc, rows, 0, lenQ, k0, nk, partial, prog, lenQ, lenK, 0, dvpad);
    let vp: usize, vStride: usize;
    if (directV) { vp = pu(plan, P_V_DATA) + ((vBase + <usize>k0 * vRow) << 2); vStride = vRow << 2; }
    else { packRows(pu(plan, P_V_DATA), dtype, vBase, vRow, k0, nk, Dv, dvpad, sc_vt(sc)); vp = sc_vt(sc); vStride = <usize>dvpad << 2; }
    pvTile(sc_s(sc), vp, vStride, sc_o(sc), rows4, nk, dvpad);
  }
  // Partials: [jobIndex][row] → (m, l, acc[dvpad]).
  const stride = dvpad + 2;
  const part = pu(plan, P_PARTIALS) + (<usize>(jobIndex * pi(plan, P_PARTIAL_ROWS) * stride) << 2);
  for (let r = 0; r < rows; r++) {
    const p = part + (<usize>(r * stride) << 2);
    store<f32>(p, load<f32>(sc_m(sc) + (<usize>r << 2)));
    store<f32>(p, load<f32>(sc_l(sc) + (<usize>r << 2)), 4);
    memory.copy(p + 8, sc_o(sc) + (<usize>(r * dvpad) << 2), <usize>dvpad << 2);
  }
}

// Merge job (seq, kvHead): QTILE = index of the first split job, SPLIT = number of splits.
function decodeMergeJob(plan: usize, job: usize, sc: usize): void {
  const seq = pu(plan, P_SEQS) + (<usize>(ri(job, J_SEQ) * SEQ_SLOTS) << 2);
  const hk = ri(job, J_HEAD), first = ri(job, J_QTILE), nsplit = ri(job, J_SPLIT);
  const lenQ = ri(seq, S_LEN_Q), group = pi(plan, P_GROUP), dvpad = pi(plan, P_DVPAD);
  const rows = group * lenQ, stride = dvpad + 2, prows = pi(plan, P_PARTIAL_ROWS);
  const partials = pu(plan, P_PARTIALS);
  const oRow = pu(plan, P_O_ROW), oHead = pu(plan, P_O_HEAD);
  const hasLse = pu(plan, P_LSE_DATA) != 0;
  const lseRow = pu(plan, P_LSE_ROW), lseHead = pu(plan, P_LSE_HEAD);
  for (let r = 0; r < rows; r++) {
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
      const w = Mathf.exp(ms - mUse);
      L += ls * w;
      const wv = f32x4.splat(w);
      for (let c = 0; c < dvpad; c += 4) {
        const a = acc + (<usize>c << 2);
        v128.store(a, fma4(v128.load(p + 8 + (<usize>c << 2)), wv, v128.load(a)));
      }
    }
    store<f32>(sc_m(sc), M);
    store<f32>(sc_l(sc), L);
    const g = r / lenQ, i = r - g * lenQ, h = hk * group + g;
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
  const tileQ = pi(plan, P_TILE_Q), D = pi(plan, P_HEAD_DIM), dpad = pi(plan, P_DPAD);
  const K = pi(plan, P_TOPK_K);
  const tp = pu(plan, P_TOPK_TILE_PLANS) + (<usize>(ri(seq, S_TILE_PLAN) * TILEPLAN_SLOTS) << 2);
  const rowStart = <usize>ri(tp, T_ROW_START), entries = <usize>ri(tp, T_ENTRIES);
  const hk = h / pi(plan, P_GROUP);
  const q0 = qtile * tileQ, nq = min(tileQ, lenQ - q0), rows4 = (nq + 3) & ~3;
  const prog = pu(plan, P_TOPK_PROG);
  loadQ(plan, seq, h, q0, nq, rows4, sc_qt(sc));
  const heapStride = K + 1; // slot 0: count
  for (let r = 0; r < nq; r++) store<i32>(sc_heap(sc) + (<usize>(r * heapStride) << 2), 0);
  const e0 = load<i32>(rowStart + (<usize>qtile << 2)), e1 = load<i32>(rowStart + (<usize>(qtile + 1) << 2));
  for (let e = e0; e < e1; e++) {
    const ent = load<i32>(entries + (<usize>e << 2));
    const k0 = (ent >> 1) * BC, nk = min(BC, lenK - k0), partial = (ent & 1) != 0;
    packKT(plan, seq, hk, k0, nk, sc_kt(sc));
    qkTile(sc_qt(sc), sc_kt(sc), sc_s(sc), rows4, (nk + 7) & ~7, D, dpad);
    const cap = pf(plan, P_SOFTCAP);
    if (cap > 0) softcapRows(sc_s(sc), rows4, cap);
    for (let r = 0; r < nq; r++) {
      const srow = sc_s(sc) + (<usize>(r * BC) << 2);
      if (partial) applyBits(srow, rowBits(prog, q0 + r, k0, lenQ, lenK, srow, 0, sc_stack(sc)));
      const hp = sc_heap(sc) + (<usize>(r * heapStride) << 2);
      const data = hp + 4;
      let count = load<i32>(hp);
      for (let j = 0; j < nk; j++) {
        const x = load<f32>(srow + (<usize>j << 2));
        if (x == NEG_INF || isNaN(x)) continue;
        if (count < K) {
          // sift up
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
          // replace the minimum and sift down
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
  const sc = pu(plan, P_SCRATCH) + <usize>thread * pu(plan, P_SCRATCH_BYTES);
  scratchLayout(sc, pi(plan, P_TILE_Q), pi(plan, P_DPAD), pi(plan, P_DVPAD), pi(plan, P_TOPK_K), true);
  while (true) {
    let j: i32;
    if (ASC_FEATURE_THREADS) j = atomic.add<i32>(counter, 1);
    else { j = load<i32>(counter); store<i32>(counter, j + 1); }
    if (j >= numJobs) break;
    const job = jobs + (<usize>(j * JOB_SLOTS) << 2);
    if (kind == KIND_PREFILL) prefillJob(plan, job, sc);
    else if (kind == KIND_DECODE_SPLIT) decodeSplitJob(plan, j, job, sc);
    else if (kind == KIND_DECODE_MERGE) decodeMergeJob(plan, job, sc);
    else if (kind == KIND_TOPK) topkJob(plan, job, sc);
  }
}

// Machine-ceiling probe for the benchmarks: `iters` rounds of 16 independent vector FMAs.
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
