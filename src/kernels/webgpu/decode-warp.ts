/**
 * Flash-decoding on subgroups (split phase): few query rows against a long KV, with K and V consumed
 * straight from registers. The partials go to decode_merge like decode_split's (one per workgroup, or
 * one per subgroup when they do not fit workgroup memory).
 *
 * Workgroup = (sequence, KV head, split of the visited 64-key tiles), 4 subgroups of 32 lanes; each
 * subgroup takes 16 keys of every tile and keeps its own online softmax, so the loop has no barrier.
 * The R = G·lenQ rows of the GQA group are packed, so each K/V element is read once.
 *
 * Lanes per key: LPK = 32 lanes hold one K/V row (E = 4 consecutive elements each, or 8 for 16-bit
 * K/V with `wide`, NCK/NCV times), or 32/LPK rows at once when the head dims are small (KPW keys per
 * subgroup step). Per batch of KB keys per lane group:
 *   every lane issues its K and V loads (E elements per load) first;
 *   lane partial dots x[r·KB + kb] = q_r · k_kb over its elements (Q in registers, rows padded to RP);
 *   a butterfly reduce-scatter over the LPK lanes (⌈log2⌉ shuffles with half the values each) leaves
 *   each lane one full score s(r, kb), (r, kb) = lane bits, with V = KB·RP ≤ LPK (lanes below
 *   LPK/V hold copies);
 *   scale, softcap, the mask predicate on partial tiles only, NaN flag; the row max over the key bits
 *   of the lanes; p = 2^(s − m); each lane keeps its own running sum l (summed across lanes at the end);
 *   O_r += p(r, kb)·V_kb with p broadcast from the lane that holds it (shuffle), rescaled by α_r.
 * At the end the lane groups' O are summed (when KPW > 1) and each subgroup writes (m, l, O) per row.
 *
 * `sg` false emulates the shuffles through workgroup memory (two barriers each), so the same logic runs
 * where subgroups are not 32 lanes wide (SwiftShader in CI). It is for tests, not speed.
 */
import { CVT16_WGSL, DECODE_FINISH_WGSL, JOB_WGSL, each, kvRawLoaders, withDecodeHead, type InFormat, type KvPaging } from './variants.js';
import { SHADERS } from './shaders.generated.js';
import { MASK_HELPERS } from './mask-wgsl.js';

export interface DecodeWarpVariant {
  readonly kernel: 'decode_warp';
  readonly fmt: InFormat;
  readonly D: number;
  readonly DV: number;
  /** Packed rows (group size × query length). */
  readonly R: number;
  /** Keys per lane group and batch (a power of two; decodeWarpGeometry's choice unless tuned). */
  readonly KB: number;
  readonly cap: boolean;
  readonly maskKey: string;
  readonly paged?: KvPaging;
  /** Real subgroup shuffles (subgroups of exactly 32 lanes); false = emulated through workgroup memory. */
  readonly sg: boolean;
  /** The four subgroups' partials combined in workgroup memory (decodeWarpCombines): one partial per workgroup. */
  readonly combine: boolean;
  /** Eight elements per lane chunk (16-byte loads of 16-bit K/V) instead of four. */
  readonly wide: boolean;
  /** Prefetch depth: each batch's K/V loads issued this many batches ahead (0–2; registers grow with it). */
  readonly pipe: number;
  /**
   * Sub-splits a workgroup (1–4; 4·SS subgroups, 128·SS invocations): sub-split su takes every SS-th tile of
   * the workgroup's split, and the 4·SS subgroups' partials are combined in workgroup memory four at a
   * time (SS rounds). Needs `combine`. With `fin`, a workgroup that holds its sequence's whole KV this way
   * writes the output itself and the merge pass goes.
   */
  readonly SS?: number;
  /**
   * The workgroup writes the normalised output (in this format) and the LSE itself instead of a partial:
   * every split holds a whole (sequence, KV head), so decode_merge does not run. Needs `combine`.
   */
  readonly fin?: 'f32' | 'f16' | 'bf16';
  /** Profiling aid: parts dropped, bits 1 K loads, 2 score reduction, 8 V loads, 16 P·V. Wrong results. */
  readonly ablate?: number;
}

