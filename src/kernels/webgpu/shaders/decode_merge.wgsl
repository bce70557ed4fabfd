// Flash-decoding, merge phase: one workgroup per (sequence, KV head) combines the splits' partials
// (m, l, acc) by log-sum-exp: M = max m_s, L = Σ l_s·2^(m_s − M), O = Σ acc_s·2^(m_s − M) / L.
// Thread t owns output columns t + 128·u (f32 output), or the column pairs 2·(t + 128·u), +1 (16-bit
// output, FMT 1 f16 / 2 bf16: written as whole 32-bit words, so no convert pass follows; the caller takes
// this form only when DV and every output row, head and sequence offset are even). The prelude defines DV,
// FMT, PAIR (1 or 2), CPT (column groups a thread), cvt16 and the finish_out / finish_lse helpers.

struct Params {
  oRow: u32, oHead: u32, lseRow: u32, lseHead: u32,
  numJobs: u32, hasLse: u32, seqTable: u32, jobTable: u32,
  group: u32, partRows: u32, negInf: f32, nanv: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tbl: array<u32>;
@group(0) @binding(2) var<storage, read> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;

const NC: u32 = CPT * PAIR;
const LOG2E: f32 = 1.4426950408889634;
const MASKED: f32 = -1.0e30;
var<workgroup> wjob: array<u32, 16>;

// Column of a thread's t-th value: t + 128·u for f32, pairs 2·(lid + 128·u) + (t & 1) for 16-bit output.
fn col(lid: u32, t: u32) -> u32 { return select(lid + 128u * t, 2u * (lid + 128u * (t >> 1u)) + (t & 1u), PAIR == 2u); }

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let job = wg.x + wg.y * 65535u;
  if (lid == 0u) {
    let jb = P.jobTable + min(job, P.numJobs - 1u) * 4u;
    let sb = P.seqTable + tbl[jb] * 9u;
    wjob[0] = select(0u, 1u, job < P.numJobs);
    wjob[1] = tbl[jb + 1u];   // KV head
    wjob[2] = tbl[jb + 2u];   // first split job
    wjob[3] = tbl[jb + 3u];   // number of splits
    wjob[4] = tbl[sb + 3u];   // oBase
    wjob[5] = tbl[sb + 4u];   // lseBase
    wjob[6] = tbl[sb + 5u];   // lenQ
  }
  let live = workgroupUniformLoad(&wjob[0]);
  if (live == 0u) { return; }
  let hk = workgroupUniformLoad(&wjob[1]);
  let first = workgroupUniformLoad(&wjob[2]);
  let n = workgroupUniformLoad(&wjob[3]);
  let oBase = workgroupUniformLoad(&wjob[4]);
  let lseBase = workgroupUniformLoad(&wjob[5]);
  let lenQ = workgroupUniformLoad(&wjob[6]);
  let rows = P.group * lenQ;
  let stride = DV + 2u;
  for (var r = 0u; r < rows; r++) {
    var M = MASKED;
    var badRow = false;
    for (var s = 0u; s < n; s++) {
      let pb = ((first + s) * P.partRows + r) * stride;
      M = max(M, part[pb]);
      if (part[pb + 1u] < 0.0) { badRow = true; }
    }
    let mUse = select(M, 0.0, M <= MASKED);
    var L = 0.0;
    var acc: array<f32, NC>;
    for (var t = 0u; t < NC; t++) { acc[t] = 0.0; }
    for (var s = 0u; s < n; s++) {
      let pb = ((first + s) * P.partRows + r) * stride;
      let ls = part[pb + 1u];
      if (ls <= 0.0) { continue; }
      let w = exp2((part[pb] - mUse) * LOG2E);
      L += ls * w;
      for (var t = 0u; t < NC; t++) {
        let c = col(lid, t);
        if (c < DV) { acc[t] += part[pb + 2u + c] * w; }
      }
    }
    let g = r / lenQ;
    let i = r % lenQ;
    let h = hk * P.group + g;
    let ob = oBase + i * P.oRow + h * P.oHead;
    for (var t = 0u; t < NC; t += PAIR) {
      let c = col(lid, t);
      if (c < DV) {
        let x = finish_out(acc[t], L, badRow, P.nanv);
        if (PAIR == 1u) { out[ob + c] = bitcast<u32>(x); }
        else {
          let y = finish_out(acc[t + 1u], L, badRow, P.nanv);
          out[(ob + c) >> 1u] = cvt16(x) | (cvt16(y) << 16u);
        }
      }
    }
    if (P.hasLse == 1u && lid == 0u) {
      lse[lseBase + h * P.lseHead + i * P.lseRow] = finish_lse(M, L, badRow, P.negInf, P.nanv);
    }
  }
}
