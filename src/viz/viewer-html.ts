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

/**
 * Longest page `embedCapture` builds, in characters: V8's longest string (2^29 − 24 characters) less a margin.
 * The page is one string (the base64 of the capture, then the page around it), so a capture of about 400 MB
 * cannot be embedded at all: building it failed with "Cannot create a string longer than 0x1fffffe8 characters".
 */
export const MAX_EMBED_CHARS = 0x1fffffe8 - 1024;

/** Characters of the page `embedCapture` makes from `html` and a capture of `captureBytes` bytes (base64: 4 per 3 bytes). */
export function embeddedLength(html: string, captureBytes: number, title?: string): number {
  const tag = '<script id="vlm-capture" type="application/octet-stream;base64"></script>'.length;
  // The title replaces the page's own title text (as embedCapture does), which was counted in html.length already.
  const old = title ? TITLE.exec(html) : null;
  const titleDelta = old ? escapeHtml(title!).length - old[1]!.length : 0;
  return html.length - CAPTURE_MARKER.length + tag + 4 * Math.ceil(captureBytes / 3) + titleDelta;
}

/** The page's <title> (its text in group 1): what embedCapture replaces with the capture's title. */
const TITLE = /<title>([^<]*)<\/title>/;

/**
 * The page with a capture file embedded: a single self-contained HTML file. UnsupportedError (argument
 * `captureBytes`) when the page would be longer than `opts.maxChars` (default MAX_EMBED_CHARS): check with
 * embeddedLength first to avoid encoding a capture that cannot fit.
 */
export function embedCapture(html: string, captureBytes: Uint8Array, title?: string, opts: { maxChars?: number } = {}): string {
  const max = opts.maxChars ?? MAX_EMBED_CHARS;
  const n = embeddedLength(html, captureBytes.byteLength, title);
  if (n > max) {
    throw new UnsupportedError(`a capture of ${captureBytes.byteLength} bytes makes a page of ${n} characters, more than the ${max} one page can hold`, 'serving it with `vlm-attention view <capture>`', 'captureBytes');
  }
  const b64 = Buffer.from(captureBytes.buffer, captureBytes.byteOffset, captureBytes.byteLength).toString('base64');
  const tag = `<script id="vlm-capture" type="application/octet-stream;base64">${b64}</script>`;
  let out = html.replace(CAPTURE_MARKER, () => tag);
  if (title) out = out.replace(TITLE, () => `<title>${escapeHtml(title)}</title>`);
  return out;
}

/** `s` with the five HTML-special characters escaped (text and attribute values). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
