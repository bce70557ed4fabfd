/**
 * Plain-text and Markdown tables for benchmark output. Columns are declared once; the same
 * declaration prints to the terminal and to BENCHMARKS.md, so the two cannot drift.
 */

export interface Column<Row> {
  title: string;
  /** The cell text; return '' (or null/undefined) for "not measured". */
  cell: (row: Row) => string | number | null | undefined;
  align?: 'left' | 'right';
}

function text(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'number' ? String(v) : v;
}

/** Fixed-width text table (first column left-aligned, others right-aligned by default). */
export function formatTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = rows.map((r) => columns.map((c) => text(c.cell(r))));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i]!.length)));
  const pad = (s: string, i: number) => ((columns[i]!.align ?? (i === 0 ? 'left' : 'right')) === 'left' ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (r: string[]) => r.map(pad).join('  ');
  return [line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

/** GitHub-flavoured Markdown table. */
export function markdownTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const align = columns.map((c, i) => ((c.align ?? (i === 0 ? 'left' : 'right')) === 'left' ? ':--' : '--:'));
  return [
    `| ${columns.map((c) => esc(c.title)).join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => esc(text(c.cell(r)))).join(' | ')} |`),
  ].join('\n');
}

/** A number with `digits` significant-ish decimals; '' for missing or non-finite values. */
export function fmt(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '';
  return x.toFixed(digits);
}

/** A ratio as "1.23×". */
export function fmtRatio(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '' : `${x.toFixed(2)}×`;
}

/** Bytes in MB (10^6) or GB (10^9). */
export function fmtBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '';
  if (Math.abs(bytes) >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
