// f32 → f16 / bf16 (round to nearest even), two elements per 32-bit word, so no two invocations
// write the same word. The prelude defines FMT (1 f16, 2 bf16).

struct Params { words: u32, count: u32, _a: u32, _b: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn bf16_rne(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return ((u >> 16u) | 0x40u) & 0xffffu; }
  return ((u + 0x7fffu + ((u >> 16u) & 1u)) >> 16u) & 0xffffu;
}

fn f16_rne(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  let sign = (u >> 16u) & 0x8000u;
  var a = u & 0x7fffffffu;
  if (a >= 0x47800000u) { return sign | select(0x7c00u, 0x7e00u, a > 0x7f800000u); }
  if (a < 0x38800000u) {
    // subnormal or zero: round a·2^24 to an integer, ties to even
    let f = bitcast<f32>(a) * 16777216.0;
    var h = u32(f);
    let rem = f - f32(h);
    if (rem > 0.5 || (rem == 0.5 && (h & 1u) == 1u)) { h += 1u; }
    return sign | h;
  }
  let odd = (a >> 13u) & 1u;
  a += 0xc8000fffu + odd;
  return sign | (a >> 13u);
}

fn cvt(x: f32) -> u32 {
  if (FMT == 1u) { return f16_rne(x); }
  return bf16_rne(x);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let w = gid.x + gid.y * nw.x * 256u;
  if (w >= P.words) { return; }
  let e = w * 2u;
  let lo = cvt(src[e]);
  var hi = 0u;
  if (e + 1u < P.count) { hi = cvt(src[e + 1u]); }
  dst[w] = lo | (hi << 16u);
}
