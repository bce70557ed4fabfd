/**
 * Kernel variants. One variant object produces the WGSL prelude, the pipeline-cache key and the
 * dispatch geometry, so the key cannot drift from the shader it names.
 */
import { SHADERS } from './shaders.generated.js';
import { MASK_HELPERS } from './mask-wgsl.js';
import { INT8_GAUSSIAN_C } from '../../kvcache/quant.js';

/** ½/127² as a WGSL f32 literal (the gaussian int8 grid's cubic coefficient). */
const INT8_GAUSSIAN_C_WGSL = `${Math.fround(INT8_GAUSSIAN_C)}`;

/** Element format of K/V (or another input) as a kernel reads it from storage. */
export type InFormat = 'f32' | 'f16' | 'bf16';

/** Unrolled source for i in [0, n): the generated kernels name every register instead of indexing arrays. */
export function each(n: number, f: (i: number) => string, sep = '\n'): string {
  return Array.from({ length: n }, (_, i) => f(i)).join(sep);
}

/** Storage loader for a 16/32-bit input binding: 32-bit words, f16/bf16 unpacked to f32. */
export function loader(name: string, binding: number, fmt: InFormat): string {
  if (fmt === 'f32') return `@group(0) @binding(${binding}) var<storage, read> ${name}b: array<f32>;\nfn ld_${name}(e: u32) -> f32 { return ${name}b[e]; }`;
  if (fmt === 'f16') return `@group(0) @binding(${binding}) var<storage, read> ${name}b: array<u32>;\nfn ld_${name}(e: u32) -> f32 { return unpack2x16float(${name}b[e >> 1u])[e & 1u]; }`;
  return `@group(0) @binding(${binding}) var<storage, read> ${name}b: array<u32>;\nfn ld_${name}(e: u32) -> f32 { let w = ${name}b[e >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u)); }`;
}

/**
 * K/V addressing of a variant. Contiguous (absent): key j of a sequence is row kBase + j·row. Paged:
 * the sequence table's K/V base is the offset of the sequence's block table in the metadata, and key j
 * lives in physical slot table[j / bs]·bs + j % bs of the pool ([numBlocks·bs, numKvHeads, headDim]).
 * `kvFmt` 'i8' reads int8 blocks (four per word) scaled per (block, KV head) from bindings 7 and 8; a
 * negative scale marks a (block, head) on the gaussian grid (code x stands for x·(½ + x²·½/127²), quant.ts).
 */
export interface KvPaging {
  readonly bs: number;
  readonly kvFmt: InFormat | 'i8';
  readonly numKvHeads: number;
  readonly headDim: number;
}

/** kv_at(base, key, row): the element offset of key's row (contiguous or through the block table). */
export function kvAt(paged: KvPaging | undefined): string {
  return paged
    ? `const PAGED_BS: u32 = ${paged.bs}u;
fn kv_at(base: u32, key: u32, row: u32) -> u32 {
  return (tbl[base + key / PAGED_BS] * PAGED_BS + key % PAGED_BS) * row;
}`
    : `fn kv_at(base: u32, key: u32, row: u32) -> u32 { return base + key * row; }`;
}

/** kv_at and the K/V loaders (binding 3 = K, 4 = V; int8 scales 7, 8). */
export function kvPrelude(fmt: InFormat, paged: KvPaging | undefined, withV = true): string {
  const lines = [kvAt(paged)];
  if (paged?.kvFmt === 'i8') {
    lines.push(`const KV_HEADS: u32 = ${paged.numKvHeads}u;`, `const KV_D: u32 = ${paged.headDim}u;`);
    for (const [name, binding, sb] of [['k', 3, 7], ['v', 4, 8]] as const) {
      if (name === 'v' && !withV) continue;
      lines.push(`@group(0) @binding(${binding}) var<storage, read> ${name}b: array<u32>;
@group(0) @binding(${sb}) var<storage, read> ${name}sc: array<f32>;
fn ld_${name}(e: u32) -> f32 {
  let x = extractBits(bitcast<i32>(${name}b[e >> 2u]), (e & 3u) * 8u, 8u);
  let s = ${name}sc[(e / (KV_HEADS * KV_D) / PAGED_BS) * KV_HEADS + (e / KV_D) % KV_HEADS];
  let f = f32(x);
  return select(f, f * fma(f * f, ${INT8_GAUSSIAN_C_WGSL}, 0.5), s < 0.0) * abs(s);
}`);
    }
  } else {
    const kf = (paged?.kvFmt ?? fmt) as InFormat;
    lines.push(loader('k', 3, kf));
    if (withV) lines.push(loader('v', 4, kf));
  }
  return lines.join('\n');
}

