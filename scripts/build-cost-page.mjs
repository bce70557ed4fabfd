// Builds the offline cost calculator: src/cost/page/main.ts bundled by esbuild (browser, IIFE, minified)
// and inlined with the CSS into ONE self-contained HTML file, dist/web/cost.html (no external
// resources; a Content-Security-Policy of default-src 'none' keeps it off the network).
//   node scripts/build-cost-page.mjs [--out path.html]
// scripts/build.mjs imports this module after tsc, which builds the default output.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pageDir = join(root, 'src/cost/page');

/** Builds the page into `outFile` (default dist/web/cost.html); returns its path and size. */
export async function buildCostPage(outFile = join(root, 'dist/web/cost.html')) {
  const result = await build({
    entryPoints: [join(pageDir, 'main.ts')],
    bundle: true, format: 'iife', platform: 'browser', target: 'es2020', minify: true, write: false, legalComments: 'none',
    logLevel: 'warning',
  });
  const js = result.outputFiles[0].text.replace(/<\/script/gi, '<\\/script').replace(/<!--/g, '<\\!--');
  const css = readFileSync(join(pageDir, 'style.css'), 'utf8');
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  const html = readFileSync(join(pageDir, 'template.html'), 'utf8')
    .replace('/*__CSS__*/', () => css)
    .replace('__VERSION__', () => version)
    .replace('/*__JS__*/', () => js);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, html);
  return { path: outFile, bytes: Buffer.byteLength(html) };
}

const invokedDirectly = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
const outArg = invokedDirectly ? process.argv.indexOf('--out') : -1;
const built = await buildCostPage(outArg > 0 ? resolve(process.argv[outArg + 1]) : undefined);
if (invokedDirectly) console.log(`cost page: ${built.path} (${(built.bytes / 1024).toFixed(0)} KiB)`);