const pow2ceil = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));
const pow2floor = (x: number) => 2 ** Math.floor(Math.log2(Math.max(1, x)));
const log2 = (x: number) => Math.round(Math.log2(x));

/**
 * The register geometry for head dims D, DV and R packed rows, or null when the kernel does not take
 * the shape (head dims below 32 or above 256, more rows than a lane group holds scores for, or more
 * than 64 Q values per lane).
 */
export function decodeWarpGeometry(D: number, DV: number, R: number, fmt: InFormat, kbCap = 16, wide = false): { E: 4 | 8; LPK: number; KPW: number; NCK: number; NCV: number; RP: number; KB: number } | null {
  if (Math.max(D, DV) < 32 || Math.max(D, DV) > 256 || D % 4 !== 0 || DV % 4 !== 0) return null;
  // Elements per lane chunk: 8 (one 16-byte load) for 16-bit K/V when asked and the head dims allow;
  // 4 where eight would leave a row fewer lanes than it has packed rows (small head dims, big groups).
  if (wide && fmt !== 'f32' && D % 8 === 0 && DV % 8 === 0) {
    const g = warpGeometry(D, DV, R, fmt, kbCap, 8);
    if (g) return g;
  }
  return warpGeometry(D, DV, R, fmt, kbCap, 4);
}

function warpGeometry(D: number, DV: number, R: number, fmt: InFormat, kbCap: number, E: 4 | 8): { E: 4 | 8; LPK: number; KPW: number; NCK: number; NCV: number; RP: number; KB: number } | null {
  const LPK = Math.min(32, pow2ceil(Math.max(D, DV) / E));
  const KPW = 32 / LPK;
  const NCK = Math.ceil(D / E / LPK), NCV = Math.ceil(DV / E / LPK);
  const RP = pow2ceil(R);
  if (RP > LPK || RP * E * NCK > 64) return null;
  // K/V registers of a batch: KB·(NCK + NCV) chunk loads, held to 32 registers (16 loads of 16-bit
  // pairs, 8 of f32 or of eight halves). On the H200 (decode-kv4k, d128): f16 KB 8 0.181 ms vs KB 4
  // 0.212; f32 KB 4 0.195 ms vs KB 8 0.278.
  const loads = fmt === 'f32' || E === 8 ? 8 : 16;
  const KB = Math.max(1, Math.min(16 / KPW, LPK / RP, pow2floor(loads / (NCK + NCV)), pow2floor(kbCap)));
  return { E, LPK, KPW, NCK, NCV, RP, KB };
}

/**
 * Whether the subgroups' partials are combined inside the workgroup (4·R·(DV + 2) floats of workgroup
 * memory, held within WebGPU's default 16 KiB); otherwise each subgroup writes its own.
 */
export function decodeWarpCombines(R: number, DV: number): boolean {
  return 16 * R * (DV + 2) <= 16384;
}


const SHUFFLES_REAL = `fn xsh(x: f32, m: u32, lid: u32) -> f32 { return subgroupShuffleXor(x, m); }
fn bsh(x: f32, src: u32, lid: u32) -> f32 { return subgroupShuffle(x, src); }`;
const shufflesEmu = (wg: number) => `var<workgroup> exch: array<f32, ${wg}>;
fn xsh(x: f32, m: u32, lid: u32) -> f32 {
  exch[lid] = x;
  workgroupBarrier();
  let y = exch[lid ^ m];
  workgroupBarrier();
  return y;
}
fn bsh(x: f32, src: u32, lid: u32) -> f32 {
  exch[lid] = x;
  workgroupBarrier();
  let y = exch[(lid & ~31u) | src];
  workgroupBarrier();
  return y;
}`;