/**
 * The job prologue and tile-list reads every tiled kernel shares: its job's row of the job table [1], [2]
 * and that job's sequence row [3..11] ([0] = 0 past the last job) as one workgroup-uniform array, then the
 * Q tile's range of tile-list entries and each entry ((key tile << 1) | partial). Needs P.jobTable,
 * P.numJobs, P.seqTable, P.planTable and tbl.
 * - staged (JOB_WGSL): invocation 0 reads the tables and workgroupUniformLoad hands the values to every
 *   invocation (a barrier pair each; tile_entry's is one a tile). Needed where `tbl` is read_write
 *   (topk_threshold writes its thresholds there), so loads from it are not uniform.
 * - direct (JOB_WGSL_DIRECT): every invocation reads `tbl` itself, which is uniform where `tbl` is
 *   read-only (a read-only storage buffer at a uniform index): no workgroup memory, no barriers.
 */
function jobWgsl(direct: boolean): string {
  // The job row's reads, written into J (direct) or straight into the workgroup copy (staged). Staging
  // through a function-local array and one whole-array copy (486023a) made the decode kernel 20–30% slower
  // on the H200 with correct outputs: decode-kv4k f16 0.090 → 0.116–0.120 ms, f32 0.154 → 0.184
  // (bench/results/gpu-h200-run-q-before-fix.txt); written in place again 0.090 and 0.151 (run Q).
  const fill = (J: string) => `let jb = P.jobTable + min(job, P.numJobs - 1u) * 3u;
  let sb = P.seqTable + tbl[jb] * 9u;
  ${J}[0] = select(0u, 1u, job < P.numJobs);
  ${J}[1] = tbl[jb + 1u];
  ${J}[2] = tbl[jb + 2u];
  for (var t = 0u; t < 9u; t++) { ${J}[3u + t] = tbl[sb + t]; }`;
  const bounds = `// Entries [x, y) of Q tile qtile in the tile list of plan.
fn tile_bounds(plan: u32, qtile: u32) -> vec2<u32> {
  let rowStart = tbl[P.planTable + plan * 2u];
  return vec2<u32>(tbl[rowStart + qtile], tbl[rowStart + qtile + 1u]);
}`;
  if (direct) {
    return `${bounds}
fn stage_job(job: u32, lid: u32) -> array<u32, 16> {
  var J: array<u32, 16>;
  ${fill('J')}
  return J;
}
fn tile_range(plan: u32, qtile: u32, lid: u32) -> vec2<u32> { return tile_bounds(plan, qtile); }
fn tile_entry(at: u32, lid: u32) -> u32 { return tbl[at]; }`;
  }
  return `${bounds}
var<workgroup> wjob: array<u32, 16>;
fn stage_job(job: u32, lid: u32) -> array<u32, 16> {
  if (lid == 0u) {
  ${fill('wjob')}
  }
  return workgroupUniformLoad(&wjob);
}
var<workgroup> wtile: array<u32, 4>;
fn tile_range(plan: u32, qtile: u32, lid: u32) -> vec2<u32> {
  if (lid == 0u) { let b = tile_bounds(plan, qtile); wtile[0] = b.x; wtile[1] = b.y; }
  let w = workgroupUniformLoad(&wtile);
  return vec2<u32>(w[0], w[1]);
}
// The tile-list entry at \`at\` ((key tile << 1) | partial), workgroup-uniform.
fn tile_entry(at: u32, lid: u32) -> u32 {
  if (lid == 0u) { wtile[0] = tbl[at]; }
  return workgroupUniformLoad(&wtile[0]);
}`;
}
/**
 * The split phase's uniform block, table and partials (decode_split.wgsl and decode_warp.wgsl, at their
 * //@DECODE_HEAD line): both read the Params that attention-gpu.ts writes for decode, so they share one
 * definition. The output and LSE fields serve decode_warp when it writes the output itself (`fin`).
 */
