/**
 * Perceptually uniform colormaps (viridis, magma, inferno) as 256-entry 8-bit RGB lookup tables.
 *
 * The tables are matplotlib's `_viridis_data`, `_magma_data` and `_inferno_data` (CC0, by Nathaniel
 * Smith and Stéfan van der Walt), each float rounded to the nearest of 0..255 and packed as hex,
 * six digits per entry. Browser-safe; no DOM.
 */
import { ShapeError, ValueError } from '../errors.js';
import type { RgbaImage } from './png.js';

/** The colormaps this module provides. */
export type ColormapName = 'viridis' | 'magma' | 'inferno';
/** All colormap names, in a stable order. */
export const COLORMAP_NAMES: readonly ColormapName[] = Object.freeze(['viridis', 'magma', 'inferno']);

const VIRIDIS_HEX =
  '44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668481769' +
  '48186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a' +
  '472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85' +
  '4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b' +
  '3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d' +
  '33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e' +
  '2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e' +
  '26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d' +
  '21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88' +
  '1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad81' +
  '28ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc74' +
  '3fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863' +
  '5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d' +
  '84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32' +
  'addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a' +
  'd8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725';
const MAGMA_HEX =
  '00000401000501010601010802010902020b02020d03030f03031204041405041606051806051a07061c08071e090720' +
  '0a08220b09240c09260d0a290e0b2b100b2d110c2f120d31130d34140e36150e38160f3b180f3d19103f1a10421c1044' +
  '1d11471e114920114b21114e22115024125325125527125829115a2a115c2c115f2d11612f1163311165331067341069' +
  '36106b38106c390f6e3b0f703d0f713f0f72400f74420f75440f764510774710784910784a10794c117a4e117b4f127b' +
  '51127c52137c54137d56147d57157e59157e5a167e5c167f5d177f5f187f601880621980641a80651a80671b80681c81' +
  '6a1c816b1d816d1d816e1e81701f81721f817320817521817621817822817922827b23827c23827e2482802582812581' +
  '8326818426818627818827818928818b29818c29818e2a81902a81912b81932b80942c80962c80982d80992d809b2e7f' +
  '9c2e7f9e2f7fa02f7fa1307ea3307ea5317ea6317da8327daa337dab337cad347cae347bb0357bb2357bb3367ab5367a' +
  'b73779b83779ba3878bc3978bd3977bf3a77c03a76c23b75c43c75c53c74c73d73c83e73ca3e72cc3f71cd4071cf4070' +
  'd0416fd2426fd3436ed5446dd6456cd8456cd9466bdb476adc4869de4968df4a68e04c67e24d66e34e65e44f64e55064' +
  'e75263e85362e95462ea5661eb5760ec5860ed5a5fee5b5eef5d5ef05f5ef1605df2625df2645cf3655cf4675cf4695c' +
  'f56b5cf66c5cf66e5cf7705cf7725cf8745cf8765cf9785df9795df97b5dfa7d5efa7f5efa815ffb835ffb8560fb8761' +
  'fc8961fc8a62fc8c63fc8e64fc9065fd9266fd9467fd9668fd9869fd9a6afd9b6bfe9d6cfe9f6dfea16efea36ffea571' +
  'fea772fea973feaa74feac76feae77feb078feb27afeb47bfeb67cfeb77efeb97ffebb81febd82febf84fec185fec287' +
  'fec488fec68afec88cfeca8dfecc8ffecd90fecf92fed194fed395fed597fed799fed89afdda9cfddc9efddea0fde0a1' +
  'fde2a3fde3a5fde5a7fde7a9fde9aafdebacfcecaefceeb0fcf0b2fcf2b4fcf4b6fcf6b8fcf7b9fcf9bbfcfbbdfcfdbf';
const INFERNO_HEX =
  '00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d09061f0a0722' +
  '0b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e1b0c411c0c431e0c451f0c48' +
  '210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c320a5e340a5f3609613809623909633b0964' +
  '3d09653e0966400a67420a68440a68450a69470b6a490b6a4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d' +
  '57106e59106e5a116e5c126e5d126e5f136e61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e' +
  '71196e721a6e741a6e751b6e771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a' +
  '8a226a8c23698d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62' +
  'a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557b93556ba3655' +
  'bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149cc4248ce4347cf4446d04545' +
  'd24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513ade5238df5337e05536e15635e25734e35933' +
  'e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711f' +
  'f1731df2741cf3761bf37819f47918f57b17f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0a' +
  'f98e09fa9008fa9207fa9407fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0f' +
  'fcac11fcae12fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932' +
  'f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55df2e661f2e865' +
  'f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96f8fb9af9fc9dfafda1fcffa4';

