/**
 * A small SVG line plot (log or linear axes) as a string: no DOM, so it renders the same in the page
 * and in tests. Ticks at powers of 10 (log) or at 1-2-5 steps (linear).
 */

export interface Series {
  name: string;
  color: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logX?: boolean;
  logY?: boolean;
  /** Horizontal reference lines, e.g. device memory sizes. */
  hlines?: readonly { y: number; label: string; color: string }[];
  width?: number;
  height?: number;
  formatX?: (x: number) => string;
  formatY?: (y: number) => string;
  /** Explicit x ticks (e.g. powers of two); default powers of 10 (log) or 1-2-5 steps. */
  xTicks?: readonly number[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      const v = 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
    return out.length >= 2 ? out : [lo, hi];
  }
  const span = hi - lo || 1;
  const raw = span / 5, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= 6)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

/** Renders the plot; points that are not finite (or ≤ 0 on a log axis) are skipped. */
export function svgPlot(spec: PlotSpec): string {
  const W = spec.width ?? 640, H = spec.height ?? 360, L = 78, R = 150, T = 30, B = 46;
  const ok = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y) && (!spec.logX || x > 0) && (!spec.logY || y > 0);
  const pts = spec.series.flatMap((s) => s.points.filter(([x, y]) => ok(x, y)));
  const ys = [...pts.map((p) => p[1]), ...(spec.hlines ?? []).map((h) => h.y).filter((y) => !spec.logY || y > 0)];
  const xs = pts.map((p) => p[0]);
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [1, 10];
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [1, 10];
  if (x0 === x1) { x0 = spec.logX ? x0 / 2 : x0 - 1; x1 = spec.logX ? x1 * 2 : x1 + 1; }
  if (y0 === y1) { y0 = spec.logY ? y0 / 2 : y0 - 1; y1 = spec.logY ? y1 * 2 : y1 + 1; }
  if (!spec.logY && y0 > 0) y0 = 0;
  const tx = (x: number) => L + ((spec.logX ? Math.log(x / x0) / Math.log(x1 / x0) : (x - x0) / (x1 - x0)) * (W - L - R));
  const ty = (y: number) => H - B - ((spec.logY ? Math.log(y / y0) / Math.log(y1 / y0) : (y - y0) / (y1 - y0)) * (H - T - B));
  const fx = spec.formatX ?? ((x: number) => String(x));
  const fy = spec.formatY ?? ((y: number) => String(y));
  const parts: string[] = [];
  parts.push(`<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}">`);
  parts.push(`<text x="${W / 2 - R / 2}" y="18" text-anchor="middle" class="plot-title">${esc(spec.title)}</text>`);
  for (const v of spec.xTicks?.filter((t) => t >= x0 && t <= x1) ?? niceTicks(x0, x1, !!spec.logX)) {
    const x = tx(v).toFixed(1);
    parts.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" class="gridline"/><text x="${x}" y="${H - B + 16}" text-anchor="middle" class="tick">${esc(fx(v))}</text>`);
  }
  for (const v of niceTicks(y0, y1, !!spec.logY)) {
    const y = ty(v).toFixed(1);
    parts.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" class="gridline"/><text x="${L - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${esc(fy(v))}</text>`);
  }
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" class="frame"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle" class="axis">${esc(spec.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle" class="axis">${esc(spec.yLabel)}</text>`);
  // Reference lines: labels inside the plot at the right end, nudged apart so they never overlap.
  const hl = (spec.hlines ?? []).filter((h) => !spec.logY || h.y > 0).map((h) => ({ ...h, py: ty(h.y) })).sort((a, b) => a.py - b.py);
  let lastLabel = -Infinity;
  for (const h of hl) {
    const ly = Math.max(h.py - 3, lastLabel + 12);
    lastLabel = ly;
    parts.push(`<line x1="${L}" y1="${h.py.toFixed(1)}" x2="${W - R}" y2="${h.py.toFixed(1)}" stroke="${h.color}" stroke-dasharray="2 3" class="hline"/><text x="${L + 4}" y="${ly.toFixed(1)}" class="hlabel" fill="${h.color}">${esc(h.label)}</text>`);
  }
  spec.series.forEach((s, i) => {
    const p = s.points.filter(([x, y]) => ok(x, y));
    if (p.length) {
      const d = p.map(([x, y], j) => `${j ? 'L' : 'M'}${tx(x).toFixed(1)} ${ty(y).toFixed(1)}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} class="series" data-name="${esc(s.name)}"/>`);
    }
    const ly = T + 8 + i * 16;
    parts.push(`<line x1="${W - R + 8}" y1="${ly}" x2="${W - R + 26}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${W - R + 30}" y="${ly}" dominant-baseline="middle" class="legend">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