export function decodeWarpSource(v: DecodeWarpVariant, maskFn: string): string {
  // The K/V format (a paged pool's, or the inputs'), as the caller chose the geometry with.
  const g = decodeWarpGeometry(v.D, v.DV, v.R, (v.paged?.kvFmt ?? v.fmt) as InFormat, v.KB, v.wide);
  if (!g) throw new Error(`decode_warp: no geometry for D ${v.D}, DV ${v.DV}, R ${v.R}`);
  const { E, LPK, KPW, NCK, NCV, RP } = g;
  const SS = v.SS ?? 1, WG = 128 * SS;
  // Sub-splits with different tile counts: real shuffles loop over their own count; the emulated ones
  // (barriers in the loop) over the largest, guarding the batches past the end.
  const guard = SS > 1 && !v.sg;
  const NT = !v.sg ? 'select(0u, ((e1 - e0 + SS - 1u) / SS) * NB, e1 > e0)' : 'select(0u, ((e1 - e0 - su + SS - 1u) / SS) * NB, e1 > e0 + su)';
  if (SS < 1 || SS > 4 || ((SS > 1 || v.fin) && !v.combine)) throw new Error(`decode_warp: SS ${SS}${v.fin ? ', fin' : ''} needs combine`);
  // A lane's chunk t of a row holds elements (gl + LPK·t)·E … +E − 1, as NH four-element parts h.
  const NH = E / 4;
  const parts = (n: number) => Array.from({ length: n * NH }, (_, i) => [Math.floor(i / NH), i % NH] as const);
  const col = (t: number) => `(gl + ${LPK * t}u) * ${E}u`;
  const KB = v.KB;
  const V = KB * RP;
  const SH = log2(LPK / V), LKB = log2(KB);
  const ab = v.ablate ?? 0;
  // Paged K/V: a batch's keys start at a multiple of KB, so when the block size is a multiple of KB they
  // are consecutive slots of one block (K and V share slots and base): one table lookup per batch.
  const oneLookup = v.paged !== undefined && v.paged.bs % KB === 0;
  // Lane bits of the key index within a group (row reductions) and of the lane groups.
  const keyMasks = Array.from({ length: LKB }, (_, i) => 1 << (SH + i));
  const groupMasks = Array.from({ length: log2(KPW) }, (_, i) => LPK << i);
  const red = (name: string, op: (a: string, b: string) => string, masks: number[]) =>
    `fn ${name}(x: f32, lid: u32) -> f32 {\n  var y = x;\n${masks.map((m) => `  y = ${op('y', `xsh(y, ${m}u, lid)`)};`).join('\n')}\n  return y;\n}`;

  // Reduce-scatter of x0..x(V−1) over the LPK lanes of a group: masks LPK/2 … LPK/V halve the values,
  // the remaining masks (LPK/V)/2 … 1 add the copies.
  const rs: string[] = [];
  let n = V;
  for (let m = LPK / 2; m >= 1; m /= 2) {
    if (n > 1) {
      const h = n / 2;
      rs.push(`      { let bit = (gl & ${m}u) != 0u;`);
      for (let i = 0; i < h; i++) rs.push(`        let t${i} = xsh(select(x${i + h}, x${i}, bit), ${m}u, lid); x${i} = select(x${i}, x${i + h}, bit) + t${i};`);
      rs.push('      }');
      n = h;
    } else {
      rs.push(`      x0 += xsh(x0, ${m}u, lid);`);
    }
  }

  const prelude = [
    v.sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);' : '',
    `const D: u32 = ${v.D}u;`,
    `const DV: u32 = ${v.DV}u;`,
    `const R: u32 = ${v.R}u;`,
    `const KB: u32 = ${KB}u;`,
    `const KPW: u32 = ${KPW}u;`,
    `const LPK: u32 = ${LPK}u;`,
    `const CAP: bool = ${v.cap};`,
    `const SS: u32 = ${SS}u;`,
    v.fin ? `const FMT: u32 = ${v.fin === 'f16' ? 1 : v.fin === 'bf16' ? 2 : 0}u;\n${DECODE_FINISH_WGSL}\n@group(0) @binding(10) var<storage, read_write> out: array<u32>;\n@group(0) @binding(11) var<storage, read_write> lse: array<f32>;\n${v.fin === 'f32' ? '' : CVT16_WGSL}` : '',
    '@group(0) @binding(2) var<storage, read> qb: array<u32>;',
    v.fmt === 'f32' ? 'fn ld_q(e: u32) -> f32 { return bitcast<f32>(qb[e]); }'
      : v.fmt === 'f16' ? 'fn ld_q(e: u32) -> f32 { return unpack2x16float(qb[e >> 1u])[e & 1u]; }'
      : 'fn ld_q(e: u32) -> f32 { let w = qb[e >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u)); }',
    kvRawLoaders(v.fmt, v.paged, E),
    v.sg ? SHUFFLES_REAL : shufflesEmu(WG),
    v.combine ? `var<workgroup> wst: array<f32, ${4 * v.R * (v.DV + 2)}>;` : '',
    red('row_max', (a, b) => `max(${a}, ${b})`, [...keyMasks, ...groupMasks]),
    red('row_sum', (a, b) => `${a} + ${b}`, [...keyMasks, ...groupMasks]),
    red('group_sum', (a, b) => `${a} + ${b}`, groupMasks),
  ].join('\n');

  // Q rows (registers): q{r}_{t} = dims 4·(gl + LPK·t) … +3 of row r, unscaled (the scale multiplies K as it is unpacked).
  const qRegs = each(v.R, (r) => parts(NCK).map(([t, h]) => `  var q${r}_${t}_${h} = vec4<f32>(0.0);
  { let c = ${col(t)} + ${4 * h}u;
    if (${r}u < rows && c < D) { let e = qBase + (${r}u % lenQ) * P.qRow + (hk * P.group + ${r}u / lenQ) * P.qHead + c;
      q${r}_${t}_${h} = vec4<f32>(ld_q(e), ld_q(e + 1u), ld_q(e + 2u), ld_q(e + 3u)); } }`).join('\n'));
  const oRegs = each(v.R, (r) => parts(NCV).map(([t, h]) => `  var o${r}_${t}_${h} = vec4<f32>(0.0);`).join('\n'));

  // Loads of batch `i` into the registers prefixed `d` (c: current, n: next): its first key dkq, the
  // tile's end dkEnd and partial flag, and raw K/V (zero outside the sequence and past the head dims).
  const load = (d: string, i: string) => `      { let e = e0 + su + ((${i}) / NB) * SS;
${guard ? `        let ent = tbl[entries + min(e, e1 - 1u)];
        let k0 = (ent >> 1u) * 64u;
        ${d}kEnd = select(0u, min(k0 + 64u, lenK), e < e1);   // past e1 (a sub-split with fewer tiles): no key` : `        let ent = tbl[entries + e];
        let k0 = (ent >> 1u) * 64u;
        ${d}kEnd = min(k0 + 64u, lenK);`}
        ${d}partial = (ent & 1u) == 1u;
        ${d}kq = k0 + wq * 16u + ((${i}) % NB) * ${KPW * KB}u + gi * KB;   // this lane group's first key
${oneLookup ? `        let kr0 = kv_at(kBase, ${d}kq, P.kRow);   // the batch's KB keys: consecutive slots of one block` : ''}
${each(KB, (kb) => `        { let ok = ${d}kq + ${kb}u < ${d}kEnd;
          let kr = ${oneLookup ? `kr0 + ${kb}u * P.kRow` : `kv_at(kBase, ${d}kq + ${kb}u, P.kRow)`};
          let vr = ${oneLookup ? 'kr' : `kv_at(vBase, ${d}kq + ${kb}u, P.vRow)`};
${each(NCK, (t) => `          ${d}k${kb}_${t} = RAW(); { let c = ${col(t)}; if (${ab & 1 ? 'false && ' : ''}ok && c < D) { ${d}k${kb}_${t} = raw_k(kr + hk * P.kHead + c); } }`)}
${each(NCV, (t) => `          ${d}v${kb}_${t} = RAW(); { let c = ${col(t)}; if (${ab & 8 ? 'false && ' : ''}ok && c < DV) { ${d}v${kb}_${t} = raw_v(vr + hk * P.vHead + c); } }`)}
        }`)}
      }`;
  const regs = (d: string) => `  var ${d}kq = 0u;
  var ${d}kEnd = 0u;
  var ${d}partial = false;
