// Flash attention forward on tensor cores: f16 in, f32 accumulate, QKᵀ and PV on subgroup matrices
// (chromium_experimental_subgroup_matrix; Vulkan cooperative matrices underneath). Loads and stores use
// column-major loads and stores in the template form (subgroupMatrixLoad<T, col_major>(p, offset, stride));
// row-major ones in the bool form with `false` (measured on Dawn/NVIDIA: right matrices load column-major
// whatever the bool says, so V enters transposed, see the P·V step).
//
// Workgroup = 4 subgroups of 32 lanes. Subgroup s owns 16 query rows of one head: with GQA, the G4
// heads of one KV head share the workgroup (heads hb·G4 + s % G4, positions q0 + 16·(s / G4) .. +15),
// so they read the same K/V tiles through L1.
// Per 64-key tile:
//   S (16×64, f32) = Q·Kᵀ: right matrices loaded straight from the K buffer (column-major view),
//   stored to workgroup memory;
//   softmax in SIMT: lane → row lane/2, 32 keys; scale, softcap, element predicate (partial tiles
//   only), row max/sum with the partner lane, online-softmax state in registers; P (f16) to
//   workgroup memory; the O registers are rescaled by 2^(m_old − m_new);
//   O_tile = P·V in 64-column rounds (right matrices straight from the V buffer), stored to
//   workgroup memory and added to the O registers (lane → row lane/2, 32 columns per round).
// Subgroup matrices cannot scale rows, so O lives in registers and each tile's P·V passes through
// workgroup memory once. The prelude defines D, DV, QK_N, QK_K, G4, TQ, NROUND, NATURAL,
// CAP, OUT_T, the out binding and mask_allows.

