/**
 * Structural tests of the WebGPU kernel variants that need no GPU: the register geometry of the
 * subgroup decode kernel, where its loop synchronises, the tensor-core kernel's key tile, and the
 * portable kernel's workgroup-memory budget and its form (rows a thread, load width).
 */
import { describe, expect, it } from 'vitest';
import { decodeWarpCombines, decodeWarpGeometry, decodeWarpSource, type DecodeWarpVariant } from '../../../src/kernels/webgpu/decode-warp.js';
import { SGMAT_MB2_KEYS, SGMAT_VLATE_MIN_KEYS, rangeSource, setSgmatAblation, sgmatGeometry, sgmatLinear, sgmatPf1, sgmatSource, sgmatVLate, type SgmatVariant } from '../../../src/kernels/webgpu/sgmat.js';
import { JOB_WGSL, JOB_WGSL_DIRECT, portableBytes, portableFit, portableGeometry, portableSharedBytes } from '../../../src/kernels/webgpu/variants.js';
import { portableForm, setPortableTuning } from '../../../src/kernels/webgpu/attention-gpu.js';

const NO_MASK = 'fn mask_allows(i: i32, j: i32, lenQ: i32, lenK: i32, thr: u32, s: f32) -> bool { return true; }';

describe('decode_warp geometry', () => {
  it('spreads a K/V row over the lanes and sizes the batch by the register budget', () => {
    // d128, GQA 4 (decode-kv4k): one row per 32 lanes; 8 keys per batch in f16, 4 in f32.
    expect(decodeWarpGeometry(128, 128, 4, 'f16')).toEqual({ E: 4, LPK: 32, KPW: 1, NCK: 1, NCV: 1, RP: 4, KB: 8 });
    expect(decodeWarpGeometry(128, 128, 4, 'f32')).toEqual({ E: 4, LPK: 32, KPW: 1, NCK: 1, NCV: 1, RP: 4, KB: 4 });
    // d64: 16 lanes a row, two rows per subgroup step.
    expect(decodeWarpGeometry(64, 64, 1, 'f16')).toMatchObject({ LPK: 16, KPW: 2, KB: 8 });
    // d256: two chunks per lane.
    expect(decodeWarpGeometry(256, 256, 2, 'bf16')).toMatchObject({ LPK: 32, NCK: 2, NCV: 2, KB: 4 });
    // 16-byte loads: eight halves per lane, so half the lanes per row.
    expect(decodeWarpGeometry(128, 128, 4, 'f16', 16, true)).toMatchObject({ E: 8, LPK: 16, KPW: 2 });
    expect(decodeWarpGeometry(128, 128, 4, 'f32', 16, true)).toMatchObject({ E: 4 });
    // ... but four where eight would leave a row fewer lanes than packed rows (d64 with 16 rows, d32 with 8).
    expect(decodeWarpGeometry(64, 64, 16, 'f16', 16, true)).toMatchObject({ E: 4, LPK: 16 });
    expect(decodeWarpGeometry(32, 32, 8, 'f16', 16, true)).toMatchObject({ E: 4, LPK: 8 });
    expect(decodeWarpGeometry(64, 64, 8, 'f16', 16, true)).toMatchObject({ E: 8, LPK: 8 });
  });
  it('declines shapes it cannot hold: more rows than a row has lanes, too many Q registers, odd head dims', () => {
    expect(decodeWarpGeometry(64, 64, 32, 'f16')).toBeNull();    // 32 rows > 16 lanes
    expect(decodeWarpGeometry(128, 128, 32, 'f16')).toBeNull();  // 32 rows × 4 elements > 64 registers
    expect(decodeWarpGeometry(59, 59, 1, 'f16')).toBeNull();
    expect(decodeWarpGeometry(16, 16, 1, 'f32')).toBeNull();
  });
  it('combines the subgroups in workgroup memory only within 16 KiB', () => {
    expect(decodeWarpCombines(4, 128)).toBe(true);
    expect(decodeWarpCombines(16, 64)).toBe(false);
  });
  it('has no barrier in its loop: with real shuffles the only one is the final combine', () => {
    const base: DecodeWarpVariant = { kernel: 'decode_warp', fmt: 'f16', D: 128, DV: 128, R: 4, KB: 8, wide: false, pipe: 1, combine: true, cap: false, maskKey: 'none', sg: true };
    const count = (src: string) => src.split('workgroupBarrier()').length - 1;
    expect(count(decodeWarpSource(base, NO_MASK))).toBe(1);
    expect(count(decodeWarpSource({ ...base, combine: false }, NO_MASK))).toBe(0);
    expect(decodeWarpSource(base, NO_MASK)).toContain('subgroupShuffleXor');
    expect(decodeWarpSource(base, NO_MASK)).toMatch(/sgid\b/);
    // Emulated: the shuffles go through workgroup memory instead.
    const emu = decodeWarpSource({ ...base, sg: false }, NO_MASK);
    expect(emu).not.toContain('subgroupShuffle');
    expect(emu).toContain('var<workgroup> exch');
  });
  it('fused (SS, fin): 4·SS subgroups a workgroup, SS combine rounds, the output and LSE written in place of partials', () => {
    const base: DecodeWarpVariant = { kernel: 'decode_warp', fmt: 'f16', D: 128, DV: 128, R: 4, KB: 4, wide: true, pipe: 1, combine: true, cap: false, maskKey: 'none', sg: true };
    const count = (src: string) => src.split('workgroupBarrier()').length - 1;
    const fused = decodeWarpSource({ ...base, SS: 3, fin: 'f16' }, NO_MASK);
    expect(fused).toContain('@workgroup_size(384)');
    expect(count(fused)).toBe(2 * 3 - 1);   // a barrier after each round's writes, one between rounds
    expect(fused).toContain('cvt16(y0) | (cvt16(y1) << 16u)');
    expect(fused).not.toMatch(/part\[[^\]]*\] =/);
    expect(fused).toContain('lse[lseBase');
    // f32 output: one column a unit, written as the f32 bits; one sub-split keeps the four-subgroup geometry.
    const f32 = decodeWarpSource({ ...base, fin: 'f32' }, NO_MASK);
    expect(f32).toContain('@workgroup_size(128)');
    expect(f32).toContain('out[ob] = bitcast<u32>(y0)');
    expect(f32).toContain('let su = 0u;');
    // Emulated shuffles: a workgroup-wide exchange buffer and the tile loop bound shared by all sub-splits.
    const emu = decodeWarpSource({ ...base, SS: 2, fin: 'f32', sg: false }, NO_MASK);
    expect(emu).toContain('var<workgroup> exch: array<f32, 256>');
    expect(emu).toContain('let NT = select(0u, ((e1 - e0 + SS - 1u) / SS) * NB, e1 > e0)');
    expect(() => decodeWarpSource({ ...base, SS: 2, combine: false }, NO_MASK)).toThrow(/needs combine/);
    expect(() => decodeWarpSource({ ...base, fin: 'f32', combine: false }, NO_MASK)).toThrow(/needs combine/);
  });
});