${each(KB, (kb) => `${each(NCK, (t) => `  var ${d}k${kb}_${t}: RAW;`)}
${each(NCV, (t) => `  var ${d}v${kb}_${t}: RAW;`)}`)}`;
  const compute = `
${each(KB, (kb) => parts(NCK).map(([t, h]) => `      let k${kb}_${t}_${h} = unpack${h}(ck${kb}_${t}) * P.scale;`).join('\n'))}
${each(KB, (kb) => parts(NCV).map(([t, h]) => `      let v${kb}_${t}_${h} = unpack${h}(cv${kb}_${t});`).join('\n'))}
      // partial dots, value index r·KB + kb (rows past R are zero)
${each(RP, (r) => each(KB, (kb) => `      var x${r * KB + kb} = ${r < v.R ? parts(NCK).map(([t, h]) => `dot(q${r}_${t}_${h}, k${kb}_${t}_${h})`).join(' + ') : '0.0'};`))}
${ab & 2 ? '' : rs.join('\n')}
      // this lane's score: row sr, key ckq + skb
      var s = x0;
      let key = ckq + skb;
      var keep = sr < rows && key < ckEnd;
      if (CAP) { s = softcap1(s, P.softcap); }
      if (keep && cpartial) { keep = mask_allows(i32(sr % lenQ), i32(key), i32(lenQ), i32(lenK), 0u, s); }
      if (keep && breaks_row(s)) { bad = 1.0; keep = false; }
      s = select(MASKED, s, keep);
      let mNew = max(m, row_max(s, lid));
      let mUse = select(mNew, 0.0, mNew <= MASKED);
      let alpha = select(exp2((m - mUse) * LOG2E), 0.0, m <= MASKED);
      let x = (s - mUse) * LOG2E;
      let p = select(0.0, exp2(x), keep && x >= -126.0);
      l = l * alpha + p;
      m = mNew;
