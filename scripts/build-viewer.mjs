// Bundles the attention viewer (src/viewer/main.ts and the browser-safe viz core it imports) with
// esbuild into ONE offline HTML file, dist/viewer/index.html: inline CSS and script, no network.
// `vlm-attention view` serves it; `vlm-attention viz` embeds a capture into a copy of it.
// Usage: node scripts/build-viewer.mjs [--out path] [--no-minify]
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rel = (...p) => join(root, ...p);

/** Builds the page; returns { outFile, bytes }. */
export async function buildViewer({ outFile = rel('dist/viewer/index.html'), minify = true } = {}) {
  const result = await build({
    entryPoints: [rel('src/viewer/main.ts')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    write: false,
    minify,
    legalComments: 'none',
    logLevel: 'warning',
  });
  // Inline-script safety: no "</script" or "<!--" may appear inside the script element.
  const js = result.outputFiles[0].text.replace(/<\/script/gi, '<\\/script').replace(/<!--/g, '<\\!--');
  const css = readFileSync(rel('src/viewer/style.css'), 'utf8');
  const template = readFileSync(rel('src/viewer/index.html'), 'utf8');
  if (!template.includes('/*VIEWER-JS*/') || !template.includes('/*VIEWER-CSS*/') || !template.includes('<!--VLM-ATTENTION-CAPTURE-->')) {
    throw new Error('src/viewer/index.html lacks a placeholder (/*VIEWER-JS*/, /*VIEWER-CSS*/ or <!--VLM-ATTENTION-CAPTURE-->)');
  }
  const html = template.replace('/*VIEWER-CSS*/', () => css).replace('/*VIEWER-JS*/', () => js);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, html);
  return { outFile, bytes: Buffer.byteLength(html) };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--out');
  const { outFile, bytes } = await buildViewer({ outFile: i >= 0 ? resolve(args[i + 1]) : undefined, minify: !args.includes('--no-minify') });
  console.log(`viewer: ${outFile} (${(bytes / 1024).toFixed(1)} KiB)`);
}
