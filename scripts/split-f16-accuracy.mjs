// Would f32 attention through f16 tensor cores pass the accuracy rule? Inputs split as hi + lo f16 pairs
// (three products each: hi·hi + hi·lo + lo·hi, f32 sums), Q pre-scaled by 1/√d (and 2^prescale), P split
// the same way for P·V; max |error| against float64 compared with a naive f32 implementation's. No GPU:
// f16 rounding simulated (round to nearest even, subnormals). Usage: node scripts/split-f16-accuracy.mjs
const f = Math.fround;
function f16(x) {
  if (x === 0 || !isFinite(x)) return x;
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (e < -14) e = -14;                       // subnormal spacing 2^-24
  const ulp = Math.pow(2, e - 10);
  let q = a / ulp;
  const r = Math.round(q);
  const fl = Math.floor(q);
  const rq = (q - fl === 0.5) ? (fl % 2 === 0 ? fl : fl + 1) : r;   // ties to even
  const y = rq * ulp;
  if (y > 65504) return x > 0 ? Infinity : -Infinity;
  return x < 0 ? -y : y;
}
const split = (x) => { const h = f16(x); return [h, f16(f(x - h))]; };
let seed = 7;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const normal = () => Math.sqrt(-2 * Math.log(Math.max(rnd(), 1e-12))) * Math.cos(2 * Math.PI * rnd());
function run(N, d, Q, scaleIn, prescale) {
  const mk = (n) => Array.from({ length: n }, () => normal() * scaleIn);
  const q = Array.from({ length: Q }, () => mk(d).map(f)), k = Array.from({ length: N }, () => mk(d).map(f)), v = Array.from({ length: N }, () => mk(d).map(f));
  const sc = 1 / Math.sqrt(d);
  let eNaive = 0, eSplit = 0;
  for (const qi of q) {
    // float64 reference
    const s64 = k.map((kj) => kj.reduce((a, x, c) => a + x * qi[c], 0) * sc);
    const m64 = Math.max(...s64); const p64 = s64.map((s) => Math.exp(s - m64)); const l64 = p64.reduce((a, b) => a + b, 0);
    const o64 = Array.from({ length: d }, (_, c) => p64.reduce((a, p, j) => a + p * v[j][c], 0) / l64);
    // naive f32
    const s32 = k.map((kj) => { let a = 0; for (let c = 0; c < d; c++) a = f(a + f(kj[c] * qi[c])); return f(a * f(sc)); });
    const m32 = Math.max(...s32); const p32 = s32.map((s) => f(Math.exp(f(s - m32)))); let l32 = 0; for (const p of p32) l32 = f(l32 + p);
    const o32 = Array.from({ length: d }, (_, c) => { let a = 0; for (let j = 0; j < N; j++) a = f(a + f(p32[j] * v[j][c])); return f(a / l32); });
    // split: q scaled by sc·2^prescale before splitting (as the kernels fold the scale into Q), K/V split as they are
    const qs = qi.map((x) => split(f(x * f(sc) * 2 ** prescale)));
    const ks = k.map((kj) => kj.map(split)), vs = v.map((vj) => vj.map(split));
    const ss = ks.map((kj) => { let a = 0; for (let c = 0; c < d; c++) { const [qh, ql] = qs[c], [kh, kl] = kj[c]; a = f(a + f(qh * kh)); a = f(a + f(qh * kl)); a = f(a + f(ql * kh)); } return f(a / 2 ** prescale); });
    const ms = Math.max(...ss); const ps = ss.map((s) => f(Math.exp(f(s - ms)))); let ls = 0; for (const p of ps) ls = f(ls + p);
    const pss = ps.map(split);
    const os = Array.from({ length: d }, (_, c) => { let a = 0; for (let j = 0; j < N; j++) { const [ph, pl] = pss[j], [vh, vl] = vs[j][c]; a = f(a + f(ph * vh)); a = f(a + f(ph * vl)); a = f(a + f(pl * vh)); } return f(a / ls); });
    for (let c = 0; c < d; c++) { eNaive = Math.max(eNaive, Math.abs(o32[c] - o64[c])); eSplit = Math.max(eSplit, Math.abs(os[c] - o64[c])); }
  }
  return { eNaive, eSplit, ratio: eSplit / eNaive };
}
for (const [N, d, Q, s, pre] of [[256, 64, 16, 1, 0], [256, 64, 16, 1, 4], [577, 64, 8, 1, 0], [512, 128, 8, 1, 0], [256, 64, 16, 0.1, 0], [256, 64, 16, 0.1, 6], [256, 64, 16, 10, 0]]) {
  const r = run(N, d, Q, s, pre);
  console.log(`N${N} d${d} inputs σ=${s} prescale 2^${pre}: naive f32 ${r.eNaive.toExponential(2)}, split ${r.eSplit.toExponential(2)}, ratio ${r.ratio.toFixed(2)}`);
}