struct Params {
  qRow: u32, qHead: u32, kRow: u32, kHead: u32,
  vRow: u32, vHead: u32, oRow: u32, oHead: u32,
  lseRow: u32, lseHead: u32, numJobs: u32, hasLse: u32,
  seqTable: u32, planTable: u32, jobTable: u32, maskBase: u32,
  scale: f32, softcap: f32, thrHeadStride: u32, group: u32,
  negInf: f32, nanv: f32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tbl: array<u32>;
@group(0) @binding(2) var<storage, read> qb: array<f16>;
@group(0) @binding(3) var<storage, read> kb: array<f16>;
@group(0) @binding(4) var<storage, read> vb: array<f16>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const MASKED: f32 = -1.0e30;
const NKD: u32 = D / QK_K;

var<workgroup> sS: array<f32, 4096>;   // per subgroup 16×64: S, then O_tile rounds
var<workgroup> sP: array<f16, 4096>;   // per subgroup 16×64: P
var<workgroup> wjob: array<u32, 16>;
var<workgroup> wtile: u32;

fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn exp2_masked(x: f32) -> f32 {
  return select(exp2(x), 0.0, x < -126.0);
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32) {
  let job = wg.x + wg.y * 65535u;
  let sg = sgid;
  let lane = sgl;
  if (lid == 0u) {
    let jb = P.jobTable + min(job, P.numJobs - 1u) * 3u;
    let sb = P.seqTable + tbl[jb] * 9u;
    wjob[0] = select(0u, 1u, job < P.numJobs);
    wjob[1] = tbl[jb + 1u];
    wjob[2] = tbl[jb + 2u];
    for (var t = 0u; t < 9u; t++) { wjob[3u + t] = tbl[sb + t]; }
  }
  let live = workgroupUniformLoad(&wjob[0]);
  if (live == 0u) { return; }
  let hb = workgroupUniformLoad(&wjob[1]);
  let qtile = workgroupUniformLoad(&wjob[2]);
  let qBase = workgroupUniformLoad(&wjob[3]);
  let kBase = workgroupUniformLoad(&wjob[4]);
  let vBase = workgroupUniformLoad(&wjob[5]);
  let oBase = workgroupUniformLoad(&wjob[6]);
  let lseBase = workgroupUniformLoad(&wjob[7]);
  let lenQ = workgroupUniformLoad(&wjob[8]);
  let lenK = workgroupUniformLoad(&wjob[9]);
  let plan = workgroupUniformLoad(&wjob[10]);
  let rowGlobal = workgroupUniformLoad(&wjob[11]);
  let rowStart = tbl[P.planTable + plan * 2u];
  let entries = tbl[P.planTable + plan * 2u + 1u];
  if (lid == 0u) { wtile = tbl[rowStart + qtile]; }
  let e0 = workgroupUniformLoad(&wtile);
  if (lid == 0u) { wtile = tbl[rowStart + qtile + 1u]; }
  let e1 = workgroupUniformLoad(&wtile);

  let head = hb * G4 + sg % G4;
  let hk = (hb * G4) / P.group;
  let pos0 = qtile * TQ + (sg / G4) * 16u;
  let r = lane >> 1u;          // this lane's row in the subgroup's 16
  let half = lane & 1u;        // which 32 keys / columns of a 64-wide block
  let pos = pos0 + r;
  let valid = pos < lenQ;
  let scl = select(P.scale * LOG2E, P.scale, NATURAL);
  let sbase = sg * 1024u;

  // Q rows (16 × D) are read as left matrices straight from the Q buffer (L1-resident after the first
  // tile). An array of subgroup matrices indexed in a loop gave wrong scores on NVIDIA.
  let qoff = qBase + min(pos0, max(lenQ, 1u) - 1u) * P.qRow + head * P.qHead;

  var m = MASKED;
  var l = 0.0;
  var bad = 0.0;
  var o: array<f32, NROUND * 32u>;
  for (var t = 0u; t < NROUND * 32u; t++) { o[t] = 0.0; }

  for (var e = e0; e < e1; e++) {
    if (lid == 0u) { wtile = tbl[entries + e]; }
    let ent = workgroupUniformLoad(&wtile);
    let k0 = (ent >> 1u) * 64u;
    let nk = min(64u, lenK - k0);
    let partial = (ent & 1u) == 1u;

    // ---- S = Q·Kᵀ
    let koff = kBase + k0 * P.kRow + hk * P.kHead;
    for (var nb = 0u; nb < 64u / QK_N; nb++) {
      var acc = subgroup_matrix_result<f32, QK_N, 16>();
      for (var kd = 0u; kd < NKD; kd++) {
        let kr = subgroupMatrixLoad<subgroup_matrix_right<f16, QK_N, QK_K>, col_major>(&kb, koff + nb * QK_N * P.kRow + kd * QK_K, P.kRow);
        let ql = subgroupMatrixLoad<subgroup_matrix_left<f16, QK_K, 16>>(&qb, qoff + kd * QK_K, false, P.qRow);
        acc = subgroupMatrixMultiplyAccumulate(ql, kr, acc);
      }
      subgroupMatrixStore<col_major>(&sS, sbase + nb * QK_N * 16u, acc, 16u);   // S[r][j] at j·16 + r
    }
    workgroupBarrier();

    // ---- softmax (lane: row r, keys 32·half .. +31)
    var mx = MASKED;
    var sv: array<f32, 32>;
    for (var c = 0u; c < 32u; c++) {
      let jl = half * 32u + c;
      var s = sS[sbase + jl * 16u + r];
      if (NATURAL) { s *= P.scale; } else { s *= scl; }
      if (CAP) { s = P.softcap * tanh(clamp(s / P.softcap, -15.0, 15.0)); }
      var keep = valid && jl < nk;
      if (keep && partial) {
        keep = mask_allows(i32(pos), i32(k0 + jl), i32(lenQ), i32(lenK), head * P.thrHeadStride + rowGlobal + pos, s);
      }
      if (keep && is_nan(s)) { bad = 1.0; }
      keep = keep && !is_nan(s);
      if (NATURAL) { s *= LOG2E; }
      s = select(MASKED, s, keep);
      sv[c] = s;
      mx = max(mx, s);
    }
    mx = max(mx, subgroupShuffleXor(mx, 1u));
    let mNew = max(m, mx);
    let mUse = select(mNew, 0.0, mNew <= MASKED);
    var sum = 0.0;
    for (var c = 0u; c < 32u; c++) {
      let p = exp2_masked(sv[c] - mUse);
      sum += p;
      sP[sbase + r * 64u + half * 32u + c] = f16(p);
    }
    sum += subgroupShuffleXor(sum, 1u);
    let alpha = select(exp2(m - mUse), 0.0, m <= MASKED);
    l = l * alpha + sum;
    m = mNew;
    for (var t = 0u; t < NROUND * 32u; t++) { o[t] *= alpha; }
    workgroupBarrier();

    // ---- O += P·V as Oᵀ = Vᵀ·Pᵀ, 64 output columns per round. Right matrices only load column-major
    // on this path, so V (row-major) enters as the left operand, Vᵀ; Pᵀ is P read column-major; the
    // result Oᵀ is stored column-major, i.e. as O row-major.
    let voff = vBase + k0 * P.vRow + hk * P.vHead;
    for (var rd = 0u; rd < NROUND; rd++) {
      for (var db = 0u; db < 4u; db++) {
        let col = rd * 64u + db * 16u;
        if (col < DV) {
          var acc = subgroup_matrix_result<f32, 16, 16>();
          for (var kc = 0u; kc < 4u; kc++) {
            let vl = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, col_major>(&vb, voff + kc * 16u * P.vRow + col, P.vRow);
            let pr = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&sP, sbase + kc * 16u, 64u);
            acc = subgroupMatrixMultiplyAccumulate(vl, pr, acc);
          }
          subgroupMatrixStore<col_major>(&sS, sbase + db * 16u, acc, 64u);
        }
      }
      workgroupBarrier();
      for (var c = 0u; c < 32u; c++) { o[rd * 32u + c] += sS[sbase + r * 64u + half * 32u + c]; }
      workgroupBarrier();
    }
  }

  bad = max(bad, subgroupShuffleXor(bad, 1u));
  if (valid) {
    let ob = oBase + pos * P.oRow + head * P.oHead;
    let inv = select(1.0 / l, 0.0, l == 0.0);
    for (var rd = 0u; rd < NROUND; rd++) {
      for (var c = 0u; c < 32u; c++) {
        let col = rd * 64u + half * 32u + c;
        if (col < DV) { out[ob + col] = OUT_T(select(select(o[rd * 32u + c] * inv, 0.0, l == 0.0), P.nanv, bad > 0.0)); }
      }
    }
    if (P.hasLse == 1u && half == 0u) {
      lse[lseBase + head * P.lseHead + pos * P.lseRow] = select(select((m + log2(l)) * LN2, P.negInf, l == 0.0), P.nanv, bad > 0.0);
    }
  }
}
