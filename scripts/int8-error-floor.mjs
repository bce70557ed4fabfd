// Where the int8 KV error floor comes from (issue 4's bar: < 1e-2 relative output error on outlier-heavy
// inputs): the test's designs (tests/unit/kvcache/quant.test.ts: d128, H8/Hk2, Sk 97 and 300, decode and a
// causal chunk, q ~ N(0,1)) through the library's int8 cache with the Hadamard rotation, with K alone, V
// alone and both quantised (K/V read back with gatherContiguous), at block sizes 8, 16 and 32, with and
// without K smoothing; then K scaled per (block, head, channel) instead of per (block, head), a format
// outside the issue's, simulated here. These use the uniform code grid. A second table splits the error of
// rotation + smoothK on the uniform grid and on the 'auto' grid (the default: gaussian or uniform per block
// and head) for the test's designs and FlashAttention-3's FP8 test inputs at several seeds.
// Usage (after npm run build): node scripts/int8-error-floor.mjs; DRAWS=12 node scripts/int8-error-floor.mjs for the
// default path's spread over random draws, with K's rounding feedback (kRounding, the default) and without it.
import { PagedKvCache, gatherContiguous, attentionReference, randn, Tensor, causal, mulberry32 } from '../dist/index.js';

const OUT_CHANNELS = [3, 17, 64, 101], OUT_FACTORS = [20, 45, 70, 100];
function makeKv(n, Hk, D, seed, outliers) {
  const t = randn([n, Hk, D], seed).toFloat32();
  if (outliers) for (let i = 0; i < n * Hk; i++) OUT_CHANNELS.forEach((c, j) => { t[i * D + c] *= OUT_FACTORS[j]; });
  return t;
}
function fwht(x) { const n = x.length; for (let h = 1; h < n; h *= 2) for (let i = 0; i < n; i += 2 * h) for (let j = i; j < i + h; j++) { const a = x[j], b = x[j + h]; x[j] = a + b; x[j + h] = a - b; } const s = 1 / Math.sqrt(n); for (let i = 0; i < n; i++) x[i] *= s; }
// K quantised per (block of bs tokens, head, channel) after a random-sign Hadamard; dequantised and unrotated.
function quantKPerChannel(kx, L, Hk, D, bs) {
  const rng = mulberry32(77); const sign = Float64Array.from({ length: D }, () => (rng() < 0.5 ? -1 : 1));
  const rot = new Float64Array(L * Hk * D);
  for (let t = 0; t < L; t++) for (let h = 0; h < Hk; h++) { const x = new Float64Array(D); for (let c = 0; c < D; c++) x[c] = kx[(t * Hk + h) * D + c] * sign[c]; fwht(x); rot.set(x, (t * Hk + h) * D); }
  const out = new Float32Array(L * Hk * D);
  for (let b0 = 0; b0 < L; b0 += bs) for (let h = 0; h < Hk; h++) {
    const t1 = Math.min(L, b0 + bs);
    const sc = new Float64Array(D);
    for (let c = 0; c < D; c++) { let m = 0; for (let t = b0; t < t1; t++) m = Math.max(m, Math.abs(rot[(t * Hk + h) * D + c])); sc[c] = m / 127 || 1; }
    for (let t = b0; t < t1; t++) { const x = new Float64Array(D); for (let c = 0; c < D; c++) x[c] = Math.round(rot[(t * Hk + h) * D + c] / sc[c]) * sc[c]; fwht(x); for (let c = 0; c < D; c++) out[(t * Hk + h) * D + c] = x[c] * sign[c]; }
  }
  return out;
}
/** Relative Frobenius output error of each quantisation (names → [k, v] sources) for one design. */
/** FlashAttention-3's FP8 test distribution: every entry N(0, 1) plus, with probability 0.1 %, N(0, 10²). */
function addSparseOutliers(t, seed) {
  const rng = mulberry32(seed), extra = randn([t.length], seed + 1, 'f32', 10).toFloat32();
  for (let i = 0; i < t.length; i++) if (rng() < 0.001) t[i] += extra[i];
  return t;
}
function errors(design, { bs = 16, smoothK = false, perChannelK = false, int8Grid = 'uniform', seed = 0, kRounding = 'feedback' } = {}) {
  const H = 8, Hk = 2, D = 128, lens = [97, 300], Sq = 5;
  const cache = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, blockSizeTokens: bs, numBlocks: 1024, dtype: 'int8', rotation: { seed: 5 }, smoothK, int8Grid, kRounding, prefixCaching: false });
  const qr = randn([lens.length, Sq, H, D], 9 + seed, 'f32', design.qStd);
  const q0 = design.sparse ? Tensor.fromValues(addSparseOutliers(qr.toFloat32(), 500 + seed), qr.shape) : qr;
  const acc = { 'K only': [0, 0], 'V only': [0, 0], both: [0, 0] };
  lens.forEach((L, b) => {
    const kx = makeKv(L, Hk, D, 100 + b + seed, design.kOut), vx = makeKv(L, Hk, D, 200 + b + seed, design.vOut);
    if (design.sparse) { addSparseOutliers(kx, 300 + b + seed); addSparseOutliers(vx, 400 + b + seed); }
    const k = Tensor.fromValues(kx, [1, L, Hk, D]), v = Tensor.fromValues(vx, [1, L, Hk, D]);
    const { id } = cache.addSequence();
    cache.append(id, Array.from({ length: L }, (_, i) => i), { k, v });
    const g = gatherContiguous(cache.storage, 0, cache.blockTable(id), L, { unrotate: true });
    const vq = g.v.reshape([1, L, Hk, D]);
    const kq = perChannelK ? Tensor.fromValues(quantKPerChannel(kx, L, Hk, D, bs), [1, L, Hk, D]) : g.k.reshape([1, L, Hk, D]);
    for (const causalM of [false, true]) {
      const q = causalM ? q0.slice(0, b, b + 1).contiguous() : q0.slice(0, b, b + 1).slice(1, 0, 1).contiguous();
      const mask = causalM ? causal() : null;
      const ref = attentionReference(q, k, v, { mask }).out;
      for (const [name, kk, vv] of [['K only', kq, v], ['V only', k, vq], ['both', kq, vq]]) {
        const o = attentionReference(q, kk, vv, { mask }).out;
        for (let i = 0; i < ref.length; i++) { acc[name][0] += (o[i] - ref[i]) ** 2; acc[name][1] += ref[i] ** 2; }
      }
    }
  });
  return Object.fromEntries(Object.entries(acc).map(([n, [a, d]]) => [n, Math.sqrt(a / d).toExponential(2)]));
}

