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