describe('tensor-core kernel key tile', () => {
  const configs = [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }];
  it('takes 16 keys and fits WebGPU\'s default 16 KiB of workgroup memory up to head dim 128', () => {
    for (const d of [32, 64, 72, 80, 96, 128]) expect(sgmatGeometry(configs, d, d, 16384)).toEqual({ BK: 16, NS: 4, MB: 1 });
    expect(sgmatGeometry(configs, 128, 64, 16384)).toEqual({ BK: 16, NS: 4, MB: 1 });
    expect(sgmatGeometry(configs, 72, 72, 49152)).toEqual({ BK: 16, NS: 4, MB: 1 });
    expect(sgmatGeometry(configs, 256, 256, 49152)).toBeNull();
    expect(sgmatGeometry([], 64, 64, 49152)).toBeNull();
  });
});

describe('tensor-core kernel, two query blocks a subgroup', () => {
  const configs = [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }];
  const { from, d80Upto } = SGMAT_MB2_KEYS;
  it('takes two from SGMAT_MB2_KEYS.from keys (at d80 up to d80Upto), in f16 only, where workgroup memory allows', () => {
    for (const d of [64, 72, 80, 128]) expect(sgmatGeometry(configs, d, d, 49152, 256, false, from)).toEqual({ BK: 16, NS: 4, MB: 2 });
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, from - 1)).toEqual({ BK: 16, NS: 4, MB: 1 });
    expect(sgmatGeometry(configs, 80, 80, 49152, 256, false, d80Upto)?.MB).toBe(2);
    expect(sgmatGeometry(configs, 80, 80, 49152, 256, false, d80Upto + 1)?.MB).toBe(1);
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, 8192)?.MB).toBe(2);
    // The split form keeps one; d128 needs 17.9 KB with two, past WebGPU's default 16 KiB.
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, true, 8192)?.MB).toBe(1);
    expect(sgmatGeometry(configs, 128, 128, 16384, 256, false, 8192)?.MB).toBe(1);
    expect(sgmatGeometry(configs, 80, 80, 16384, 256, false, 2048)?.MB).toBe(2);
    try {
      setSgmatAblation('mb1');
      expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, 8192)?.MB).toBe(1);
      setSgmatAblation('mb2');
      expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, 64)?.MB).toBe(2);
    } finally {
      setSgmatAblation('');
    }
  });
  it('feeds each K/V fragment to two products and keeps each row in one lane (no shuffles in the softmax)', () => {
    const v: SgmatVariant = { kernel: 'flash_sgmat', D: 64, DV: 64, G4: 1, BK: 16, NS: 4, MB: 2, vec: true, natural: false, cap: false, fuse: true, outF16: true, emulate: false, maskKey: 'none' };
    const src = sgmatSource(v, NO_MASK);
    // Q·Kᵀ: 4 head-dim chunks × 2 blocks; P·V: 4 value chunks × 2 blocks, written twice (in the key loop and
    // after a rescale, which leaves the loop); one right-matrix load each pair.
    expect(src.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length).toBe(24);
    expect(src.match(/subgroup_matrix_right<f16, 16, 16>, col_major>/g)?.length).toBe(4);
    expect(src).not.toMatch(/partner\((mx|sum)/);
    expect(src).toContain('const TQ: u32 = 128u;');
    expect(src).toContain('var<workgroup> sS: array<f32, 2300>;');
    const one = sgmatSource({ ...v, MB: undefined }, NO_MASK);
    expect(one.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length).toBe(12);
    expect(one).toMatch(/partner\(mx/);
    expect(() => sgmatSource({ ...v, split: true }, NO_MASK)).toThrow(/split/);
  });
});

