/**
 * The region grid: an image is resampled to a working size that is a whole number of base patches
 * (patchSize px each, e.g. 14), and the base-patch grid is split into regions, the unit of
 * allocation (spec §4.1). Validated once into a frozen GridPlan.
 *
 * ```
 * image W×H ──resize──▶ work (gridCols·p) × (gridRows·p) ──▶ base grid gridRows × gridCols
 *                                                           └─▶ regionRows × regionCols regions
 * ```
 */
import { ValueError } from '../errors.js';

/** Options for {@link planGrid}. */
export interface GridOptions {
  /** Base patch side in working pixels (default 14). */
  patchSize?: number;
  /** The working image's longer side is at most this many pixels (default 1024). */
  maxSide?: number;
  /** Split the base grid into regionRows × regionCols regions (default 4 × 4). */
  regionRows?: number;
  regionCols?: number;
  /** Alternatively: regions of k × k base patches (the last row/column may be smaller). */
  regionPatches?: number;
}

/** One region: a block of base patches, half-open. */
export interface Region {
  index: number;
  /** Region row and column in the region grid. */
  row: number;
  col: number;
  patchRow0: number;
  patchRow1: number;
  patchCol0: number;
  patchCol1: number;
  /** Number of base patches n_r (the native token cap). */
  basePatches: number;
  /** The region in original-image pixels (fractional). */
  imageRect: { x: number; y: number; width: number; height: number };
}

/** A validated grid. */
export interface GridPlan {
  readonly imageWidth: number;
  readonly imageHeight: number;
  readonly patchSize: number;
  readonly gridRows: number;
  readonly gridCols: number;
  readonly workWidth: number;
  readonly workHeight: number;
  readonly regionRows: number;
  readonly regionCols: number;
  readonly regions: readonly Region[];
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
  const p = posInt(options.patchSize, 'patchSize', 14, 1024);
  const maxSide = posInt(options.maxSide, 'maxSide', 1024, 1 << 16);
  if (maxSide < p) throw new ValueError(`maxSide (${maxSide}) must be ≥ patchSize (${p})`, 'maxSide');
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const gridCols = Math.max(1, Math.min(Math.floor(maxSide / p), Math.round((width * scale) / p)));
  const gridRows = Math.max(1, Math.min(Math.floor(maxSide / p), Math.round((height * scale) / p)));
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
  const sx = width / gridCols, sy = height / gridRows;
  const regions: Region[] = [];
  const patchRegion = new Int32Array(gridRows * gridCols);
  for (let i = 0; i < regionRows; i++) for (let j = 0; j < regionCols; j++) {
    const index = i * regionCols + j;
    const r0 = rowB[i]!, r1 = rowB[i + 1]!, c0 = colB[j]!, c1 = colB[j + 1]!;
    for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) patchRegion[r * gridCols + c] = index;
    regions.push(Object.freeze({
      index, row: i, col: j, patchRow0: r0, patchRow1: r1, patchCol0: c0, patchCol1: c1,
      basePatches: (r1 - r0) * (c1 - c0),
      imageRect: Object.freeze({ x: c0 * sx, y: r0 * sy, width: (c1 - c0) * sx, height: (r1 - r0) * sy }),
    }));
  }
  return Object.freeze({
    imageWidth: width, imageHeight: height, patchSize: p, gridRows, gridCols,
    workWidth: gridCols * p, workHeight: gridRows * p, regionRows, regionCols,
    regions: Object.freeze(regions), patchRegion,
  });
}