${ab & 16 ? '' : each(v.R, (r) => `      { let a = bsh(alpha, ${r << (SH + LKB)}u, lid);
${each(KB, (kb) => `        let p${kb} = bsh(p, gi * LPK + ${(r * KB + kb) << SH}u, lid);`)}
${parts(NCV).map(([t, h]) => `        o${r}_${t}_${h} = o${r}_${t}_${h} * a${each(KB, (kb) => ` + p${kb} * v${kb}_${t}_${h}`, '')};`).join('\n')}
      }`)}`;
  const copy = (dst: string, src: string) => `${['kq', 'kEnd', 'partial'].map((x) => `      ${dst}${x} = ${src}${x};`).join('\n')}
${each(KB, (kb) => `${each(NCK, (t) => `      ${dst}k${kb}_${t} = ${src}k${kb}_${t};`)}\n${each(NCV, (t) => `      ${dst}v${kb}_${t} = ${src}v${kb}_${t};`)}`)}`;
  // Prefetch depth PD (v.pipe): batch i + PD's loads are issued before batch i's arithmetic, into the
  // register sets n1 … nPD that shift down by one set each batch (c = the batch computed).
  const PD = v.pipe;
  const sets = ['c', ...Array.from({ length: PD }, (_, k) => `n${k + 1}`)];
  const loop = PD > 0
    ? `${sets.map(regs).join('\n')}