describe('tensor-core kernel, f32 split form', () => {
  const configs = [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }];
  it('needs twice the staging memory: fits 16 KiB up to head dim 80, 48 KiB up to 128', () => {
    for (const d of [64, 72, 80]) expect(sgmatGeometry(configs, d, d, 16384, 256, true)).toEqual({ BK: 16, NS: 4, MB: 1 });
    expect(sgmatGeometry(configs, 96, 96, 16384, 256, true)).toBeNull();
    for (const d of [96, 128]) expect(sgmatGeometry(configs, d, d, 49152, 256, true)).toEqual({ BK: 16, NS: 4, MB: 1 });
  });
  it('takes 8 subgroups at head dims ≤ 64 where 48 KiB allow it (ns4 keeps 4), and the next-tile prefetch at d128', () => {
    for (const d of [32, 64]) expect(sgmatGeometry(configs, d, d, 49152, 256, true)).toEqual({ BK: 16, NS: 8, MB: 1 });
    expect(sgmatGeometry(configs, 64, 64, 49152, 128, true)).toEqual({ BK: 16, NS: 4, MB: 1 });
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, false)).toEqual({ BK: 16, NS: 4, MB: 1 });
    try {
      setSgmatAblation('ns4');
      expect(sgmatGeometry(configs, 64, 64, 49152, 256, true)).toEqual({ BK: 16, NS: 4, MB: 1 });
    } finally {
      setSgmatAblation('');
    }
    expect(sgmatPf1(true, 128, 128, true)).toBe(true);
    for (const d of [64, 80]) expect(sgmatPf1(true, d, d, true)).toBe(false);
  });
  it('reads f32 16 bytes at a time, splits by integer rounding, scales by the range pass and takes three products', () => {
    const v: SgmatVariant = { kernel: 'flash_sgmat', D: 64, DV: 64, G4: 1, BK: 16, NS: 4, vec: true, natural: false, cap: false, fuse: true, outF16: false, emulate: false, maskKey: 'none', split: true };
    const src = sgmatSource(v, 'fn mask_allows(i: i32, j: i32, sq: i32, sk: i32, row: u32, s: f32) -> bool { return true; }');
    expect(src).toContain('var<storage, read> kb: array<vec4<f32>>');
    expect(src).toContain('split_hi(');
    expect(src).toContain('@binding(9) var<storage, read> rng');
    expect(src).toContain('subgroupMatrixScalarMultiply(');
    // Q·Kᵀ: 4 head-dim chunks × (2 cross + 1 main) products; P·V: 4 value chunks × 3, in the loop and after a rescale.
    expect(src.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length).toBe(36);
    const f16 = sgmatSource({ ...v, split: undefined }, 'fn mask_allows(i: i32, j: i32, sq: i32, sk: i32, row: u32, s: f32) -> bool { return true; }');
    expect(f16.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length).toBe(12);
    expect(f16).not.toContain('@binding(9)');
    // The range pass reads three buffers and keeps finite magnitudes only.
    expect(rangeSource()).toContain('0x7f800000u');
  });
});

