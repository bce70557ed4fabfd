/**
 * Rendering a relevance result: heatmaps over the image, the allocation overlay (each region's
 * level drawn), the allocation table, a self-contained HTML report, and a capture file for the
 * interactive viewer. Browser-safe: bytes and strings in, bytes and strings out.
 */
import { probabilityRows } from '../attention/capture.js';
import { makeCapture, encodeCapture } from '../viz/capture-file.js';
import { colorAt } from '../viz/colormap.js';
import { drawRegions, fillRect, overlayHeatmap, type RegionBox, type Rgba } from '../viz/overlay.js';
import { encodePng, type PngEncodeOptions, type RgbaImage } from '../viz/png.js';
import { rgbaToRgb, resamplePlanar, rgbToRgba } from './image-ops.js';
import { latencyTable, type LatencyRow, type RelevanceResult } from './pipeline.js';
import { lexiconAttentionInputs } from './scorers.js';
import { UnsupportedError } from '../errors.js';

/** Downscales an RGBA image so that its longer side is at most `maxSide` (area averaging). */
export function fitImage(image: RgbaImage, maxSide = 1024): RgbaImage {
  const s = Math.min(1, maxSide / Math.max(image.width, image.height));
  if (s >= 1) return image;
  const w = Math.max(1, Math.round(image.width * s)), h = Math.max(1, Math.round(image.height * s));
  const rgb = rgbaToRgb(image);
  return rgbToRgba({ width: w, height: h, data: resamplePlanar(rgb.data, 3, image.width, image.height, w, h) });
}

/**
 * The part of `image` the plan's patch grid covers (its central crop of whole patches; the whole image when
 * the plan resized it), fitted to `maxSide`: the image a capture of the grid should carry, so that a viewer's
 * maps line up with the pixels they describe.
 */
export function gridImage(result: RelevanceResult, image: RgbaImage, maxSide = 1024): RgbaImage {
  const { crop } = result.plan.grid;
  if (crop.x === 0 && crop.y === 0 && crop.width === image.width && crop.height === image.height) return fitImage(image, maxSide);
  const data = new Uint8Array(crop.width * crop.height * 4);
  for (let y = 0; y < crop.height; y++) {
    const from = ((crop.y + y) * image.width + crop.x) * 4;
    data.set(image.data.subarray(from, from + crop.width * 4), y * crop.width * 4);
  }
  return fitImage({ width: crop.width, height: crop.height, data }, maxSide);
}

/** One row of the allocation table. */
export interface AllocationRow {
  /** Region index (raster order). */
  region: number;
  /** Region row in the region grid. */
  row: number;
  /** Region column in the region grid. */
  col: number;
  /** The region's information score (a share of the distribution over regions). */
  information: number;
  /** The region's salience score (a share of the distribution over regions). */
  salience: number;
  /** The region's participatory (query coupling) score (a share of the distribution over regions). */
  participatory: number;
  /** ρ after opponent processing. */
  rho: number;
  /** Tokens allocated (0 when dropped). */
  tokens: number;
  /** Token grid rows × cols. */
  grid: string;
}

/** The allocation table, region order. */
export function allocationRows(result: RelevanceResult): AllocationRow[] {
  const { plan, scores, opponent, allocation, tokens } = result;
  return plan.grid.regions.map((r) => ({
    region: r.index, row: r.row, col: r.col,
    information: scores.information[r.index]!, salience: scores.salience[r.index]!, participatory: scores.participatory[r.index]!,
    rho: opponent.rho[r.index]!, tokens: allocation.tokens[r.index]!, grid: tokens.shapes[r.index]!.join('×'),
  }));
}

/** The allocation as a text table, plus the totals. */
export function formatAllocationTable(result: RelevanceResult): string {
  const rows = allocationRows(result);
  const lines = ['region  (row,col)   info    sal   part      ρ   tokens  grid'];
  for (const r of rows) {
    lines.push(`${String(r.region).padStart(6)}  (${r.row},${r.col})`.padEnd(20) +
      `${r.information.toFixed(3)}  ${r.salience.toFixed(3)}  ${r.participatory.toFixed(3)}  ${r.rho.toFixed(3)}  ${String(r.tokens).padStart(6)}  ${r.grid}`);
  }
  const a = result.allocation;
  lines.push(`total ${a.total} tokens over ${rows.length - a.dropped.length} regions (budget ${result.plan.budget}, ${a.method}${a.dropped.length ? `, ${a.dropped.length} dropped` : ''})`);
  return lines.join('\n');
}

