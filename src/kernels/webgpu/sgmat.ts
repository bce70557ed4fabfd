/**
 * The tensor-core flash kernel: f16 in, f32 accumulate, QKᵀ and P·V on WebGPU subgroup matrices
 * (chromium_experimental_subgroup_matrix; Vulkan cooperative matrices underneath), generated per
 * variant so that every matrix is a named variable (an array of subgroup matrices indexed in a loop
 * gave wrong scores on NVIDIA).
 *
 * Workgroup = NS subgroups of 32 lanes (4; 8 in the split form at d ≤ 64; SgmatVariant.NS); subgroup s owns 16 query rows. With
 * GQA the G4 heads of one KV head share the workgroup (heads hb·G4 + s % G4, positions q0 + 16·(s / G4)
 * .. +15), so one K/V tile in workgroup memory serves all NS subgroups. From 1024 keys (SGMAT_MB2_KEYS) a
 * subgroup owns two 16-row query blocks instead (SgmatVariant.MB = 2): each K/V fragment feeds two
 * products and each lane owns one row of the softmax.
 *
 *   once:      the 16·NS query rows → workgroup memory 16 dims at a time (transposed, zero-padded to DP),
 *              each subgroup taking its Q as DP/16 left matrices into registers;
 *   per tile of BK keys:
 *              K and V (both row-major) → workgroup memory (zero rows past the sequence end), one barrier;
 *              S = Q·Kᵀ on subgroup matrices → workgroup memory (f32, column-major), one barrier;
 *              softmax in SIMT (lane → row lane % 16, keys 2c + lane / 16): scale, softcap, predicate on
 *              partial tiles only, NaN flag; P (f16) → workgroup memory where the K tile was;
 *              O += P·V on subgroup matrices: O stays in DVP/16 accumulator matrices for the whole
 *              pass.
 *
 * Subgroup matrices cannot scale rows, so the online softmax rescales lazily (FlashAttention-4's
 * conditional rescaling): a row's reference max moves only when a tile's max exceeds it by more than
 * SLACK (base 2), so P ≤ 2^SLACK. When some row of the workgroup moves, the key loop breaks before P·V
 * and the accumulators make a round trip through workgroup memory, each lane scaling its row by α; that
 * tile's P·V follows and the loop resumes (after the first tile that is rare; kept out of the loop so that
 * only P·V updates the accumulators there). At the end the accumulators go out through workgroup memory
 * once more as O / l.
 *
 * Where the adapter lays subgroups out as lid / 32 (GpuCaps.subgroupLinear, probed at device creation),
 * subgroup and lane come from the invocation index (SgmatVariant.lidsg), so that Dawn can bound every
 * workgroup-memory offset and drop its clamp (docs/webgpu.md, "Reading the machine code").
 *
 * Loads and stores use only the forms measured correct on Dawn/NVIDIA: template-form column-major
 * loads of left, right and result matrices, column-major stores.
 *
 * `split` (SgmatVariant.split) runs f32 inputs on the same f16 tensor cores: every staged value as a high and
 * a scaled low f16 half, three products a product, Q/K/V first scaled into f16's range by a range pass
 * (rangeSource); docs/webgpu.md has the method and its measurements.
 *
 * `emulate` swaps the subgroup-matrix builtins for plain WGSL with the same data layout (matrices as 8
 * values per lane, products through workgroup memory, pair shuffles through workgroup memory, f16
 * rounding by pack/unpack): the same kernel logic then runs on adapters without subgroup matrices or
 * shader-f16 (SwiftShader in CI). It is for tests, not speed.
 */
import { MASK_HELPERS } from './mask-wgsl.js';
import { JOB_WGSL, JOB_WGSL_DIRECT, each, kvAt, kvPrelude, loader, type KvPaging } from './variants.js';

/** Largest head dims the kernel holds in registers (Q: DP/16 left matrices; O: DVP/16 accumulators). */
export const SGMAT_MAX_HEAD_DIM = 128;
/**
 * Stride (halves) of P in workgroup memory. (A stride of 16 first looked broken on the H200; the cause
 * was the 16-byte alignment rule below, and scripts/sgmat-forms.mjs passes stride 16 once it holds.)
 */
const PS = 16;
/** Base-2 headroom of the lazily rescaled softmax. */
const SLACK = 8;

let ablation = '';
/**
 * Profiling aid (scripts/sgmat-profile.mjs): drops parts of the kernel ('load', 'qk', 'softmax', 'pv',
 * comma-separated) so that their cost shows as the time saved; the results are wrong while one is set.
 * Forms that keep the results right: 'vlate' / 'vearly' (V stored after
 * the softmax or with K), 'scatter' (2-byte output stores), 'kfull' / 'qfull' / 'qskip' (the key-block and
 * row skips off, or the row skip at any head dim), 'q1' (Q staged one chunk a barrier pair), 'ns8' / 'ns2' /
 * 'ns1' (subgroups a workgroup, SgmatVariant.NS); 'ss<N>' (S's stride), 'pf' / 'pf1' (the next tile's loads
 * issued after this tile's second / first barrier; the first is the default where head dims pad to 80, and
 * 'nopf' turns it off there), 'nofast' (the softmax fast path off); 'nanbits' (every kept score's bits tested for NaN, as the emulated kernel does, instead of the row sum's at the end); 'norange' (the split form's range pass skipped: right only for inputs
 * inside f16's range); 'lof16' (the split form's high half by an f16 cast, which NVIDIA folds away); 'mb1' / 'mb2' (one or
 * two query blocks a subgroup, SgmatVariant.MB, whatever the key length); 'occ' (resident workgroups, counted in the LSE buffer);
 * 'lidsg' / 'nolidsg' (subgroup and lane from the invocation index, SgmatVariant.lidsg, forced on / off), 'lidrow' (only the
 * softmax's own row indices from it), 'noloopx' (the rescale inside the key loop, the form before it left the loop),
 * 'prow' / 'noprow' (P row-major, forced on / off; the default with 'lidsg' offsets and two query blocks),
 * 'nonk' / 'noflush' (probes: P·V not gated on the tile's key count / no rescale at all; wrong output where needed).
 */
export function setSgmatAblation(parts: string): void { ablation = parts; }
export function sgmatAblation(): string { return ablation; }

export interface SgmatVariant {
  readonly kernel: 'flash_sgmat';
  readonly D: number;
  readonly DV: number;
  /** Heads of one KV group per workgroup (1, 2 or 4). */
  readonly G4: number;
  /**
   * Keys per tile in workgroup memory: 16. (32 was timed slower in 2026-11 and its ablation ('bk32') has since been
   * removed: P row-major, two query blocks and P·V after the loop are generated for 16-key tiles only; on 2026-12-02
   * it no longer compiled, `nk` out of scope in the P·V after the loop.)
   */
  readonly BK: number;
  /**
   * Subgroups a workgroup (16·NS query rows share each K/V tile; the tile plan's Q tiles are 16·NS / G4
   * positions; G4 ≤ NS). 4 in use: on the H200 (bench/results/sgmat-ns-run-Q.txt, outputs bit-identical)
   * 8 subgroups, whose tile loads and barriers serve twice the rows, ran 3–24% slower (fewer workgroups a
   * compute unit, more lanes waiting at each barrier), 2 subgroups 27–40% slower and 1 subgroup (every
   * barrier the subgroup's own, but each K/V tile staged for 16 rows) 2.0–2.5× slower
   * (bench/results/sgmat-ns1-run-R.txt); re-timed in the f16 kernel after the split form's gain, 8 were still
   * 10–40% slower (bench/results/sgmat-f16-ns8-recheck-h200.txt). The split form (twice the staging memory)
   * takes 8 at head dims ≤ 64, 10–13% faster than 4 (sgmatGeometry). 'ns8' / 'ns4' / 'ns2' / 'ns1' in the
   * ablation string select them.
   */
  readonly NS: number;
  /** 16-byte loads: head dims, strides and bases are multiples of 8 halves (4 floats in the split form). */
  readonly vec: boolean;
  readonly natural: boolean;
  readonly cap: boolean;
  /** Raw scores through the max, the scale folded into exp2 (no softcap, no top-k, scale > 0). */
  readonly fuse: boolean;
  readonly outF16: boolean;
  readonly emulate: boolean;
  readonly maskKey: string;
  readonly paged?: KvPaging;
  /** See setSgmatAblation. */
  readonly ablate?: string;
  /**
   * The subgroup and lane taken as lid / 32 and lid % 32 (real matrices; GpuCaps.subgroupLinear), so that every
   * workgroup-memory offset derives from the invocation index and Dawn's range analysis can drop its bounds
   * clamp; the driver then also loads P with ldmatrix. See sgmatSource.
   */
  readonly lidsg?: boolean;
  /**
   * With 16-byte loads, V stored into workgroup memory after the softmax instead of with K (its loads are
   * still issued with K's at the tile's start), so the barrier after the loads waits for K alone. Taken
   * for long key sequences (sgmatVLate).
   */
  readonly vlate?: boolean;
  /**
   * With 16-byte loads, the next tile's K/V loads issued right after this tile's first barrier (they fly
   * during Q·Kᵀ and are stored after the loop's last barrier), where head dims pad to 80 (sgmatPf1).
   */
  readonly pf1?: boolean;
  /**
   * 16-byte output stores: each lane writes 8 consecutive columns of its row per round (DV a multiple of
   * 8; output rows, heads and sequence bases multiples of 8) instead of 8 scattered ones.
   */
  readonly outVec?: boolean;
  /**
   * f32 inputs on the f16 tensor cores (the 3-product split of CUTLASS's 3xTF32, with f16 halves): each
   * staged value x (after the range pass's power-of-two scaling) becomes hi = x rounded to 11 significant bits
   * by integer operations (split_hi) and lo = f16((x − hi)·2¹¹) (split_lo), and every product takes
   * hi·hi + (hi·lo + lo·hi)·2⁻¹¹ with f32 accumulation, about 22 significant bits a value (f32 has 24).
   * The cross terms accumulate first, scaled by 2¹¹ (exact), then the hi·hi term. Taken for f32 calls by
   * attention-gpu.ts's sgmatFit under the 'split' f32 policy.
   */
  readonly split?: boolean;
  /**
   * Query blocks of 16 rows a subgroup (1, or 2: 'mb2'). With 2, each K/V fragment loaded from workgroup
   * memory feeds two products, the workgroup's 32·NS rows share each staged tile, and each lane owns one row
   * (row lane % 16 of block lane / 16) through the softmax, the rescale and the epilogue: all BK keys of it, so
   * the row max and sum need no shuffle. S and P of the two blocks interleave as one 32-row column-major
   * matrix (S at stride 36, conflict-free for the result stores and the row reads). Not the split form.
   */
  readonly MB?: number;
}

const pad16 = (x: number) => Math.ceil(x / 16) * 16;

