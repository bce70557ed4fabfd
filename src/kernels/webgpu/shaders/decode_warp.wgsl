// Flash-decoding on subgroups, split phase. src/kernels/webgpu/decode-warp.ts fills in the marked
// lines (Q registers, O accumulators, one batch of keys, the partials' writes) and constants. One
// workgroup = one (sequence, KV head, split of the visited KV tiles) with 4·SS subgroups: sub-split
// su = w / 4 takes tiles e0 + su, e0 + su + SS, … of the split, and subgroup quarter wq = w % 4 takes keys
// wq·16 … wq·16 + 15 of each of those 64-key tiles, in batches, with its own online softmax. The
// subgroups' (m, l, O) per row are combined in workgroup memory (COMBINE; four at a time, SS rounds) into
// part[job·partRows + row], or straight into the output and LSE (FIN: the workgroup holds its sequence's
// whole KV, so no merge pass follows); without COMBINE each subgroup writes part[(job·4 + w)·partRows + row]
// and decode_merge combines the splits.
//@DECODE_HEAD (DECODE_HEAD in variants.ts: Params, the table and the partials, shared with the other split kernel)

const LOG2E: f32 = 1.4426950408889634;
const NB: u32 = //@NBu;
const MASKED: f32 = -1.0e30;

@compute @workgroup_size(//@WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32/*@SUBGROUP_BUILTINS*/) {
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
  let e0 = range.x + split * P.splitTiles;
  let e1 = min(range.y, e0 + P.splitTiles);
  let rows = P.group * lenQ;
  // Scores are Q·(K·scale)ᵀ in natural units (K scaled as it is unpacked, once per element); log2 e multiplies
  // S − m in the exponent, never a score: at scores near ±1000 its rounding broke the 2×-naive rule.

  // Lane roles: subgroup w, lane (group gi of LPK lanes, lane gl in it); this lane's score after the
  // reduce-scatter is row sr, key skb of the batch.
  // With real shuffles the subgroup's own index and lane (the shuffles address lanes by the latter).
  let w = /*@W*/;
  let lane = /*@LANE*/;
  let su = //@SU;   // w / 4 (0 with one sub-split)
  let wq = w % 4u;
  let gi = lane / LPK;
  let gl = lane % LPK;
  let sr = gl >> (//@SH + //@LKB);
  let skb = (gl >> //@SH) & (KB - 1u);

//@Q
//@O
  var m = MASKED;     // the row's running max (the same in every lane of the row)
  var l = 0.0;        // this lane's running sum of its own probabilities
  var bad = 0.0;      // 1 once one of this lane's kept scores was NaN

  // Batches i = 0 … NT − 1: tile e0 + su + (i / NB)·SS, batch i % NB of this subgroup's 16 keys in it.
  // With real shuffles NT counts this sub-split's tiles; with emulated ones (barriers in the loop) the most
  // any sub-split has, workgroup-uniform, and the batches past e1 read nothing and keep no key.
  let NT = //@NT;
//@LOOP

  // ---- partials: (m, l, O) per row, m in natural units; l = −1 marks a NaN row
  let stride = DV + 2u;
  let lsum = row_sum(l, lid);
  let badr = row_max(bad, lid);
//@WRITE
}
