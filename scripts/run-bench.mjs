#!/usr/bin/env node
// Runs a benchmark: bundles bench/<name>.ts with esbuild (platform node, ESM, packages external)
// into build/bench/<name>.js and runs it with node.
//
//   node scripts/run-bench.mjs [node flags…] <name> [bench args…]
//   e.g. node scripts/run-bench.mjs --experimental-wasm-relaxed-simd cpu --shapes=vitL14-336
//
// Arguments before <name> that start with '-' are node flags (forwarded to node), except:
//   --no-build   do not rebuild the generated kernel files (*.generated.ts) even if stale.
// The generated files are rebuilt (scripts/build.mjs --no-tsc) when missing or older than the
// kernel sources, so a bench never times a stale kernel.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const nameAt = argv.findIndex((a) => !a.startsWith('-'));
if (nameAt < 0) {
  const names = existsSync(join(root, 'bench')) ? readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)) : [];
  console.error(`usage: node scripts/run-bench.mjs [node flags…] <name> [bench args…]\nbenchmarks: ${names.join(', ')}`);
  process.exit(2);
}
const pre = argv.slice(0, nameAt), name = argv[nameAt], rest = argv.slice(nameAt + 1);
const noBuild = pre.includes('--no-build');
const nodeFlags = pre.filter((a) => a !== '--no-build');
// Ask node itself (allowedNodeEnvironmentFlags omits most V8 flags, e.g. --experimental-wasm-relaxed-simd).
for (const f of nodeFlags) {
  if (spawnSync(process.execPath, [f, '-e', '0'], { stdio: 'ignore' }).status !== 0) {
    console.error(`run-bench: node ${process.version} does not accept the flag ${f}`);
    process.exit(2);
  }
}
const entry = join(root, 'bench', `${name}.ts`);
if (!existsSync(entry)) {
  console.error(`run-bench: no benchmark bench/${name}.ts`);
  process.exit(2);
}

// Rebuild generated kernel files when missing or stale.
function newest(dir) {
  if (!existsSync(dir)) return 0;
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (!e.name.endsWith('.generated.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}
const generated = ['src/kernels/cpu/wasm-binary.generated.ts', 'src/kernels/cpu/abi.generated.ts', 'src/kernels/webgpu/shaders.generated.ts'].map((p) => join(root, p));
const missing = generated.some((p) => !existsSync(p));
// asc rewrites build/wasm/*.wasm on every build (the .generated.ts files are written only when
// their text changes), so those binaries date the last kernel build.
const wasmDir = join(root, 'build/wasm');
const wasmFiles = existsSync(wasmDir) ? readdirSync(wasmDir).filter((f) => f.endsWith('.wasm')).map((f) => statSync(join(wasmDir, f)).mtimeMs) : [];
const builtAt = wasmFiles.length ? Math.min(...wasmFiles) : 0;
const sourcesTime = Math.max(newest(join(root, 'src/kernels/cpu/assembly')), statSync(join(root, 'scripts/abi.mjs')).mtimeMs);
const stale = !missing && builtAt < sourcesTime;
if (missing || (stale && !noBuild)) {
  console.error(`run-bench: generated kernel files ${missing ? 'missing' : 'older than their sources'}; running scripts/build.mjs --no-tsc`);
  execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), '--no-tsc'], { stdio: 'inherit', cwd: root });
} else if (stale) {
  console.error('run-bench: warning: generated kernel files are older than their sources (--no-build given)');
}

// What the bundle was built from, so every result names its source (the kernels change often).
function git(args) {
  try { return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
}
const dirty = git(['status', '--porcelain', '--', 'src', 'scripts', 'bench']);
const source = {
  commit: git(['rev-parse', '--short=12', 'HEAD']),
  uncommittedFiles: dirty === null ? null : dirty.split('\n').filter(Boolean).length,
  bundledAt: new Date().toISOString(),
};

const outfile = join(root, 'build', 'bench', `${name}.js`);
await build({
  define: { __VLM_BENCH_SOURCE__: JSON.stringify(source) },
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${process.versions.node.split('.')[0]}`,
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});

const child = spawn(process.execPath, ['--enable-source-maps', ...nodeFlags, outfile, ...rest], { stdio: 'inherit', cwd: root });
const forward = (sig) => child.kill(sig);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('close', (code, signal) => {
  if (signal) { console.error(`run-bench: bench/${name} killed by ${signal}`); process.exit(1); }
  process.exit(code ?? 1);
});