export const DECODE_HEAD = `struct Params {
  qRow: u32, qHead: u32, kRow: u32, kHead: u32,
  vRow: u32, vHead: u32, numJobs: u32, splitTiles: u32,
  seqTable: u32, planTable: u32, jobTable: u32, maskBase: u32,
  scale: f32, softcap: f32, group: u32, partRows: u32,
  oRow: u32, oHead: u32, lseRow: u32, lseHead: u32,
  hasLse: u32, negInf: f32, nanv: f32, _pad: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tbl: array<u32>;
@group(0) @binding(5) var<storage, read_write> part: array<f32>;`;
/** A split kernel's shader with DECODE_HEAD in place of its //@DECODE_HEAD line. */
export function withDecodeHead(shader: string): string {
  const at = /^\/\/@DECODE_HEAD.*$/m;
  if (!at.test(shader)) throw new Error('withDecodeHead: the shader has no //@DECODE_HEAD line');
  return shader.replace(at, DECODE_HEAD);
}
export const JOB_WGSL = jobWgsl(false);
export const JOB_WGSL_DIRECT = jobWgsl(true);

export interface PortableFlashVariant {
  readonly kernel: 'flash_portable';
  readonly fmt: InFormat;
  readonly D: number;
  readonly DV: number;
  /** Query heads packed per tile (the GQA group, ≤ 64). */
  readonly G: number;
  /** Subgroup row reductions (subgroups of ≥ 16 lanes). */
  readonly sg: boolean;
  readonly cap: boolean;
  readonly maskKey: string;
  /** 32-dim S slices (twice the workgroup memory of 16, half the barriers). */
  readonly wide: boolean;
  /** Four consecutive output columns a thread, V read as vec4 (taken where DV rounds up to a multiple of 64). */
  readonly v4?: boolean;
  /** Two rows a thread and 512 threads instead of four and 256 (with v4, where the adapter allows 512). */
  readonly r2?: boolean;
  /**
   * The V chunk is the whole 64-key tile (wa grows to 16·DVP vec4s where that is more than the slices
   * need: d72–d112 take two chunks a tile otherwise): one V load phase and one barrier pair a tile. Taken
   * where workgroup memory allows (setPortableTuning's vfull): qwen d80 on the H200 14.26 → 13.58 ms.
   */
  readonly vfull?: boolean;
  /**
   * The tile's first V chunk loaded into registers before Q·Kᵀ and stored into workgroup memory at the P·V
   * phase, its latency hidden behind the scores (with vload; setPortableTuning's vpre, on by default).
   */
  readonly vpre?: boolean;
  /**
   * With vpre, each further V chunk of a tile prefetched into registers during the previous chunk's FMAs
   * (tiles of two or more chunks; setPortableTuning's vnext, 'auto' by default).
   */
  readonly vnext?: boolean;
  /**
   * Q, K and V read from storage four elements per load (the default where it applies): head dims, rows,
   * heads and bases are multiples of 4, K/V not int8, and a thread's slice of DS dims a multiple of 4.
   */
  readonly vload?: boolean;
  /**
   * P by chunk (forward only): P kept in registers after the softmax and stored with each V chunk, so P
   * takes 64 × BCV floats of workgroup memory instead of 64 × 64 (BCV at most 32) and the barrier after
   * the softmax goes: 20–24 KiB with 32-dim slices (12–16 with 16-dim ones) instead of 32, so two
   * workgroups share a compute unit (on the H200 about 48 KiB of workgroup memory a compute unit are
   * shared by the resident workgroups; the 32 KiB kernel ran one at a time).
   */
  readonly pch?: boolean;
  /** With pch, the most keys a V chunk (and its P) holds: 32 unless workgroup memory asks for 16 or 8. */
  readonly pcap?: number;
  /** 0 forward; 1 column sums, 2 probability rows (capture from the forward LSE). */
  readonly capture?: 0 | 1 | 2;
  readonly paged?: KvPaging;
  /**
   * Profiling aid (scripts/portable-profile.mjs): parts of the kernel dropped, bits 1 Q/K slice loads,
   * 2 S FMAs, 4 softmax, 8 V loads, 16 P·V FMAs. The results are wrong while it is set.
   */
  readonly ablate?: number;
}

