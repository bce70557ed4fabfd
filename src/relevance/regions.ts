/**
 * The region grid: an image is cut into base patches (patchSize px each, e.g. 14; a central crop
 * of whole patches, or a resize when the image exceeds maxSide), texture features are computed on
 * a work image of featurePatch px per patch (≈ 512 px on the longer side, like the seed), and the
 * base-patch grid is split into regions, the unit of allocation (spec §4.1). Validated once into a
 * frozen GridPlan.
 *
 * ```
 * image W×H ──crop/resize──▶ work (gridCols·fp) × (gridRows·fp) ──▶ base grid gridRows × gridCols
 *                                                           └─▶ regionRows × regionCols regions
 * ```
 */
import { ValueError, checkOptionKeys, optionNames } from '../errors.js';

/** Options for {@link planGrid}. */
export interface GridOptions {
  /** Base patch side in image pixels (default 14), after shrinking to `maxSide`. */
  patchSize?: number;
  /** Images whose longer side exceeds this are shrunk first (default 1024). */
  maxSide?: number;
  /**
   * Texture features are computed at about this many pixels on the longer side (default 512, the
   * seed's 16×32): `featurePatch` = min(patchSize, ⌊featureSide / max(gridRows, gridCols)⌋, ≥ 2)
   * work pixels per base patch. `Infinity` computes them at full resolution.
   */
  featureSide?: number;
  /** Split the base grid into regionRows × regionCols regions (default 4 × 4, fewer on a base grid under 4 patches). */
  regionRows?: number;
  /** Region columns (see regionRows); at most the base grid's columns. */
  regionCols?: number;
  /** Alternatively: regions of k × k base patches (the last row/column may be smaller). */
  regionPatches?: number;
}

/** One region: a block of base patches, half-open. */
export interface Region {
  /** Position in GridPlan.regions (raster order: row · regionCols + col). */
  index: number;
  /** Region row and column in the region grid. */
  row: number;
  /** Region column in the region grid. */
  col: number;
  /** First base-patch row (inclusive). */
  patchRow0: number;
  /** End base-patch row (exclusive). */
  patchRow1: number;
  /** First base-patch column (inclusive). */
  patchCol0: number;
  /** End base-patch column (exclusive). */
  patchCol1: number;
  /** Number of base patches n_r (the native token cap). */
  basePatches: number;
  /** The region in original-image pixels (fractional). */
  imageRect: { x: number; y: number; width: number; height: number };
}

/** A validated grid. */
export interface GridPlan {
  /** The original image's width in pixels. */
  readonly imageWidth: number;
  /** The original image's height in pixels. */
  readonly imageHeight: number;
  /** Base patch side in image pixels (after `maxSide`). */
  readonly patchSize: number;
  /** Base patch side in work (feature) pixels. */
  readonly featurePatch: number;
  /** Base-grid rows (base patches down the image). */
  readonly gridRows: number;
  /** Base-grid columns (base patches across the image). */
  readonly gridCols: number;
  /** Work (feature) image width in pixels: gridCols × featurePatch. */
  readonly workWidth: number;
  /** Work (feature) image height in pixels: gridRows × featurePatch. */
  readonly workHeight: number;
  /** Region rows in the region grid. */
  readonly regionRows: number;
  /** Region columns in the region grid. */
  readonly regionCols: number;
  /** Every region, in raster order (the order of all per-region arrays). */
  readonly regions: readonly Region[];
  /** The part of the image the work image covers (pixels); resampled to workWidth × workHeight unless equal. */
  readonly crop: { readonly x: number; readonly y: number; readonly width: number; readonly height: number };
  /** Base-patch index (raster) → region index. */
  readonly patchRegion: Int32Array;
}

function posInt(v: number | undefined, name: string, dflt: number, max = 1 << 20): number {
  const x = v ?? dflt;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > max) throw new ValueError(`${name} must be an integer in 1..${max}, got ${v}`, name);
  return x;
}

function splits(n: number, parts: number): number[] {
  return Array.from({ length: parts + 1 }, (_, i) => Math.round((i * n) / parts));
}

