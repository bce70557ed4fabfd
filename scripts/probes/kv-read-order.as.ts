// scripts/kv-read-order-probe.mjs compiles this (AssemblyScript): K/V read orders and the decode Q·Kᵀ arithmetic.
// Read-bandwidth microbench: the same K bytes read in different orders (v128 loads summed).
export function alloc(bytes: i32): usize { return heap.alloc(<usize>bytes); }
export function linear(p: usize, bytes: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  for (let o: usize = 0; o < <usize>bytes; o += 64) {
    a = f32x4.add(a, v128.load(p + o)); b = f32x4.add(b, v128.load(p + o, 16));
    c = f32x4.add(c, v128.load(p + o, 32)); d = f32x4.add(d, v128.load(p + o, 48));
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(a, b), f32x4.add(c, d)), 0);
}
// keys × Hk × D f32 (row = Hk·D floats). chunk order: for each VC-key chunk, for each head, for each key: D floats.
export function chunked(p: usize, keys: i32, Hk: i32, D: i32, VC: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    for (let h = 0; h < Hk; h++) {
      for (let j = 0; j < VC; j++) {
        const r = p + <usize>(k0 + j) * row + <usize>h * head;
        for (let o: usize = 0; o < head; o += 64) {
          a = f32x4.add(a, v128.load(r + o)); b = f32x4.add(b, v128.load(r + o, 16));
          c = f32x4.add(c, v128.load(r + o, 32)); d = f32x4.add(d, v128.load(r + o, 48));
        }
      }
    }
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(a, b), f32x4.add(c, d)), 0);
}
// chunked order, plus one load per 64-byte line of the NEXT chunk in address order, spread over the head steps.
export function chunkedTouch(p: usize, keys: i32, Hk: i32, D: i32, VC: i32, ahead: i32): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  let t = f32x4.splat(0);
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2;
  const chunkBytes = <usize>VC * row, per = chunkBytes / <usize>Hk;
  const endp = p + <usize>keys * row;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    const next = p + <usize>(k0 + VC * ahead) * row;
    for (let h = 0; h < Hk; h++) {
      const tp = next + <usize>h * per;
      if (tp + per <= endp) for (let o: usize = 0; o < per; o += 64) t = f32x4.add(t, v128.load(tp + o));
      for (let j = 0; j < VC; j++) {
        const r = p + <usize>(k0 + j) * row + <usize>h * head;
        for (let o: usize = 0; o < head; o += 64) {
          a = f32x4.add(a, v128.load(r + o)); b = f32x4.add(b, v128.load(r + o, 16));
          c = f32x4.add(c, v128.load(r + o, 32)); d = f32x4.add(d, v128.load(r + o, 48));
        }
      }
    }
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(f32x4.add(a, b), f32x4.add(c, d)), t), 0);
}
// Copy each VC-key chunk linearly into scratch, then read the scratch in chunked order.
export function copyChunked(p: usize, keys: i32, Hk: i32, D: i32, VC: i32, scratch: usize): f32 {
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2;
  const chunkBytes = <usize>VC * row;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    const src = p + <usize>k0 * row;
    for (let o: usize = 0; o < chunkBytes; o += 64) {
      v128.store(scratch + o, v128.load(src + o)); v128.store(scratch + o, v128.load(src + o, 16), 16);
      v128.store(scratch + o, v128.load(src + o, 32), 32); v128.store(scratch + o, v128.load(src + o, 48), 48);
    }
    for (let h = 0; h < Hk; h++) {
      for (let j = 0; j < VC; j++) {
        const r = scratch + <usize>j * row + <usize>h * head;
        for (let o: usize = 0; o < head; o += 64) {
          a = f32x4.add(a, v128.load(r + o)); b = f32x4.add(b, v128.load(r + o, 16));
          c = f32x4.add(c, v128.load(r + o, 32)); d = f32x4.add(d, v128.load(r + o, 48));
        }
      }
    }
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(a, b), f32x4.add(c, d)), 0);
}
@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
@inline function hs(v: v128): f32 { return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3); }
// QK over all keys and heads, 4 query rows per KV head (q: Hk × 4 rows × D), scores to s (Hk·4 rows × a 64-key tile).
// order 1: key outer, head inner (address order), one key at a time, 8 accumulators (4 rows × 2 halves).
export function qkLinear(k: usize, q: usize, s: usize, keys: i32, Hk: i32, D: i32): void {
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2, end = <usize>D << 2;
  for (let j = 0; j < keys; j++) {
    for (let h = 0; h < Hk; h++) {
      const kp = k + <usize>j * row + <usize>h * head;
      const q0 = q + <usize>(h * 4) * head, q1 = q0 + head, q2 = q1 + head, q3 = q2 + head;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let c: usize = 0; c < end; c += 32) {
        const ka = v128.load(kp + c), kb = v128.load(kp + c, 16);
        a0 = fma(v128.load(q0 + c), ka, a0); b0 = fma(v128.load(q0 + c, 16), kb, b0);
        a1 = fma(v128.load(q1 + c), ka, a1); b1 = fma(v128.load(q1 + c, 16), kb, b1);
        a2 = fma(v128.load(q2 + c), ka, a2); b2 = fma(v128.load(q2 + c, 16), kb, b2);
        a3 = fma(v128.load(q3 + c), ka, a3); b3 = fma(v128.load(q3 + c, 16), kb, b3);
      }
      const o = s + ((<usize>(h * 4) * 64 + <usize>(j & 63)) << 2);   // a 64-key score tile, as the kernel's
      const rs: usize = 64 << 2;
      store<f32>(o, hs(f32x4.add(a0, b0))); store<f32>(o + rs, hs(f32x4.add(a1, b1)));
      store<f32>(o + 2 * rs, hs(f32x4.add(a2, b2))); store<f32>(o + 3 * rs, hs(f32x4.add(a3, b3)));
    }
  }
}
// order 2: the kernel's: VC-key chunks, head, key pairs (qkRows4's loop), 8 accumulators (4 rows × 2 keys).
export function qkChunked(k: usize, q: usize, s: usize, keys: i32, Hk: i32, D: i32, VC: i32): void {
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2, end = <usize>D << 2;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    for (let h = 0; h < Hk; h++) {
      const q0 = q + <usize>(h * 4) * head, q1 = q0 + head, q2 = q1 + head, q3 = q2 + head;
      for (let j = k0; j < k0 + VC; j += 2) {
        const kp = k + <usize>j * row + <usize>h * head, kp1 = kp + row;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
        for (let c: usize = 0; c < end; c += 16) {
          const ka = v128.load(kp + c), kb = v128.load(kp1 + c);
          const x0 = v128.load(q0 + c), x1 = v128.load(q1 + c), x2 = v128.load(q2 + c), x3 = v128.load(q3 + c);
          a0 = fma(x0, ka, a0); b0 = fma(x0, kb, b0); a1 = fma(x1, ka, a1); b1 = fma(x1, kb, b1);
          a2 = fma(x2, ka, a2); b2 = fma(x2, kb, b2); a3 = fma(x3, ka, a3); b3 = fma(x3, kb, b3);
        }
        const o = s + ((<usize>(h * 4) * 64 + <usize>(j & 63)) << 2);
        const rs: usize = 64 << 2;
        store<f32>(o, hs(a0)); store<f32>(o + rs, hs(a1)); store<f32>(o + 2 * rs, hs(a2)); store<f32>(o + 3 * rs, hs(a3));
        store<f32>(o, hs(b0), 4); store<f32>(o + rs, hs(b1), 4); store<f32>(o + 2 * rs, hs(b2), 4); store<f32>(o + 3 * rs, hs(b3), 4);
      }
    }
  }
}
// qkLinear with the four query rows at constant offsets from one base (rows D = 128 floats apart: 512 bytes),
// so every load's address is one register plus an immediate.
export function qkLinearImm(k: usize, q: usize, s: usize, keys: i32, Hk: i32): void {
  const row = <usize>(Hk * 128) << 2;
  for (let j = 0; j < keys; j++) {
    for (let h = 0; h < Hk; h++) {
      const kp = k + <usize>j * row + (<usize>h << 9);
      const qp = q + (<usize>(h * 4) << 9);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let c: usize = 0; c < 512; c += 32) {
        const kc = kp + c, qc = qp + c;
        const ka = v128.load(kc), kb = v128.load(kc, 16);
        a0 = fma(v128.load(qc), ka, a0); b0 = fma(v128.load(qc, 16), kb, b0);
        a1 = fma(v128.load(qc, 512), ka, a1); b1 = fma(v128.load(qc, 528), kb, b1);
        a2 = fma(v128.load(qc, 1024), ka, a2); b2 = fma(v128.load(qc, 1040), kb, b2);
        a3 = fma(v128.load(qc, 1536), ka, a3); b3 = fma(v128.load(qc, 1552), kb, b3);
      }
      const o = s + ((<usize>(h * 4) * 64 + <usize>(j & 63)) << 2);
      store<f32>(o, hs(f32x4.add(a0, b0))); store<f32>(o, hs(f32x4.add(a1, b1)), 256);
      store<f32>(o, hs(f32x4.add(a2, b2)), 512); store<f32>(o, hs(f32x4.add(a3, b3)), 768);
    }
  }
}
// P·V for 4 query rows a KV head, d128: o (Hk·4 rows × 128) += p (Hk·4 rows × a 64-key tile) · V.
// Linear: key outer, head inner; the accumulators live in memory (L1): each V vector is loaded once and
// multiplied into the four rows' accumulators (load, multiply-add, store).
export function pvLinear(v: usize, p: usize, o: usize, keys: i32, Hk: i32): void {
  const row = <usize>(Hk * 128) << 2;
  for (let j = 0; j < keys; j++) {
    for (let h = 0; h < Hk; h++) {
      const vp = v + <usize>j * row + (<usize>h << 9);
      const pp = p + ((<usize>(h * 4) * 64 + <usize>(j & 63)) << 2);
      const x0 = v128.load32_splat(pp), x1 = v128.load32_splat(pp, 256), x2 = v128.load32_splat(pp, 512), x3 = v128.load32_splat(pp, 768);
      const op = o + (<usize>(h * 4) << 9);
      for (let c: usize = 0; c < 512; c += 16) {
        const vv = v128.load(vp + c), oc = op + c;
        v128.store(oc, fma(x0, vv, v128.load(oc)));
        v128.store(oc, fma(x1, vv, v128.load(oc, 512)), 512);
        v128.store(oc, fma(x2, vv, v128.load(oc, 1024)), 1024);
        v128.store(oc, fma(x3, vv, v128.load(oc, 1536)), 1536);
      }
    }
  }
}
// Chunked (the kernel's pvRows over VC-key chunks): for each chunk, head and 8-column block, the 4 rows × 8
// columns in registers across the chunk's keys.
export function pvChunked(v: usize, p: usize, o: usize, keys: i32, Hk: i32, VC: i32): void {
  const row = <usize>(Hk * 128) << 2;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    for (let h = 0; h < Hk; h++) {
      const op = o + (<usize>(h * 4) << 9);
      const pp = p + ((<usize>(h * 4) * 64 + <usize>(k0 & 63)) << 2);
      for (let cb: usize = 0; cb < 512; cb += 32) {
        const oc = op + cb;
        let a0 = v128.load(oc), a1 = v128.load(oc, 512), a2 = v128.load(oc, 1024), a3 = v128.load(oc, 1536);
        let b0 = v128.load(oc, 16), b1 = v128.load(oc, 528), b2 = v128.load(oc, 1040), b3 = v128.load(oc, 1552);
        let vp = v + <usize>k0 * row + (<usize>h << 9) + cb;
        for (let j: usize = 0; j < <usize>VC << 2; j += 4) {
          const v0 = v128.load(vp), v1 = v128.load(vp, 16);
          const x0 = v128.load32_splat(pp + j); a0 = fma(x0, v0, a0); b0 = fma(x0, v1, b0);
          const x1 = v128.load32_splat(pp + j, 256); a1 = fma(x1, v0, a1); b1 = fma(x1, v1, b1);
          const x2 = v128.load32_splat(pp + j, 512); a2 = fma(x2, v0, a2); b2 = fma(x2, v1, b2);
          const x3 = v128.load32_splat(pp + j, 768); a3 = fma(x3, v0, a3); b3 = fma(x3, v1, b3);
          vp += row;
        }
        v128.store(oc, a0); v128.store(oc, a1, 512); v128.store(oc, a2, 1024); v128.store(oc, a3, 1536);
        v128.store(oc, b0, 16); v128.store(oc, b1, 528); v128.store(oc, b2, 1040); v128.store(oc, b3, 1552);
      }
    }
  }
}
// Sum of each of four vectors, as one vector [Σa, Σb, Σc, Σd] (a 4×4 transpose folded into the adds).
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7)); // a0+a2 b0+b2 a1+a3 b1+b3
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}
// order 2, 2 rows × 4 keys: 8 accumulators, the four keys' sums of a row stored as one vector.
export function qkChunked2x4(k: usize, q: usize, s: usize, keys: i32, Hk: i32, D: i32, VC: i32): void {
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2, end = <usize>D << 2;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    for (let h = 0; h < Hk; h++) {
      for (let rp = 0; rp < 4; rp += 2) {
        const qa = q + <usize>(h * 4 + rp) * head, qb = qa + head;
        for (let j = k0; j < k0 + VC; j += 4) {
          const kp = k + <usize>j * row + <usize>h * head;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
          for (let c: usize = 0; c < end; c += 16) {
            const x = v128.load(qa + c), y = v128.load(qb + c);
            const k0v = v128.load(kp + c), k1v = v128.load(kp + c + row), k2v = v128.load(kp + c + 2 * row), k3v = v128.load(kp + c + 3 * row);
            a0 = fma(x, k0v, a0); b0 = fma(y, k0v, b0); a1 = fma(x, k1v, a1); b1 = fma(y, k1v, b1);
            a2 = fma(x, k2v, a2); b2 = fma(y, k2v, b2); a3 = fma(x, k3v, a3); b3 = fma(y, k3v, b3);
          }
          const o = s + ((<usize>(h * 4 + rp) * 64 + <usize>(j & 63)) << 2);
          v128.store(o, sum4(a0, a1, a2, a3));
          v128.store(o + (64 << 2), sum4(b0, b1, b2, b3));
        }
      }
    }
  }
}
// order 2, Q transposed (qt: Hk × D × 4 rows): 8 keys × 4 rows in 8 accumulators, K elements broadcast (immediate
// offsets j·row from one pointer); scores transposed back to rows at the end.
export function qkChunkedBcast(k: usize, qt: usize, s: usize, keys: i32, Hk: i32, D: i32): void {
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2, end = <usize>D << 2;
  for (let k0 = 0; k0 < keys; k0 += 8) {
    for (let h = 0; h < Hk; h++) {
      const qh = qt + <usize>h * (head << 2);
      const kp = k + <usize>k0 * row + <usize>h * head;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      let qp = qh;
      for (let c: usize = 0; c < end; c += 4) {
        const x = v128.load(qp);
        const p = kp + c;
        a0 = fma(x, v128.load32_splat(p), a0); a1 = fma(x, v128.load32_splat(p, 4096), a1);
        a2 = fma(x, v128.load32_splat(p, 8192), a2); a3 = fma(x, v128.load32_splat(p, 12288), a3);
        a4 = fma(x, v128.load32_splat(p, 16384), a4); a5 = fma(x, v128.load32_splat(p, 20480), a5);
        a6 = fma(x, v128.load32_splat(p, 24576), a6); a7 = fma(x, v128.load32_splat(p, 28672), a7);
        qp += 16;
      }
      // a_j = [s(r0,j), s(r1,j), s(r2,j), s(r3,j)] → rows r: [s(r,0..3)], [s(r,4..7)]
      const o = s + ((<usize>(h * 4) * 64 + <usize>(k0 & 63)) << 2);
      const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
      v128.store(o, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5)); v128.store(o + 256, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
      v128.store(o + 512, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5)); v128.store(o + 768, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      const u0 = v128.shuffle<f32>(a4, a5, 0, 4, 1, 5), u1 = v128.shuffle<f32>(a4, a5, 2, 6, 3, 7);
      const u2 = v128.shuffle<f32>(a6, a7, 0, 4, 1, 5), u3 = v128.shuffle<f32>(a6, a7, 2, 6, 3, 7);
      v128.store(o, v128.shuffle<f32>(u0, u2, 0, 1, 4, 5), 16); v128.store(o + 256, v128.shuffle<f32>(u0, u2, 2, 3, 6, 7), 16);
      v128.store(o + 512, v128.shuffle<f32>(u1, u3, 0, 1, 4, 5), 16); v128.store(o + 768, v128.shuffle<f32>(u1, u3, 2, 3, 6, 7), 16);
    }
  }
}
// 2 rows × 6 keys: 12 accumulators (more multiply-adds in flight than 8), a K vector used for both rows at once.
export function qkChunked2x6(k: usize, q: usize, s: usize, keys: i32, Hk: i32, D: i32, VC: i32): void {
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2, end = <usize>D << 2;
  for (let k0 = 0; k0 + VC <= keys; k0 += VC) {
    for (let h = 0; h < Hk; h++) {
      for (let rp = 0; rp < 4; rp += 2) {
        const qa = q + <usize>(h * 4 + rp) * head, qb = qa + head;
        for (let j = k0; j + 6 <= k0 + VC; j += 6) {
          const kp = k + <usize>j * row + <usize>h * head;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0), a4 = f32x4.splat(0), a5 = f32x4.splat(0);
          let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0), b4 = f32x4.splat(0), b5 = f32x4.splat(0);
          for (let c: usize = 0; c < end; c += 16) {
            const x = v128.load(qa + c), y = v128.load(qb + c);
            const p = kp + c;
            let kv = v128.load(p); a0 = fma(x, kv, a0); b0 = fma(y, kv, b0);
            kv = v128.load(p, 4096); a1 = fma(x, kv, a1); b1 = fma(y, kv, b1);
            kv = v128.load(p, 8192); a2 = fma(x, kv, a2); b2 = fma(y, kv, b2);
            kv = v128.load(p, 12288); a3 = fma(x, kv, a3); b3 = fma(y, kv, b3);
            kv = v128.load(p, 16384); a4 = fma(x, kv, a4); b4 = fma(y, kv, b4);
            kv = v128.load(p, 20480); a5 = fma(x, kv, a5); b5 = fma(y, kv, b5);
          }
          const o = s + ((<usize>(h * 4 + rp) * 64 + <usize>(j & 63)) << 2);
          v128.store(o, sum4(a0, a1, a2, a3)); store<f32>(o, hs(a4), 16); store<f32>(o, hs(a5), 20);
          v128.store(o + 256, sum4(b0, b1, b2, b3)); store<f32>(o + 256, hs(b4), 16); store<f32>(o + 256, hs(b5), 20);
        }
      }
    }
  }
}
// 2 × 4 with the K rows at immediate offsets from one pointer (row = 4 KiB, Hk = 8, D = 128).
export function qkChunked2x4i(k: usize, q: usize, s: usize, keys: i32, Hk: i32, D: i32, VC: i32): void {
  const row = <usize>(Hk * D) << 2, head = <usize>D << 2, end = <usize>D << 2;
  for (let k0 = 0; k0 < keys; k0 += VC) {
    for (let h = 0; h < Hk; h++) {
      for (let rp = 0; rp < 4; rp += 2) {
        const qa = q + <usize>(h * 4 + rp) * head;
        for (let j = k0; j < k0 + VC; j += 4) {
          const kp = k + <usize>j * row + <usize>h * head;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
          for (let c: usize = 0; c < end; c += 16) {
            const x = v128.load(qa + c), y = v128.load(qa + c, 512);
            const p = kp + c;
            const k0v = v128.load(p), k1v = v128.load(p, 4096), k2v = v128.load(p, 8192), k3v = v128.load(p, 12288);
            a0 = fma(x, k0v, a0); b0 = fma(y, k0v, b0); a1 = fma(x, k1v, a1); b1 = fma(y, k1v, b1);
            a2 = fma(x, k2v, a2); b2 = fma(y, k2v, b2); a3 = fma(x, k3v, a3); b3 = fma(y, k3v, b3);
          }
          const o = s + ((<usize>(h * 4 + rp) * 64 + <usize>(j & 63)) << 2);
          v128.store(o, sum4(a0, a1, a2, a3));
          v128.store(o + 256, sum4(b0, b1, b2, b3));
        }
      }
    }
  }
}