describe('tensor-core kernel V store placement', () => {
  it('stores V after the softmax from SGMAT_VLATE_MIN_KEYS keys (d128: fewer), with 16-byte loads only; ablations force it', () => {
    expect(sgmatVLate(true, 64, SGMAT_VLATE_MIN_KEYS.other - 1)).toBe(false);
    expect(sgmatVLate(true, 64, SGMAT_VLATE_MIN_KEYS.other)).toBe(true);
    expect(sgmatVLate(true, 128, SGMAT_VLATE_MIN_KEYS.d128 - 1)).toBe(false);
    expect(sgmatVLate(true, 128, SGMAT_VLATE_MIN_KEYS.d128)).toBe(true);
    expect(sgmatVLate(true, 80, 2048)).toBe(false);
    expect(sgmatVLate(false, 128, 8192)).toBe(false);
    try {
      setSgmatAblation('vlate');
      expect(sgmatVLate(true, 64, 577)).toBe(true);
      setSgmatAblation('vearly');
      expect(sgmatVLate(true, 128, 8192)).toBe(false);
    } finally { setSgmatAblation(''); }
  });
});

describe('tensor-core kernel load prefetch (pf1)', () => {
  const base: SgmatVariant = { kernel: 'flash_sgmat', D: 80, DV: 80, G4: 1, BK: 16, NS: 4, vec: true, natural: false, cap: false, fuse: true, outF16: false, emulate: false, maskKey: 'none' };
  it('is taken with 16-byte loads where both head dims pad to 80, and nowhere else; nopf turns it off', () => {
    for (const d of [65, 72, 80]) expect(sgmatPf1(true, d, d), `d${d}`).toBe(true);
    for (const d of [32, 64, 96, 128]) expect(sgmatPf1(true, d, d), `d${d}`).toBe(false);
    expect(sgmatPf1(true, 80, 64)).toBe(false);
    expect(sgmatPf1(false, 80, 80)).toBe(false);
    try {
      setSgmatAblation('nopf');
      expect(sgmatPf1(true, 80, 80)).toBe(false);
    } finally { setSgmatAblation(''); }
  });
  it('issues the next tile\'s loads after the first barrier on real matrices; the emulated kernel ignores it', () => {
    const next = /let ti1 = ti \+ 1u;/;
    expect(sgmatSource(base, NO_MASK)).not.toMatch(next);
    expect(sgmatSource({ ...base, pf1: true }, NO_MASK)).toMatch(next);
    const emu = { ...base, emulate: true };
    expect(sgmatSource({ ...emu, pf1: true }, NO_MASK)).toBe(sgmatSource(emu, NO_MASK));
  });
});

