/**
 * Lowers a mask tree to a WGSL element predicate, evaluated by the kernels on partial tiles only:
 *   fn mask_allows(i: i32, j: i32, lenQ: i32, lenK: i32, thr: u32, s: f32) -> bool
 * The code depends only on the tree's structure (it is part of the pipeline key); every number
 * (windows, prefix lengths, strides, layouts, key bitmaps, document boundaries, predicate bit matrices)
 * lives in the mask data words, read through `md(k)`, so new values never recompile a pipeline.
 */
import { UnsupportedError } from '../../errors.js';
import type { MaskNode } from '../../masks/mask.js';

const INF_POS = 0x40000000;

export interface WgslMask {
  /** Structural key (no values). */
  key: string;
  /** WGSL source of mask_allows. */
  fn: string;
  /** Data words (i32): scalars first, then variable-length regions. `thrWord` marks where the top-k threshold base goes. */
  data: Int32Array;
  /** Index in `data` of the top-k thresholds' base offset (filled by the caller), or −1. */
  thrSlot: number;
}

function clampPos(x: number): number {
  return x === Infinity ? INF_POS : x === -Infinity ? -INF_POS : Math.max(-INF_POS, Math.min(INF_POS, x));
}

export function compileMaskWgsl(node: MaskNode | null, maxLenQ: number, maxLenK: number): WgslMask {
  if (!node) return { key: 'none', fn: 'fn mask_allows(i: i32, j: i32, lenQ: i32, lenK: i32, thr: u32, s: f32) -> bool { return true; }', data: new Int32Array(0), thrSlot: -1 };
  const scalars: number[] = [];
  const regions: number[][] = [];
  const fixups: { slot: number; region: number }[] = [];
  let thrSlot = -1;
  const slot = (v: number) => { scalars.push(v); return scalars.length - 1; };
  const region = (words: number[]) => {
    const s = slot(0);
    regions.push(words);
    fixups.push({ slot: s, region: regions.length - 1 });
    return s;
  };
  const md = (k: number) => `md(${k}u)`;
  const pos = (align: string) => (align === 'bottom-right' ? '(i + lenK - lenQ)' : 'i');
  const emit = (n: MaskNode): [string, string] => {
    switch (n.kind) {
      case 'all': return ['all', 'true'];
      case 'none': return ['none', 'false'];
      case 'relative': {
        const lo = slot(clampPos(n.lo)), hi = slot(clampPos(n.hi));
        const d = `(j - ${pos(n.align)})`;
        const parts: string[] = [];
        if (n.lo !== -Infinity) parts.push(`${d} >= ${md(lo)}`);
        if (n.hi !== Infinity) parts.push(`${d} <= ${md(hi)}`);
        return [`rel(${n.lo === -Infinity ? '-' : 'l'}${n.hi === Infinity ? '-' : 'h'},${n.align[0]})`, parts.length ? `(${parts.join(' && ')})` : 'true'];
      }
      case 'keyRange': {
        const lo = slot(n.lo), hi = slot(clampPos(n.hi));
        return ['kr', `(j >= ${md(lo)} && j < ${md(hi)})`];
      }
      case 'strided': {
        // Strides and block sizes past any sequence act as 2^30 does (the metadata words are 32-bit).
        const st = slot(clampPos(n.stride));
        return [`str(${n.align[0]})`, `(((${pos(n.align)} - j) % ${md(st)} + ${md(st)}) % ${md(st)} == 0)`];
      }
      case 'blockSparse': {
        const words = new Array<number>(Math.ceil(n.layout.length / 32)).fill(0);
        for (let t = 0; t < n.layout.length; t++) if (n.layout[t]) words[t >> 5]! |= 1 << (t & 31);
        const base = region(words), rows = slot(n.rows), cols = slot(n.cols), bq = slot(clampPos(n.blockQ)), bk = slot(clampPos(n.blockK));
        return ['bs', `mask_bit(${md(base)}, i / ${md(bq)}, j / ${md(bk)}, ${md(rows)}, ${md(cols)})`];
      }
      case 'keySet': {
        const words = new Array<number>(Math.max(1, Math.ceil(n.keep.length / 32))).fill(0);
        for (let t = 0; t < n.keep.length; t++) if (n.keep[t]) words[t >> 5]! |= 1 << (t & 31);
        const base = region(words), len = slot(n.keep.length);
        return ['ks', `mask_bit(${md(base)}, 0, j, 1, ${md(len)})`];
      }
      case 'documents': {
        const base = region([...n.cuSeqlensQ, ...n.cuSeqlensK]), nd = slot(n.cuSeqlensQ.length - 1);
        return ['doc', `mask_same_doc(${md(base)}, ${md(nd)}, i, j)`];
      }
      case 'predicate': {
        const words = Math.max(1, Math.ceil(maxLenK / 32));
        const bits = new Array<number>(Math.max(1, maxLenQ) * words).fill(0);
        for (let i = 0; i < maxLenQ; i++) for (let j = 0; j < maxLenK; j++) if (n.fn(i, j)) bits[i * words + (j >> 5)]! |= 1 << (j & 31);
        const base = region(bits), rows = slot(maxLenQ), cols = slot(words * 32);
        return ['pred', `mask_bit(${md(base)}, i, j, ${md(rows)}, ${md(cols)})`];
      }
      case 'topK': {
        const [wk, we] = emit(n.within);
        thrSlot = slot(0);
        return [`topk(${wk})`, `(${we} && s >= bitcast<f32>(tbl[u32(${md(thrSlot)}) + thr]))`];
      }
      case 'and': case 'or': {
        if (n.parts.length === 0) return [n.kind, n.kind === 'and' ? 'true' : 'false'];
        const sub = n.parts.map(emit);
        return [`${n.kind}(${sub.map((x) => x[0]).join(',')})`, `(${sub.map((x) => x[1]).join(n.kind === 'and' ? ' && ' : ' || ')})`];
      }
      case 'not': {
        const [k, e] = emit(n.part);
        return [`not(${k})`, `(!${e})`];
      }
    }
  };
  const [key, expr] = emit(node);
  if (key.length > 2000) throw new UnsupportedError('mask expression is too large for one WebGPU kernel', 'fewer and()/or() terms');
  let offset = scalars.length;
  for (const f of fixups) {
    scalars[f.slot] = offset;
    offset += regions[f.region]!.length;
  }
  const data = new Int32Array(offset);
  data.set(scalars);
  let o = scalars.length;
  for (const r of regions) { data.set(r, o); o += r.length; }
  const fn = `fn mask_allows(i: i32, j: i32, lenQ: i32, lenK: i32, thr: u32, s: f32) -> bool { return ${expr}; }`;
  return { key, fn, data, thrSlot };
}

