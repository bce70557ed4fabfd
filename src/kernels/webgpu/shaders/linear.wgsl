// y = x·Wᵀ + b (W [N×K] row-major, PyTorch's Linear): 16×16 output tiles per workgroup, K in slices of
// 16 through workgroup memory; one output per invocation.

struct Params { M: u32, N: u32, K: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

var<workgroup> ta: array<f32, 256>;
var<workgroup> tw: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wg.y * 16u + lid.y;
  let col = wg.x * 16u + lid.x;
  var s = 0.0;
  for (var k0 = 0u; k0 < P.K; k0 += 16u) {
    let ka = k0 + lid.x;
    ta[lid.y * 16u + lid.x] = select(0.0, a[min(row, P.M - 1u) * P.K + min(ka, P.K - 1u)], row < P.M && ka < P.K);
    let wr = wg.x * 16u + lid.y;
    tw[lid.y * 16u + lid.x] = select(0.0, w[min(wr, P.N - 1u) * P.K + min(ka, P.K - 1u)], wr < P.N && ka < P.K);
    workgroupBarrier();
    for (var t = 0u; t < 16u; t++) { s += ta[lid.y * 16u + t] * tw[lid.x * 16u + t]; }
    workgroupBarrier();
  }
  if (row < P.M && col < P.N) {
    c[row * P.N + col] = s + select(0.0, bias[col], P.hasBias == 1u);
  }
}
