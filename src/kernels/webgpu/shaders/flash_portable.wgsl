// Flash attention forward, portable f32 arithmetic (any adapter; f16/bf16 inputs are unpacked to f32).
//
// One workgroup = one Q tile of 64 rows against the KV tiles its tile-plan row lists. With GQA the
// tile packs the G query heads of one KV head (row r ↦ head g = r % G, position r / G), so a group
// shares every K/V load (FlashAttention-3's pack_gqa). NT threads as (64 / RPT) × 16: thread (ty, tx)
// owns S rows RPT·ty .. +RPT−1 × keys 4tx..4tx+3 and O rows RPT·ty .. +RPT−1 × columns tx + 16t
// (RPT = 4 with 256 threads, 2 with 512: half the registers a thread, twice the warps in flight).
//
// Per KV tile (64 keys):
//   S = Qᵀ-chunk × Kᵀ-chunk over DS-dim slices in workgroup memory (RPT×4 outer products per slice;
//   DS = 32 where workgroup memory allows, else 16: each slice costs two barriers);
//   softcap; element predicate on partial tiles only; row max/sum across the 16 tx lanes
//   (subgroup shuffles when subgroups hold ≥ 16 lanes, workgroup memory otherwise);
//   P = 2^(S − m) into workgroup memory; O = O·2^(m_old − m) + P·V over V chunks in workgroup memory
//   (BCV keys, a multiple of 4, taken four at a time; the whole tile where workgroup memory allows).
//   PCH (P by chunk): P stays in registers after the softmax and each V chunk's threads store their part
//   of it with the chunk, so P needs only 64 × BCV floats of workgroup memory and no barrier of its own.
// V4 (where DVP is a multiple of 64): thread tx owns output columns 4·(tx + 16u) .. +3 instead of tx + 16t, so P·V reads V
// as one vec4 per four columns (one workgroup load per 16 FMAs instead of per 4); OT values a row.
// The prelude defines D, DV, DS, DVT, DVP, OT, V4, BCV, G, NP, RPT, NT, VLOAD, WAN, VPRE, VPN, VNEXT, NCH (V chunks a tile),
// PCH, PSN (ps vec4s), PSR (ps vec4s a row), PSJ (a chunk's offset in a ps row), CAP, ABLATE (profiling:
// parts dropped, bits 1 Q/K slice loads, 2 S FMAs, 4 softmax, 8 V loads, 16 P·V FMAs; 0 in use, the
// results are wrong otherwise; hot loops are wrapped in an if, never changed, so ABLATE = 0 compiles as before), the loaders ld_q/ld_k/ld_v
// (and ld_q4(e) / ld_k4(e, n) / ld_v4(e, n): four elements from a multiple of 4, one load each when VLOAD), the
// output binding, the row reductions rowmax16/rowsum16, mask_allows and kv_at (a key's row: contiguous,
// or through the sequence's block table when K/V are paged).
//
// CAPTURE = 1 (column sums) or 2 (probability rows): with the forward pass's LSE (binding 6, read),
// P = 2^(S − lse₂) replaces the online softmax; no P·V. Column sums reduce each tile's 64 rows into
// out[job][kTile][64] (summed over Q tiles afterwards); rows mode writes the selected rows of P.

