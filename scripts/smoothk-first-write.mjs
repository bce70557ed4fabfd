// K smoothing (smoothK: true) against the length of the first K write to a layer: a short first write
// (a decode step, a BOS token), then the rest of a 300-token sequence in one write. Relative output error of
// int8 attention (rotation on) against float64 attention on the original K/V, rotation alone vs rotation +
// smoothK, over DRAWS draws (default 12), without and with four K outlier channels (×20, ×45, ×70, ×100);
// the last row of each design writes every token on its own (a decode-written cache).
//   npm run build && node scripts/smoothk-first-write.mjs
import { PagedKvCache, Tensor, attentionReference, mulberry32, pagedAttentionReference } from '../dist/index.js';

const Hk = 2, H = 8, D = 128, N = 300, DRAWS = Number(process.env.DRAWS ?? 12);

function gaussians(n, rng) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) { let u = 0; while (u === 0) u = rng(); out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng()); }
  return out;
}

function error(seed, first, smoothK, outliers) {
  const rng = mulberry32(seed);
  const k = gaussians(N * Hk * D, rng), v = gaussians(N * Hk * D, rng), q = gaussians(H * D, rng);
  if (outliers) for (let t = 0; t < N; t++) for (let h = 0; h < Hk; h++) [3, 17, 64, 100].forEach((c, i) => { k[(t * Hk + h) * D + c] *= [20, 45, 70, 100][i]; });
  const cache = new PagedKvCache({ numLayers: 1, numKvHeads: Hk, headDim: D, blockSizeTokens: 16, numBlocks: 64, dtype: 'int8', rotation: true, smoothK });
  const { id } = cache.addSequence();
  const put = (o, m) => cache.append(id, Array(m).fill(1), { k: Tensor.fromValues(k.subarray(o * Hk * D, (o + m) * Hk * D), [1, m, Hk, D]), v: Tensor.fromValues(v.subarray(o * Hk * D, (o + m) * Hk * D), [1, m, Hk, D]) });
  if (first === 0) for (let o = 0; o < N; o++) put(o, 1); // every token its own write (decode-written)
  else {
    if (first < N) put(0, first);
    put(first < N ? first : 0, first < N ? N - first : N);
  }
  const t = cache.batch([id]);
  const qt = Tensor.fromValues(q, [1, 1, H, D]);
  const got = pagedAttentionReference(qt, cache, 0, t, t.seqLens).out;
  const exp = attentionReference(qt, Tensor.fromValues(k, [1, N, Hk, D]), Tensor.fromValues(v, [1, N, Hk, D])).out;
  let num = 0, den = 0;
  for (let i = 0; i < exp.length; i++) { num += (got[i] - exp[i]) ** 2; den += exp[i] ** 2; }
  return Math.sqrt(num / den);
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const rows = [];
for (const outliers of [false, true]) {
  for (const first of [1, 4, 16, 40, N, 0]) {
    const plain = [], smooth = [];
    for (let s = 1; s <= DRAWS; s++) { plain.push(error(s, first, false, outliers)); smooth.push(error(s, first, true, outliers)); }
    rows.push({ design: outliers ? 'K outliers ×20–100' : 'no outliers', firstWrite: first || 'all 1-token', rotationMedian: median(plain).toExponential(2), smoothMedian: median(smooth).toExponential(2), smoothWorst: Math.max(...smooth).toExponential(2) });
  }
}
console.table(rows);
