// Flash-decoding, split phase: few queries against a long KV. One workgroup = one (sequence, KV head,
// split of the visited KV tiles); the G·lenQ query rows of the GQA group are packed together, so each
// K/V element is read once per group. 128 threads.
//
// Decode is a streaming problem, so every K/V load phase issues all of its loads before the first
// store (4 elements per load, 8–16 bytes per lane: ld_k4/ld_v4), and no loop waits on one load at a
// time. Per 64-key tile, in halves of 32 keys:
//   K half → workgroup memory (rows padded to D+1 floats: conflict-free column reads); thread t scores
//   key t % 32 against rows ≡ t/32 (mod 4);
//   online softmax with T threads per row (T = 128 / rows, ≤ 64): partial max and sum over the
//   thread's keys, combined through workgroup memory; every thread of a row keeps the row's (m, l);
//   V half → the same workgroup memory; thread t accumulates output column(s) t (+128) for every row.
// Partials (m, l, acc) go to `part` and are merged by decode_merge. The prelude defines D, DV, R
// (rows = G·lenQ, ≤ 64), CPT (columns per thread), T, NJ (= 64 / T), KVN (workgroup floats for a
// half tile), CAP, PAGED, ABLATE (profiling: parts dropped; 0 in use), ld_q, ld_k4/ld_v4
// (four elements from a row offset, `n` of them valid), mask_allows and kv_at.

//@DECODE_HEAD (DECODE_HEAD in variants.ts: Params, the table and the partials, shared with the other split kernel)

const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;
const KS: u32 = D + 1u;                       // K row stride in kv
const NKC: u32 = (D + 3u) / 4u;               // 4-element chunks of a K row
const NVC: u32 = (DV + 3u) / 4u;
const LK: u32 = (32u * NKC + 127u) / 128u;    // chunk loads per thread for a K half
const LV: u32 = (32u * NVC + 127u) / 128u;

var<workgroup> qs: array<f32, R * D>;
var<workgroup> ss: array<f32, R * 64>;
var<workgroup> kv: array<f32, KVN>;
var<workgroup> redm: array<f32, 128>;
var<workgroup> reds: array<f32, 128>;
var<workgroup> alpha: array<f32, R>;
// Paged K/V: the row offsets of the current tile's 64 keys (and the next tile's, double-buffered),
// looked up in the block table once per key and one tile ahead, so no load waits on the table.
var<workgroup> slots: array<u32, 128>;