const designs = [
  { name: 'no outliers', kOut: false, vOut: false, qStd: 1 },
  { name: 'K outliers ×20–100', kOut: true, vOut: false, qStd: 1 },
  { name: 'K+V outliers ×20–100', kOut: true, vOut: true, qStd: 1 },
];
if (process.env.DRAWS) {
  // DRAWS=N: the library's default int8 path (rotation + smoothK + 'auto' grid) on quant.test.ts's six designs
  // at N seeds (0, 1000, …): how often a draw reaches the 1e-2 (both K and V quantised).
  const all = [...designs, { name: 'K+V outliers, q ~ N(0,0.25²)', kOut: true, vOut: true, qStd: 0.25 }, { name: 'K+V outliers, q ~ N(0,0.1²)', kOut: true, vOut: true, qStd: 0.1 },
    { name: 'FA3 FP8 inputs (q, K, V + 0.1 % N(0,10²))', kOut: false, vOut: false, qStd: 1, sparse: true }];
  const seeds = Array.from({ length: Number(process.env.DRAWS) }, (_, i) => i * 1000);
  const table = all.flatMap((d) => ['feedback', 'nearest'].map((kRounding) => {
    const runs = seeds.map((seed) => errors(d, { smoothK: true, int8Grid: 'auto', seed, kRounding }));
    const e = runs.map((r) => Number(r.both)).sort((a, b) => a - b), k = runs.map((r) => Number(r['K only'])).sort((a, b) => a - b);
    return { design: d.name, kRounding, min: e[0].toExponential(2), median: e[e.length >> 1].toExponential(2), max: e[e.length - 1].toExponential(2), 'draws ≥ 1e-2': `${e.filter((x) => x >= 1e-2).length}/${e.length}`, 'K only: median': k[k.length >> 1].toExponential(2), 'K only: max': k[k.length - 1].toExponential(2) };
  }));
  console.log(`rotation + smoothK + 'auto' grid, K rounding 'feedback' (the defaults) and 'nearest', both K and V int8, ${seeds.length} draws a design:`);
  console.table(table);
  process.exit(0);
}
const rows = [];
for (const d of designs) {
  for (const bs of [8, 16, 32]) for (const smoothK of [false, true]) rows.push({ design: d.name, bs, smoothK, kScales: 'block, head', ...errors(d, { bs, smoothK }) });
  rows.push({ design: d.name, bs: 16, smoothK: false, kScales: 'block, head, channel', ...errors(d, { perChannelK: true }) });
}
console.log('int8 KV + Hadamard, uniform grid, relative output error vs f32 (d128, H8/Hk2, Sk 97/300, q ~ N(0,1)):');
console.table(rows);

const grids = [];
for (const d of [...designs, { name: "FA3 FP8 inputs (q, K, V + 0.1 % N(0,10²))", kOut: false, vOut: false, qStd: 1, sparse: true }]) {
  for (const seed of [0, 2000, 5000]) for (const int8Grid of ['uniform', 'auto']) grids.push({ design: d.name, seed, int8Grid, ...errors(d, { smoothK: true, int8Grid, seed }) });
}
console.log("rotation + smoothK, bs 16: the uniform grid against 'auto' (per block and head), seeds as in quant.test.ts:");
console.table(grids);