/**
 * DS: dims per S slice (32 when `wide`, else 16); the V chunk (BCV keys, a multiple of 4) fills the same
 * workgroup array (wa, WAN vec4s).
 */
export function portableGeometry(v: { DV: number; wide: boolean; v4?: boolean; vfull?: boolean; pch?: boolean; pcap?: number }) {
  const DS = v.wide ? 32 : 16;
  const DVT = Math.ceil(v.DV / 16);
  const DVP = DVT * 16;
  // wa: 32·DS vec4s (Qᵀ and Kᵀ slices); with vfull at least a whole 64-key V tile (16·DVP vec4s).
  const WAN = Math.max(32 * DS, v.vfull ? 16 * DVP : 0);
  const BCV = Math.min(v.pch ? (v.pcap ?? 32) : 64, Math.floor((4 * WAN) / DVP / 4) * 4);
  // Output values a thread keeps per row: DVT columns tx + 16t, or with v4 four per 64-column group.
  const OT = v.v4 ? 4 * Math.ceil(DVP / 64) : DVT;
  // ps: P for 64 rows × 64 keys, or with pch × BCV keys (vec4s).
  const PSN = v.pch ? 16 * BCV : 1024;
  return { DS, DVT, DVP, BCV, OT, WAN, PSN };
}

/**
 * Workgroup memory (bytes) of a portable-kernel variant: wa, ps, the row reductions without subgroups, and
 * the job staging (none with pch, which reads the tables directly).
 */
export function portableBytes(v: { DV: number; wide: boolean; sg: boolean; vfull?: boolean; pch?: boolean; pcap?: number }): number {
  const g = portableGeometry(v);
  return g.WAN * 16 + g.PSN * 16 + (v.sg ? 0 : 4096) + (v.pch ? 0 : 80);
}

/**
 * Workgroup memory (bytes) of the portable kernel without P by chunk; with `vfullDV` (the value head dim)
 * wa holding a whole V tile.
 */
export function portableSharedBytes(wide: boolean, sg: boolean, vfullDV?: number): number {
  return portableBytes({ DV: vfullDV ?? 16, wide, sg, vfull: vfullDV !== undefined });
}

/**
 * The portable kernel's slice width and (with P by chunk) V chunk cap for an adapter's workgroup memory:
 * 32-dim slices where `wideWanted` and they fit, else 16; with pch the chunk cap 32, else 16 or 8 (so
 * the kernel fits WebGPU's default 16 KiB, with or without subgroups). Null when nothing fits (the whole-
 * tile P of capture passes needs 24 KiB or more).
 */
export function portableFit(o: { DV: number; sg: boolean; pch: boolean; wideWanted: boolean; maxShared: number }): { wide: boolean; pcap: number; bytes: number } | null {
  for (const wide of o.wideWanted ? [true, false] : [false]) {
    for (const pcap of o.pch ? [32, 16, 8] : [64]) {
      const bytes = portableBytes({ DV: o.DV, wide, sg: o.sg, pch: o.pch, pcap });
      if (bytes <= o.maxShared) return { wide, pcap, bytes };
    }
  }
  return null;
}

function reductions(sg: boolean): string {
  if (sg) {
    return `fn rowmax16(x: f32, r: u32, tx: u32) -> f32 {
  var v = x;
  v = max(v, subgroupShuffleXor(v, 1u)); v = max(v, subgroupShuffleXor(v, 2u));
  v = max(v, subgroupShuffleXor(v, 4u)); v = max(v, subgroupShuffleXor(v, 8u));
  return v;
}
fn rowsum16(x: f32, r: u32, tx: u32) -> f32 {
  var v = x;
  v += subgroupShuffleXor(v, 1u); v += subgroupShuffleXor(v, 2u);
  v += subgroupShuffleXor(v, 4u); v += subgroupShuffleXor(v, 8u);
  return v;
}`;
  }
  return `var<workgroup> red: array<f32, 1024>;
fn rowmax16(x: f32, r: u32, tx: u32) -> f32 {
  red[r * 16u + tx] = x;
  workgroupBarrier();
  var m = red[r * 16u];
  for (var t = 1u; t < 16u; t++) { m = max(m, red[r * 16u + t]); }
  workgroupBarrier();
  return m;
}
fn rowsum16(x: f32, r: u32, tx: u32) -> f32 {
  red[r * 16u + tx] = x;
  workgroupBarrier();
  var s = 0.0;
  for (var t = 0u; t < 16u; t++) { s += red[r * 16u + t]; }
  workgroupBarrier();
  return s;
}`;
}