/** Workgroup memory (bytes) of a variant's geometry. */
export function sgmatSharedBytes(D: number, DV: number, BK: number, emulate: boolean, NS = 4, split = false, MB = 1): number {
  const g = layout(D, DV, BK, emulate, NS, split, MB);
  const half = emulate ? 4 : 2;
  // sKV, sS, wflag; the emulated kernel's staged job prologue (wjob, wtile) and its product buffers.
  return g.KV * half + sLen(BK, NS, sStride(emulate, ablation, MB), MB) * 4 + 4 * 4 + (emulate ? 80 + 256 * NS * 4 + 32 * NS * 4 : 0);
}

/**
 * Stride (f32 elements) of S in workgroup memory: 20 (the emulated kernel too). A result matrix stored
 * column-major puts lane (g, t)'s element (g, 2t) at 2t·stride + g: at stride 16 the four lanes of a row
 * share a bank (a 4-way conflict on each of the 8 stores), at 20 all 32 lanes differ. On the H200
 * (bench/results/sgmat-ss-run-S.txt, outputs bit-identical) stride 20 made 8k-d64 4.6% faster, qwen2vl (d80)
 * 5.6%, 8k-d128-causal 2.6% — but vitL14-336 7% slower, its 1 KiB more having cost d64 a workgroup a compute
 * unit (528 resident instead of 660), hence the trimmed last region and the direct job prologue that keep
 * d64 at 9728 bytes (76 × 128: five workgroups in 48 KiB). 'ss<N>' in the ablation string sets another
 * stride (16: the old layout).
 */
function sStride(emulate: boolean, ablate: string, MB = 1): number {
  // Two query blocks (MB = 2) interleave as one 32-row matrix at stride 36: lane (g, t)'s element (g, 2t) of
  // block b at 72t + 16b + g, banks 8t + 16b + g, all distinct (and a lane's row reads, 36j + 16b + r, too).
  if (MB === 2) return 36;
  const f = emulate ? null : ablate.split(',').map((d) => /^ss(\d+)$/.exec(d)).find(Boolean);
  return f ? Number(f[1]) : 20;
}
/** f32 elements of sS: NS regions of BK·stride, the last without its unread tail (S's last column ends at 15·stride + 16·MB). */
function sLen(BK: number, NS: number, SST: number, MB = 1): number {
  return NS * BK * SST - (SST - 16 * MB);
}

/**
 * Workgroup-memory layout (halves), sKV:
 *   before the loop, Q staged 16 dims at a time (transposed, 16·NS rows at stride QS; real matrices only:
 *   the emulated ones load Q straight from storage);
 *   per tile, K row-major at stride DPS from 0 and V row-major at V0, stride DVS (a row-major right-matrix
 *   load reads it as it is); once every subgroup's Q·Kᵀ has passed the barrier after it, the K tile's place
 *   takes P (NS subgroups × BK keys × PS).
 * Rows are padded by 8 halves on real matrices (SwiftShader, which runs the emulated ones, has 32 KiB).
 * Workgroups a compute unit on the H200 (scripts/occupancy-probe.mjs, and 'occ' below for this kernel): the
 * resident workgroups share 48 KiB of workgroup memory, exactly (5 at 9.5 KiB, 4 at 10–12, 3 at 14–16), and
 * this kernel is bound by it: 5 a unit at d64, 4 at d80, 3 at d128 (bench/results/occupancy-run-R.txt).
 * V row-major instead of transposed (Vᵀ at stride BK + 8, with transposing 2-byte stores) made every shape
 * 13–18% faster with the same occupancy (vitL14-336 0.181 → 0.155 ms, 8k-d64 3.64 → 3.11, qwen2vl 1.97 →
 * 1.74, 8k-d128-causal 3.20 → 2.71; bench/results/sgmat-vrow-run-R.txt, outputs bit-identical).
 * d80 and d128 are held by registers as much as by this memory: at d80, 16 bytes less (9728, the last V
 * row's unread padding trimmed) left it at 4 workgroups a unit (bench/results/sgmat-vtrim-run-R.txt), and Q
 * read from its buffer each tile instead of held in registers was 2.2–2.7× slower at the same occupancy
 * (bench/results/sgmat-qg-run-R.txt).
 * On the H200 (qwen2vl-1024px, d80) each of these cut occupancy-bound time: P in the K tile's place
 * instead of its own buffer 2.82 → 2.33 ms, Q by chunks instead of whole 2.33 → 2.03 with O kept only
 * in the accumulators; d64 and d128 stayed within ±2%. Less memory through denser layouts lost more to
 * bank conflicts than occupancy gained (bench/results/sgmat-layout-run-O.txt, H200, bit-identical outputs):
 * K in contiguous 16-dim blocks without row padding −16% to −29%, Vᵀ rows unpadded −4% to −7%, P at stride
 * 24 instead of 16 −1% to −13% (−2% at d128, where it costs no memory). At d80, Vᵀ unpadded (9.5 KB, which
 * by the 48 KiB rule fits five workgroups a compute unit instead of four) was still 6% slower, and the job
 * prologue read directly (JOB_WGSL_DIRECT, 80 B less) within ±1% (bench/results/sgmat-vnopad-run-Q.txt).
 */
function layout(D: number, DV: number, BK: number, emulate: boolean, NS: number, split = false, MB = 1) {
  const DP = pad16(D), DVP = pad16(DV), pad = emulate ? 0 : 8;
  const QS = 16 * NS * MB + pad, DPS = DP + pad, DVS = DVP + pad;
  // Split (f32 inputs): every staged matrix has a high and a low plane; the low plane of K sits at KL, of P
  // at PL (after all NS subgroups' high planes), of V at V0 + VL, of a staged Q chunk 16·QS after its high one.
  const planes = split ? 2 : 1;
  // P: per subgroup BK keys × 16·MB rows, column-major at stride PS·MB.
  const KL = BK * DPS, PL = NS * BK * PS * MB, VL = BK * DVS;
  const V0 = planes * Math.max(BK * DPS, NS * BK * PS * MB);
  const KV = Math.max(emulate ? 0 : planes * 16 * QS, V0 + planes * BK * DVS);
  return { DP, DVP, QS, DPS, DVS, KV, V0, KL, PL, VL, planes };
}

/**
 * Whether the adapter runs the kernel for head dims D, DV (f16 16×16×16 with an f32 result, head dims
 * ≤ SGMAT_MAX_HEAD_DIM), and its key tile (16 keys); null when it cannot.
 */
export function sgmatGeometry(configs: readonly { componentType: string; resultComponentType: string; M: number; N: number; K: number }[] | null, D: number, DV: number, maxShared: number, maxInvocations = 256, split = false, seqLenK = 0, linear = false): { BK: number; NS: number; MB: number } | null {
  const emulate = configs === null;
  if (!emulate && !configs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16)) return null;
  if (pad16(D) > SGMAT_MAX_HEAD_DIM || pad16(DV) > SGMAT_MAX_HEAD_DIM) return null;
  // 16 keys: workgroup memory bounds how many workgroups share a compute unit (on the H200 8 KiB more
  // per workgroup cost a third of the speed at d64 and d80). Since P took the K tile's place, Q is staged
  // by chunks and O left the registers, 16-key tiles beat 32 everywhere: vitL14-336 47.6 → 56.9 TFLOP/s,
  // 8k-d64 67.7 → 71.9, 8k-d128-causal 48.6 → 80.5, qwen2vl (d80) 72.0 vs 66.6 (64-key tiles, earlier:
  // 36 at vitL14-336).
  const BK = 16;
  if (sgmatSharedBytes(D, DV, BK, emulate, 4, split) > maxShared) return null;
  const parts = ablation.split(',');
  // The split form at head dims ≤ 64 takes 8 subgroups (its K/V tiles, twice the f16 kernel's, then serve 128
  // rows): 10–13% faster at d64 on the H200, 37% slower at d80 and 2% at d128 (bench/results/split-profile-h200.txt).
  // 'ns4' in the ablation string keeps 4.
  const ns8 = parts.includes('ns8') || (split && pad16(D) <= 64 && pad16(DV) <= 64 && !parts.includes('ns4'));
  const NS = ns8 && maxInvocations >= 256 && sgmatSharedBytes(D, DV, BK, emulate, 8, split) <= maxShared ? 8
    : parts.includes('ns2') ? 2 : parts.includes('ns1') ? 1 : 4;
  // Two query blocks a subgroup (SgmatVariant.MB, sgmatTwoBlocks); not the split form.
  const MB = !split && sgmatTwoBlocks(D, DV, seqLenK, linear && !emulate) && sgmatSharedBytes(D, DV, BK, emulate, NS, split, 2) <= maxShared ? 2 : 1;
  return { BK, NS, MB };
}

/**
 * Key lengths from which the tensor-core kernel takes two query blocks a subgroup (SgmatVariant.MB = 2), and
 * the longest at head dims that pad to 80. On the H200 (bench/results/sgmat-mb2-run-W.txt, outputs within
 * 2e-3 of one block, check:gpu 86/86 f16 tensor-core cases with 'mb2'): d64 +2% at 1024 keys, +3% at 2048,
 * +8% at 3072, +7% at 4096, +11% at 8192; d128 +5% at 1024, +12% at 2048 and 4096, +2% at 8k causal; d72/d80
 * +5% at 1024 and 2048 — but −6…−10% at 577 keys (vitL14-336), ±0 at 729 (siglip-384, d72) and −1.6% at 5329
 * (qwen2vl, d80).
 * With invocation-index offsets (SgmatVariant.lidsg, which also loads P with ldmatrix), two blocks won at every
 * shape measured (bench/results/sgmat-lidsg-run-a.txt): vitL14-336 +2.4–5%, siglip-384 +15%, qwen2vl +13%, and
 * 1024–8192 keys at d64/d128 within ±1% of the rule above (one block 16–38% slower there): `linearFrom`.
 */
export const SGMAT_MB2_KEYS = { from: 1024, d80Upto: 4096, linearFrom: 512 } as const;

/**
 * Whether the tensor-core kernel runs two query blocks a subgroup for head dims D, DV and `seqLenK` keys
 * (SGMAT_MB2_KEYS; `linear`: the kernel takes invocation-index offsets, GpuCaps.subgroupLinear); 'mb2' / 'mb1'
 * in the ablation string force it on / off.
 */
/**
 * Whether the tensor-core kernel takes its offsets from the invocation index (SgmatVariant.lidsg) on an adapter
 * whose probed subgroup layout is `subgroupLinear` (GpuCaps): yes unless 'nolidsg' is in the ablation string. The
 * one place that decision is made; the geometry (sgmatTwoBlocks) and the prefetch rule (sgmatPf1) take its result.
 */
export function sgmatLinear(subgroupLinear: boolean): boolean {
  return subgroupLinear && !ablation.split(',').includes('nolidsg');
}