describe('tensor-core kernel NaN detection', () => {
  const base: SgmatVariant = { kernel: 'flash_sgmat', D: 64, DV: 64, G4: 1, BK: 16, NS: 4, vec: true, natural: false, cap: false, fuse: true, outF16: true, emulate: false, maskKey: 'none' };
  const perScore = /nanb = max\(nanb, break_bits\(s\d*\)\)/;
  const fromSum = /nanb = max\(nanb, bitcast<u32>\(l\) & 0x7fffffffu\)/;
  it('takes NaN from the row sum\'s bits on real matrices (one and two query blocks, the split form), per score with nanbits', () => {
    for (const v of [base, { ...base, MB: 2 }, { ...base, D: 80, DV: 80 }, { ...base, split: true, NS: 8 }] as SgmatVariant[]) {
      const src = sgmatSource(v, NO_MASK);
      expect(src).toMatch(fromSum);
      expect(src).not.toMatch(perScore);
      expect(sgmatSource({ ...v, ablate: 'nanbits' }, NO_MASK)).toMatch(perScore);
      expect(sgmatSource({ ...v, ablate: 'nanbits' }, NO_MASK)).not.toMatch(fromSum);
    }
  });
  it('keeps the per-score tests in the emulated kernel (SwiftShader does not carry a NaN score into the sum)', () => {
    const src = sgmatSource({ ...base, emulate: true }, NO_MASK);
    expect(src).toMatch(/nanb = max\(nanb, break_bits\(s\)\)/);
    expect(src).not.toMatch(fromSum);
  });
});

describe('portable kernel workgroup memory', () => {
  it('fits 32-dim slices in 48 KiB, not in 32 KiB without subgroup reductions', () => {
    expect(portableSharedBytes(true, true)).toBeLessThanOrEqual(49152);
    expect(portableSharedBytes(true, false)).toBeLessThanOrEqual(49152);
    expect(portableSharedBytes(true, false)).toBeGreaterThan(32768);
    expect(portableSharedBytes(false, false)).toBeLessThanOrEqual(32768);
  });
  it('takes V chunks of a multiple of 4 keys, at most a tile', () => {
    for (const wide of [false, true]) {
      for (const DV of [1, 40, 64, 80, 111, 128, 256]) {
        const g = portableGeometry({ DV, wide });
        expect(g.BCV % 4).toBe(0);
        expect(g.BCV).toBeGreaterThan(0);
        expect(g.BCV).toBeLessThanOrEqual(64);
        expect(g.BCV * g.DVP).toBeLessThanOrEqual(128 * g.DS);
      }
    }
  });
  it('holds a whole V tile (one chunk) at d72–d112 with 32-dim slices in 48 KiB, not at d128', () => {
    for (const DV of [72, 80, 96, 112]) {
      expect(portableGeometry({ DV, wide: true }).BCV).toBeLessThan(64);
      expect(portableGeometry({ DV, wide: true, vfull: true }).BCV).toBe(64);
      expect(portableSharedBytes(true, true, DV)).toBeLessThanOrEqual(49152);
    }
    expect(portableSharedBytes(true, true, 128)).toBeGreaterThan(49152);
    // Where one chunk already holds the tile, vfull changes nothing.
    expect(portableGeometry({ DV: 64, wide: true, vfull: true })).toEqual(portableGeometry({ DV: 64, wide: true }));
  });
});

