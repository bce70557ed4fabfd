// f32 → f16 / bf16 (round to nearest even), two elements per 32-bit word, so no two invocations
// write the same word. The prelude defines FMT (1 f16, 2 bf16) and cvt16 (variants.ts, CVT16_WGSL).

struct Params { words: u32, count: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = gid.x + gid.y * nw.x * 256u;
  if (w >= P.words) { return; }
  let e = w * 2u;
  let lo = cvt16(src[e]);
  var hi = 0u;
  if (e + 1u < P.count) { hi = cvt16(src[e + 1u]); }
  dst[w] = lo | (hi << 16u);
}
