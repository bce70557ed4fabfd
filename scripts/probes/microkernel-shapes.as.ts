// Register blockings of the prefill micro-kernels, for scripts/microkernel-shapes-probe.mjs (not part of the library).
const BC: i32 = 64;
// @ts-ignore
@inline function fma4(a: v128, b: v128, c: v128): v128 { return f32x4.relaxed_madd(a, b, c); }
export function alloc(n: i32): usize { return heap.alloc(<usize>n); }

// current: 4 keys x 8 queries (8 acc)
export function qk48(qt: usize, kb: usize, st: usize, nk: i32, nq8: i32, D: i32): void {
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
        const x0 = v128.load32_splat(kp); a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01);
        const x1 = v128.load32_splat(kp, 4); a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11);
        const x2 = v128.load32_splat(kp, 8); a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21);
        const x3 = v128.load32_splat(kp, 12); a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31);
        qp += <usize>BC << 2; kp += 16;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a30, 768); v128.store(o, a31, 784);
    }
  }
}
// 6 keys x 8 queries (12 acc), K packed in 6-key blocks: kb[(j/6)*6D + c*6 + j%6]
export function qk68(qt: usize, kb: usize, st: usize, nk6: i32, nq8: i32, D: i32): void {
  const blockBytes = <usize>(D * 24);
  for (let jb = 0; jb < nk6; jb += 6) {
    const kblk = kb + <usize>(jb / 6) * blockBytes;
    const srow = st + (<usize>(jb * BC) << 2);
    for (let ib = 0; ib < nq8; ib += 8) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let a40 = f32x4.splat(0), a41 = f32x4.splat(0), a50 = f32x4.splat(0), a51 = f32x4.splat(0);
      let qp = qt + (<usize>ib << 2);
      let kp = kblk;
      const kend = kblk + blockBytes;
      while (kp < kend) {
        const q0 = v128.load(qp), q1 = v128.load(qp, 16);
        const x0 = v128.load32_splat(kp); a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01);
        const x1 = v128.load32_splat(kp, 4); a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11);
        const x2 = v128.load32_splat(kp, 8); a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21);
        const x3 = v128.load32_splat(kp, 12); a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31);
        const x4 = v128.load32_splat(kp, 16); a40 = fma4(x4, q0, a40); a41 = fma4(x4, q1, a41);
        const x5 = v128.load32_splat(kp, 20); a50 = fma4(x5, q0, a50); a51 = fma4(x5, q1, a51);
        qp += <usize>BC << 2; kp += 24;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a30, 768); v128.store(o, a31, 784);
      v128.store(o, a40, 1024); v128.store(o, a41, 1040); v128.store(o, a50, 1280); v128.store(o, a51, 1296);
    }
  }
}
// 5 keys x 8 queries (10 acc)
export function qk58(qt: usize, kb: usize, st: usize, nk5: i32, nq8: i32, D: i32): void {
  const blockBytes = <usize>(D * 20);
  for (let jb = 0; jb < nk5; jb += 5) {
    const kblk = kb + <usize>(jb / 5) * blockBytes;
    const srow = st + (<usize>(jb * BC) << 2);
    for (let ib = 0; ib < nq8; ib += 8) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
      let a40 = f32x4.splat(0), a41 = f32x4.splat(0);
      let qp = qt + (<usize>ib << 2);
      let kp = kblk;
      const kend = kblk + blockBytes;
      while (kp < kend) {
        const q0 = v128.load(qp), q1 = v128.load(qp, 16);
        const x0 = v128.load32_splat(kp); a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01);
        const x1 = v128.load32_splat(kp, 4); a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11);
        const x2 = v128.load32_splat(kp, 8); a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21);
        const x3 = v128.load32_splat(kp, 12); a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31);
        const x4 = v128.load32_splat(kp, 16); a40 = fma4(x4, q0, a40); a41 = fma4(x4, q1, a41);
        qp += <usize>BC << 2; kp += 20;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a30, 768); v128.store(o, a31, 784);
      v128.store(o, a40, 1024); v128.store(o, a41, 1040);
    }
  }
}
// 4 keys x 12 queries (12 acc + 3 q + 1 splat)
export function qk412(qt: usize, kb: usize, st: usize, nk: i32, nq12: i32, D: i32): void {
  const blockBytes = <usize>(D * 16);
  for (let jb = 0; jb < nk; jb += 4) {
    const kblk = kb + <usize>(jb >> 2) * blockBytes;
    const srow = st + (<usize>(jb * BC) << 2);
    for (let ib = 0; ib < nq12; ib += 12) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0), a32 = f32x4.splat(0);
      let qp = qt + (<usize>ib << 2);
      let kp = kblk;
      const kend = kblk + blockBytes;
      while (kp < kend) {
        const q0 = v128.load(qp), q1 = v128.load(qp, 16), q2 = v128.load(qp, 32);
        const x0 = v128.load32_splat(kp); a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01); a02 = fma4(x0, q2, a02);
        const x1 = v128.load32_splat(kp, 4); a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11); a12 = fma4(x1, q2, a12);
        const x2 = v128.load32_splat(kp, 8); a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21); a22 = fma4(x2, q2, a22);
        const x3 = v128.load32_splat(kp, 12); a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31); a32 = fma4(x3, q2, a32);
        qp += <usize>BC << 2; kp += 16;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a02, 32); v128.store(o, a10, 256); v128.store(o, a11, 272); v128.store(o, a12, 288);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a22, 544); v128.store(o, a30, 768); v128.store(o, a31, 784); v128.store(o, a32, 800);
    }
  }
}
// current PV: 4 queries x 8 cols
export function pv48(st: usize, v: usize, o: usize, nq4: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2; const vRow = oRow;
  const end = <usize>nk * (<usize>BC << 2);
  for (let ib = 0; ib < nq4; ib += 4) {
    const pcol = st + (<usize>ib << 2);
    const o0 = o + <usize>ib * oRow;
    for (let cb = 0; cb + 8 <= dvpad; cb += 8) {
      const oc = o0 + (<usize>cb << 2);
      let a00 = v128.load(oc), a01 = v128.load(oc, 16);
      let a10 = v128.load(oc + oRow), a11 = v128.load(oc + oRow, 16);
      let a20 = v128.load(oc + 2 * oRow), a21 = v128.load(oc + 2 * oRow, 16);
      let a30 = v128.load(oc + 3 * oRow), a31 = v128.load(oc + 3 * oRow, 16);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += <usize>BC << 2) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        const x0 = v128.load32_splat(pcol + j); a00 = fma4(x0, v0, a00); a01 = fma4(x0, v1, a01);
        const x1 = v128.load32_splat(pcol + j, 4); a10 = fma4(x1, v0, a10); a11 = fma4(x1, v1, a11);
        const x2 = v128.load32_splat(pcol + j, 8); a20 = fma4(x2, v0, a20); a21 = fma4(x2, v1, a21);
        const x3 = v128.load32_splat(pcol + j, 12); a30 = fma4(x3, v0, a30); a31 = fma4(x3, v1, a31);
        vp += vRow;
      }
      v128.store(oc, a00); v128.store(oc, a01, 16); v128.store(oc + oRow, a10); v128.store(oc + oRow, a11, 16);
      v128.store(oc + 2 * oRow, a20); v128.store(oc + 2 * oRow, a21, 16); v128.store(oc + 3 * oRow, a30); v128.store(oc + 3 * oRow, a31, 16);
    }
  }
}
// PV: 4 queries x 12 cols (12 acc + 3 v + 1 splat)
export function pv412(st: usize, v: usize, o: usize, nq4: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2; const vRow = oRow;
  const end = <usize>nk * (<usize>BC << 2);
  for (let ib = 0; ib < nq4; ib += 4) {
    const pcol = st + (<usize>ib << 2);
    const o0 = o + <usize>ib * oRow;
    for (let cb = 0; cb + 12 <= dvpad; cb += 12) {
      const oc = o0 + (<usize>cb << 2);
      let a00 = v128.load(oc), a01 = v128.load(oc, 16), a02 = v128.load(oc, 32);
      let a10 = v128.load(oc + oRow), a11 = v128.load(oc + oRow, 16), a12 = v128.load(oc + oRow, 32);
      let a20 = v128.load(oc + 2 * oRow), a21 = v128.load(oc + 2 * oRow, 16), a22 = v128.load(oc + 2 * oRow, 32);
      let a30 = v128.load(oc + 3 * oRow), a31 = v128.load(oc + 3 * oRow, 16), a32 = v128.load(oc + 3 * oRow, 32);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += <usize>BC << 2) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16), v2 = v128.load(vp, 32);
        const x0 = v128.load32_splat(pcol + j); a00 = fma4(x0, v0, a00); a01 = fma4(x0, v1, a01); a02 = fma4(x0, v2, a02);
        const x1 = v128.load32_splat(pcol + j, 4); a10 = fma4(x1, v0, a10); a11 = fma4(x1, v1, a11); a12 = fma4(x1, v2, a12);
        const x2 = v128.load32_splat(pcol + j, 8); a20 = fma4(x2, v0, a20); a21 = fma4(x2, v1, a21); a22 = fma4(x2, v2, a22);
        const x3 = v128.load32_splat(pcol + j, 12); a30 = fma4(x3, v0, a30); a31 = fma4(x3, v1, a31); a32 = fma4(x3, v2, a32);
        vp += vRow;
      }
      v128.store(oc, a00); v128.store(oc, a01, 16); v128.store(oc, a02, 32);
      v128.store(oc + oRow, a10); v128.store(oc + oRow, a11, 16); v128.store(oc + oRow, a12, 32);
      v128.store(oc + 2 * oRow, a20); v128.store(oc + 2 * oRow, a21, 16); v128.store(oc + 2 * oRow, a22, 32);
      v128.store(oc + 3 * oRow, a30); v128.store(oc + 3 * oRow, a31, 16); v128.store(oc + 3 * oRow, a32, 32);
    }
  }
}
// PV: 6 queries x 8 cols (12 acc + 2 v + 1 splat)
export function pv68(st: usize, v: usize, o: usize, nq6: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2; const vRow = oRow;
  const end = <usize>nk * (<usize>BC << 2);
  for (let ib = 0; ib < nq6; ib += 6) {
    const pcol = st + (<usize>ib << 2);
    const o0 = o + <usize>ib * oRow;
    for (let cb = 0; cb + 8 <= dvpad; cb += 8) {
      const oc = o0 + (<usize>cb << 2);
      let a00 = v128.load(oc), a01 = v128.load(oc, 16);
      let a10 = v128.load(oc + oRow), a11 = v128.load(oc + oRow, 16);
      let a20 = v128.load(oc + 2 * oRow), a21 = v128.load(oc + 2 * oRow, 16);
      let a30 = v128.load(oc + 3 * oRow), a31 = v128.load(oc + 3 * oRow, 16);
      let a40 = v128.load(oc + 4 * oRow), a41 = v128.load(oc + 4 * oRow, 16);
      let a50 = v128.load(oc + 5 * oRow), a51 = v128.load(oc + 5 * oRow, 16);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += <usize>BC << 2) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16);
        const x0 = v128.load32_splat(pcol + j); a00 = fma4(x0, v0, a00); a01 = fma4(x0, v1, a01);
        const x1 = v128.load32_splat(pcol + j, 4); a10 = fma4(x1, v0, a10); a11 = fma4(x1, v1, a11);
        const x2 = v128.load32_splat(pcol + j, 8); a20 = fma4(x2, v0, a20); a21 = fma4(x2, v1, a21);
        const x3 = v128.load32_splat(pcol + j, 12); a30 = fma4(x3, v0, a30); a31 = fma4(x3, v1, a31);
        const x4 = v128.load32_splat(pcol + j, 16); a40 = fma4(x4, v0, a40); a41 = fma4(x4, v1, a41);
        const x5 = v128.load32_splat(pcol + j, 20); a50 = fma4(x5, v0, a50); a51 = fma4(x5, v1, a51);
        vp += vRow;
      }
      v128.store(oc, a00); v128.store(oc, a01, 16); v128.store(oc + oRow, a10); v128.store(oc + oRow, a11, 16);
      v128.store(oc + 2 * oRow, a20); v128.store(oc + 2 * oRow, a21, 16); v128.store(oc + 3 * oRow, a30); v128.store(oc + 3 * oRow, a31, 16);
      v128.store(oc + 4 * oRow, a40); v128.store(oc + 4 * oRow, a41, 16); v128.store(oc + 5 * oRow, a50); v128.store(oc + 5 * oRow, a51, 16);
    }
  }
}
export function peak(iters: i32, n: i32): f32 {
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
export function peak8(iters: i32): f32 {
  let a0 = f32x4.splat(1.0), a1 = f32x4.splat(1.1), a2 = f32x4.splat(1.2), a3 = f32x4.splat(1.3);
  let a4 = f32x4.splat(1.4), a5 = f32x4.splat(1.5), a6 = f32x4.splat(1.6), a7 = f32x4.splat(1.7);
  const b = f32x4.splat(0.999), c = f32x4.splat(0.001);
  for (let i = 0; i < iters; i++) {
    a0 = fma4(a0, b, c); a1 = fma4(a1, b, c); a2 = fma4(a2, b, c); a3 = fma4(a3, b, c);
    a4 = fma4(a4, b, c); a5 = fma4(a5, b, c); a6 = fma4(a6, b, c); a7 = fma4(a7, b, c);
  }
  return f32x4.extract_lane(f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7))), 0);
}
// 3 keys x 12 queries (9 acc), K packed in 3-key blocks
export function qk312(qt: usize, kb: usize, st: usize, nk3: i32, nq12: i32, D: i32): void {
  const blockBytes = <usize>(D * 12);
  for (let jb = 0; jb < nk3; jb += 3) {
    const kblk = kb + <usize>(jb / 3) * blockBytes;
    const srow = st + (<usize>(jb * BC) << 2);
    for (let ib = 0; ib < nq12; ib += 12) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0);
      let qp = qt + (<usize>ib << 2);
      let kp = kblk;
      const kend = kblk + blockBytes;
      while (kp < kend) {
        const q0 = v128.load(qp), q1 = v128.load(qp, 16), q2 = v128.load(qp, 32);
        const x0 = v128.load32_splat(kp); a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01); a02 = fma4(x0, q2, a02);
        const x1 = v128.load32_splat(kp, 4); a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11); a12 = fma4(x1, q2, a12);
        const x2 = v128.load32_splat(kp, 8); a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21); a22 = fma4(x2, q2, a22);
        qp += <usize>BC << 2; kp += 12;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a02, 32); v128.store(o, a10, 256); v128.store(o, a11, 272); v128.store(o, a12, 288);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a22, 544);
    }
  }
}
// 4 keys x 8 queries, splats by shuffle from one K vector
export function qk48s(qt: usize, kb: usize, st: usize, nk: i32, nq8: i32, D: i32): void {
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
        const q0 = v128.load(qp), q1 = v128.load(qp, 16), kv = v128.load(kp);
        const x0 = v128.shuffle<f32>(kv, kv, 0, 0, 0, 0); a00 = fma4(x0, q0, a00); a01 = fma4(x0, q1, a01);
        const x1 = v128.shuffle<f32>(kv, kv, 1, 1, 1, 1); a10 = fma4(x1, q0, a10); a11 = fma4(x1, q1, a11);
        const x2 = v128.shuffle<f32>(kv, kv, 2, 2, 2, 2); a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21);
        const x3 = v128.shuffle<f32>(kv, kv, 3, 3, 3, 3); a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31);
        qp += <usize>BC << 2; kp += 16;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a10, 256); v128.store(o, a11, 272);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a30, 768); v128.store(o, a31, 784);
    }
  }
}
// 4 keys x 12 queries with shuffle splats: 12 acc + 3 q + kv + 1 tmp
export function qk412s(qt: usize, kb: usize, st: usize, nk: i32, nq12: i32, D: i32): void {
  const blockBytes = <usize>(D * 16);
  for (let jb = 0; jb < nk; jb += 4) {
    const kblk = kb + <usize>(jb >> 2) * blockBytes;
    const srow = st + (<usize>(jb * BC) << 2);
    for (let ib = 0; ib < nq12; ib += 12) {
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0), a32 = f32x4.splat(0);
      let qp = qt + (<usize>ib << 2);
      let kp = kblk;
      const kend = kblk + blockBytes;
      while (kp < kend) {
        const kv = v128.load(kp);
        const x0 = v128.shuffle<f32>(kv, kv, 0, 0, 0, 0), x1 = v128.shuffle<f32>(kv, kv, 1, 1, 1, 1);
        const q0 = v128.load(qp); a00 = fma4(x0, q0, a00); a10 = fma4(x1, q0, a10);
        const q1 = v128.load(qp, 16); a01 = fma4(x0, q1, a01); a11 = fma4(x1, q1, a11);
        const q2 = v128.load(qp, 32); a02 = fma4(x0, q2, a02); a12 = fma4(x1, q2, a12);
        const x2 = v128.shuffle<f32>(kv, kv, 2, 2, 2, 2), x3 = v128.shuffle<f32>(kv, kv, 3, 3, 3, 3);
        a20 = fma4(x2, q0, a20); a21 = fma4(x2, q1, a21); a22 = fma4(x2, q2, a22);
        a30 = fma4(x3, q0, a30); a31 = fma4(x3, q1, a31); a32 = fma4(x3, q2, a32);
        qp += <usize>BC << 2; kp += 16;
      }
      const o = srow + (<usize>ib << 2);
      v128.store(o, a00); v128.store(o, a01, 16); v128.store(o, a02, 32); v128.store(o, a10, 256); v128.store(o, a11, 272); v128.store(o, a12, 288);
      v128.store(o, a20, 512); v128.store(o, a21, 528); v128.store(o, a22, 544); v128.store(o, a30, 768); v128.store(o, a31, 784); v128.store(o, a32, 800);
    }
  }
}
// PV: 3 queries x 12 cols (9 acc + 3 v + 3 splat)
export function pv312(st: usize, v: usize, o: usize, nq3: i32, nk: i32, dvpad: i32): void {
  const oRow = <usize>dvpad << 2; const vRow = oRow;
  const end = <usize>nk * (<usize>BC << 2);
  for (let ib = 0; ib < nq3; ib += 3) {
    const pcol = st + (<usize>ib << 2);
    const o0 = o + <usize>ib * oRow;
    for (let cb = 0; cb + 12 <= dvpad; cb += 12) {
      const oc = o0 + (<usize>cb << 2);
      let a00 = v128.load(oc), a01 = v128.load(oc, 16), a02 = v128.load(oc, 32);
      let a10 = v128.load(oc + oRow), a11 = v128.load(oc + oRow, 16), a12 = v128.load(oc + oRow, 32);
      let a20 = v128.load(oc + 2 * oRow), a21 = v128.load(oc + 2 * oRow, 16), a22 = v128.load(oc + 2 * oRow, 32);
      let vp = v + (<usize>cb << 2);
      for (let j: usize = 0; j < end; j += <usize>BC << 2) {
        const v0 = v128.load(vp), v1 = v128.load(vp, 16), v2 = v128.load(vp, 32);
        const x0 = v128.load32_splat(pcol + j); a00 = fma4(x0, v0, a00); a01 = fma4(x0, v1, a01); a02 = fma4(x0, v2, a02);
        const x1 = v128.load32_splat(pcol + j, 4); a10 = fma4(x1, v0, a10); a11 = fma4(x1, v1, a11); a12 = fma4(x1, v2, a12);
        const x2 = v128.load32_splat(pcol + j, 8); a20 = fma4(x2, v0, a20); a21 = fma4(x2, v1, a21); a22 = fma4(x2, v2, a22);
        vp += vRow;
      }
      v128.store(oc, a00); v128.store(oc, a01, 16); v128.store(oc, a02, 32);
      v128.store(oc + oRow, a10); v128.store(oc + oRow, a11, 16); v128.store(oc + oRow, a12, 32);
      v128.store(oc + 2 * oRow, a20); v128.store(oc + 2 * oRow, a21, 16); v128.store(oc + 2 * oRow, a22, 32);
    }
  }
}