struct Params {
  qRow: u32, qHead: u32, kRow: u32, kHead: u32,
  vRow: u32, vHead: u32, oRow: u32, oHead: u32,
  lseRow: u32, lseHead: u32, numJobs: u32, hasLse: u32,
  seqTable: u32, planTable: u32, jobTable: u32, maskBase: u32,
  scale: f32, softcap: f32, thrHeadStride: u32, group: u32,
  negInf: f32, nanv: f32, qStart: u32, qEnd: u32,
  // capture modes: row → output slot map (rows mode), head → slot map, output row length, tiles per row
  rowMap: u32, headMap: u32, numRows: u32, numKTiles: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tbl: array<u32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

const BR: u32 = 64u;
const BC: u32 = 64u;
const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
// Masked scores are a large finite negative: drivers may assume IEEE infinities never occur.
const MASKED: f32 = -1.0e30;

var<workgroup> wa: array<vec4<f32>, WAN>;   // Qᵀ/Kᵀ slices of DS dims (S phase), V chunk (PV phase)
var<workgroup> ps: array<vec4<f32>, PSN>;   // P: 64 rows × 64 keys, or (PCH) × the V chunk's BCV keys

// Softcap of four scores (softcap1 in the mask helpers, a NaN score kept NaN).
fn softcap4(s: vec4<f32>, cap: f32) -> vec4<f32> {
  return vec4<f32>(softcap1(s.x, cap), softcap1(s.y, cap), softcap1(s.z, cap), softcap1(s.w, cap));
}

// Register prefetches (VPRE, VNEXT). This thread's share of the V chunk of keys
// k0 + j0 .. + BCV − 1: VPN vec4s, zero past nk or the value head dim.
fn v_chunk_regs(vBase: u32, hk: u32, k0: u32, j0: u32, nk: u32, lid: u32) -> array<vec4<f32>, VPN> {
  var r: array<vec4<f32>, VPN>;
  for (var i = 0u; i < VPN; i++) {
    let x4 = lid + i * NT;
    let jj = (4u * x4) / DVP;
    let c = (4u * x4) % DVP;
    var v = vec4<f32>(0.0);
    if ((ABLATE & 8u) == 0u && x4 < BCV * DVP / 4u && j0 + jj < nk && c < DV) { v = ld_v4(kv_at(vBase, k0 + j0 + jj, P.vRow) + hk * P.vHead + c, 4u); }
    r[i] = v;
  }
  return r;
}

fn exp2_masked(x: f32) -> f32 {
  return select(exp2(x), 0.0, x < -126.0);
}

// Capture: P = exp(s − lse) of a visible score with IEEE semantics for non-finite values, as the CPU backends
// compute it (a −∞ score → 0; else NaN in either → NaN, +∞ − +∞ → NaN, +∞ − finite → +∞), from bit tests rather
// than comparisons a shader compiler may fold (it may assume no NaN or ∞ occurs); NaN and +∞ come from the uniforms.
fn capture_p(s: f32, l: f32) -> f32 {
  let sb = bitcast<u32>(s);
  let lb = bitcast<u32>(l);
  if (sb == 0xff800000u) { return 0.0; }
  if ((sb & 0x7fffffffu) > 0x7f800000u || (lb & 0x7fffffffu) > 0x7f800000u || (sb == 0x7f800000u && lb == sb)) { return P.nanv; }
  if (sb == 0x7f800000u) { return -P.negInf; }
  if (lb == 0x7f800000u) { return 0.0; }
  return exp2_masked((s - l) * LOG2E);
}

// 16 × NT/16 invocations: local_invocation_index = x + 16·y, the same threads as a 1-D workgroup of NT, but
// tx and ty come straight from local_invocation_id, whose ranges the shader compiler knows: workgroup
// indices built from them, constants and fixed-bound loop counters are provably in range, so WebGPU's
// bounds clamps drop out there (H200: 1–3% faster, outputs bit-identical; docs/webgpu.md).
@compute @workgroup_size(16, NT / 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lv: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let job = wg.x + wg.y * 65535u;
  let tx = lv.x;
  let ty = lv.y;
  let J = stage_job(job, lid);
  let live = J[0];
  if (live == 0u) { return; }
  let hb = J[1];
  let qtile = J[2];
  let qBase = J[3];
  let kBase = J[4];
  let vBase = J[5];
  let oBase = J[6];
  let lseBase = J[7];
  let lenQ = J[8];
  let lenK = J[9];
  let plan = J[10];
  let rowGlobal = J[11];
  let hk = (hb * G) / P.group;
  let entries = tbl[P.planTable + plan * 2u + 1u];
  let range = tile_range(plan, qtile, lid);
  let e0 = range.x;
  let e1 = range.y;

  // Scores are Q·(K·scale)ᵀ in natural units: K is scaled as it is loaded (once per element) and the products are
  // summed in order, as FlashAttention's reordered naive reference computes them, so the scores are its own; log2 e
  // multiplies S − m in the exponent, never a score (at scores near ±1000 that rounding alone, or the scale folded
  // into Q or applied after the dot product, broke the 2×-naive rule at scales that are not a power of two).

  // This thread's rows: r = RPT·ty + a ↦ head hb·G + r % G, position qtile·NP + r / G.
  var valid: array<bool, RPT>;
  var pos: array<u32, RPT>;
  var head: array<u32, RPT>;
  for (var a = 0u; a < RPT; a++) {
    let r = ty * RPT + a;
    pos[a] = qtile * NP + r / G;
    head[a] = hb * G + r % G;
    valid[a] = r < NP * G && pos[a] < lenQ;
  }
  // Loader rows for the Qᵀ/Kᵀ slices: NT / 64 threads a row; thread loads row lr, DS / LPR dims of each slice.
  let LPR = NT / 64u;
  let lr = lid / LPR;
  // Its vec4 and component in a Qᵀ/Kᵀ slice row (lr / 4: a quotient of the invocation index, which the
  // compiler can bound; the component fixed for the whole pass).
  let lw = lr / 4u;
  let lc = lr & 3u;
  let lpos = qtile * NP + lr / G;
  let lvalid = lr < NP * G && lpos < lenQ;
  let lq = qBase + lpos * P.qRow + (hb * G + lr % G) * P.qHead;

  var m: array<f32, RPT>;
  var l: array<f32, RPT>;
  var bad: array<f32, RPT>;   // 1 once a visible score was NaN: the row's output is NaN
  var o: array<array<f32, OT>, RPT>;
  for (var a = 0u; a < RPT; a++) {
    m[a] = MASKED;
    l[a] = 0.0;
    bad[a] = 0.0;
    for (var t = 0u; t < OT; t++) { o[a][t] = 0.0; }
  }
  // Capture: the row's LSE (natural units) and whether the row counts (inside the range, selected, lse not −∞; a NaN
  // lse counts: the row is NaN at every key it sees, as on the CPU).
  var lse2: array<f32, RPT>;
  var incl: array<bool, RPT>;
  var slot: array<i32, RPT>;
  if (CAPTURE != 0u) {
    for (var a = 0u; a < RPT; a++) {
      lse2[a] = 0.0;
      incl[a] = false;
      slot[a] = -1;
      if (valid[a] && pos[a] >= P.qStart && pos[a] < P.qEnd) {
        if (CAPTURE == 2u) { slot[a] = bitcast<i32>(tbl[P.rowMap + pos[a]]); }
        let x = lse[lseBase + head[a] * P.lseHead + pos[a] * P.lseRow];
        lse2[a] = x;
        incl[a] = (CAPTURE == 1u || slot[a] >= 0) && bitcast<u32>(x) != 0xff800000u;
      }
    }
  }

  for (var e = e0; e < e1; e++) {
    let ent = tile_entry(entries + e, lid);
    let k0 = (ent >> 1u) * BC;
    let nk = min(BC, lenK - k0);
    let partial = (ent & 1u) == 1u;
    // VPRE: the tile's first V chunk is loaded into registers now (VPN vec4s a thread), so that its
    // latency hides behind Q·Kᵀ and the softmax; the P·V phase stores it into wa instead of loading it.
    var vpre: array<vec4<f32>, VPN>;
    if (VPRE) { vpre = v_chunk_regs(vBase, hk, k0, 0u, nk, lid); }

    // ---- S = Q·Kᵀ over DS-dim slices (Qᵀ at wa[d·16 + row / 4], Kᵀ at wa[16·DS + d·16 + key / 4])
    var acc: array<vec4<f32>, RPT>;
    for (var a = 0u; a < RPT; a++) { acc[a] = vec4<f32>(0.0); }
    let krow = kv_at(kBase, k0 + lr, P.kRow) + hk * P.kHead;
    for (var d0 = 0u; d0 < D; d0 += DS) {
      let dq = (lid % LPR) * (DS / LPR);
      if (VLOAD) {
        for (var t = 0u; t < DS / LPR; t += 4u) {
          let d = d0 + dq + t;
          var x = vec4<f32>(0.0);
          if ((ABLATE & 1u) == 0u && lvalid && d < D) { x = ld_q4(lq + d); }
          var y = vec4<f32>(0.0);
          if ((ABLATE & 1u) == 0u && lr < nk && d < D) { y = ld_k4(krow + d, 4u) * P.scale; }
          for (var u = 0u; u < 4u; u++) {
            wa[(dq + t + u) * 16u + lw][lc] = x[u];
            wa[16u * DS + (dq + t + u) * 16u + lw][lc] = y[u];
          }
        }
      } else {
        for (var t = 0u; t < DS / LPR; t++) {
          let d = d0 + dq + t;
          var x = 0.0;
          if ((ABLATE & 1u) == 0u && lvalid && d < D) { x = ld_q(lq + d); }
          wa[(dq + t) * 16u + lw][lc] = x;
          var y = 0.0;
          if ((ABLATE & 1u) == 0u && lr < nk && d < D) { y = ld_k(krow + d) * P.scale; }
          wa[16u * DS + (dq + t) * 16u + lw][lc] = y;
        }
      }
      workgroupBarrier();
      if ((ABLATE & 2u) == 0u) {
        for (var dd = 0u; dd < DS; dd++) {
          let kb = wa[16u * DS + dd * 16u + tx];
          if (RPT == 2u) {
            let qa = wa[dd * 16u + ty / 2u];
            let q2 = select(qa.xy, qa.zw, (ty & 1u) == 1u);
            acc[0] += q2.x * kb;
            acc[1] += q2.y * kb;
          } else {
            // RPT = 4: a one-iteration loop (not acc[2], acc[3]) because this branch must also compile
            // where RPT = 2 and acc has two elements.
            for (var g = 0u; g < RPT / 4u; g++) {
              let qa = wa[dd * 16u + ty * (RPT / 4u) + g];
              acc[4u * g] += qa.x * kb;
              acc[4u * g + 1u] += qa.y * kb;
              acc[4u * g + 2u] += qa.z * kb;
              acc[4u * g + 3u] += qa.w * kb;
            }
          }
        }
      }
      workgroupBarrier();
    }

    // ---- scores: softcap, mask, online softmax
    // (Row sums kept per thread and reduced once after the last tile, and the row max reduced only when a
    // subgroup vote finds a score above the reference by more than 2^8, were both within 0–1.7% on the H200:
    // not kept; bench/results/portable-experiments-run-Q.txt.)
    var pk: array<vec4<f32>, RPT>;   // PCH: this thread's P (its rows × keys 4tx..4tx+3) until its V chunk
    for (var a = 0u; a < RPT; a++) {
      let r = ty * RPT + a;
      var s = acc[a];
      if (CAP) { s = softcap4(s, P.softcap); }
      var pc = vec4<f32>(0.0);   // capture: P of the four keys
      for (var b = 0u; b < 4u; b++) {
        let jl = tx * 4u + b;
        var keep = valid[a] && jl < nk;
        if (keep && partial) {
          keep = mask_allows(i32(pos[a]), i32(k0 + jl), i32(lenQ), i32(lenK), head[a] * P.thrHeadStride + rowGlobal + pos[a], s[b]);
        }
        if (CAPTURE != 0u) {
          if (keep && incl[a]) { pc[b] = capture_p(s[b], lse2[a]); }
          continue;
        }
        let broken = breaks_row(s[b]);
        if (keep && broken) { bad[a] = 1.0; }
        s[b] = select(MASKED, s[b], keep && !broken);
      }
      if (CAPTURE != 0u) {
        ps[r * 16u + tx] = pc;
        if (CAPTURE == 2u && slot[a] >= 0) {
          let ob = ((u32(bitcast<i32>(tbl[P.headMap + head[a]])) * P.numRows + u32(slot[a])) * lenK) + k0 + tx * 4u;
          for (var b = 0u; b < 4u; b++) { if (tx * 4u + b < nk) { out[oBase + ob + b] = pc[b]; } }
        }
        continue;
      }
      if ((ABLATE & 4u) != 0u) { if (PCH) { pk[a] = s; } else { ps[r * 16u + tx] = s; } continue; }
      let tmax = rowmax16(max(max(s.x, s.y), max(s.z, s.w)), r, tx);
      let mNew = max(m[a], tmax);
      let mUse = select(mNew, 0.0, mNew <= MASKED);
      let p = vec4<f32>(exp2_masked((s.x - mUse) * LOG2E), exp2_masked((s.y - mUse) * LOG2E), exp2_masked((s.z - mUse) * LOG2E), exp2_masked((s.w - mUse) * LOG2E));
      let tsum = rowsum16(p.x + p.y + p.z + p.w, r, tx);
      let alpha = select(exp2((m[a] - mUse) * LOG2E), 0.0, m[a] <= MASKED);
      l[a] = l[a] * alpha + tsum;
      m[a] = mNew;
      if (PCH) { pk[a] = p; } else { ps[r * 16u + tx] = p; }
      for (var t = 0u; t < OT; t++) { o[a][t] *= alpha; }
    }
    // PCH: P stays in registers until its V chunk (the chunk's barrier covers it).
    if (!PCH) { workgroupBarrier(); }
    if (CAPTURE == 1u) {
      // Column sums of this tile's 64 rows: thread lid < 64 sums key lid down the rows.
      if (lid < 64u) {
        var cs = 0.0;
        for (var rr = 0u; rr < 64u; rr++) { cs += ps[rr * 16u + (lid >> 2u)][lid & 3u]; }
        out[(job * P.numKTiles + (ent >> 1u)) * 64u + lid] = cs;
      }
      workgroupBarrier();
      continue;
    }
    if (CAPTURE == 2u) { continue; }

    // ---- O += P·V over V chunks of BCV keys
    for (var jc = 0u; jc < NCH; jc++) {
      let j0 = jc * BCV;
      if (j0 >= nk) { break; }
      // PCH: the threads whose four keys lie in this chunk store their P (chunk-relative, BCV / 4 vec4s a row).
      if (PCH) {
        let t0 = jc * (BCV / 4u);
        if (tx >= t0 && tx < t0 + BCV / 4u) {
          for (var a = 0u; a < RPT; a++) { ps[(ty * RPT + a) * PSR + tx - t0] = pk[a]; }
        }
      }
      if (VPRE && (j0 == 0u || VNEXT)) {
        for (var i = 0u; i < VPN; i++) {
          let x4 = lid + i * NT;
          if (x4 < BCV * DVP / 4u) { wa[x4] = vpre[i]; }
        }
      } else if (VLOAD) {
        for (var x4 = lid; x4 < BCV * DVP / 4u; x4 += NT) {
          let jj = (4u * x4) / DVP;
          let c = (4u * x4) % DVP;
          var v = vec4<f32>(0.0);
          if ((ABLATE & 8u) == 0u && j0 + jj < nk && c < DV) { v = ld_v4(kv_at(vBase, k0 + j0 + jj, P.vRow) + hk * P.vHead + c, 4u); }
          wa[x4] = v;
        }
      } else {
        // Element x = lid + i·NT of the chunk: vec4 lid / 4 + i·(NT / 4), component lid % 4 (NT is a
        // multiple of 4), indices the compiler can bound.
        for (var i = 0u; i < (BCV * DVP + NT - 1u) / NT; i++) {
          let x = lid + i * NT;
          if (x >= BCV * DVP) { break; }
          let jj = x / DVP;
          let c = x % DVP;
          var v = 0.0;
          if ((ABLATE & 8u) == 0u && j0 + jj < nk && c < DV) { v = ld_v(kv_at(vBase, k0 + j0 + jj, P.vRow) + hk * P.vHead + c); }
          wa[lid / 4u + i * (NT / 4u)][lid & 3u] = v;
        }
      }
      workgroupBarrier();
      // VNEXT: the next V chunk of the tile is loaded into the prefetch registers now, its
      // latency behind this chunk's FMAs (tiles of two or more chunks: d128, d256, d72–d112 without vfull).
      if (VNEXT && j0 + BCV < nk) { vpre = v_chunk_regs(vBase, hk, k0, j0 + BCV, nk, lid); }
      // Four keys at a time: P as one vec4 per row (keys past nk have P = 0 and zero V rows).
      let jn = min(BCV, nk - j0);
      // A constant count of key quads with an early break, and P / V indices from + − × ÷ of invocation
      // ids, constants and fixed-bound counters only: the shader compiler proves them in range and drops
      // their bounds clamps (on the H200 +2% at d64 and +4% at d128 with V as vec4, +29% at d72 / d80
      // without, over a loop to the tile's key count with shift-and-mask indices).
      if ((ABLATE & 16u) == 0u) {
        let comp = tx & 3u;
        for (var q = 0u; q < BCV / 4u; q++) {
          if (4u * q >= jn) { break; }
          var pr: array<vec4<f32>, RPT>;
          for (var a = 0u; a < RPT; a++) { pr[a] = ps[(ty * RPT + a) * PSR + jc * PSJ + q]; }
          for (var i = 0u; i < 4u; i++) {
            if (V4) {
              for (var u = 0u; u < OT / 4u; u++) {
                let c4 = tx + 16u * u;
                if (4u * c4 < DVP) {
                  let v4 = wa[(4u * q + i) * (DVP / 4u) + c4];
                  for (var a = 0u; a < RPT; a++) {
                    let p = pr[a][i];
                    o[a][4u * u] += p * v4.x; o[a][4u * u + 1u] += p * v4.y;
                    o[a][4u * u + 2u] += p * v4.z; o[a][4u * u + 3u] += p * v4.w;
                  }
                }
              }
            } else {
              // Column tx + 16t of key 4q + i: element (4q + i)·DVP + tx + 16t of wa, so vec4
              // (4q + i)·(DVP / 4) + tx / 4 + 4t (DVP is a multiple of 16), component tx % 4.
              for (var t = 0u; t < DVT; t++) {
                let v = wa[(4u * q + i) * (DVP / 4u) + tx / 4u + 4u * t][comp];
                for (var a = 0u; a < RPT; a++) { o[a][t] += pr[a][i] * v; }
              }
            }
          }
        }
      }
      workgroupBarrier();
    }
  }

  if (CAPTURE != 0u) { return; }
  // ---- O = acc / l, lse = m + (log2 l)·ln 2 (NaN rows: NaN)
  for (var a = 0u; a < RPT; a++) { bad[a] = rowmax16(bad[a], ty * RPT + a, tx); }
  let nan = P.nanv;
  for (var a = 0u; a < RPT; a++) {
    if (!valid[a]) { continue; }
    let ob = oBase + pos[a] * P.oRow + head[a] * P.oHead;
    let inv = select(1.0 / l[a], 0.0, l[a] == 0.0);
    for (var t = 0u; t < OT; t++) {
      let c = select(tx + 16u * t, 4u * (tx + 16u * (t / 4u)) + t % 4u, V4);
      if (c < DV) { out[ob + c] = select(select(o[a][t] * inv, 0.0, l[a] == 0.0), nan, bad[a] > 0.0); }
    }
    if (P.hasLse == 1u && tx == 0u) {
      lse[lseBase + head[a] * P.lseHead + pos[a] * P.lseRow] = select(select(m[a] + log2(l[a]) * LN2, P.negInf, l[a] == 0.0), nan, bad[a] > 0.0);
    }
  }
}