export function sgmatTwoBlocks(D: number, DV: number, seqLenK: number, linear = false): boolean {
  const parts = ablation.split(',');
  if (parts.includes('mb2')) return true;
  if (parts.includes('mb1')) return false;
  if (linear) return seqLenK >= SGMAT_MB2_KEYS.linearFrom;
  const d80 = pad16(D) === 80 && pad16(DV) === 80;
  return seqLenK >= SGMAT_MB2_KEYS.from && !(d80 && seqLenK > SGMAT_MB2_KEYS.d80Upto);
}

/** The matrix operations, real or emulated. */
interface Ops {
  zero: string;
  loadL(arr: string, off: string, stride: string): string;
  /** A left matrix stored row-major (element (m, k) at off + m·stride + k). */
  loadLrow(arr: string, off: string, stride: string): string;
  loadR(arr: string, off: string, stride: string): string;
  /** A right matrix stored row-major (element (k, n) at off + k·stride + n). */
  loadRrow(arr: string, off: string, stride: string): string;
  /** An f32 result matrix (an accumulator) from workgroup memory. */
  loadAcc(arr: string, off: string, stride: string): string;
  mma(a: string, b: string, c: string): string;
  store(arr: string, off: string, m: string, stride: string): string;
  /** An f32 result matrix times a scalar (exact for the powers of two the split form uses). */
  scale(m: string, s: string): string;
}

const REAL: Ops = {
  zero: 'subgroup_matrix_result<f32, 16, 16>()',
  loadL: (a, o, s) => `subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, col_major>(&${a}, ${o}, ${s})`,
  loadLrow: (a, o, s) => `subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&${a}, ${o}, ${s})`,
  loadR: (a, o, s) => `subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&${a}, ${o}, ${s})`,
  loadRrow: (a, o, s) => `subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&${a}, ${o}, ${s})`,
  loadAcc: (a, o, s) => `subgroupMatrixLoad<subgroup_matrix_result<f32, 16, 16>, col_major>(&${a}, ${o}, ${s})`,
  mma: (a, b, c) => `subgroupMatrixMultiplyAccumulate(${a}, ${b}, ${c})`,
  store: (a, o, m, s) => `subgroupMatrixStore<col_major>(&${a}, ${o}, ${m}, ${s});`,
  scale: (m, s) => `subgroupMatrixScalarMultiply(${m}, ${s})`,
};

// Emulated matrices: element i = t·32 + lane of the 16×16 matrix (row i / 16, column i % 16) in slot t.
const EMU: Ops = {
  zero: 'array<f32, 8>()',
  loadL: (a, o, s) => `emu_ld_${a}(${o}, ${s})`,
  loadLrow: (a, o, s) => `emu_ldrow_${a}(${o}, ${s})`,
  // Right operands always come from sKV: kept as (offset, column stride, row stride) and read inside the product.
  loadR: (_a, o, s) => `vec3<u32>(${o}, ${s}, 1u)`,
  loadRrow: (_a, o, s) => `vec3<u32>(${o}, 1u, ${s})`,
  loadAcc: (a, o, s) => `emu_ldr_${a}(${o}, ${s})`,
  mma: (a, b, c) => `emu_mma(${a}, ${b}, ${c})`,
  store: (a, o, m, s) => `emu_st_${a}(${o}, ${m}, ${s});`,
  scale: (m, s) => `emu_scale(${m}, ${s})`,
};

/**
 * The split form's halves. split_hi / split_lo: the kernel's form (below). lo_half: the 'lof16' probe form,
 * the low half of x given h = f16(x), (x − h)·2¹¹ — which NVIDIA's compiler turns into 0 by folding f32(f16(x))
 * to x. Both low halves are 0 where x − h is not finite (x infinite or NaN: h carries it).
 */
const SPLIT_HELPERS = (t: string) => `fn lo_half(x: f32, h: ${t}) -> ${t} {
  let d = (x - f32(h)) * 2048.0;
  return tohalf(select(d, 0.0, (bitcast<u32>(d) & 0x7fffffffu) >= 0x7f800000u));
}
// x rounded to 11 significant bits by integer operations (half-up in magnitude; exact in f16 where x is a
// normal f16), so that no compiler can fold the f16 round trip away; its low part: (x − hi)·2¹¹.
fn split_hi(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  return select(bitcast<f32>((b + 0x1000u) & 0xffffe000u), x, (b & 0x7fffffffu) >= 0x7f800000u);
}
fn split_lo(x: f32, hx: f32) -> f32 {
  let d = (x - hx) * 2048.0;
  return select(d, 0.0, (bitcast<u32>(d) & 0x7fffffffu) >= 0x7f800000u);
}
// Q and P when an input holds an infinity (nfin, from the range pass): the high half truncated toward zero, so the
// low half has x's sign, and a low half that would be 0 for a nonzero finite x is the smallest f16 of x's sign (2⁻²⁴,
// a change of 2⁻³⁵ of the high half's unit). A product with an infinite K or V element then keeps the infinity's
// sign in the cross term (lo·∞) instead of giving −∞ + ∞ or 0·∞ = NaN. Otherwise the rounding form above.
var<private> nfin: bool;
fn split_hi_q(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  return select(split_hi(x), select(bitcast<f32>(b & 0xffffe000u), x, (b & 0x7fffffffu) >= 0x7f800000u), nfin);
}
fn split_lo_q(x: f32, hx: f32) -> HALF {
  let lo = tohalf(split_lo(x, hx));
  let fin = (bitcast<u32>(x) & 0x7fffffffu) < 0x7f800000u;
  return select(lo, select(HALF(5.9604645e-8), HALF(-5.9604645e-8), x < 0.0), nfin && fin && x != 0.0 && lo == HALF(0.0));
}`;

/**
 * The split form's range scaling: the range pass (rangeSource) leaves each of Q, K and V's largest finite
 * magnitude (as bits) in rng[0..2]; 2^e brings it into [2^14, 2^15) (e clamped to ±60 so that the scores'
 * factor 2^(eq+ek) stays a normal f32; 0 for an all-zero or all-non-finite tensor).
 */
const RANGE_HELPERS = `fn range_exp(bits: u32) -> i32 {
  if (bits == 0u) { return 0; }
  return clamp(i32(bits >> 23u) - 141, -60, 60);
}
fn pow2(e: i32) -> f32 { return bitcast<f32>(u32(127 + e) << 23u); }`;

/**
 * The range pass of the split form: the largest finite |x| of each of three f32 buffers (all of each
 * buffer: a superset of a view's elements only loosens the scaling) as bits, atomically maxed into
 * rng[0..2] (cleared before the pass). One 16-byte load a lane per step where the buffer's length allows.
 */
export function rangeSource(): string {
  return `struct RP { n0: u32, n1: u32, n2: u32, stride: u32 }
@group(0) @binding(0) var<uniform> R: RP;
@group(0) @binding(1) var<storage, read> a0: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> a1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> a2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> rng: array<atomic<u32>, 4>;
var<workgroup> wm: array<atomic<u32>, 4>;
fn fin(v: vec4<f32>) -> u32 {
  let b = bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu);
  let f = select(vec4<u32>(0u), b, b < vec4<u32>(0x7f800000u));
  return max(max(f.x, f.y), max(f.z, f.w));
}
fn has_inf(v: vec4<f32>) -> u32 {
  return select(0u, 1u, any((bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) == vec4<u32>(0x7f800000u)));
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var m0 = 0u; var m1 = 0u; var m2 = 0u; var inf = 0u;
  for (var i = gid.x; i < R.n0; i += R.stride) { m0 = max(m0, fin(a0[i])); inf = max(inf, has_inf(a0[i])); }
  for (var i = gid.x; i < R.n1; i += R.stride) { m1 = max(m1, fin(a1[i])); inf = max(inf, has_inf(a1[i])); }
  for (var i = gid.x; i < R.n2; i += R.stride) { m2 = max(m2, fin(a2[i])); inf = max(inf, has_inf(a2[i])); }
  atomicMax(&wm[0], m0); atomicMax(&wm[1], m1); atomicMax(&wm[2], m2); atomicMax(&wm[3], inf);
  workgroupBarrier();
  if (lid == 0u) {
    atomicMax(&rng[0], atomicLoad(&wm[0])); atomicMax(&rng[1], atomicLoad(&wm[1])); atomicMax(&rng[2], atomicLoad(&wm[2]));
    atomicMax(&rng[3], atomicLoad(&wm[3]));
  }
}
`;
}

const emuHelpers = (NS: number) => `
var<private> emu_sg: u32;
var<private> emu_lane: u32;
var<workgroup> emuA: array<f32, ${256 * NS}>;
var<workgroup> exch: array<f32, ${32 * NS}>;
// Q rows pos0 .. pos0+15, dims c0 .. c0+15 of head h (zero outside the sequence and past D); part 1: the
// split form's low halves.
fn emu_ld_q(c0: u32, qBase: u32, pos0: u32, h: u32, lenQ: u32, part: u32, f: f32) -> array<f32, 8> {
  var m: array<f32, 8>;
  for (var t = 0u; t < 8u; t++) {
    let i = t * 32u + emu_lane;
    let qp = pos0 + i / 16u;
    let c = c0 + i % 16u;
    var x = 0.0;
    if (qp < lenQ && c < D) { x = ld_q(qBase + qp * P.qRow + h * P.qHead + c) * f; }
    let hx = split_hi_q(x);
    m[t] = select(tohalf(hx), split_lo_q(x, hx), part == 1u);
  }
  return m;
}
fn emu_scale(a: array<f32, 8>, s: f32) -> array<f32, 8> {
  var r = a;
  for (var t = 0u; t < 8u; t++) { r[t] *= s; }
  return r;
}
fn emu_ldrow_sKV(off: u32, stride: u32) -> array<f32, 8> {
  var m: array<f32, 8>;
  for (var t = 0u; t < 8u; t++) { let i = t * 32u + emu_lane; m[t] = sKV[off + (i / 16u) * stride + i % 16u]; }
  return m;
}
fn emu_ld_sKV(off: u32, stride: u32) -> array<f32, 8> {
  var m: array<f32, 8>;
  for (var t = 0u; t < 8u; t++) { let i = t * 32u + emu_lane; m[t] = sKV[off + (i % 16u) * stride + i / 16u]; }
  return m;
}
// An accumulator back from sS (the inverse of emu_st_sS).
fn emu_ldr_sS(off: u32, stride: u32) -> array<f32, 8> {
  var m: array<f32, 8>;
  for (var t = 0u; t < 8u; t++) { let i = t * 32u + emu_lane; m[t] = sS[off + (i % 16u) * stride + i / 16u]; }
  return m;
}
fn emu_st_sS(off: u32, m: array<f32, 8>, stride: u32) {
  for (var t = 0u; t < 8u; t++) { let i = t * 32u + emu_lane; sS[off + (i % 16u) * stride + i / 16u] = m[t]; }
}
fn emu_mma(a: array<f32, 8>, b: vec3<u32>, c: array<f32, 8>) -> array<f32, 8> {
  let base = emu_sg * 256u;
  for (var t = 0u; t < 8u; t++) { emuA[base + t * 32u + emu_lane] = a[t]; }
  workgroupBarrier();
  var r = c;
  for (var t = 0u; t < 8u; t++) {
    let i = t * 32u + emu_lane;
    let row = i / 16u;
    let col = i % 16u;
    var s = 0.0;
    for (var k = 0u; k < 16u; k++) { s += emuA[base + row * 16u + k] * sKV[b.x + col * b.y + k * b.z]; }
    r[t] += s;
  }
  workgroupBarrier();
  return r;
}
fn partner(x: f32, lid: u32) -> f32 {
  exch[lid] = x;
  workgroupBarrier();
  let y = exch[lid ^ 16u];
  workgroupBarrier();
  return y;
}
// x rounded to f16 (WGSL leaves the packing of ±∞ and NaN indeterminate: they pass through as they are).
fn tohalf(x: f32) -> f32 {
  return select(unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x, x, (bitcast<u32>(x) & 0x7fffffffu) >= 0x7f800000u);
}
${SPLIT_HELPERS('f32')}
`;