// Element offset of key k0 + j's K (V) row: from the tile's slot table when paged.
fn k_row(kBase: u32, k0: u32, j: u32, sbuf: u32) -> u32 {
  if (PAGED) { return slots[sbuf + j]; }
  return kv_at(kBase, k0 + j, P.kRow);
}
fn v_row(vBase: u32, k0: u32, j: u32, sbuf: u32) -> u32 {
  if (PAGED) { return slots[sbuf + j]; }
  return kv_at(vBase, k0 + j, P.vRow);
}
fn slot_of(kBase: u32, k0: u32, j: u32, lenK: u32) -> u32 {
  return select(0u, kv_at(kBase, k0 + j, P.kRow), k0 + j < lenK);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let job = wg.x + wg.y * 65535u;
  let J = stage_job(job, lid);
  let live = J[0];
  if (live == 0u) { return; }
  let hk = J[1];
  let split = J[2];
  let qBase = J[3];
  let kBase = J[4];
  let vBase = J[5];
  let lenQ = J[8];
  let lenK = J[9];
  let plan = J[10];
  let entries = tbl[P.planTable + plan * 2u + 1u];
  let range = tile_range(plan, 0u, lid);
  let eFirst = range.x;
  let eLast = range.y;
  let e0 = eFirst + split * P.splitTiles;
  let e1 = min(eLast, e0 + P.splitTiles);
  let rows = P.group * lenQ;
  // Scores are Q·(K·scale)ᵀ in natural units: K is scaled as it is loaded (once per element), as FlashAttention's
  // reordered naive reference computes them; log2 e multiplies S − m in the exponent, never a score (at scores near
  // ±1000 that rounding, or the scale applied after the dot product, broke the 2×-naive rule at head dim 65).

  // Q rows r = g·lenQ + i ↦ head hk·G + g, position i.
  for (var x = lid; x < R * D; x += 128u) {
    let r = x / D;
    let c = x % D;
    var v = 0.0;
    if (r < rows) {
      let g = r / lenQ;
      let i = r % lenQ;
      v = ld_q(qBase + i * P.qRow + (hk * P.group + g) * P.qHead + c);
    }
    qs[x] = v;
  }
  // This thread's softmax row and lane; the row's running (m, l, NaN seen), the same in all T lanes.
  let sr = lid / T;
  let su = lid % T;
  let rowOK = sr < rows;
  var mrow = MASKED;
  var lrow = 0.0;
  var badrow = false;
  var o: array<array<f32, R>, CPT>;
  for (var t = 0u; t < CPT; t++) {
    for (var r = 0u; r < R; r++) { o[t][r] = 0.0; }
  }
  if (PAGED && lid < 64u && e0 < e1) { slots[lid] = slot_of(kBase, (tbl[entries + e0] >> 1u) * 64u, lid, lenK); }
  workgroupBarrier();

  for (var e = e0; e < e1; e++) {
    let ent = tile_entry(entries + e, lid);
    let k0 = (ent >> 1u) * 64u;
    let nk = min(64u, lenK - k0);
    let partial = (ent & 1u) == 1u;
    let sbuf = ((e - e0) & 1u) * 64u;
    var nextSlot = 0u;
    if (PAGED && lid < 64u && e + 1u < e1) { nextSlot = slot_of(kBase, (tbl[entries + e + 1u] >> 1u) * 64u, lid, lenK); }

    // ---- scores, 32 keys at a time through workgroup memory
    for (var h0 = 0u; h0 < 64u; h0 += 32u) {
      var kb: array<vec4<f32>, LK>;
      for (var i = 0u; i < LK; i++) {
        let x = lid + i * 128u;
        let jj = x / NKC;
        let c4 = (x % NKC) * 4u;
        var w = vec4<f32>(0.0);
        if ((ABLATE & 1u) == 0u && x < 32u * NKC && h0 + jj < nk) { w = ld_k4(k_row(kBase, k0, h0 + jj, sbuf) + hk * P.kHead + c4, D - c4) * P.scale; }
        kb[i] = w;
      }
      for (var i = 0u; i < LK; i++) {
        let x = lid + i * 128u;
        if (x < 32u * NKC) {
          let jj = x / NKC;
          let c4 = (x % NKC) * 4u;
          for (var t = 0u; t < 4u; t++) { if (c4 + t < D) { kv[jj * KS + c4 + t] = kb[i][t]; } }
        }
      }
      workgroupBarrier();
      let jj = lid & 31u;
      let jl = h0 + jj;
      for (var r = lid >> 5u; r < R; r += 4u) {
        var s = MASKED;
        if ((ABLATE & 2u) == 0u && r < rows && jl < nk) {
          // Products summed in order, as the naive reference sums them: at scores near ±1000 the softmax is so
          // peaked that four partial sums (another rounding of each score) broke the 2×-naive rule at head dim 65.
          s = 0.0;
          for (var c = 0u; c < D; c++) { s += qs[r * D + c] * kv[jj * KS + c]; }
          if (CAP) { s = softcap1(s, P.softcap); }
          var keep = true;
          if (partial) { keep = mask_allows(i32(r % lenQ), i32(k0 + jl), i32(lenQ), i32(lenK), 0u, s); }
          if (!keep) { s = MASKED; }
        }
        ss[r * 64u + jl] = s;
      }
      workgroupBarrier();
    }

    // ---- online softmax, T threads per row: partial max (NaN noted), combined through redm/reds
    var mloc = MASKED;
    var nanloc = 0.0;
    if ((ABLATE & 4u) == 0u && rowOK) {
      for (var i = 0u; i < NJ; i++) {
        let s = ss[sr * 64u + su + T * i];
        if (breaks_row(s)) { nanloc = 1.0; } else { mloc = max(mloc, s); }
      }
    }
    redm[lid] = mloc;
    reds[lid] = nanloc;
    workgroupBarrier();
    var mt = MASKED;
    var nanrow = false;
    if (rowOK) {
      for (var u = 0u; u < T; u++) { mt = max(mt, redm[sr * T + u]); nanrow = nanrow || reds[sr * T + u] > 0.0; }
    }
    workgroupBarrier();
    let mNew = max(mrow, mt);
    let mUse = select(mNew, 0.0, mNew <= MASKED);
    var sl = 0.0;
    if (rowOK) {
      for (var i = 0u; i < NJ; i++) {
        let j = su + T * i;
        let s = ss[sr * 64u + j];
        let x = (s - mUse) * LOG2E;
        let p = select(select(exp2(x), 0.0, x < -126.0), 0.0, j >= nk || breaks_row(s));
        ss[sr * 64u + j] = p;
        sl += p;
      }
    }
    reds[lid] = sl;
    workgroupBarrier();
    if (rowOK) {
      var st = 0.0;
      for (var u = 0u; u < T; u++) { st += reds[sr * T + u]; }
      let a = select(exp2((mrow - mUse) * LOG2E), 0.0, mrow <= MASKED);
      lrow = lrow * a + st;
      mrow = mNew;
      badrow = badrow || nanrow;
      if (su == 0u) { alpha[sr] = a; }
    }
    if (PAGED && lid < 64u) { slots[64u - sbuf + lid] = nextSlot; }
    workgroupBarrier();

    // ---- O += P·V through workgroup memory, 32 keys at a time; thread owns columns lid + 128·t
    for (var r = 0u; r < R; r++) {
      let a = alpha[r];
      for (var t = 0u; t < CPT; t++) { o[t][r] *= a; }
    }
    for (var h0 = 0u; h0 < nk; h0 += 32u) {
      var vb: array<vec4<f32>, LV>;
      for (var i = 0u; i < LV; i++) {
        let x = lid + i * 128u;
        let jj = x / NVC;
        let c4 = (x % NVC) * 4u;
        var w = vec4<f32>(0.0);
        if ((ABLATE & 8u) == 0u && x < 32u * NVC && h0 + jj < nk) { w = ld_v4(v_row(vBase, k0, h0 + jj, sbuf) + hk * P.vHead + c4, DV - c4); }
        vb[i] = w;
      }
      for (var i = 0u; i < LV; i++) {
        let x = lid + i * 128u;
        if (x < 32u * NVC) {
          let jj = x / NVC;
          let c4 = (x % NVC) * 4u;
          for (var t = 0u; t < 4u; t++) { if (c4 + t < DV) { kv[jj * DV + c4 + t] = vb[i][t]; } }
        }
      }
      workgroupBarrier();
      let jn = min(32u, nk - h0);
      for (var t = 0u; t < CPT; t++) {
        let c = lid + 128u * t;
        if ((ABLATE & 16u) == 0u && c < DV) {
          for (var jj = 0u; jj < jn; jj++) {
            let v = kv[jj * DV + c];
            for (var r = 0u; r < R; r++) { o[t][r] += ss[r * 64u + h0 + jj] * v; }
          }
        }
      }
      workgroupBarrier();
    }
  }

  // ---- partials: [job][row] → (m, l, acc[DV]), m in natural units; m and l by lane 0 of the row
  let stride = DV + 2u;
  let pbase = job * P.partRows * stride;
  if (rowOK && su == 0u) {
    part[pbase + sr * stride] = mrow;
    part[pbase + sr * stride + 1u] = select(lrow, -1.0, badrow);   // −1 marks a NaN row
  }
  for (var t = 0u; t < CPT; t++) {
    let c = lid + 128u * t;
    if (c < DV) {
      for (var r = 0u; r < R; r++) { if (r < rows) { part[pbase + r * stride + 2u + c] = o[t][r]; } }
    }
  }
}
