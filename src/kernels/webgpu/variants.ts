/**
 * Kernel variants. One variant object produces the WGSL prelude, the pipeline-cache key and the
 * dispatch geometry, so the key cannot drift from the shader it names.
 */
import { SHADERS } from './shaders.generated.js';
import { MASK_HELPERS } from './mask-wgsl.js';

export type InFormat = 'f32' | 'f16' | 'bf16';

/** Storage loader for a 16/32-bit input binding: 32-bit words, f16/bf16 unpacked to f32. */
export function loader(name: string, binding: number, fmt: InFormat): string {
  if (fmt === 'f32') return `@group(0) @binding(${binding}) var<storage, read> ${name}b: array<f32>;\nfn ld_${name}(e: u32) -> f32 { return ${name}b[e]; }`;
  if (fmt === 'f16') return `@group(0) @binding(${binding}) var<storage, read> ${name}b: array<u32>;\nfn ld_${name}(e: u32) -> f32 { return unpack2x16float(${name}b[e >> 1u])[e & 1u]; }`;
  return `@group(0) @binding(${binding}) var<storage, read> ${name}b: array<u32>;\nfn ld_${name}(e: u32) -> f32 { let w = ${name}b[e >> 1u]; return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u)); }`;
}

export interface PortableFlashVariant {
  readonly kernel: 'flash_portable';
  readonly fmt: InFormat;
  readonly D: number;
  readonly DV: number;
  /** Query heads packed per tile (the GQA group, ≤ 64). */
  readonly G: number;
  /** Subgroup row reductions (subgroups of ≥ 16 lanes). */
  readonly sg: boolean;
  /** Scores stay in natural units until after masking (softcap or top-k). */
  readonly natural: boolean;
  readonly cap: boolean;
  readonly maskKey: string;
}

export function portableGeometry(v: { DV: number }) {
  const DVT = Math.ceil(v.DV / 16);
  const DVP = DVT * 16;
  const BCV = Math.min(64, Math.floor(2048 / DVP));
  return { DVT, DVP, BCV };
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

export function portableSource(v: PortableFlashVariant, maskFn: string): string {
  const { DVT, DVP, BCV } = portableGeometry(v);
  const prelude = [
    v.sg ? 'enable subgroups;' : '',
    `const D: u32 = ${v.D}u;`,
    `const DV: u32 = ${v.DV}u;`,
    `const DVT: u32 = ${DVT}u;`,
    `const DVP: u32 = ${DVP}u;`,
    `const BCV: u32 = ${BCV}u;`,
    `const G: u32 = ${v.G}u;`,
    `const NP: u32 = ${Math.floor(64 / v.G)}u;`,
    `const NATURAL: bool = ${v.natural};`,
    `const CAP: bool = ${v.cap};`,
    loader('q', 2, v.fmt),
    loader('k', 3, v.fmt),
    loader('v', 4, v.fmt),
    '@group(0) @binding(5) var<storage, read_write> out: array<f32>;',
  ].join('\n');
  return `${prelude}\n${SHADERS['flash_portable']}\n${reductions(v.sg)}\n${MASK_HELPERS}\n${maskFn}\n`;
}

export interface TopKVariant {
  readonly kernel: 'topk_threshold';
  readonly fmt: InFormat;
  readonly D: number;
  /** Heap size: the k of topK(k). */
  readonly KK: number;
  readonly cap: boolean;
  readonly maskKey: string;
}

export function topkSource(v: TopKVariant, maskFn: string): string {
  const prelude = [
    `const D: u32 = ${v.D}u;`,
    `const KK: u32 = ${v.KK}u;`,
    `const CAP: bool = ${v.cap};`,
    loader('q', 2, v.fmt),
    loader('k', 3, v.fmt),
  ].join('\n');
  return `${prelude}\n${SHADERS['topk_threshold']}\n${MASK_HELPERS}\n${maskFn}\n`;
}