const REAL_HELPERS = `
fn partner(x: f32, lid: u32) -> f32 { return subgroupShuffleXor(x, 16u); }
fn tohalf(x: f32) -> f16 { return f16(x); }
${SPLIT_HELPERS('f16')}
`;


export function sgmatSource(v: SgmatVariant, maskFn: string): string {
  const M = v.emulate ? EMU : REAL;
  const BK = v.BK;
  const drop = new Set((v.ablate ?? '').split(',').filter(Boolean));
  // MB = 2 (SgmatVariant.MB): two 16-row query blocks a subgroup; `two` marks its code. Matrices of block b
  // are named with the suffix _b (qn, on).
  const MB = v.MB ?? 1, two = MB === 2;
  if (two && v.split) throw new Error('sgmatSource: MB = 2 has no split form');
  const NS = v.NS, NT = 32 * NS, QR = 16 * NS * MB;
  const split = !!v.split;
  const { DP, DVP, QS, DPS, DVS, KV, V0, KL, PL, VL, planes } = layout(v.D, v.DV, BK, v.emulate, NS, split, MB);
  // Scores a lane takes in the softmax: half a row's BK keys (MB = 1), or all of its own row's (MB = 2).
  const PSM = PS * MB, R16 = 16 * MB, NSC = two ? BK : BK / 2;
  const qn = (kd: number, b: number) => (two ? `q${kd}_${b}` : `q${kd}`);
  const on = (db: number, b: number) => (two ? `o${db}_${b}` : `o${db}`);
  const blocks = (f: (b: number) => string, sep = '\n') => each(MB, f, sep);
  // Elements a 16-byte load: 8 halves, or 4 floats in the split form.
  const E = split ? 4 : 8, SH = split ? 2 : 3;
  const W = split ? 'vec4<f32>' : 'vec4<u32>', W0 = split ? 'vec4<f32>(0.0)' : 'vec4<u32>(0u)';
  const NKD = DP / 16, NDV = DVP / 16, NKB = BK / 16, NR = Math.ceil(DVP / BK), HB = BK / 2;
  const halfT = v.emulate ? 'f32' : 'f16';
  const outT = v.outF16 && !v.emulate ? 'f16' : 'f32';
  // Work past the data is skipped: a tile's 16-key blocks past its key count (S = Q·Kᵀ and P·V; their
  // scores are masked and their P is 0, so the output is unchanged) and, in the real kernel with value
  // head dims ≤ 64, a subgroup's whole pass when its 16 rows all lie past the sequence (vitL14-336's 577
  // tokens leave one key and one row in the last tiles). On the H200, against neither, in one invocation
  // (bench/results/sgmat-skip-run-L.txt, outputs bit-identical): the key skip is within ±0.5% everywhere;
  // the row skip gains 1–2.5% at vitL14-336 and 1.7% at 8k-d64 but loses 1% at qwen2vl d80 and 1.7% at
  // 8k-d128-causal (code generation: those shapes have no idle rows), hence d ≤ 64 only. The emulated
  // kernel's helpers hold barriers, so it skips only the key blocks (workgroup-uniform). 'kfull' / 'qfull'
  // in the ablation string turn the skips off, 'qskip' forces the row skip at any head dim.
  // Q is staged as many 16-dim chunks at a time as the K/V tile's space holds (two at d64 and d80, four
  // at d128), a barrier pair per group instead of per chunk; 'q1' in the ablation string: one at a time.
  // On the H200 within ±0.6% of one at a time on every shape (bench/results/sgmat-qgroup-run-M.txt).
  const QC = drop.has('q1') ? 1 : Math.max(1, Math.min(NKD, Math.floor(KV / (planes * 16 * QS))));
  const kskip = !drop.has('kfull');
  const qskip = !drop.has('qfull') && !v.emulate && (v.DV <= 64 || drop.has('qskip'));
  // (Block 0 always has keys: both places sit inside `if (nk > 0u)`.)
  // 'pad<N>' in the ablation string: N KiB of extra workgroup memory, touched but never used (an occupancy
  // probe). On the H200 +2 KiB cost 0–21%, +4 KiB 11–22%, +8 KiB 17–42% (bench/results/sgmat-layout-run-O.txt):
  // workgroup memory bounds how many workgroups share a compute unit.
  // 'occ' in the ablation string: an occupancy probe. Each workgroup counts itself in and out of lse[0] and
  // keeps the high-water mark in lse[1] (u32 atomics in the LSE buffer, whose values are then meaningless;
  // call with returnLse): resident workgroups, the quantity scripts/occupancy-probe.mjs measures for plain
  // kernels, for this kernel's own registers and workgroup memory.
  const occ = drop.has('occ') && !v.emulate;
  const padKiB = Number([...drop].find((d) => /^pad\d+$/.test(d))?.slice(3) ?? 0);
  // S's stride (sStride; 'ss<N>' in the ablation string sets another on real matrices).
  const SST = sStride(v.emulate, v.ablate ?? '', MB);
  // FAST ('nofast' in the ablation string turns it off): full tiles that the mask allows whole (nk = BK,
  // not partial) take a softmax without the per-score key test, mask select and underflow guard. Scores
  // past −126 in base 2 give 0 either way after the f16 rounding of P.
  // On the H200 (bench/results/sgmat-fast-run-S.txt, outputs bit-identical, check:gpu 85/85 tensor-core
  // cases): 8k-d128-causal 2.66 → 2.28 ms, vitL14-336 0.145 → 0.140, qwen2vl 1.68 → 1.65, 8k-d64 ±0.3%.
  // That form took NaN from the row sum once a tile (exp2 and + carrying a NaN score into it) instead of
  // testing every score's bits. WGSL leaves NaN through arithmetic indeterminate, and on SwiftShader a NaN
  // score does not reach the sum (the emulated kernel, which runs this path in CI, gave a NaN row's LSE as
  // +∞), so the emulated kernel tests every score's bits (NANBITS below); real matrices take NaN from the row sum's
  // bits at the end (run Y: 2–3% faster than the per-score tests).
  const fastSm = !drop.has('nofast');
  // NANBITS: a NaN or +∞ among the kept scores (break_bits) found from every score's bits (two integer operations a score), as
  // the emulated kernel must (on SwiftShader a NaN score does not reach the row sum); real matrices take it
  // from the row sum's bits at the end instead, since exp2, fma and + carry NaN on the GPUs that have
  // subgroup matrices ('nanbits' in the ablation string restores the per-score tests).
  const nanBits = v.emulate || drop.has('nanbits');
  // LIDROW ('lidrow', two query blocks on real matrices): the row a lane owns through the softmax, the rescale
  // and the epilogue is named by its invocation index (row lid % 32 of subgroup region lid / 32) rather than by
  // its subgroup and lane ids, so that Dawn's range analysis can bound those workgroup-memory indices and drop
  // their clamps (the disassembly showed a clamp and a shift on each of them). The barriers around S and P make
  // any owner valid; the matrix operations keep the subgroup's own offsets.
  // LIDSG ('lidsg', real matrices): the subgroup and lane taken as lid / 32 and lid % 32 (the layout Vulkan
  // drivers give a 1-D workgroup of full 32-wide subgroups), so that every workgroup-memory offset, the
  // subgroup-matrix ones too, derives from the invocation index and can be bounded.
  const lidsg = !v.emulate && (!!v.lidsg || drop.has('lidsg'));
  const lidrow = two && !v.emulate && (drop.has('lidrow') || lidsg);
  // LOOPX ('loopx'): the rescale leaves the key loop (a break before P·V, the flush and that tile's P·V after it,
  // then back in), so that inside the loop only P·V updates the accumulators: the disassembly showed the
  // flush's merge costing ~70 register moves a tile.
  const loopx = !drop.has('noloopx');
  // PROW (two query blocks, 16-key tiles): P row-major in its region (a lane's 16 probabilities consecutive, so
  // that with bounded offsets the compiler can merge them into wide stores), read by row-major left-matrix loads.
  // The default with invocation-index offsets (LIDSG): on the H200 3–6% faster on every profiled shape, outputs
  // bit-identical (bench/results/sgmat-prow-run-b.txt); without them it lost to unmerged, clamped stores (run W).
  // 'prow' in the ablation string forces it (the emulated conformance cases), 'noprow' turns it off.
  if (drop.has('prow') && two && BK !== 16) throw new Error('sgmatSource: prow needs 16-key tiles');
  const prow = two && BK === 16 && (drop.has('prow') || (lidsg && !drop.has('noprow')));
  // P's index of (row, key j) in the owner's region: column-major at stride PSM, or row-major (PROW).
  const pIdx = (j: string, row: string) => (prow ? `sbpr + ${row} * 16u + ${j}` : `sbpr + ${j} * ${PSM}u + ${row}`);
  // P (f16) into workgroup memory; split: its high half there and its low half PL further on.
  const storeP = (idx: string, p: string) => split
    ? splitTo(p, `sKV[${idx}]`, `sKV[${PL}u + ${idx}]`, true)
    : `sKV[${idx}] = tohalf(${p});`;
  // The split form's P stores of a lane's NSC scores on real matrices, after their exps: one uniform branch on
  // nfin between the two splits (split_hi_q's per-score selects cost the split form 4–7% on the H200).
  const storePSplit = (idx: (c: number) => string) => `        if (nfin) {
${each(NSC, (c) => `          ${splitTo(`p${c}`, `sKV[${idx(c)}]`, `sKV[${PL}u + ${idx(c)}]`, true)}`)}
        } else {
${each(NSC, (c) => `          ${splitTo(`p${c}`, `sKV[${idx(c)}]`, `sKV[${PL}u + ${idx(c)}]`)}`)}
        }`;
  const live = (b: number): string => [kskip && b > 0 ? `nk > ${b * 16}u` : '', qskip ? 'rowsLive' : ''].filter(Boolean).join(' && ') || 'true';

  const prelude = [
    ...(v.emulate ? [] : [
      // Offsets derive from the subgroup index, which the uniformity analysis cannot prove subgroup-uniform
      // (they are: a subgroup's lanes share it); the barriers stay workgroup-uniform.
      'diagnostic(off, chromium.subgroup_matrix_uniformity);',
      'diagnostic(off, subgroup_uniformity);',
      'enable f16;',
      'enable subgroups;',
      'enable chromium_experimental_subgroup_matrix;',
    ]),
    `const D: u32 = ${v.D}u;`,
    `const DV: u32 = ${v.DV}u;`,
    `const DP: u32 = ${DP}u;`,
    `const DVP: u32 = ${DVP}u;`,
    `const BK: u32 = ${BK}u;`,
    `const HB: u32 = ${HB}u;`,
    `const G4: u32 = ${v.G4}u;`,
    `const TQ: u32 = ${R16 * (NS / v.G4)}u;`,
    `const NATURAL: bool = ${v.natural};`,
    `const CAP: bool = ${v.cap};`,
    `const SLACK: f32 = ${SLACK}.0;`,
    `alias HALF = ${halfT};`,
    `@group(0) @binding(5) var<storage, read_write> out: array<${v.outVec ? (outT === 'f16' ? 'vec4<u32>' : 'vec4<f32>') : outT}>;`,
    v.vec
      ? `@group(0) @binding(2) var<storage, read> qb: array<${W}>;\n@group(0) @binding(3) var<storage, read> kb: array<${W}>;\n@group(0) @binding(4) var<storage, read> vb: array<${W}>;\n${kvAt(v.paged)}
${!v.emulate ? '' : split ? 'fn ld_q(i: u32) -> f32 { return qb[i >> 2u][i & 3u]; }' : 'fn ld_q(i: u32) -> f32 { return unpack2x16float(qb[i >> 3u][(i >> 1u) & 3u])[i & 1u]; }'}`
      : `${loader('q', 2, split ? 'f32' : 'f16')}\n${kvPrelude(split ? 'f32' : 'f16', v.paged)}`,
  ].join('\n');

  // Tile loads into workgroup memory. VEC: 8 halves per 16-byte load.
  // Real matrices take the halves as they are (bitcast); measured on the H200 as fast as unpacking them to
  // f32 and converting back (bench/results/gpu-h200-sgmat-bc.txt), with two conversions fewer a pair.
  const unpackH = v.emulate ? 'unpack2x16float' : 'bitcast<vec2<f16>>';
  // (Each lane's 8 halves are 8 consecutive 2-byte stores, which the compiler merges: storing them in a
  // per-lane rotated order, which would spread unmerged stores over all 32 banks, was 8–13% slower on every
  // shape: bench/results/sgmat-srot-run-R.txt.)
  // Split: x's high half into hiDst, its low half into loDst. The high half is x rounded by integer
  // operations (split_hi); 'lof16' in the ablation string takes f16(x) and (x − f32(f16(x)))·2¹¹ instead.
  const splitTo = (x: string, hiDst: string, loDst: string, qForm = false) => drop.has('lof16')
    ? `{ let h = tohalf(${x}); ${hiDst} = h; ${loDst} = lo_half(${x}, h); }`
    : qForm ? `{ let hx = split_hi_q(${x}); ${hiDst} = tohalf(hx); ${loDst} = split_lo_q(${x}, hx); }`
    : `{ let hx = split_hi(${x}); ${hiDst} = tohalf(hx); ${loDst} = tohalf(split_lo(${x}, hx)); }`;
  // Split: each of the 4 floats as its high half at dst and its low half `lo` further on.
  const storeW = (dst: (t: number) => string, lo: number, f: string) => split
    ? each(4, (t) => `{ let x = w[${t}] * ${f}; ${splitTo('x', `sKV[${dst(t)}]`, `sKV[${lo}u + ${dst(t)}]`, f === 'fq')} }`, '\n          ')
    : store8(dst);
  const storeX = (dst: string, lo: number, f: string) => split
    ? `{ let xs = x * ${f}; ${splitTo('xs', `sKV[${dst}]`, `sKV[${lo}u + ${dst}]`, f === 'fq')} }`
    : `sKV[${dst}] = HALF(x);`;
  const store8 = (dst: (t: number) => string) => `let a0 = ${unpackH}(w.x); let a1 = ${unpackH}(w.y); let a2 = ${unpackH}(w.z); let a3 = ${unpackH}(w.w);
        ${each(8, (t) => `sKV[${dst(t)}] = HALF(a${t >> 1}.${t & 1 ? 'y' : 'x'});`)}`;
  // Q, dims kd·16 .. kd·16 + 15 of the 16·NS rows, transposed at stride QS (one 16-byte load a lane).
  const loadQChunk = (kd: number, base: number) => v.vec
    ? `for (var u = lid; u < ${(QR * 16) / E}u; u += ${NT}u) {
      let rho = u % ${QR}u; let c8 = ${kd * 16}u + (u / ${QR}u) * ${E}u;
      let s = rho / ${R16}u; let qp = qtile * TQ + (s / G4) * ${R16}u + rho % ${R16}u; let qh = hb * G4 + s % G4;
      var w = ${W0};
      if (qp < lenQ && c8 < D) { w = qb[(qBase + qp * P.qRow + qh * P.qHead + c8) >> ${SH}u]; }
      ${storeW((t) => `${base}u + (c8 - ${kd * 16}u + ${t}u) * ${QS}u + rho`, 16 * QS, 'fq')}
    }`
    : `for (var u = lid; u < ${QR * 16}u; u += ${NT}u) {
      let rho = u % ${QR}u; let c = ${kd * 16}u + u / ${QR}u;
      let s = rho / ${R16}u; let qp = qtile * TQ + (s / G4) * ${R16}u + rho % ${R16}u; let qh = hb * G4 + s % G4;
      var x = 0.0;
      if (qp < lenQ && c < D) { x = ld_q(qBase + qp * P.qRow + qh * P.qHead + c); }
      ${storeX(`${base}u + (c - ${kd * 16}u) * ${QS}u + rho`, 16 * QS, 'fq')}
    }`;
  // VEC: every 16-byte load of a tile is issued before the first store, so their latencies overlap.
  // (Issuing tile t+1's loads into registers while tile t computes was measured slower on the H200:
  // 5.50 vs 5.32 ms on 8k-d64, 3.45 vs 3.22 on qwen2vl; again with 16-key tiles, 3.76 vs 3.42 ms on
  // 8k-d128-causal, 2.35 vs 2.04 on qwen2vl: the registers cost more than the overlap gains. Once more with
  // V row-major, refilling each register set right after it is stored (bench/results/sgmat-pf-run-R.txt,
  // outputs bit-identical, check:gpu 85/85): d64 within ±0.5% at the same 5 workgroups a unit, d80 +1% at
  // 3 instead of 4, d128 −14% at 2 instead of 3. Those loads were issued before the barrier that follows
  // the stores, and a barrier waits for loads in flight (scripts/barrier-probe.mjs), so they overlapped
  // nothing; see PF below for loads issued after a barrier.)
  const nLk = Math.ceil((BK * DP) / E / NT), nLv = Math.ceil((BK * DVP) / E / NT);
  const issueAt = (ks: string, nk: string) => `${each(nLk, (i) => `        wk${i} = ${W0};
        { let u = lid + ${i * NT}u; let j = u / ${DP / E}u; let c8 = (u % ${DP / E}u) * ${E}u;
          if (j < ${nk} && c8 < D && u < ${(BK * DP) / E}u) { wk${i} = kb[(kv_at(kBase, ${ks} + j, P.kRow) + hk * P.kHead + c8) >> ${SH}u]; } }`)}
${each(nLv, (i) => `        wv${i} = ${W0};
        { let u = lid + ${i * NT}u; let j = u / ${DVP / E}u; let c8 = (u % ${DVP / E}u) * ${E}u;
          if (j < ${nk} && c8 < DV && u < ${(BK * DVP) / E}u) { wv${i} = vb[(kv_at(vBase, ${ks} + j, P.vRow) + hk * P.vHead + c8) >> ${SH}u]; } }`)}`;
  const issueKV = issueAt('ks', 'nk');
  // PF ('pf' / 'pf1' in the ablation string; 16-byte loads): tile t+1's loads issued after tile t's second
  // (first) barrier, so that they fly during the softmax (Q·Kᵀ): on Dawn/Vulkan/NVIDIA a workgroup barrier
  // waits for the invocation's loads still in flight (scripts/barrier-probe.mjs: load, barrier, use 190 ns an
  // iteration; the load issued an iteration earlier 193 ns; the barrier alone 26), so loads issued before
  // the barrier that follows their stores hide nothing. Measured (bench/results/sgmat-ss20-pf-run-S.txt,
  // sgmat-fast-run-S.txt; outputs bit-identical, check:gpu 85/85 for each): after the second barrier the
  // registers cost a workgroup a unit (d64 660 → 528 resident, d80 528 → 396, d128 396 → 264) and every shape
  // lost 4–22%: not taken; after the first, d64 keeps 660 but lost 3–8% from 577 to 8192 keys (one run had
  // 8k-d64 4.5% faster, the next 7% slower), d128 3–9%, while qwen2vl (d80) gained 3–4%. So the first form is
  // taken where head dims pad to 80 (SgmatVariant.pf1, sgmatPf1): at d72 and d80 it gained 0.7–3.0% in every
  // one of 729–5329 keys (bench/results/sgmat-pf1-d80-run-T.txt); 'nopf' in the ablation string turns it off there.
  const pfAt = v.vec && !v.emulate ? (drop.has('pf') ? 2 : drop.has('pf1') || v.pf1 ? 1 : 0) : 0;
  const issueNext = pfAt ? `        {
        let ti1 = ti + 1u; let ks1 = (entN >> 1u) * 64u + (ti1 % SUB) * BK;
        let nk1 = select(0u, min(BK, lenK - ks1), ks1 < lenK && ti1 < NT);
${issueAt('ks1', 'nk1')}
        }` : '';
  // (The same addresses written with + − × ÷ of the invocation index only — j·DPS + c8 = 8u + (u ÷ (DP/8))·pad,
  // which Dawn's range analysis can bound, so the stores lose their bounds clamps — measured within ±1% on
  // the H200: bench/results/sgmat-idx-run-K4.txt. The clamps that cost this kernel are elsewhere.)
  const storeK = `${each(nLk, (i) => `        { let u = lid + ${i * NT}u;
          if (u < ${(BK * DP) / E}u) { let w = wk${i}; let j = u / ${DP / E}u; let c8 = (u % ${DP / E}u) * ${E}u;
          ${storeW((t) => `j * ${DPS}u + c8 + ${t}u`, KL, 'fk')} } }`)}`;
  const storeV = `${each(nLv, (i) => `        { let u = lid + ${i * NT}u;
          if (u < ${(BK * DVP) / E}u) { let w = wv${i}; let j = u / ${DVP / E}u; let c8 = (u % ${DVP / E}u) * ${E}u;
          ${storeW((t) => `${V0}u + j * ${DVS}u + c8 + ${t}u`, VL, 'fvi')} } }`)}`;
  // VLATE (SgmatVariant.vlate; 16-byte loads): K and V are loaded together at the tile's start as always,
  // but V is stored into workgroup memory only after the softmax (the barrier before P·V covers it), so the
  // barrier after the loads waits for K alone.
  const vlate = v.vec && !!v.vlate && !pfAt;
  const storeKV = vlate ? storeK : `${storeK}\n${storeV}`;
  // The load registers, declared once per invocation (the form timed and checked on the H200).
  const kvRegs = v.vec ? `${each(nLk, (i) => `  var wk${i}: ${W};`)}\n${each(nLv, (i) => `  var wv${i}: ${W};`)}` : '';
  const loadKV = v.vec
    ? `${issueKV}\n${storeKV}`
    : `for (var u = lid; u < BK * DP; u += ${NT}u) {
      let j = u / DP; let c = u % DP;
      var x = 0.0;
      if (j < nk && c < D) { x = ld_k(kv_at(kBase, ks + j, P.kRow) + hk * P.kHead + c); }
      ${storeX(`j * ${DPS}u + c`, KL, 'fk')}
    }
    for (var u = lid; u < BK * DVP; u += ${NT}u) {
      let j = u / DVP; let c = u % DVP;
      var x = 0.0;
      if (j < nk && c < DV) { x = ld_v(kv_at(vBase, ks + j, P.vRow) + hk * P.vHead + c); }
      ${storeX(`${V0}u + j * ${DVS}u + c`, VL, 'fvi')}
    }`;
  const loadTile = pfAt ? storeKV : drop.has('load') ? `if (lenK > 1000000000u) { ${loadKV} }` : loadKV;

  // O lives only in the accumulators (no per-lane f32 copy: its registers cost occupancy). A rescale
  // round-trips them through sS, each lane scaling its row's BK/2 columns of a round; the epilogue writes
  // O / l (NaN rows: NaN) and the LSE from sS the same way.
  const roundDbs = (rd: number) => Array.from({ length: NDV }, (_, db) => db).filter((db) => Math.floor(db / NKB) === rd);
  // MB = 2: a round per value block, both query blocks' accumulators in the subgroup's S region at
  // offsets 0 and 16 (stride SST), each lane scaling its own row's 16 columns.
  const flush2 = (alpha: string) => each(NDV, (db) => `    ${M.store('sS', 'sb', on(db, 0), `${SST}u`)}
    ${M.store('sS', 'sb + 16u', on(db, 1), `${SST}u`)}
    workgroupBarrier();
    for (var c = 0u; c < 16u; c++) { sS[sbr + c * ${SST}u + rb] *= ${alpha}; }
    workgroupBarrier();
    ${on(db, 0)} = ${M.loadAcc('sS', 'sb', `${SST}u`)};
    ${on(db, 1)} = ${M.loadAcc('sS', 'sb + 16u', `${SST}u`)};
    workgroupBarrier();`);
  const flush = (alpha: string) => two ? flush2(alpha) : each(NR, (rd) => `    ${roundDbs(rd).map((db) => M.store('sS', `sb + ${(db - rd * NKB) * 256}u`, `o${db}`, '16u')).join('\n    ')}
    workgroupBarrier();
    for (var c = 0u; c < HB; c++) { sS[sb + 32u * c + lane] *= ${alpha}; }
    workgroupBarrier();
    ${roundDbs(rd).map((db) => `o${db} = ${M.loadAcc('sS', `sb + ${(db - rd * NKB) * 256}u`, '16u')};`).join('\n    ')}
    workgroupBarrier();`);
  // outVec: the 8 values x[0..7] of output columns col .. col + 7 as one 16-byte store (two for f32).
  const storeOut8 = outT === 'f16'
    ? `out[(ob + col) >> 3u] = vec4<u32>(${[0, 2, 4, 6].map((k) => `bitcast<u32>(vec2<f16>(f16(x[${k}]), f16(x[${k + 1}])))`).join(', ')});`
    : `out[(ob + col) >> 2u] = vec4<f32>(x[0], x[1], x[2], x[3]);
        out[((ob + col) >> 2u) + 1u] = vec4<f32>(x[4], x[5], x[6], x[7]);`;
  // outVec: lane (r, half) takes columns half·HB .. +HB−1 of the round, 8 at a time (S-layout: column c
  // of the round at sb + (c / 16)·256 + (c % 16)·16 + r), one 16-byte store per 8 halves (two for f32).
  const outVecRound = (rd: number) => `if (valid) {
${each(HB / 8, (g) => `    {
      let c0 = half * ${HB}u + ${g * 8}u;
      let col = ${rd * BK}u + c0;
      if (col < DV) {
        var x: array<f32, 8>;
        for (var k = 0u; k < 8u; k++) {
          let c = c0 + k;
          x[k] = select(sS[sb + (c >> 4u) * 256u + (c & 15u) * 16u + r] * inv, P.nanv, bad > 0.0);
        }
        ${storeOut8}
      }
    }`)}
  }`;
  // MB = 2: the lane's own row of each value block, 16 columns (two 16-byte groups of 8 with outVec).
  const outRow2 = (db: number) => v.outVec
    ? each(2, (g) => `    {
      let col = ${db * 16 + g * 8}u;
      if (col < DV) {
        var x: array<f32, 8>;
        for (var k = 0u; k < 8u; k++) { x[k] = select(sS[sbr + (${g * 8}u + k) * ${SST}u + rb] * inv, P.nanv, bad > 0.0); }
        ${storeOut8}
      }
    }`)
    : `    for (var c = 0u; c < 16u; c++) {
      let col = ${db * 16}u + c;
      if (col < DV) { out[ob + col] = ${outT}(select(sS[sbr + c * ${SST}u + rb] * inv, P.nanv, bad > 0.0)); }
    }`;
  // Without per-score NaN tests a kept NaN score has reached the row sum (exp2 and + carry it on the GPUs these
  // kernels run on): its bits decide, and no compiler folds a bit test away.
  const nanFromSum = nanBits ? '' : '  nanb = max(nanb, bitcast<u32>(l) & 0x7fffffffu);\n';
  const epilogue2 = `${nanFromSum}  let bad = select(0.0, 1.0, nanb > 0x7f800000u);
  let ob = oBase + pos * P.oRow + head * P.oHead;
  let inv = select(1.0 / l, 0.0, l == 0.0);
${each(NDV, (db) => `  ${M.store('sS', 'sb', on(db, 0), `${SST}u`)}
  ${M.store('sS', 'sb + 16u', on(db, 1), `${SST}u`)}
  workgroupBarrier();
  if (valid) {
${outRow2(db)}
  }
  workgroupBarrier();`)}
  ${occ ? 'if (lid == 0u) { atomicSub(&lse[0], 1u); }' : `if (valid && P.hasLse == 1u) {
    lse[lseBase + head * P.lseHead + pos * P.lseRow] = select(select((m + log2(l)) * LN2, P.negInf, l == 0.0), P.nanv, bad > 0.0);
  }`}`;
  const epilogue = two ? epilogue2 : `${nanFromSum}  let bad = max(select(0.0, 1.0, nanb > 0x7f800000u), partner(select(0.0, 1.0, nanb > 0x7f800000u), lid));
  let ob = oBase + pos * P.oRow + head * P.oHead;
  let inv = select(${split ? 'fvo' : '1.0'} / l, 0.0, l == 0.0);
${each(NR, (rd) => `  ${roundDbs(rd).map((db) => M.store('sS', `sb + ${(db - rd * NKB) * 256}u`, `o${db}`, '16u')).join('\n  ')}
  workgroupBarrier();
  ${v.outVec ? outVecRound(rd) : `if (valid) {
    for (var c = 0u; c < HB; c++) {
      let col = ${rd * BK}u + 2u * c + half;
      if (col < DV) { out[ob + col] = ${outT}(select(sS[sb + 32u * c + lane] * inv, P.nanv, bad > 0.0)); }
    }
  }`}
  workgroupBarrier();`)}
  ${occ ? 'if (lid == 0u) { atomicSub(&lse[0], 1u); }' : `if (valid && P.hasLse == 1u && half == 0u) {
    lse[lseBase + head * P.lseHead + pos * P.lseRow] = select(select((m + log2(l)) * LN2, P.negInf, l == 0.0), P.nanv, bad > 0.0);
  }`}`;

  // ---- O += P·V (in the loop, and after a rescale when LOOPX moves it out).
  const pvCode = drop.has('pv') ? '' : two ? each(NKB, (kc) => `      if (${live(kc)}) {
      let pm${kc}_0 = ${prow ? M.loadLrow('sKV', 'sbp', '16u') : M.loadL('sKV', `sbp + ${kc * 16 * PSM}u`, `${PSM}u`)};
      let pm${kc}_1 = ${prow ? M.loadLrow('sKV', 'sbp + 256u', '16u') : M.loadL('sKV', `sbp + ${kc * 16 * PSM + 16}u`, `${PSM}u`)};
${each(NDV, (db) => `      {
      let vf = ${M.loadRrow('sKV', `${V0 + kc * 16 * DVS + db * 16}u`, `${DVS}u`)};
      ${on(db, 0)} = ${M.mma(`pm${kc}_0`, 'vf', on(db, 0))};
      ${on(db, 1)} = ${M.mma(`pm${kc}_1`, 'vf', on(db, 1))};
      }`)}
      }`) : each(NKB, (kc) => `      if (${live(kc)}) {
      let pm${kc} = ${M.loadL('sKV', `sbp + ${kc * 16 * PS}u`, `${PS}u`)};
${split ? `      let pml${kc} = ${M.loadL('sKV', `${PL}u + sbp + ${kc * 16 * PS}u`, `${PS}u`)};
` : ''}${each(NDV, (db) => `${split ? `      {
      var x = ${M.scale(`o${db}`, '2048.0')};
      x = ${M.mma(`pm${kc}`, M.loadRrow('sKV', `${V0 + VL + kc * 16 * DVS + db * 16}u`, `${DVS}u`), 'x')};
      x = ${M.mma(`pml${kc}`, M.loadRrow('sKV', `${V0 + kc * 16 * DVS + db * 16}u`, `${DVS}u`), 'x')};
      o${db} = ${M.scale('x', '0.00048828125')};
      }
` : ''}      o${db} = ${M.mma(`pm${kc}`, M.loadRrow('sKV', `${V0 + kc * 16 * DVS + db * 16}u`, `${DVS}u`), `o${db}`)};`)}
      }`);
  const body = `
struct Params {
  qRow: u32, qHead: u32, kRow: u32, kHead: u32,
  vRow: u32, vHead: u32, oRow: u32, oHead: u32,
  lseRow: u32, lseHead: u32, numJobs: u32, hasLse: u32,
  seqTable: u32, planTable: u32, jobTable: u32, maskBase: u32,
  scale: f32, softcap: f32, thrHeadStride: u32, group: u32,
  negInf: f32, nanv: f32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tbl: array<u32>;
@group(0) @binding(6) var<storage, read_write> lse: array<${occ ? 'atomic<u32>' : 'f32'}>;
${split ? `@group(0) @binding(9) var<storage, read> rng: array<u32, 4>;
${RANGE_HELPERS}` : ''}

const LOG2E: f32 = 1.4426950408889634;
const LN2: f32 = 0.6931471805599453;
const MASKED: f32 = -1.0e30;

// Q (transposed, ${QR} rows at stride ${QS}) before the loop; then K row-major at stride ${DPS} and V row-major at ${V0}, stride ${DVS}.
var<workgroup> sKV: array<HALF, ${KV}>;
var<workgroup> sS: array<f32, ${sLen(BK, NS, SST, MB)}>;   // per subgroup 16×BK (column-major at stride ${SST}): S; accumulator flushes at 16
// Every workgroup variable is a multiple of 16 bytes: on Dawn/NVIDIA, subgroup-matrix loads and stores
// in workgroup memory went wrong with a 4-byte variable among them, and this layout passes check:gpu
// (the full rule is not known: see scripts/sgmat-forms.mjs). [0] = the rescale flag.
var<workgroup> wflag: array<u32, 4>;
${padKiB > 0 ? `var<workgroup> wpad: array<vec4<u32>, ${padKiB * 64}>;` : ''}

fn exp2_masked(x: f32) -> f32 {
  return select(exp2(x), 0.0, x < -126.0);
}

${v.emulate ? emuHelpers(NS) : REAL_HELPERS}
@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32${v.emulate ? '' : ',\n        @builtin(subgroup_id) sgid: u32, @builtin(subgroup_invocation_id) sgl: u32'}) {
  let job = wg.x + wg.y * 65535u;
  let sg = ${v.emulate || lidsg ? 'lid / 32u' : 'sgid'};
  let lane = ${v.emulate || lidsg ? 'lid % 32u' : 'sgl'};
  ${v.emulate ? 'emu_sg = sg; emu_lane = lane;' : ''}
  let J = stage_job(job, lid);
  let live = J[0];
  if (live == 0u) { return; }
${occ ? '  if (lid == 0u) { let c = atomicAdd(&lse[0], 1u) + 1u; atomicMax(&lse[1], c); }' : ''}
${padKiB > 0 ? `  if (J[9] == 0xffffffffu) { wpad[lid % ${padKiB * 64}u] = vec4<u32>(J[0]); }` : ''}
  let hb = J[1];
  let qtile = J[2];
  let qBase = J[3];
  let kBase = J[4];
  let vBase = J[5];
  let oBase = J[6];
  let lseBase = J[7];
  let lenQ = J[8];
  let lenK = J[9];
  let plan = J[10];
  let rowGlobal = J[11];
  let entries = tbl[P.planTable + plan * 2u + 1u];
  let range = tile_range(plan, qtile, lid);
  let e0 = range.x;
  let e1 = range.y;

${lidrow ? '  let sgo = lid / 32u;   // the subgroup region whose rows this lane owns (LIDROW)' : '  let sgo = sg;'}
  let head = hb * G4 + sgo % G4;
  let hk = (hb * G4) / P.group;
  let r = ${lidsg ? 'lid % 16u' : 'lane & 15u'};          // this lane's row in the subgroup's 16 (MB = 2: in its block)
  let half = ${lidsg ? '(lid / 16u) % 2u' : 'lane >> 4u'};       // which half of a tile's keys / a round's columns (MB = 2: which query block)
${two ? `  let rb = ${lidrow ? 'lid % 32u' : '16u * half + r'};     // this lane's row in the subgroup's 32 (S and P offsets)
  let pos = qtile * TQ + (sgo / G4) * 32u + rb;` : '  let pos = qtile * TQ + (sg / G4) * 16u + r;'}
  let valid = pos < lenQ;
${split ? `  // Split: Q, K and V scaled by powers of two that bring each one's largest finite magnitude (the range
  // pass, binding 9) into [2^14, 2^15), inside f16's range; the scores and the output scaled back.
  let eq = range_exp(rng[0]); let ek = range_exp(rng[1]); let ev = range_exp(rng[2]);
  nfin = rng[3] != 0u;   // an infinity among Q, K, V: Q and P split by truncation (split_hi_q)
  let fq = pow2(-eq); let fk = pow2(-ek); let fvi = pow2(-ev); let fvo = pow2(ev);
  let scaleN = P.scale * pow2(eq + ek);` : '  let scaleN = P.scale;'}
  let scl = select(scaleN * LOG2E, scaleN, NATURAL);
  let sb = sg * ${SST * BK}u;
  let sbp = sg * ${BK * PSM}u;   // this subgroup's P (${R16}×BK, column-major) in the K tile's place
  let rowsLive = qtile * TQ + (sg / G4) * ${R16}u < lenQ;   // any of this subgroup's ${R16} rows in the sequence
  // The owned rows' S and P regions and liveness (those of the subgroup's own rows unless LIDROW).
  let sbr = sgo * ${SST * BK}u;
  let sbpr = sgo * ${BK * PSM}u;
  let rowsLiveR = qtile * TQ + (sgo / G4) * ${R16}u < lenQ;

  // ---- Q → registers (left matrices), through workgroup memory.
${v.emulate
    ? each(NKD, (kd) => `${blocks((b) => `  let ${qn(kd, b)} = emu_ld_q(${kd * 16}u, qBase, qtile * TQ + (sg / G4) * ${R16}u + ${16 * b}u, head, lenQ, 0u, ${split ? 'fq' : '1.0'});`)}${split ? `
  let ql${kd} = emu_ld_q(${kd * 16}u, qBase, qtile * TQ + (sg / G4) * 16u, head, lenQ, 1u, fq);` : ''}`)
    : each(Math.ceil(NKD / QC), (g) => {
      const kds = Array.from({ length: Math.min(QC, NKD - g * QC) }, (_, i) => g * QC + i);
      return `${kds.map((kd) => `  ${loadQChunk(kd, (kd - g * QC) * planes * 16 * QS)}`).join('\n')}
  workgroupBarrier();
${kds.map((kd) => `${blocks((b) => `  let ${qn(kd, b)} = ${M.loadL('sKV', `${(kd - g * QC) * planes * 16 * QS}u + sg * ${R16}u${b ? ` + ${16 * b}u` : ''}`, `${QS}u`)};`)}${split ? `
  let ql${kd} = ${M.loadL('sKV', `${((kd - g * QC) * planes + 1) * 16 * QS}u + sg * 16u`, `${QS}u`)};` : ''}`).join('\n')}
  workgroupBarrier();`;
    })}

  var m = MASKED;
  var l = 0.0;
  // NaN among the kept scores: the largest magnitude bit pattern seen, compared with the NaN range once at
  // the end (per score where nanBits; else from the row sum's bits there).
  var nanb = 0u;
${each(NDV, (db) => blocks((b) => `  var ${on(db, b)} = ${M.zero};`))}
${kvRegs}

  // Key tiles of BK keys: tile x is sub-tile x % SUB of list entry e0 + x / SUB. The entries of the next
  // two tiles ride on the uniform loads the loop does anyway (wflag[1], wflag[2]), so the tile list costs
  // no barrier of its own.
  let SUB = 64u / BK;
  let NT = (e1 - e0) * SUB;
  if (lid == 0u && NT > 0u) {
    wflag[1] = tbl[entries + min(e0, e1 - 1u)];
    wflag[2] = tbl[entries + min(e0 + 1u / SUB, e1 - 1u)];
  }
  let w0 = workgroupUniformLoad(&wflag);
  var ent = w0[1];
  var entN = w0[2];
${pfAt ? `  {
    let ks = (ent >> 1u) * 64u; let nk = select(0u, min(BK, lenK - ks), ks < lenK && NT > 0u);
${issueKV}
  }` : ''}
${loopx ? `  var ti = 0u;
  var rescale = 1.0;
  loop {
  var pend = false;
  for (; ti < NT; ti++) {` : '  for (var ti = 0u; ti < NT; ti++) {'}
    let ks = (ent >> 1u) * 64u + (ti % SUB) * BK;
    let partial = (ent & 1u) == 1u;
    let nk = select(0u, min(BK, lenK - ks), ks < lenK);
    if (lid == 0u) { wflag[0] = 0u; wflag[1] = tbl[entries + min(e0 + (ti + 2u) / SUB, e1 - 1u)]; }
        ${loadTile}
    workgroupBarrier();
${pfAt === 1 ? issueNext : ''}
    ${loopx ? 'rescale = 1.0;' : 'var rescale = 1.0;'}
    if (nk > 0u) {
        // ---- S = Q·Kᵀ → sS (S[r][j] at j·16 + r)
${drop.has('qk') ? '' : two ? each(NKB, (nb) => `        if (${live(nb)}) {
        var sm${nb}_0 = ${M.zero};
        var sm${nb}_1 = ${M.zero};
${each(NKD, (kd) => `        {
        let kf = ${M.loadR('sKV', `${nb * 16 * DPS + kd * 16}u`, `${DPS}u`)};
        sm${nb}_0 = ${M.mma(qn(kd, 0), 'kf', `sm${nb}_0`)};
        sm${nb}_1 = ${M.mma(qn(kd, 1), 'kf', `sm${nb}_1`)};
        }`)}
        ${M.store('sS', `sb + ${nb * 16 * SST}u`, `sm${nb}_0`, `${SST}u`)}
        ${M.store('sS', `sb + ${nb * 16 * SST + 16}u`, `sm${nb}_1`, `${SST}u`)}
        }`) : each(NKB, (nb) => `        if (${live(nb)}) {
        var sm${nb} = ${M.zero};
${split ? `        {
        var sx = ${M.zero};
${each(NKD, (kd) => `        sx = ${M.mma(`q${kd}`, M.loadR('sKV', `${KL + nb * 16 * DPS + kd * 16}u`, `${DPS}u`), 'sx')};
        sx = ${M.mma(`ql${kd}`, M.loadR('sKV', `${nb * 16 * DPS + kd * 16}u`, `${DPS}u`), 'sx')};`)}
        sm${nb} = ${M.scale('sx', '0.00048828125')};
        }
` : ''}${each(NKD, (kd) => `        sm${nb} = ${M.mma(`q${kd}`, M.loadR('sKV', `${nb * 16 * DPS + kd * 16}u`, `${DPS}u`), `sm${nb}`)};`)}
        ${M.store('sS', `sb + ${nb * 16 * SST}u`, `sm${nb}`, `${SST}u`)}
        }`)}
        workgroupBarrier();
${pfAt === 2 ? issueNext : ''}

        // ---- softmax: lane → row r, keys 2c + half (S[r][j] at sb + j·SST + r: offsets known at compile
        // time; at stride 20 the two halves' reads share 4 banks). Rows past lenQ have zero Q, so finite
        // scores, and are never written. FUSE: scores stay raw (the scale is > 0, so the max commutes
        // with it) and the scale folds into exp2's argument as one fma.
        var mx = MASKED;
        let lim = ${two ? 'nk' : 'nk - half'};
${fastSm ? '        let fastT = nk == BK && !partial;' : ''}
        ${drop.has('softmax') ? 'if (lenK > 1000000000u) {' : qskip ? 'if (rowsLiveR) {' : '{'}
${v.emulate ? `${fastSm ? `        if (fastT) {
        for (var c = 0u; c < ${two ? 'BK' : 'HB'}; c++) {
          let idx = sb + (${two ? 'c' : '2u * c + half'}) * ${SST}u + ${two ? 'rb' : 'r'};
          var s = sS[idx];
          ${v.fuse ? '' : `if (NATURAL) { s *= scaleN; } else { s *= scl; }
          if (CAP) { s = softcap1(s, P.softcap); }`}
          if (NATURAL) { s *= LOG2E; }
          nanb = max(nanb, break_bits(s));
          sS[idx] = s;
          mx = max(mx, s);
        }
        } else {
` : ''}        for (var c = 0u; c < ${two ? 'BK' : 'HB'}; c++) {
          let j = ${two ? 'c' : '2u * c + half'};
          let idx = sb + j * ${SST}u + ${two ? 'rb' : 'r'};
          var s = sS[idx];
          ${v.fuse ? '' : `if (NATURAL) { s *= scaleN; } else { s *= scl; }
          if (CAP) { s = softcap1(s, P.softcap); }`}
          var keep = ${two ? 'c' : '2u * c'} < lim;
          if (keep && partial) { keep = mask_allows(i32(pos), i32(ks + j), i32(lenQ), i32(lenK), head * P.thrHeadStride + rowGlobal + pos, s); }
          if (NATURAL) { s *= LOG2E; }
          s = select(MASKED, s, keep);
          nanb = max(nanb, break_bits(s));
          sS[idx] = s;
          mx = max(mx, s);
        }
${fastSm ? '        }\n' : ''}` : `${each(NSC, (c) => `        let j${c} = ${two ? `${c}u` : `${2 * c}u + half`};
        var s${c} = sS[sbr + j${c} * ${SST}u + ${two ? 'rb' : 'r'}];
        ${v.fuse ? '' : `if (NATURAL) { s${c} *= scaleN; } else { s${c} *= scl; }
        if (CAP) { s${c} = softcap1(s${c}, P.softcap); }`}`)}
${fastSm ? `        if (fastT) {
${each(NSC, (c) => `        if (NATURAL) { s${c} *= LOG2E; }
        ${nanBits ? `nanb = max(nanb, break_bits(s${c}));` : ''}
        mx = max(mx, s${c});`)}
        } else {
` : ''}${each(NSC, (c) => `        var k${c} = ${two ? c : 2 * c}u < lim;
        if (k${c} && partial) { k${c} = mask_allows(i32(pos), i32(ks + j${c}), i32(lenQ), i32(lenK), head * P.thrHeadStride + rowGlobal + pos, s${c}); }
        if (NATURAL) { s${c} *= LOG2E; }
        s${c} = select(MASKED, s${c}, k${c});
        ${nanBits ? `nanb = max(nanb, break_bits(s${c}));` : ''}
        mx = max(mx, s${c});`)}
${fastSm ? '        }\n' : ''}`}        ${two ? '' : 'mx = max(mx, partner(mx, lid));'}
        ${v.fuse ? 'mx = select(MASKED, mx * scl, mx > MASKED);' : ''}
        let moved = mx > m + SLACK;
        let mNew = select(m, mx, moved);
        let need = moved && m > MASKED;
        let alpha = select(1.0, exp2(m - mNew), need);
        let mUse = select(mNew, 0.0, mNew <= MASKED);
        var sum = 0.0;
${v.emulate ? `${fastSm ? `        if (fastT) {
        for (var c = 0u; c < ${two ? 'BK' : 'HB'}; c++) {
          let j = ${two ? 'c' : '2u * c + half'};
          let p = exp2(${v.fuse ? `fma(sS[sb + j * ${SST}u + ${two ? 'rb' : 'r'}], scl, -mUse)` : `sS[sb + j * ${SST}u + ${two ? 'rb' : 'r'}] - mUse`});
          sum += p;
          ${storeP(pIdx('j', two ? 'rb' : 'r'), 'p')}
        }
        } else {
` : ''}        for (var c = 0u; c < ${two ? 'BK' : 'HB'}; c++) {
          let j = ${two ? 'c' : '2u * c + half'};
          let p = exp2_masked(${v.fuse ? `fma(sS[sb + j * ${SST}u + ${two ? 'rb' : 'r'}], scl, -mUse)` : `sS[sb + j * ${SST}u + ${two ? 'rb' : 'r'}] - mUse`});
          sum += p;
          ${storeP(pIdx('j', two ? 'rb' : 'r'), 'p')}
        }
${fastSm ? '        }\n' : ''}` : `${fastSm ? `        if (fastT) {
${each(NSC, (c) => `        let p${c} = exp2(${v.fuse ? `fma(s${c}, scl, -mUse)` : `s${c} - mUse`});
        sum += p${c};${split ? '' : `
        sKV[${pIdx(`j${c}`, two ? 'rb' : 'r')}] = tohalf(p${c});`}`)}
${split ? storePSplit((c) => pIdx(`j${c}`, two ? 'rb' : 'r')) : ''}
        } else {
` : ''}${each(NSC, (c) => `        let p${c} = exp2_masked(${v.fuse ? `fma(s${c}, scl, -mUse)` : `s${c} - mUse`});
        sum += p${c};${split ? '' : `
        sKV[${pIdx(`j${c}`, two ? 'rb' : 'r')}] = tohalf(p${c});`}`)}
${split ? storePSplit((c) => pIdx(`j${c}`, two ? 'rb' : 'r')) : ''}
${fastSm ? '        }\n' : ''}`}        ${two ? '' : 'sum += partner(sum, lid);'}
        l = l * alpha + sum;
        m = mNew;
        if (need) { wflag[0] = 1u; }
        rescale = alpha;
        }
    }${pfAt === 2 ? ` else {
${issueNext}
    }` : ''}
${vlate ? `${storeV}\n` : ''}    let w = workgroupUniformLoad(&wflag);
    ent = entN;
    entN = w[1];
    ${drop.has('nonk') ? '{' : 'if (nk > 0u) {'}
      if (w[0] != 0u) {
${loopx ? '        pend = true;\n        break;' : drop.has('noflush') ? '' : flush('rescale')}
      }

      // ---- O += P·V
${pvCode}
    }
    workgroupBarrier();
  }
${loopx ? `  if (!pend) { break; }
  // A rescale (rare after the first tiles): outside the loop above, so that the accumulators there are
  // updated by P·V alone (LOOPX).
${flush('rescale')}
${pvCode}
  workgroupBarrier();
  ti++;
  }` : ''}

${epilogue}
}
`;
  // Real matrices read the job row directly (tbl is read-only here): 80 bytes of workgroup memory fewer.
  return `${prelude}\n${body}\n${v.emulate ? JOB_WGSL : JOB_WGSL_DIRECT}\n${MASK_HELPERS}\n${maskFn}\n`;
}

/**
 * Key lengths from which the tensor-core kernel stores V after the softmax (SgmatVariant.vlate): value head
 * dims ≥ 128 from 1024 keys, others from 4096. On the H200 (bench/results/sgmat-vlate-run-K.txt and
 * sgmat-vlate-sweep-run-K.txt, B·N = 8192 tokens, H16) d128 gains 6.5% at 1024 keys, 5% at 2048, 4.5% at
 * 4096, 5.6% at 8k causal; d64 loses 11% at 577 keys (vitL14-336) and 3% at 3072, is within ±1.5% from
 * 1024 to 4096 and gains 4.6% at 8192; d80 gains 1% at 5329.
 */
export const SGMAT_VLATE_MIN_KEYS = { d128: 1024, other: 4096 } as const;

/**
 * Whether the tensor-core kernel stores V after the softmax for value head dim `DV` and keys of length
 * `seqLenK` (with 16-byte loads, `vec`; see SGMAT_VLATE_MIN_KEYS); 'vlate' / 'vearly' in the ablation
 * string force it on / off.
 */
export function sgmatVLate(vec: boolean, DV: number, seqLenK: number): boolean {
  const parts = ablation.split(',');
  const from = DV >= 128 ? SGMAT_VLATE_MIN_KEYS.d128 : SGMAT_VLATE_MIN_KEYS.other;
  return vec && !parts.includes('vearly') && (parts.includes('vlate') || seqLenK >= from);
}

/**
 * Whether the tensor-core kernel issues the next tile's loads after the first barrier (SgmatVariant.pf1):
 * with 16-byte loads where both head dims pad to 80 (d65–d80: SigLIP's 72, Qwen2-VL's 80). On the H200
 * (bench/results/sgmat-pf1-d80-run-T.txt, outputs bit-identical) 0.7% faster at siglip-384, 1.3% at d72 1024
 * keys, 2.7% at d80 2048, 3.0% at qwen2vl; at d64 and d128 it was 3–9% slower (sgmat-fast-run-S.txt).
 * 'nopf' in the ablation string turns it off, 'pf1' forces it at any head dim.
 */
export function sgmatPf1(vec: boolean, D: number, DV: number, split = false, linear = false): boolean {
  if (ablation.split(',').includes('nopf')) return false;
  // With invocation-index offsets (SgmatVariant.lidsg) the f16 kernel takes it at every head dim: vitL14-336
  // +4–13%, 8k-d64 +15%, 8k-d128-causal +7%, qwen2vl and siglip-384 (d80/d72, where it was already on) ±0.5%
  // (bench/results/sgmat-lidsg-run-a.txt; check:gpu 190/190 f16 tensor-core cases with it forced). Over paged K/V
  // too: paged ÷ contiguous prefill 0.77–0.89× without it, 0.87–0.94× with it (bench/results/paged-prefill-pf1-run-b.txt;
  // the paged check:gpu cases, f16 at d64/80/128 and int8 on each grid, pass with it).
  if (linear && !split && vec) return true;
  // The split form (f32): where head dims pad to 128 — 4% faster at 8k-d128-causal in
  // bench/results/split-profile-h200.txt, and 1.8% slower at d80.
  const at = split ? 128 : 80;
  return vec && pad16(D) === at && pad16(DV) === at;
}

/**
 * Whether the tensor-core kernel writes its output 16 bytes a store (SgmatVariant.outVec): the value head
 * dim and the output's row, head and sequence offsets multiples of 8 elements. 'scatter' in the ablation
 * string turns it off (scripts/sgmat-profile.mjs times both).
 */
export function sgmatOutVec(DV: number, outAligned8: boolean): boolean {
  return DV % 8 === 0 && outAligned8 && !ablation.split(',').includes('scatter');
}