const HEX: Record<ColormapName, string> = { viridis: VIRIDIS_HEX, magma: MAGMA_HEX, inferno: INFERNO_HEX };
const CACHE = new Map<ColormapName, Uint8Array>();

function lut(name: ColormapName): Uint8Array {
  let t = CACHE.get(name);
  if (!t) {
    // Own keys only: HEX['toString'] is Object.prototype's function, not a colormap.
    const hex = Object.hasOwn(HEX, name) ? HEX[name] : undefined;
    if (typeof hex !== 'string') throw new ValueError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}, got '${name}'`, 'colormap');
    t = new Uint8Array(768);
    for (let i = 0; i < 768; i++) t[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    CACHE.set(name, t);
  }
  return t;
}

/** The 256 × 3 (RGB, 0–255) lookup table of `name`, as a fresh copy. */
export function colormapLut(name: ColormapName): Uint8Array {
  return lut(name).slice();
}

/** The colour of `t` ∈ [0, 1] (clamped; NaN → 0) as [r, g, b] in 0–255. */
export function colorAt(name: ColormapName, t: number): [number, number, number] {
  const table = lut(name);
  const i = Number.isNaN(t) ? 0 : Math.min(255, Math.max(0, Math.round(t * 255)));
  return [table[i * 3]!, table[i * 3 + 1]!, table[i * 3 + 2]!];
}

/** Options for {@link applyColormap}. */
export interface ColormapOptions {
  /** Default 'viridis'. */
  colormap?: ColormapName;
  /** Value mapped to the first entry (default: the finite minimum of `values`). */
  min?: number;
  /** Value mapped to the last entry (default: the finite maximum of `values`). */
  max?: number;
  /** RGBA for NaN/±Infinity (default transparent black). */
  nonFiniteColor?: readonly [number, number, number, number];
}

/**
 * The [lo, hi] a colour scale spans: `min`/`max` where given, else the values' finite range. ValueError for
 * non-finite bounds or min > max (one colour everywhere otherwise).
 */
export function colorRange(values: ArrayLike<number>, min: number | undefined, max: number | undefined): [number, number] {
  const [flo, fhi] = finiteRange(values);
  const lo = min ?? flo, hi = max ?? fhi;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new ValueError(`min and max must be finite, got ${lo}, ${hi}`, 'min');
  if (min !== undefined && max !== undefined && lo > hi) throw new ValueError(`min (${lo}) must not exceed max (${hi})`, 'min');
  return [lo, hi];
}

/** The finite [min, max] of `values` ([0, 0] when none is finite). */
export function finiteRange(values: ArrayLike<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

/**
 * Maps a row-major `height × width` grid of values to an opaque RGBA image. Values are scaled
 * linearly from [min, max] to the table (a constant grid maps to the middle entry).
 */
export function applyColormap(values: ArrayLike<number>, width: number, height: number, options: ColormapOptions = {}): RgbaImage {
  if (!Number.isInteger(width) || width < 1) throw new ValueError(`width must be an integer ≥ 1, got ${width}`, 'width');
  if (!Number.isInteger(height) || height < 1) throw new ValueError(`height must be an integer ≥ 1, got ${height}`, 'height');
  if (values.length !== width * height) {
    throw new ShapeError(`values must hold width·height = ${width * height} entries, got ${values.length}`, 'values', 'length');
  }
  const table = lut(options.colormap ?? 'viridis');
  const [lo, hi] = colorRange(values, options.min, options.max);
  const nf = options.nonFiniteColor ?? [0, 0, 0, 0];
  const span = hi - lo;
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const o = i * 4;
    if (!Number.isFinite(v)) { data[o] = nf[0]; data[o + 1] = nf[1]; data[o + 2] = nf[2]; data[o + 3] = nf[3]; continue; }
    const t = span > 0 ? (v - lo) / span : 0.5;
    const k = Math.min(255, Math.max(0, Math.round(t * 255))) * 3;
    data[o] = table[k]!; data[o + 1] = table[k + 1]!; data[o + 2] = table[k + 2]!; data[o + 3] = 255;
  }
  return { width, height, data };
}