/** Plans the working size, base grid and regions for an image of `width × height` pixels. */
export function planGrid(width: number, height: number, options: GridOptions = {}): GridPlan {
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new ValueError(`image size must be positive integers, got ${width}×${height} (zero-area image?)`, 'image');
  }
  if (options && typeof options === 'object') checkOptionKeys(options, optionNames<GridOptions>({ patchSize: true, maxSide: true, featureSide: true, regionRows: true, regionCols: true, regionPatches: true }), 'grid');
  const p = posInt(options.patchSize, 'patchSize', 14, 1024);
  const maxSide = posInt(options.maxSide, 'maxSide', 1024, 1 << 16);
  if (maxSide < p) throw new ValueError(`maxSide (${maxSide}) must be ≥ patchSize (${p})`, 'maxSide');
  const scale = Math.min(1, maxSide / Math.max(width, height));
  // At full scale the work image is a central crop of whole patches (≤ p − 1 px dropped per axis,
  // no resampling); when shrinking, or for an image smaller than one patch, it is resampled.
  const axis = (n: number) => {
    if (scale === 1 && n >= p) {
      const cells = Math.floor(n / p);
      return { cells, crop0: Math.floor((n - cells * p) / 2), cropLen: cells * p };
    }
    return { cells: Math.max(1, Math.min(Math.floor(maxSide / p), Math.round((n * scale) / p))), crop0: 0, cropLen: n };
  };
  const ax = axis(width), ay = axis(height);
  const gridCols = ax.cells, gridRows = ay.cells;
  const featureSide = options.featureSide ?? 512;
  if (typeof featureSide !== 'number' || !(featureSide >= 2)) throw new ValueError(`featureSide must be a number ≥ 2 (or Infinity), got ${options.featureSide}`, 'featureSide');
  // Prefer a divisor of p (an exact k×k box downsample) unless it is under half the target.
  const target = Math.max(Math.min(2, p), Math.min(p, Math.floor(featureSide / Math.max(gridRows, gridCols))));
  let divisor = target;
  while (p % divisor !== 0) divisor--;
  const featurePatch = scale === 1 && 2 * divisor >= target ? divisor : target;
  let rowB: number[], colB: number[];
  if (options.regionPatches !== undefined) {
    const k = posInt(options.regionPatches, 'regionPatches', 1);
    rowB = []; for (let r = 0; r < gridRows; r += k) rowB.push(r); rowB.push(gridRows);
    colB = []; for (let c = 0; c < gridCols; c += k) colB.push(c); colB.push(gridCols);
  } else {
    const rr = posInt(options.regionRows, 'regionRows', Math.min(4, gridRows));
    const rc = posInt(options.regionCols, 'regionCols', Math.min(4, gridCols));
    if (rr > gridRows) throw new ValueError(`regionRows (${rr}) exceeds the base grid's ${gridRows} rows; lower it or use smaller patches`, 'regionRows');
    if (rc > gridCols) throw new ValueError(`regionCols (${rc}) exceeds the base grid's ${gridCols} columns; lower it or use smaller patches`, 'regionCols');
    rowB = splits(gridRows, rr); colB = splits(gridCols, rc);
  }
  const regionRows = rowB.length - 1, regionCols = colB.length - 1;
  const sx = ax.cropLen / gridCols, sy = ay.cropLen / gridRows;
  const regions: Region[] = [];
  const patchRegion = new Int32Array(gridRows * gridCols);
  for (let i = 0; i < regionRows; i++) for (let j = 0; j < regionCols; j++) {
    const index = i * regionCols + j;
    const r0 = rowB[i]!, r1 = rowB[i + 1]!, c0 = colB[j]!, c1 = colB[j + 1]!;
    for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) patchRegion[r * gridCols + c] = index;
    regions.push(Object.freeze({
      index, row: i, col: j, patchRow0: r0, patchRow1: r1, patchCol0: c0, patchCol1: c1,
      basePatches: (r1 - r0) * (c1 - c0),
      imageRect: Object.freeze({ x: ax.crop0 + c0 * sx, y: ay.crop0 + r0 * sy, width: (c1 - c0) * sx, height: (r1 - r0) * sy }),
    }));
  }
  return Object.freeze({
    imageWidth: width, imageHeight: height, patchSize: p, featurePatch, gridRows, gridCols,
    workWidth: gridCols * featurePatch, workHeight: gridRows * featurePatch, regionRows, regionCols,
    crop: Object.freeze({ x: ax.crop0, y: ay.crop0, width: ax.cropLen, height: ay.cropLen }),
    regions: Object.freeze(regions), patchRegion,
  });
}