describe('portable kernel workgroup memory with P by chunk (portableFit)', () => {
  it('takes 32-dim slices and 32-key chunks in 24 KiB at d64 where 48 KiB are allowed', () => {
    expect(portableFit({ DV: 64, sg: true, pch: true, wideWanted: true, maxShared: 49152 })).toEqual({ wide: true, pcap: 32, bytes: 24576 });
    expect(portableBytes({ DV: 128, wide: true, sg: true, pch: true })).toBeLessThanOrEqual(24576);
  });
  it("fits WebGPU's default 16 KiB at every head dim, with or without subgroups", () => {
    for (const DV of [1, 40, 64, 72, 80, 111, 128, 256]) {
      for (const sg of [true, false]) {
        const f = portableFit({ DV, sg, pch: true, wideWanted: true, maxShared: 16384 });
        expect(f, `DV ${DV} sg ${sg}`).not.toBeNull();
        expect(f!.bytes).toBeLessThanOrEqual(16384);
        expect(f!.wide).toBe(false);
        const g = portableGeometry({ DV, wide: false, pch: true, pcap: f!.pcap });
        expect(g.BCV % 4).toBe(0);
        expect(g.BCV).toBeGreaterThan(0);
        expect(g.BCV * g.DVP).toBeLessThanOrEqual(128 * g.DS);   // the V chunk fits the slice array
        expect(g.PSN).toBe(16 * g.BCV);
      }
    }
    expect(portableFit({ DV: 64, sg: false, pch: true, wideWanted: true, maxShared: 16384 })!.pcap).toBe(16);
  });
  it('has no form for the whole-tile P of capture passes in 16 KiB', () => {
    expect(portableFit({ DV: 64, sg: true, pch: false, wideWanted: true, maxShared: 16384 })).toBeNull();
    expect(portableFit({ DV: 64, sg: true, pch: false, wideWanted: true, maxShared: 32768 })).toEqual({ wide: false, pcap: 64, bytes: portableSharedBytes(false, true) });
  });
});

describe('portable kernel form (rows a thread, load width)', () => {
  const base = { wide: true, layout4: true, maxInvocations: 1024, robust: true };
  it('takes four rows and four-element loads wherever the layout allows them', () => {
    for (const DV of [64, 80, 128]) expect(portableForm({ ...base, DV })).toEqual({ r2: false, vload: true });
  });
  it('takes two rows only with scalar loads, V as vec4, bounds clamps on and 512 invocations', () => {
    expect(portableForm({ ...base, DV: 64, layout4: false })).toEqual({ r2: true, vload: false });
    expect(portableForm({ ...base, DV: 128, layout4: false })).toEqual({ r2: true, vload: false });
    expect(portableForm({ ...base, DV: 80, layout4: false })).toEqual({ r2: false, vload: false });   // no vec4 at d80
    expect(portableForm({ ...base, DV: 64, layout4: false, robust: false })).toEqual({ r2: false, vload: false });
    expect(portableForm({ ...base, DV: 64, layout4: false, maxInvocations: 256 })).toEqual({ r2: false, vload: false });
  });
  it('follows setPortableTuning: forced rows, loads off', () => {
    try {
      setPortableTuning({ rows: 2 });
      expect(portableForm({ ...base, DV: 64 })).toEqual({ r2: true, vload: true });   // 32 dims over 8 threads a row
      expect(portableForm({ ...base, DV: 64, wide: false })).toEqual({ r2: true, vload: false });   // 16 over 8: 2
      expect(portableForm({ ...base, DV: 64, maxInvocations: 256 })).toEqual({ r2: false, vload: true });
      setPortableTuning({ rows: 'auto', vecLoads: false });
      expect(portableForm({ ...base, DV: 64 })).toEqual({ r2: true, vload: false });
    } finally { setPortableTuning({ rows: 'auto', vecLoads: true }); }
  });
});

describe('job prologue (JOB_WGSL, JOB_WGSL_DIRECT)', () => {
  it('staged: invocation 0 writes the job row into workgroup memory element by element (no whole-array copy)', () => {
    // A function-local row copied whole into workgroup memory cost the decode kernel 20–30% on the H200 with
    // correct outputs (BENCHMARKS.md, run Q): only a benchmark shows it, so the form is pinned here.
    expect(JOB_WGSL).toMatch(/wjob\[3u \+ t\] = tbl\[sb \+ t\]/);
    expect(JOB_WGSL).not.toMatch(/wjob = /);
    expect(JOB_WGSL).toContain('workgroupUniformLoad(&wjob)');
  });
  it('direct: no workgroup memory and no barrier', () => {
    expect(JOB_WGSL_DIRECT).not.toMatch(/var<workgroup>|workgroupUniformLoad|workgroupBarrier/);
    for (const fn of ['stage_job', 'tile_range', 'tile_entry', 'tile_bounds']) expect(JOB_WGSL_DIRECT).toContain(`fn ${fn}(`);
  });
});