function regionGridValues(result: RelevanceResult, values: ArrayLike<number>): { grid: Float64Array; w: number; h: number } {
  const g = result.plan.grid;
  const grid = new Float64Array(g.regionRows * g.regionCols);
  for (const r of g.regions) grid[r.row * g.regionCols + r.col] = values[r.index]!;
  return { grid, w: g.regionCols, h: g.regionRows };
}

/** The PNG outputs of a result, drawn over `image` (the pipeline's input, any size). */
export interface RelevancePngs {
  /** The input image as shown (downscaled to maxSide). */
  'image.png': Uint8Array;
  /** Query coupling (participatory mass) per base patch; per region when the query's visual tokens are not the base grid. */
  'heatmap-query.png': Uint8Array;
  /** ρ after opponent processing, per region. */
  'heatmap-rho.png': Uint8Array;
  /** The information score per region. */
  'heatmap-information.png': Uint8Array;
  /** The salience score per region. */
  'heatmap-salience.png': Uint8Array;
  /** Each region's token count and token grid over the image (renderAllocation). */
  'allocation.png': Uint8Array;
}

/**
 * Renders the heatmaps (query coupling per base patch, ρ, information and salience per region) and
 * the allocation overlay. Images larger than `maxSide` are downscaled for display. `png` passes
 * encoder options (e.g. Node's native deflate).
 */
export function renderRelevancePngs(result: RelevanceResult, image: RgbaImage, maxSide = 1024, png: PngEncodeOptions = {}): RelevancePngs {
  const shown = fitImage(image, maxSide);
  const g = result.plan.grid;
  const part = result.participatoryTokens;
  const partGrid = part.length === g.gridRows * g.gridCols ? { grid: part, w: g.gridCols, h: g.gridRows } : regionGridValues(result, result.scores.participatory);
  // Attention maps are peaky: the colour scale saturates at the value above which the patches hold
  // half of the mass, so the attended area, not a single patch, reads as hot.
  const heat = (v: { grid: ArrayLike<number>; w: number; h: number }) => {
    const sorted = Float64Array.from(v.grid).sort().reverse();
    const total = sorted.reduce((a, b) => a + b, 0);
    let acc = 0, hi = sorted[0]!;
    for (const x of sorted) { acc += x; hi = x; if (acc >= total / 2) break; }
    const clipped = Float64Array.from(v.grid, (x) => Math.min(x, hi));
    // The grid covers the plan's crop of the image, not all of it.
    const sx = shown.width / g.imageWidth, sy = shown.height / g.imageHeight;
    const rect = { x: g.crop.x * sx, y: g.crop.y * sy, width: g.crop.width * sx, height: g.crop.height * sy };
    return encodePng(overlayHeatmap(shown, clipped, v.w, v.h, { colormap: 'inferno', alpha: 0.85, weightByValue: true, gamma: 0.6, min: 0, max: hi > 0 ? hi : undefined, rect }), png);
  };
  // Region maps are piecewise constant: draw them as blocks, not blurred.
  const blocks = (values: ArrayLike<number>) => {
    const out: RgbaImage = { width: shown.width, height: shown.height, data: new Uint8Array(shown.data) };
    let mx = 0;
    for (let i = 0; i < values.length; i++) mx = Math.max(mx, values[i]!);
    const sx = shown.width / g.imageWidth, sy = shown.height / g.imageHeight;
    for (const r of g.regions) {
      const t = mx > 0 ? values[r.index]! / mx : 0;
      const [cr, cg, cb] = colorAt('inferno', t);
      fillRect(out, { x: r.imageRect.x * sx, y: r.imageRect.y * sy, width: r.imageRect.width * sx, height: r.imageRect.height * sy }, [cr, cg, cb, Math.round(255 * 0.85 * Math.pow(t, 0.6))]);
    }
    return encodePng(out, png);
  };
  return {
    'image.png': encodePng(shown, png),
    'heatmap-query.png': heat(partGrid),
    'heatmap-rho.png': blocks(result.opponent.rho),
    'heatmap-information.png': blocks(result.scores.information),
    'heatmap-salience.png': blocks(result.scores.salience),
    'allocation.png': encodePng(renderAllocation(result, shown), png),
  };
}