export function variantKey(v: object): string {
  return JSON.stringify(v);
}

/**
 * The portable kernel's loaders: ld_q / ld_k / ld_v and the four-element ld_q4 / ld_k4 / ld_v4 (kvLoader4's),
 * one load each with VLOAD (layout checked by the caller), else composed of scalar loads; both sets exist
 * either way, because the shader's untaken branch must compile.
 */
function portableLoaders(fmt: InFormat, paged: KvPaging | undefined, vload: boolean): string {
  if (!vload) {
    return [loader('q', 2, fmt), 'fn ld_q4(e: u32) -> vec4<f32> { return vec4<f32>(ld_q(e), ld_q(e + 1u), ld_q(e + 2u), ld_q(e + 3u)); }', kvLoader4(fmt, paged, false)].join('\n');
  }
  return [
    `@group(0) @binding(2) var<storage, read> qb: array<${fmt === 'f32' ? 'vec4<f32>' : 'vec2<u32>'}>;`,
    `fn ld_q4(e: u32) -> vec4<f32> { let w = qb[e >> 2u]; return ${fmt === 'f32' ? 'w' : `vec4<f32>(${halfPair(fmt, 'w.x')}, ${halfPair(fmt, 'w.y')})`}; }`,
    'fn ld_q(e: u32) -> f32 { return ld_q4(e & ~3u)[e & 3u]; }',
    kvLoader4(fmt, paged, true),
    ...(['k', 'v'] as const).map((x) => `fn ld_${x}(e: u32) -> f32 { return unpack0(raw_${x}(e & ~3u))[e & 3u]; }`),
  ].join('\n');
}

export function portableSource(v: PortableFlashVariant, maskFn: string): string {
  const pch = !!v.pch && !v.capture;
  const { DS, DVT, DVP, BCV, OT, WAN, PSN } = portableGeometry({ ...v, pch });
  const prelude = [
    v.sg ? 'enable subgroups;' : '',
    `const D: u32 = ${v.D}u;`,
    `const DS: u32 = ${DS}u;`,
    `const DV: u32 = ${v.DV}u;`,
    `const DVT: u32 = ${DVT}u;`,
    `const DVP: u32 = ${DVP}u;`,
    `const OT: u32 = ${OT}u;`,
    `const V4: bool = ${!!v.v4};`,
    `const RPT: u32 = ${v.r2 ? 2 : 4}u;`,
    `const NT: u32 = ${v.r2 ? 512 : 256}u;`,
    `const BCV: u32 = ${BCV}u;`,
    `const G: u32 = ${v.G}u;`,
    `const NP: u32 = ${Math.floor(64 / v.G)}u;`,
    `const CAP: bool = ${v.cap};`,
    `const CAPTURE: u32 = ${v.capture ?? 0}u;`,
    `const VLOAD: bool = ${!!v.vload};`,
    `const WAN: u32 = ${WAN}u;`,
    `const VPRE: bool = ${!!v.vpre};`,
    `const VNEXT: bool = ${!!(v.vpre && v.vnext)};`,
    `const NCH: u32 = ${Math.ceil(64 / BCV)}u;`,
    `const VPN: u32 = ${v.vpre ? Math.ceil((BCV * DVP) / 4 / (v.r2 ? 512 : 256)) : 1}u;`,
    `const PCH: bool = ${pch};`,
    `const PSN: u32 = ${PSN}u;`,
    `const PSR: u32 = ${pch ? BCV / 4 : 16}u;`,
    `const PSJ: u32 = ${pch ? 0 : BCV / 4}u;`,
    `const ABLATE: u32 = ${v.ablate ?? 0}u;`,
    portableLoaders(v.fmt, v.paged, !!v.vload),
    '@group(0) @binding(5) var<storage, read_write> out: array<f32>;',
  ].join('\n');
  return `${prelude}\n${SHADERS['flash_portable']}\n${pch ? JOB_WGSL_DIRECT : JOB_WGSL}\n${reductions(v.sg)}\n${MASK_HELPERS}\n${maskFn}\n`;
}