/**
 * Helpers the generated predicate calls (tbl and P.maskBase are declared by the kernel), and is_nan, which
 * every kernel that takes them uses on scores.
 */
export const MASK_HELPERS = /* wgsl */ `
// NaN tests by bit pattern: compilers may assume x != x is false.
fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
// A visible score that leaves its row undefined, as in the reference: NaN, or +∞ (∞ − ∞ in the softmax). A −∞
// score is a key with no weight. Kernels flag the row (output and LSE NaN) and keep the score out of their sums.
fn breaks_row(x: f32) -> bool {
  let b = bitcast<u32>(x);
  return (b & 0x7fffffffu) > 0x7f800000u || b == 0x7f800000u;
}
// The same as bits for a running maximum: NaN's magnitude bits, +∞ as a NaN pattern, anything else ≤ 0x7f800000.
fn break_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b & 0x7fffffffu, 0x7fc00000u, b == 0x7f800000u);
}
// Softcap, cap·tanh(s / cap), of a clamped argument (some drivers compute tanh as a ratio of exponentials,
// NaN for large |x|); a NaN score stays NaN, which the clamp (a max and a min) drops on most GPUs.
fn softcap1(s: f32, cap: f32) -> f32 {
  return select(cap * tanh(clamp(s / cap, -15.0, 15.0)), s, is_nan(s));
}
fn md(k: u32) -> i32 { return bitcast<i32>(tbl[P.maskBase + k]); }
fn mask_bit(base: i32, r: i32, c: i32, rows: i32, cols: i32) -> bool {
  if (r < 0 || r >= rows || c < 0 || c >= cols) { return false; }
  let idx = u32(r * cols + c);
  return ((tbl[P.maskBase + u32(base) + (idx >> 5u)] >> (idx & 31u)) & 1u) != 0u;
}
fn mask_doc(base: u32, n: i32, p: i32) -> i32 {
  var lo = 0; var hi = n - 1;
  loop {
    if (lo >= hi) { break; }
    let mid = (lo + hi + 1) / 2;
    if (bitcast<i32>(tbl[P.maskBase + base + u32(mid)]) <= p) { lo = mid; } else { hi = mid - 1; }
  }
  return lo;
}
fn mask_same_doc(base: i32, n: i32, i: i32, j: i32) -> bool {
  return mask_doc(u32(base), n, i) == mask_doc(u32(base + n + 1), n, j);
}
`;