describe('tensor-core kernel, invocation-index offsets and the rescale outside the key loop', () => {
  const configs = [{ componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 }];
  const v: SgmatVariant = { kernel: 'flash_sgmat', D: 64, DV: 64, G4: 1, BK: 16, NS: 4, MB: 2, vec: true, natural: false, cap: false, fuse: true, outF16: true, emulate: false, maskKey: 'none' };
  it('takes subgroup and lane from the invocation index only where the adapter was probed linear (lidsg)', () => {
    const lin = sgmatSource({ ...v, lidsg: true }, NO_MASK);
    expect(lin).toContain('let sg = lid / 32u;');
    expect(lin).toContain('let lane = lid % 32u;');
    expect(lin).toContain('let sgo = lid / 32u;');
    const plain = sgmatSource(v, NO_MASK);
    expect(plain).toContain('let sg = sgid;');
    expect(plain).toContain('let sgo = sg;');
    // The emulated kernel always numbers subgroups by lid (it has no subgroups of its own).
    expect(sgmatSource({ ...v, emulate: true }, NO_MASK)).toContain('let sg = lid / 32u;');
  });
  it('stores P row-major and reads it with row-major left loads where it takes lidsg offsets and two query blocks (noprow: column-major)', () => {
    const rowLoad = /subgroup_matrix_left<f16, 16, 16>, row_major>\(&sKV/;
    expect(sgmatSource({ ...v, lidsg: true }, NO_MASK)).toMatch(rowLoad);
    expect(sgmatSource(v, NO_MASK)).not.toMatch(rowLoad);
    expect(sgmatSource({ ...v, lidsg: true, MB: 1 }, NO_MASK)).not.toMatch(rowLoad);
    try {
      setSgmatAblation('noprow');
      expect(sgmatSource({ ...v, lidsg: true, ablate: 'noprow' }, NO_MASK)).not.toMatch(rowLoad);
    } finally {
      setSgmatAblation('');
    }
  });
  it('breaks out of the key loop for a rescale and resumes after it; noloopx keeps the rescale inside', () => {
    const src = sgmatSource(v, NO_MASK);
    expect(src).toContain('pend = true;');
    expect(src).toContain('if (!pend) { break; }');
    try {
      setSgmatAblation('noloopx');
      const old = sgmatSource({ ...v, ablate: 'noloopx' }, NO_MASK);
      expect(old).not.toContain('pend');
      expect(old.match(/subgroupMatrixMultiplyAccumulate\(/g)?.length).toBe(16);
    } finally {
      setSgmatAblation('');
    }
  });
  it('with linear subgroups takes two query blocks from 512 keys and the next-tile loads after the first barrier at any head dim', () => {
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, 577, true)?.MB).toBe(2);
    expect(sgmatGeometry(configs, 80, 80, 49152, 256, false, 5329, true)?.MB).toBe(2);
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, 256, true)?.MB).toBe(1);
    expect(sgmatGeometry(configs, 64, 64, 49152, 256, false, 577, false)?.MB).toBe(1);
    expect(sgmatGeometry(configs, 80, 80, 49152, 256, false, 5329, false)?.MB).toBe(1);
    for (const d of [64, 128]) {
      expect(sgmatPf1(true, d, d, false, true)).toBe(true);
      expect(sgmatPf1(true, d, d, false, false)).toBe(false);
    }
    expect(sgmatPf1(false, 64, 64, false, true)).toBe(false);
    expect(sgmatPf1(true, 64, 64, true, true)).toBe(false);
  });
  it('takes the invocation-index form where the probe found a linear layout, unless nolidsg', () => {
    expect(sgmatLinear(true)).toBe(true);
    expect(sgmatLinear(false)).toBe(false);
    try {
      setSgmatAblation('nolidsg');
      expect(sgmatLinear(true)).toBe(false);
    } finally {
      setSgmatAblation('');
    }
  });
});
