/**
 * The viewer page, bundled at build time by scripts/build-viewer.mjs (esbuild) into one HTML file
 * with inline script and style: dist/viewer/index.html. Node-only (reads the file).
 *
 * Served by `vlm-attention view`, the page calls the local server's /api. Written by
 * `vlm-attention viz`, the capture is embedded (base64) in the page, which then answers the same
 * API in-page: one self-contained file that works offline.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UnsupportedError } from '../errors.js';

/** Marker in the bundled page where `embedCapture` puts the capture. */
export const CAPTURE_MARKER = '<!--VLM-ATTENTION-CAPTURE-->';

/** Where the bundled page may be: $VLM_ATTENTION_VIEWER_HTML, next to the compiled code (dist/viewer) or, from sources, in dist/. */
export function viewerHtmlCandidates(): string[] {
  const env = typeof process !== 'undefined' ? process.env.VLM_ATTENTION_VIEWER_HTML : undefined;
  return [...(env ? [env] : []), ...[new URL('../viewer/index.html', import.meta.url), new URL('../../dist/viewer/index.html', import.meta.url)].map((u) => fileURLToPath(u))];
}

let cached: string | null = null;

/** The bundled viewer page (UnsupportedError when the build has not produced it). */
export function loadViewerHtml(): string {
  if (cached) return cached;
  for (const p of viewerHtmlCandidates()) {
    if (existsSync(p)) {
      const html = readFileSync(p, 'utf8');
      if (!html.includes(CAPTURE_MARKER)) continue;
      cached = html;
      return html;
    }
  }
  throw new UnsupportedError(`the viewer page is not built (looked in ${viewerHtmlCandidates().join(', ')}); run \`node scripts/build-viewer.mjs\` (part of \`npm run build\`)`);
}

/** The page with a capture file embedded: a single self-contained HTML file. */
export function embedCapture(html: string, captureBytes: Uint8Array, title?: string): string {
  const b64 = Buffer.from(captureBytes.buffer, captureBytes.byteOffset, captureBytes.byteLength).toString('base64');
  const tag = `<script id="vlm-capture" type="application/octet-stream;base64">${b64}</script>`;
  let out = html.replace(CAPTURE_MARKER, () => tag);
  if (title) out = out.replace(/<title>[^<]*<\/title>/, () => `<title>${escapeHtml(title)}</title>`);
  return out;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