/** The allocation overlay: each region tinted by its level, its token grid drawn, its count labelled. */
export function renderAllocation(result: RelevanceResult, shown: RgbaImage): RgbaImage {
  const g = result.plan.grid;
  const sx = shown.width / g.imageWidth, sy = shown.height / g.imageHeight;
  const maxT = Math.max(1, ...result.allocation.tokens);
  const boxes: RegionBox[] = [];
  const lines: RegionBox[] = [];
  for (const r of g.regions) {
    const t = result.allocation.tokens[r.index]!;
    const rect = { x: r.imageRect.x * sx, y: r.imageRect.y * sy, width: r.imageRect.width * sx, height: r.imageRect.height * sy };
    const [cr, cg, cb] = colorAt('viridis', t / maxT);
    const fill: Rgba = t === 0 ? [0, 0, 0, 170] : [cr, cg, cb, Math.round(40 + 110 * (1 - t / maxT))];
    boxes.push({ ...rect, fill, stroke: [255, 255, 255, 230], label: String(t) });
    const [a, b] = result.tokens.shapes[r.index]!;
    // Token-grid lines (skipped when denser than 3 px).
    if (a > 0 && rect.height / a >= 3) for (let i = 1; i < a; i++) lines.push({ x: rect.x, y: rect.y + (i * rect.height) / a, width: rect.width, height: 0.01 });
    if (b > 0 && rect.width / b >= 3) for (let j = 1; j < b; j++) lines.push({ x: rect.x + (j * rect.width) / b, y: rect.y, width: 0.01, height: rect.height });
  }
  const tinted: RgbaImage = { width: shown.width, height: shown.height, data: new Uint8Array(shown.data) };
  for (const bx of boxes) fillRect(tinted, bx, bx.fill!);
  for (const l of lines) fillRect(tinted, { x: l.x, y: l.y, width: Math.max(1, l.width), height: Math.max(1, l.height) }, [255, 255, 255, 60]);
  return drawRegions(tinted, boxes.map((b) => ({ ...b, fill: undefined })), { thickness: 2, labelScale: 3 });
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function b64(bytes: Uint8Array): string {
  const parts: string[] = [];
  const CH = 3 * 8192;
  const buf = new Uint8Array(4 * (CH / 3));
  for (let s = 0; s < bytes.length; s += CH) {
    const e = Math.min(bytes.length, s + CH);
    let o = 0;
    for (let i = s; i < e; i += 3) {
      const n = (bytes[i]! << 16) | ((i + 1 < e ? bytes[i + 1]! : 0) << 8) | (i + 2 < e ? bytes[i + 2]! : 0);
      buf[o++] = B64.charCodeAt((n >> 18) & 63); buf[o++] = B64.charCodeAt((n >> 12) & 63);
      buf[o++] = i + 1 < e ? B64.charCodeAt((n >> 6) & 63) : 61; buf[o++] = i + 2 < e ? B64.charCodeAt(n & 63) : 61;
    }
    parts.push(String.fromCharCode.apply(null, Array.from(buf.subarray(0, o))));
  }
  return parts.join('');
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Extra facts for the report header. */
export interface ReportContext {
  /** Page title and heading (default 'vlm-attention relevance report' for both). */
  title?: string;
  /** Where the image came from, e.g. its file name (default 'image'). */
  source?: string;
  /** Free-form notes shown under the header (e.g. scene objects, precision). */
  notes?: string[];
  /** Backend name shown in the header (default: the plan's backend, else 'auto'). */
  backend?: string;
  /**
   * Where the interactive viewer for this run is: `href` a page relative to the report (e.g. the
   * self-contained viewer.html written next to it), `capture` the capture file for `vlm-attention view`.
   */
  viewer?: { href?: string; capture?: string };
}

/** `s` as one POSIX shell word: as it is where that is safe, else single-quoted. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function viewerLine(v: ReportContext['viewer']): string {
  if (!v || (!v.href && !v.capture)) return '';
  const parts: string[] = [];
  if (v.href) parts.push(`<a id="viewer-link" href="${esc(v.href)}">Open the interactive viewer</a> (query rows over the image, per token; works offline)`);
  // One shell word (quoted where the path has spaces or quotes), so that the command can be pasted as it is.
  if (v.capture) parts.push(`or serve it with <code>npx vlm-attention view ${esc(shellWord(v.capture))}</code>`);
  return `<p>${parts.join(' ')}.</p>`;
}

/** A self-contained HTML report (images inlined as data URIs; no scripts, no external files). */
export function renderHtmlReport(result: RelevanceResult, pngs: RelevancePngs, ctx: ReportContext = {}): string {
  const rows = allocationRows(result);
  const lat: LatencyRow[] = latencyTable(result.timings);
  const q = result.plan.lexicon;
  // The alt text says what the picture shows, the caption what to read from it: a screen reader reads both, so
  // one repeated verbatim was heard twice.
  const img = (name: keyof RelevancePngs, caption: string, alt: string) =>
    `<figure><img alt="${esc(alt)}" src="data:image/png;base64,${b64(pngs[name])}"><figcaption>${esc(caption)}</figcaption></figure>`;
  const a = result.allocation;
  const o = result.opponent;
  const queryText = q ? `“${esc(q.text)}” → tokens: ${q.tokens.map((t) => esc(t.words.join('+'))).join(', ')}${q.unknownWords.length ? ` (ignored: ${esc(q.unknownWords.join(', '))})` : ''}` : 'embedding query';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(ctx.title ?? 'vlm-attention relevance report')}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px}
figure{margin:0}img{width:100%;height:auto;border:1px solid #ccc;image-rendering:auto}
figcaption{font-size:12px;color:#555}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
th{background:#f4f4f4}.hot{background:#fff3c4}code{background:#f4f4f4;padding:1px 4px}
</style></head><body>
<h1>${esc(ctx.title ?? 'vlm-attention relevance report')}</h1>
<p>Source: ${esc(ctx.source ?? 'image')} · ${result.plan.grid.imageWidth}×${result.plan.grid.imageHeight} px · query ${queryText}</p>
<p>Budget ${result.plan.budget} tokens → ${a.total} allocated by ${a.method === 'water-fill' ? 'water-filling + largest remainder (A)' : 'level DP (B)'} over ${rows.length} regions
(${result.plan.grid.regionRows}×${result.plan.grid.regionCols}; base grid ${result.plan.grid.gridRows}×${result.plan.grid.gridCols} patches of ${result.plan.grid.patchSize} px)${a.dropped.length ? `, ${a.dropped.length} dropped` : ''}.
Opponent knobs: mix w = (${o.weights.join(', ')}), τ = ${o.temperature}, ε<sub>x</sub> = ${o.explore}. Backend: ${esc(ctx.backend ?? result.plan.options.backend ?? 'auto')}.</p>
${(ctx.notes ?? []).map((n) => `<p>${esc(n)}</p>`).join('\n')}
${viewerLine(ctx.viewer)}
<h2>Maps</h2>
<div class="grid">
${img('heatmap-query.png', 'Query coupling (participatory) per base patch', 'Heatmap over the image: how strongly each base patch matches the query, brighter is stronger')}
${img('allocation.png', 'Allocation: tokens per region (token grid drawn)', 'The image divided into regions, each drawn with the grid of tokens it was given; denser grids hold more tokens')}
${img('heatmap-rho.png', 'ρ after opponent processing', 'Heatmap over the image of each region\'s final relevance, brighter is more relevant')}
${img('heatmap-information.png', 'Information (luminance entropy) per region', 'Heatmap over the image of how much detail each region holds, brighter is more')}
${img('heatmap-salience.png', 'Salience per region', 'Heatmap over the image of how much each region stands out from its surroundings, brighter is more')}
${img('image.png', 'Input image', `The input image (${ctx.source ?? 'image'}), ${result.plan.grid.imageWidth}×${result.plan.grid.imageHeight} pixels`)}
</div>
<h2>Allocation</h2>
<table><tr><th>region</th><th>row</th><th>col</th><th>information</th><th>salience</th><th>participatory</th><th>ρ</th><th>tokens</th><th>grid</th></tr>
${rows.map((r) => `<tr${r.tokens === Math.max(...a.tokens) ? ' class="hot"' : ''}><td>${r.region}</td><td>${r.row}</td><td>${r.col}</td><td>${r.information.toFixed(4)}</td><td>${r.salience.toFixed(4)}</td><td>${r.participatory.toFixed(4)}</td><td>${r.rho.toFixed(4)}</td><td>${r.tokens}</td><td>${r.grid}</td></tr>`).join('\n')}
</table>
<h2>Latency budget (ms)</h2>
<table><tr><th>stage</th><th>measured</th><th>seed plan</th></tr>
${lat.map((r) => `<tr><td style="text-align:left">${r.stage}</td><td>${r.measuredMs === null ? 'not ours' : r.measuredMs.toFixed(1)}</td><td>${r.planMs}</td></tr>`).join('\n')}
</table>
<p>The seed's plan is 10/30/5/40/15 ms for texture/scoring/allocation/LOD attention/opponent plus 100 ms for the LLM; the total row excludes the LLM.</p>
</body></html>
`;
}

/**
 * A capture file (format of viz/capture-file.ts) for the interactive viewer: one layer, one head,
 * the lexicon query tokens' probability rows over the base patches (recomputed from the LSE, rows
 * only), the image, and optional object masks on the base grid. Lexicon queries only. `imagePng` should
 * show what the grid covers: encode {@link gridImage} (the full image is off by the crop where the plan
 * cropped it).
 */
export async function buildRelevanceCapture(result: RelevanceResult, imagePng: Uint8Array, masks?: Record<string, Uint8Array>): Promise<Uint8Array> {
  const lex = result.plan.lexicon;
  if (!lex) throw new UnsupportedError('buildRelevanceCapture for a query that is not text (the capture holds the query tokens\' rows)', 'a text query (planRelevance with query: string)');
  const g = result.plan.grid, n = g.gridRows * g.gridCols, T = lex.tokens.length;
  const { q, k, scale } = lexiconAttentionInputs(lex, result.texture, result.plan.options.bandwidth ?? 0.12);
  const rows = await probabilityRows(q, k, Array.from({ length: T }, (_, i) => i), { scale, backend: result.plan.options.backend });
  const P = rows.data as Float32Array; // [1, 1, T, n]
  const att = new Float32Array(T * (n + T));
  for (let t = 0; t < T; t++) att.set(P.subarray(t * n, (t + 1) * n), t * (n + T));
  const tokens = [
    ...Array.from({ length: n }, (_, i) => `<img ${Math.floor(i / g.gridCols)},${i % g.gridCols}>`),
    ...lex.tokens.map((t) => t.words.join('+')),
  ];
  const capture = makeCapture({
    tokens, grid: { rows: g.gridRows, cols: g.gridCols }, imageSpan: [0, n],
    attention: [{ dtype: 'f32', shape: [1, T, n + T], data: att }],
    queryPositions: Array.from({ length: T }, (_, t) => n + t),
    imagePng, masks,
    meta: { source: 'vlm-attention relevance (concept lexicon)', query: lex.text, budget: String(result.plan.budget), allocation: Array.from(result.allocation.tokens).join(',') },
  });
  return encodeCapture(capture);
}

/** Object masks (pixel, W×H) → base-grid masks (a patch is in when ≥ half its pixels are). */
export function masksToGrid(result: RelevanceResult, masks: Record<string, Uint8Array>): Record<string, Uint8Array> {
  const g = result.plan.grid, W = g.imageWidth, { crop } = g;
  const out: Record<string, Uint8Array> = {};
  for (const [name, m] of Object.entries(masks)) {
    const cnt = new Float64Array(g.gridRows * g.gridCols), tot = new Float64Array(g.gridRows * g.gridCols);
    for (let y = crop.y; y < crop.y + crop.height; y++) {
      const pr = Math.min(g.gridRows - 1, Math.floor(((y - crop.y) * g.gridRows) / crop.height));
      for (let x = crop.x; x < crop.x + crop.width; x++) {
        const i = pr * g.gridCols + Math.min(g.gridCols - 1, Math.floor(((x - crop.x) * g.gridCols) / crop.width));
        tot[i] += 1; cnt[i] += m[y * W + x]!;
      }
    }
    out[name] = Uint8Array.from(cnt, (c, i) => (c >= tot[i]! / 2 ? 1 : 0));
  }
  return out;
}