export interface TopKVariant {
  readonly kernel: 'topk_threshold';
  readonly fmt: InFormat;
  readonly D: number;
  /** Heap size: the k of topK(k). */
  readonly KK: number;
  readonly cap: boolean;
  readonly maskKey: string;
  readonly paged?: KvPaging;
}

export function topkSource(v: TopKVariant, maskFn: string): string {
  const prelude = [
    `const D: u32 = ${v.D}u;`,
    `const KK: u32 = ${v.KK}u;`,
    `const CAP: bool = ${v.cap};`,
    loader('q', 2, v.fmt),
    kvPrelude(v.fmt, v.paged, false),
  ].join('\n');
  return `${prelude}\n${SHADERS['topk_threshold']}\n${JOB_WGSL}\n${MASK_HELPERS}\n${maskFn}\n`;
}

// ---------------------------------------------------------------------------------------------
// Flash-decoding

export interface DecodeVariant {
  readonly kernel: 'decode_split';
  readonly fmt: InFormat;
  readonly D: number;
  readonly DV: number;
  /** Packed rows per workgroup: group size × query length. */
  readonly R: number;
  readonly cap: boolean;
  readonly maskKey: string;
  readonly paged?: KvPaging;
  /** K/V read four elements per load (8–16 bytes): head dims, strides and bases are multiples of 4. */
  readonly vec4: boolean;
  /**
   * Profiling aid (scripts/decode-profile.mjs): parts of the kernel dropped, bits 1 K loads, 2 scores,
   * 4 softmax, 8 V loads, 16 P·V. The results are wrong while it is set.
   */
  readonly ablate?: number;
}

/** Workgroup memory (bytes) of the decode kernel: qs, ss, kv, redm, reds, alpha, slots, JOB_WGSL's 20 words. */
export function decodeSharedBytes(R: number, D: number, DV: number): number {
  return 4 * (R * D + R * 64 + 32 * Math.max(D + 1, DV) + 256 + R + 128 + 20);
}

/** Two 16-bit values (f16 or bf16) of the u32 word w as vec2<f32>, the low half first. */
function halfPair(fmt: InFormat, w: string): string {
  return fmt === 'f16' ? `unpack2x16float(${w})` : `vec2<f32>(bitcast<f32>(${w} << 16u), bitcast<f32>(${w} & 0xffff0000u))`;
}

/** ld_k4 / ld_v4: four consecutive elements of a K/V row from offset e (n of them inside the row). */
function kvLoader4(fmt: InFormat, paged: KvPaging | undefined, vec4: boolean): string {
  if (!vec4) {
    return [kvPrelude(fmt, paged), ...(['k', 'v'] as const).map((x) => `fn ld_${x}4(e: u32, n: u32) -> vec4<f32> {
  var w = vec4<f32>(0.0);
  for (var t = 0u; t < 4u; t++) { if (t < n) { w[t] = ld_${x}(e + t); } }
  return w;
}`)].join('\n');
  }
  return [kvRawLoaders(fmt, paged, 4), ...(['k', 'v'] as const).map((x) => `fn ld_${x}4(e: u32, n: u32) -> vec4<f32> { return unpack0(raw_${x}(e)); }`)].join('\n');
}

/**
 * kv_at, and raw_k / raw_v: one chunk of E (4 or 8) K/V elements at e (a multiple of E) as stored —
 * vec4<f32> (f32), vec2<u32> (four 16-bit values) or vec4<u32> (eight) — so that registers can hold
 * 16-bit data packed; unpack{h}(w) gives elements 4h … 4h + 3 as f32.
 */
