// Flash-decoding, split phase: few queries against a long KV. One workgroup = one (sequence, KV head,
// split of the visited KV tiles); the G·lenQ query rows of the GQA group are packed together, so each
// K/V element is read once per group. 128 threads.
// Per 64-key tile, in two halves of 32 keys: the half's K rows are staged in workgroup memory with
// coalesced loads (rows padded to D+1 floats: conflict-free column reads), then thread t scores key
// t % 32 against rows ≡ t/32 (mod 4); the rows' online softmax runs one thread per row; thread t
// accumulates output column(s) t (+128) for every row from V read in place (coalesced across threads).
// Partials (m, l, acc) go to `part` and are merged by decode_merge. The prelude defines D, DV, R
// (rows = G·lenQ, ≤ 64), CPT (columns per thread), NATURAL, CAP, ld_q/ld_k/ld_v, mask_allows and kv_at.

struct Params {
  qRow: u32, qHead: u32, kRow: u32, kHead: u32,
  vRow: u32, vHead: u32, numJobs: u32, splitTiles: u32,
  seqTable: u32, planTable: u32, jobTable: u32, maskBase: u32,
  scale: f32, softcap: f32, group: u32, partRows: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tbl: array<u32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;

const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;

var<workgroup> qs: array<f32, R * D>;
var<workgroup> ss: array<f32, R * 64>;
var<workgroup> ks: array<f32, 32 * (D + 1)>;
var<workgroup> alpha: array<f32, R>;

fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
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
  let qscale = select(P.scale * LOG2E, P.scale, NATURAL);

  // Q rows r = g·lenQ + i ↦ head hk·G + g, position i.
  for (var x = lid; x < R * D; x += 128u) {
    let r = x / D;
    let c = x % D;
    var v = 0.0;
    if (r < rows) {
      let g = r / lenQ;
      let i = r % lenQ;
      v = ld_q(qBase + i * P.qRow + (hk * P.group + g) * P.qHead + c) * qscale;
    }
    qs[x] = v;
  }
  var m: array<f32, R>;
  var l: array<f32, R>;
  var bad: array<f32, R>;
  var o: array<array<f32, R>, CPT>;
  for (var r = 0u; r < R; r++) {
    m[r] = MASKED; l[r] = 0.0; bad[r] = 0.0;
    for (var t = 0u; t < CPT; t++) { o[t][r] = 0.0; }
  }
  workgroupBarrier();

  for (var e = e0; e < e1; e++) {
    let ent = tile_entry(entries + e, lid);
    let k0 = (ent >> 1u) * 64u;
    let nk = min(64u, lenK - k0);
    let partial = (ent & 1u) == 1u;

    // ---- scores, 32 keys at a time through workgroup memory
    for (var h0 = 0u; h0 < 64u; h0 += 32u) {
      for (var x = lid; x < 32u * D; x += 128u) {
        let jj = x / D;
        let c = x % D;
        var kv = 0.0;
        if (h0 + jj < nk) { kv = ld_k(kv_at(kBase, k0 + h0 + jj, P.kRow) + hk * P.kHead + c); }
        ks[jj * (D + 1u) + c] = kv;
      }
      workgroupBarrier();
      let jj = lid & 31u;
      let jl = h0 + jj;
      for (var r = lid >> 5u; r < R; r += 4u) {
        var s = MASKED;
        if (r < rows && jl < nk) {
          var dot = 0.0;
          for (var c = 0u; c < D; c++) { dot += qs[r * D + c] * ks[jj * (D + 1u) + c]; }
          s = dot;
          if (CAP) { s = P.softcap * tanh(clamp(s / P.softcap, -15.0, 15.0)); }
          var keep = true;
          if (partial) { keep = mask_allows(i32(r % lenQ), i32(k0 + jl), i32(lenQ), i32(lenK), 0u, s); }
          if (NATURAL) { s *= LOG2E; }
          if (!keep) { s = MASKED; }
        }
        ss[r * 64u + jl] = s;
      }
      workgroupBarrier();
    }

    // ---- online softmax, one thread per row
    if (lid < rows) {
      let r = lid;
      var mx = MASKED;
      var nanSeen = false;
      for (var j = 0u; j < nk; j++) {
        let s = ss[r * 64u + j];
        if (is_nan(s)) { nanSeen = true; } else { mx = max(mx, s); }
      }
      let mNew = max(m[r], mx);
      let mUse = select(mNew, 0.0, mNew <= MASKED);
      var sum = 0.0;
      for (var j = 0u; j < 64u; j++) {
        let s = ss[r * 64u + j];
        let p = select(select(exp2(s - mUse), 0.0, s - mUse < -126.0), 0.0, j >= nk || is_nan(s));
        ss[r * 64u + j] = p;
        sum += p;
      }
      let a = select(exp2(m[r] - mUse), 0.0, m[r] <= MASKED);
      l[r] = l[r] * a + sum;
      m[r] = mNew;
      if (nanSeen) { bad[r] = 1.0; }
      alpha[r] = a;
    }
    workgroupBarrier();

    // ---- O += P·V; thread owns columns lid + 128·t
    for (var r = 0u; r < R; r++) {
      let a = alpha[r];
      for (var t = 0u; t < CPT; t++) { o[t][r] *= a; }
    }
    for (var j = 0u; j < nk; j++) {
      let vbj = kv_at(vBase, k0 + j, P.vRow) + hk * P.vHead;
      for (var t = 0u; t < CPT; t++) {
        let c = lid + 128u * t;
        if (c < DV) {
          let v = ld_v(vbj + c);
          for (var r = 0u; r < R; r++) { o[t][r] += ss[r * 64u + j] * v; }
        }
      }
    }
    workgroupBarrier();
  }

  // ---- partials: [job][row] → (m, l, acc[DV]) in base-2 units; m and l by the row's softmax thread
  let stride = DV + 2u;
  let pbase = job * P.partRows * stride;
  if (lid < rows) {
    part[pbase + lid * stride] = m[lid];
    part[pbase + lid * stride + 1u] = select(l[lid], -1.0, bad[lid] > 0.0);   // −1 marks a NaN row
  }
  for (var t = 0u; t < CPT; t++) {
    let c = lid + 128u * t;
    if (c < DV) {
      for (var r = 0u; r < R; r++) { if (r < rows) { part[pbase + r * stride + 2u + c] = o[t][r]; } }
    }
  }
}
