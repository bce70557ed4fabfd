// Top-k thresholds: for each query row, the k-th largest score among the keys the `within` mask
// allows (−∞ when fewer than k are visible, +∞ when none is). One invocation per query row keeps a
// private min-heap of KK scores; a workgroup is 64 consecutive rows of one (sequence, head), which
// all read the same key at the same time. Scores use the flash kernels' arithmetic (natural units,
// softcap), so both passes rank identically. The prelude defines D, KK, CAP, ld_q, ld_k, mask_allows.

struct Params {
  qRow: u32, qHead: u32, kRow: u32, kHead: u32,
  numJobs: u32, seqTable: u32, planTable: u32, jobTable: u32,
  maskBase: u32, thrBase: u32, thrHeadStride: u32, group: u32,
  scale: f32, softcap: f32, negInf: f32, posInf: f32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> tbl: array<u32>;


@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let job = wg.x + wg.y * 65535u;
  let J = stage_job(job, lid);
  let live = J[0];
  if (live == 0u) { return; }
  let h = J[1];
  let qtile = J[2];
  let qBase = J[3];
  let kBase = J[4];
  let lenQ = J[8];
  let lenK = J[9];
  let plan = J[10];
  let rowGlobal = J[11];
  let hk = h / P.group;
  let entries = tbl[P.planTable + plan * 2u + 1u];
  let range = tile_range(plan, qtile, lid);
  let e0 = range.x;
  let e1 = range.y;

  let i = qtile * 64u + lid;
  let valid = i < lenQ;
  let qb = qBase + min(i, max(lenQ, 1u) - 1u) * P.qRow + h * P.qHead;
  var heap: array<f32, KK>;
  var count = 0u;
  for (var e = e0; e < e1; e++) {
    let ent = tile_entry(entries + e, lid);
    let k0 = (ent >> 1u) * 64u;
    let nk = min(64u, lenK - k0);
    let partial = (ent & 1u) == 1u;
    for (var jl = 0u; jl < nk; jl++) {
      let j = k0 + jl;
      let kb = kv_at(kBase, j, P.kRow) + hk * P.kHead;
      var dot = 0.0;
      // Scores as flash_portable computes them (K·scale per element, products summed in order), bit for bit: the
      // k-th key must pass its own threshold there.
      for (var c = 0u; c < D; c++) { dot += ld_q(qb + c) * (ld_k(kb + c) * P.scale); }
      var s = dot;
      if (CAP) { s = softcap1(s, P.softcap); }
      var keep = valid && !is_nan(s);
      if (keep && partial) { keep = mask_allows(i32(i), i32(j), i32(lenQ), i32(lenK), 0u, s); }
      if (!keep) { continue; }
      if (count < KK) {
        var c = count;
        count++;
        loop {
          if (c == 0u) { break; }
          let parent = (c - 1u) / 2u;
          if (heap[parent] <= s) { break; }
          heap[c] = heap[parent];
          c = parent;
        }
        heap[c] = s;
      } else if (s > heap[0]) {
        var c = 0u;
        loop {
          var child = 2u * c + 1u;
          if (child >= KK) { break; }
          if (child + 1u < KK && heap[child + 1u] < heap[child]) { child++; }
          if (heap[child] >= s) { break; }
          heap[c] = heap[child];
          c = child;
        }
        heap[c] = s;
      }
    }
  }
  if (valid) {
    var t = P.posInf;
    if (count > 0u) { t = select(P.negInf, heap[0], count >= KK); }
    tbl[P.thrBase + h * P.thrHeadStride + rowGlobal + i] = bitcast<u32>(t);
  }
}