${each(PD, (k) => `  if (${k}u < NT) {\n${load(sets[k]!, `${k}u`)}\n  }`)}
  for (var i = 0u; i < NT; i++) {
    if (i + ${PD}u < NT) {
${load(sets[PD]!, `i + ${PD}u`)}
    }
${compute}
${each(PD, (k) => copy(sets[k]!, sets[k + 1]!))}
  }`
    : `${regs('c')}
  for (var i = 0u; i < NT; i++) {
${load('c', 'i')}
${compute}
  }`;

  // Combined (v.combine): every subgroup first reduces its rows across its lane groups (shuffles, all
  // subgroups alike), then in round u the four subgroups of sub-split u write their (m, l, O) rows to the
  // four slots of wst and each invocation folds them, by log-sum-exp, into the running (M, L, O) of the
  // output units it owns (unit x = lid + WG·j: PAIR consecutive columns of one row); at the end the units go
  // to the workgroup's partial or, with fin, to the output and LSE.
  const PAIR = v.fin && v.fin !== 'f32' ? 2 : 1;
  const NE = Math.max(1, Math.ceil((v.R * v.DV) / PAIR / WG));
  const slot = (r: number, x: 'm' | 'l' | 'o', c?: string) => `wst[(wq * R + ${r}u) * stride${x === 'm' ? '' : x === 'l' ? ' + 1u' : ` + 2u + ${c}`}]`;
  const combined = `${each(v.R, (r) => `  let lr${r} = bsh(lsum, ${r << (SH + LKB)}u, lid);
  let mr${r} = bsh(m, ${r << (SH + LKB)}u, lid);
  let br${r} = bsh(badr, ${r << (SH + LKB)}u, lid);
${parts(NCV).map(([t, h]) => `  o${r}_${t}_${h} = vec4<f32>(group_sum(o${r}_${t}_${h}.x, lid), group_sum(o${r}_${t}_${h}.y, lid), group_sum(o${r}_${t}_${h}.z, lid), group_sum(o${r}_${t}_${h}.w, lid));`).join('\n')}`)}
${each(NE, (j) => `  var fM${j} = MASKED;
  var fL${j} = 0.0;
${each(PAIR, (k) => `  var fO${j}_${k} = 0.0;`)}
  var fN${j} = false;`)}