export function kvRawLoaders(fmt: InFormat, paged: KvPaging | undefined, E: 4 | 8): string {
  const kf = (paged?.kvFmt ?? fmt) as InFormat;
  const lines = [kvAt(paged)];
  const half = (w: string) => halfPair(kf, w);
  if (kf === 'f32') lines.push('alias RAW = vec4<f32>;\nfn unpack0(w: RAW) -> vec4<f32> { return w; }');
  else if (E === 4) lines.push(`alias RAW = vec2<u32>;\nfn unpack0(w: RAW) -> vec4<f32> { return vec4<f32>(${half('w.x')}, ${half('w.y')}); }`);
  else lines.push(`alias RAW = vec4<u32>;\nfn unpack0(w: RAW) -> vec4<f32> { return vec4<f32>(${half('w.x')}, ${half('w.y')}); }\nfn unpack1(w: RAW) -> vec4<f32> { return vec4<f32>(${half('w.z')}, ${half('w.w')}); }`);
  for (const [x, binding] of [['k', 3], ['v', 4]] as const) {
    lines.push(`@group(0) @binding(${binding}) var<storage, read> ${x}b: array<RAW>;\nfn raw_${x}(e: u32) -> RAW { return ${x}b[e / ${E}u]; }`);
  }
  return lines.join('\n');
}

export function decodeSource(v: DecodeVariant, maskFn: string): string {
  let RP = 1;
  while (RP < v.R) RP *= 2;
  const T = Math.min(64, 128 / RP);
  const prelude = [
    `const D: u32 = ${v.D}u;`,
    `const DV: u32 = ${v.DV}u;`,
    `const R: u32 = ${v.R}u;`,
    `const CPT: u32 = ${Math.ceil(v.DV / 128)}u;`,
    `const T: u32 = ${T}u;`,
    `const NJ: u32 = ${64 / T}u;`,
    `const KVN: u32 = ${32 * Math.max(v.D + 1, v.DV)}u;`,
    `const CAP: bool = ${v.cap};`,
    `const PAGED: bool = ${v.paged !== undefined};`,
    `const ABLATE: u32 = ${v.ablate ?? 0}u;`,
    loader('q', 2, v.fmt),
    kvLoader4(v.fmt, v.paged, v.vec4 && v.paged?.kvFmt !== 'i8'),
  ].join('\n');
  return `${prelude}\n${withDecodeHead(SHADERS['decode_split']!)}\n${JOB_WGSL}\n${MASK_HELPERS}\n${maskFn}\n`;
}

/**
 * decode_merge for value head dim DV, writing f32 (fmt 0) or, as whole words of two, f16 (1) / bf16 (2):
 * a 16-bit output then needs no convert pass (DV and the output offsets even; the caller checks).
 */
export function decodeMergeSource(DV: number, fmt: 0 | 1 | 2 = 0): string {
  const pair = fmt === 0 ? 1 : 2;
  return `const DV: u32 = ${DV}u;\nconst FMT: u32 = ${fmt}u;\nconst PAIR: u32 = ${pair}u;\nconst CPT: u32 = ${Math.ceil(DV / (128 * pair))}u;\n${CVT16_WGSL}\n${DECODE_FINISH_WGSL}\n${SHADERS['decode_merge']}`;
}

/**
 * A decode row's final output value and LSE from its combined (M, L, O), M in natural units: O / L (0 for a
 * row that kept no key, NaN for a NaN row), LSE M + (log2 L)·ln 2 (−∞, NaN). decode_merge and decode_warp's
 * fused form (`fin`) both finish rows with these; LOG2E serves their exp2((m − M)·log2 e).
 */
export const DECODE_FINISH_WGSL = `const LN2: f32 = 0.6931471805599453;
fn finish_out(o: f32, l: f32, bad: bool, nanv: f32) -> f32 { return select(select(o / l, 0.0, l == 0.0), nanv, bad); }
fn finish_lse(m: f32, l: f32, bad: bool, negInf: f32, nanv: f32) -> f32 { return select(select(m + log2(l) * LN2, negInf, l == 0.0), nanv, bad); }`;

/** f32 → f16 (FMT 1) or bf16 (FMT 2) bits, round to nearest even, NaN kept (convert_out and decode_merge). */
export const CVT16_WGSL = `fn bf16_rne(x: f32) -> u32 {
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
fn cvt16(x: f32) -> u32 {
  if (FMT == 1u) { return f16_rne(x); }
  return bf16_rne(x);
}`;

/** f32 → f16 (fmt 1) or bf16 (fmt 2), two per word. */
export function convertSource(fmt: 1 | 2): string {
  return `const FMT: u32 = ${fmt}u;\n${CVT16_WGSL}\n${SHADERS['convert_out']}`;
}