${each(SS, (u) => `  // round ${u}: sub-split ${u}'s four subgroups
  if (su == ${u}u) {
${each(v.R, (r) => `    if (${r}u < rows) {
      if (lane == 0u) { ${slot(r, 'm')} = mr${r}; ${slot(r, 'l')} = select(lr${r}, -1.0, br${r} > 0.0); }
${parts(NCV).map(([t, h]) => `      { let c = ${col(t)} + ${4 * h}u; if (gi == 0u && c < DV) { ${slot(r, 'o', 'c')} = o${r}_${t}_${h}.x; ${slot(r, 'o', 'c + 1u')} = o${r}_${t}_${h}.y; ${slot(r, 'o', 'c + 2u')} = o${r}_${t}_${h}.z; ${slot(r, 'o', 'c + 3u')} = o${r}_${t}_${h}.w; } }`).join('\n')}
    }`)}
  }
  workgroupBarrier();
${each(NE, (j) => `  {
    let x = lid + ${WG * j}u;
    let r = x * ${PAIR}u / DV;
    let c = x * ${PAIR}u % DV;
    if (r < rows) {
      var M = MASKED;
      var nan = false;
      for (var q = 0u; q < 4u; q++) { M = max(M, wst[(q * R + r) * stride]); nan = nan || wst[(q * R + r) * stride + 1u] < 0.0; }
      let mu = select(M, 0.0, M <= MASKED);
      var L = 0.0;
${each(PAIR, (k) => `      var O${k} = 0.0;`)}
      for (var q = 0u; q < 4u; q++) {
        let b = (q * R + r) * stride;
        let f = select(0.0, exp2((wst[b] - mu) * LOG2E), wst[b + 1u] > 0.0);
        L += wst[b + 1u] * f;
${each(PAIR, (k) => `        O${k} += wst[b + ${2 + k}u + c] * f;`)}
      }
${u === 0 ? `      fM${j} = M;
      fL${j} = L;
${each(PAIR, (k) => `      fO${j}_${k} = O${k};`)}
      fN${j} = nan;` : `      // fold into the running (M, L, O)
      let Mn = max(fM${j}, M);
      let mn = select(Mn, 0.0, Mn <= MASKED);
      let a = select(exp2((fM${j} - mn) * LOG2E), 0.0, fM${j} <= MASKED);
      let f = select(exp2((M - mn) * LOG2E), 0.0, M <= MASKED);
      fL${j} = fL${j} * a + L * f;
${each(PAIR, (k) => `      fO${j}_${k} = fO${j}_${k} * a + O${k} * f;`)}
      fM${j} = Mn;
      fN${j} = fN${j} || nan;`}
    }
  }`)}
${u + 1 < SS ? '  workgroupBarrier();' : ''}`)}
${v.fin ? `  // the output (O / L, 0 for a row with no kept key, NaN for a NaN row) and the LSE in natural units
  let oBase = J[6];
  let lseBase = J[7];
${each(NE, (j) => `  {
    let x = lid + ${WG * j}u;
    let r = x * ${PAIR}u / DV;
    let c = x * ${PAIR}u % DV;
    if (r < rows) {
      let h = hk * P.group + r / lenQ;
      let qi = r % lenQ;
      let L = fL${j};
${each(PAIR, (k) => `      let y${k} = finish_out(fO${j}_${k}, L, fN${j}, P.nanv);`)}
      let ob = oBase + qi * P.oRow + h * P.oHead + c;
      ${PAIR === 1 ? 'out[ob] = bitcast<u32>(y0);' : 'out[ob >> 1u] = cvt16(y0) | (cvt16(y1) << 16u);'}
      if (P.hasLse == 1u && c == 0u) { lse[lseBase + h * P.lseHead + qi * P.lseRow] = finish_lse(fM${j}, L, fN${j}, P.negInf, P.nanv); }
    }
  }`)}` : `  let pbase = job * P.partRows * stride;
${each(NE, (j) => `  {
    let x = lid + ${WG * j}u;
    let r = x * ${PAIR}u / DV;
    let c = x * ${PAIR}u % DV;
    if (r < rows) {
      part[pbase + r * stride + 2u + c] = fO${j}_0;
      if (c == 0u) { part[pbase + r * stride] = fM${j}; part[pbase + r * stride + 1u] = select(fL${j}, -1.0, fN${j}); }
    }
  }`)}`}`;
  // Not combined: each subgroup writes its own partial rows.
  const rowPartial = (r: number) => `  {
    let lr = bsh(lsum, ${r << (SH + LKB)}u, lid);
    let mr = bsh(m, ${r << (SH + LKB)}u, lid);
    let br = bsh(badr, ${r << (SH + LKB)}u, lid);
${parts(NCV).map(([t, h]) => `    let o${t}_${h} = vec4<f32>(group_sum(o${r}_${t}_${h}.x, lid), group_sum(o${r}_${t}_${h}.y, lid), group_sum(o${r}_${t}_${h}.z, lid), group_sum(o${r}_${t}_${h}.w, lid));`).join('\n')}
    if (${r}u < rows) {
      if (lane == 0u) { part[pbase + ${r}u * stride] = mr; part[pbase + ${r}u * stride + 1u] = select(lr, -1.0, br > 0.0); }
${parts(NCV).map(([t, h]) => `      { let c = ${col(t)} + ${4 * h}u; if (gi == 0u && c < DV) { part[pbase + ${r}u * stride + 2u + c] = o${t}_${h}.x; part[pbase + ${r}u * stride + 3u + c] = o${t}_${h}.y; part[pbase + ${r}u * stride + 4u + c] = o${t}_${h}.z; part[pbase + ${r}u * stride + 5u + c] = o${t}_${h}.w; } }`).join('\n')}
    }
  }`;
  const write = v.combine ? combined : `  let pbase = (job * 4u + w) * P.partRows * stride;
${each(v.R, (r) => rowPartial(r))}`;

  const body = withDecodeHead(SHADERS['decode_warp']!)
    .replace('//@Q', qRegs)
    .replace('//@O', oRegs)
    .replace('/*@SUBGROUP_BUILTINS*/', v.sg ? ', @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32' : '')
    .replace('/*@W*/', v.sg ? 'sgid' : 'lid / 32u')
    .replace('/*@LANE*/', v.sg ? 'sgl' : 'lid % 32u')
    .replace('//@LOOP', loop)
    .replace('//@NB', `${16 / (KPW * KB)}`)
    .replaceAll('//@SH', `${SH}u`)
    .replaceAll('//@LKB', `${LKB}u`)
    .replace('//@WRITE', write)
    .replace('//@WG', `${WG}`)
    .replace('//@NT', NT)
    .replace('//@SU', SS > 1 ? 'w / 4u' : '0u');
  return `${prelude}\n${body}\n${JOB_WGSL}\n${MASK_HELPERS}\n${maskFn}\n`;
}
