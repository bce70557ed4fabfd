/**
 * What `npm install vlm-attention` gets must run on its own: the tarball `npm pack` makes is unpacked into a
 * consumer folder outside this repository whose node_modules holds only the package's dependencies and
 * optional dependencies (links to this checkout's copies), never its devDependencies, so a runtime import of a
 * dev-only package, a file missing from `files` or an export pointing nowhere fails here. Its declarations must
 * type-check in a strict TypeScript project without skipLibCheck, for Node (with @types/node) and for browsers
 * (without it). Both need the DOM lib: WebGPU's types (@webgpu/types) are written against it, as Dawn's `webgpu`
 * package's are. A browser app that imports it, built by Vite, gets no Node module (package.json's "browser" map
 * swaps src/platform/node.ts for browser.ts) and runs in Chromium.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve('.');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  version: string;
  exports: Record<string, { types: string; default: string } | string>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
let consumer = '';

const node = (args: string[], cwd = consumer) =>
  execFileSync(process.execPath, args, { cwd, encoding: 'utf8', stdio: 'pipe', timeout: 120_000 });

describe('the published package', () => {
  beforeAll(() => {
    consumer = mkdtempSync(join(tmpdir(), 'vlm-attention-consumer-'));
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', consumer], { cwd: repo, encoding: 'utf8', timeout: 120_000 });
    const tarball = join(consumer, out.trim().split('\n').pop()!);
    const modules = join(consumer, 'node_modules');
    mkdirSync(join(modules, 'vlm-attention'), { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', join(modules, 'vlm-attention'), '--strip-components=1']);
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      if (!existsSync(join(repo, 'node_modules', dep))) continue; // an optional dependency this machine lacks
      mkdirSync(join(modules, dep, '..'), { recursive: true });
      symlinkSync(join(repo, 'node_modules', dep), join(modules, dep), 'dir');
    }
  }, 150_000);
  afterAll(() => { if (consumer) rmSync(consumer, { recursive: true, force: true }); });

  it('holds every export, its types and the bin, and no sources or tests', () => {
    const root = join(consumer, 'node_modules', 'vlm-attention');
    for (const [name, e] of Object.entries(pkg.exports)) {
      if (typeof e === 'string') { expect(existsSync(join(root, e)), `${name} → ${e}`).toBe(true); continue; }
      expect(existsSync(join(root, e.default)), `${name} → ${e.default}`).toBe(true);
      expect(existsSync(join(root, e.types)), `${name} types → ${e.types}`).toBe(true);
    }
    for (const b of Object.values(pkg.bin)) expect(existsSync(join(root, b)), b).toBe(true);
    expect(readdirSync(root).sort()).toEqual(['BENCHMARKS.md', 'LICENSE', 'README.md', 'dist', 'docs', 'package.json']);
    // The README's relative links (docs, BENCHMARKS.md) resolve inside the package, not only in a checkout.
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(((?!https?:|#)[^)#\s]+)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(3);
    for (const l of links.filter((x) => !x.startsWith('examples/') && !x.startsWith('src/') && !x.startsWith('tests/') && !x.startsWith('bench/'))) expect(existsSync(join(root, l)), `README link ${l}`).toBe(true);
    // Declarations stay small: the WASM binaries are declared as strings, not as their base64 literal types.
    expect(readFileSync(join(root, 'dist/kernels/cpu/wasm-binary.generated.d.ts'), 'utf8').length).toBeLessThan(1000);
  });

  // As an ES module (--input-type=module): Node workers inherit the flag, so the thread pool's eval'd worker
  // source runs as one too (it once used require there and failed).
  it('imports both entry points and runs attention and the CPU ceiling on worker threads', () => {
    const out = node(['--input-type=module', '-e', `
      import { attention, randn, causal, measureCpu } from 'vlm-attention';
      import * as nodeEntry from 'vlm-attention/node';
      const q = randn([1, 97, 4, 64], 1), k = randn([1, 97, 2, 64], 2), v = randn([1, 97, 2, 64], 3);
      const r = await attention(q, k, v, { mask: causal(), backend: 'wasm', returnLse: true });
      const ceiling = await measureCpu({ iters: 1000 });
      console.log(JSON.stringify({ out: r.out.shape, lse: r.lse.shape, node: Object.keys(nodeEntry).length > 0, workers: ceiling.concurrent || ceiling.threads < 2 }));
      process.exit(0);`]);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ out: [1, 97, 4, 64], lse: [1, 4, 97], node: true, workers: true });
  }, 150_000);

  it('runs the README examples as a user would write them', () => {
    for (const f of readdirSync(join(repo, 'examples')).filter((x) => x.endsWith('.mjs'))) {
      const body = readFileSync(join(repo, 'examples', f), 'utf8').replaceAll("'../dist/index.js'", "'vlm-attention'");
      expect(body, f).not.toMatch(/\.\.\/dist\//);
      node(['--input-type=module', '-e', `${body}\nprocess.exit(0);`]);
    }
  }, 300_000);

  // The consumer's own TypeScript and @types/node (its devDependencies, not ours) come from this checkout.
  const typeCheck = (name: string, source: string, compilerOptions: Record<string, unknown>) => {
    const dir = join(consumer, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(join(dir, 'app.ts'), source);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false, typeRoots: [join(repo, 'node_modules', '@types')], ...compilerOptions },
      files: ['app.ts'],
    }));
    try {
      execFileSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir, encoding: 'utf8', stdio: 'pipe', timeout: 120_000 });
    } catch (e) {
      throw new Error(`tsc (${name}):\n${(e as { stdout?: string }).stdout ?? e}`);
    }
  };
  const uses = `
    const q = randn([1, 8, 2, 16], 1);
    const opts: AttentionOptions = { mask: causal().and(slidingWindow(4, 0)), returnLse: true };
    const r = await attention(q, q, q, opts);
    const shape: readonly number[] = r.out.shape;
    const cache = new PagedKvCache({ numLayers: 1, numKvHeads: 2, headDim: 16, blockSizeTokens: 16, numBlocks: 4, dtype: 'f16' });
    const gpu: (t: Tensor) => Promise<GpuTensor> = (t) => GpuTensor.fromTensor(t);
    export { shape, cache, gpu, gpuContext, cpuRuntime };`;
  const core = "import { attention, randn, causal, slidingWindow, PagedKvCache, GpuTensor, Tensor, gpuContext, cpuRuntime, type AttentionOptions } from 'vlm-attention';";

  it('type-checks in a strict Node project (@types/node, skipLibCheck off)', () => {
    typeCheck('ts-node', `${core}\nimport { readSafetensorsFile, RedisFeatureStore } from 'vlm-attention/node';\n${uses}\nexport { readSafetensorsFile, RedisFeatureStore };\n`,
      { lib: ['es2022', 'dom'], types: ['node'] });
  }, 150_000);

  it('type-checks in a strict browser project (no @types/node, skipLibCheck off)', () => {
    typeCheck('ts-browser', `${core}\n${uses}\n`, { lib: ['es2022', 'dom'], types: [] });
  }, 150_000);

  it('bundles for browsers with Vite, with no Node module, and runs there on WebAssembly (threads where isolated, one thread and an unshared heap where not) and WebGPU', async () => {
    const dir = join(consumer, 'web');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="./main.js"></script>');
    writeFileSync(join(dir, 'main.js'), `
      import { attention, randn, causal, cpuRuntime } from 'vlm-attention';
      const q = randn([1, 97, 4, 64], 1), k = randn([1, 97, 2, 64], 2), v = randn([1, 97, 2, 64], 3);
      const maxDiff = (x, y) => { let d = 0; for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i] - y[i])); return d; };
      globalThis.run = async () => {
        const a = await attention(q, k, v, { mask: causal(), backend: 'wasm' });
        const g = await attention(q, k, v, { mask: causal(), backend: 'webgpu' });
        // Large enough to grow the kernel heap (unshared without cross-origin isolation: the call starts again).
        const bq = randn([1, 600, 8, 64], 4), bk = randn([1, 600, 4, 64], 5), bv = randn([1, 600, 4, 64], 6);
        const big = await attention(bq, bk, bv, { mask: causal(), backend: 'wasm' }), bigRef = await attention(bq, bk, bv, { mask: causal(), backend: 'cpu-ts' });
        return { shape: a.out.shape, threads: (await cpuRuntime()).threads, isolated: crossOriginIsolated, diff: maxDiff(a.out.toFloat32(), g.out.toFloat32()), big: maxDiff(big.out.toFloat32(), bigRef.out.toFloat32()) };
      };`);
    await build({ root: dir, logLevel: 'error', configFile: false, build: { outDir: join(dir, 'dist') } });
    // Without the "browser" map Vite stubs the node:* modules and emits Dawn's loader (the webgpu package) as chunks
    // of their own: five files instead of one.
    const assets = readdirSync(join(dir, 'dist', 'assets'));
    expect(assets.filter((f) => f.endsWith('.js')), 'one chunk: no webgpu (Dawn) chunk').toHaveLength(1);

    const server: Server = createServer((req, res) => {
      const page = req.url === '/' || req.url === '/plain';
      const path = join(dir, 'dist', page ? 'index.html' : req.url!.split('?')[0]!);
      // '/' cross-origin isolated, so SharedArrayBuffer and the worker threads are there; '/plain' not (one thread,
      // an unshared heap).
      const headers = req.url === '/plain' ? {} : { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
      if (!existsSync(path)) { res.writeHead(404, headers).end(); return; }
      res.writeHead(200, { ...headers, 'Content-Type': extname(path) === '.js' ? 'text/javascript' : 'text/html' }).end(readFileSync(path));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--enable-features=Vulkan'] })
      .catch((e: Error) => { throw new Error(`Chromium could not start from ${executablePath}; install Debian's chromium or set CHROMIUM_PATH.\n${e.message}`); });
    try {
      for (const path of ['/', '/plain']) {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(String(e)));
        await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}${path}`);
        await page.waitForFunction(() => typeof (globalThis as { run?: unknown }).run === 'function');
        const r = await page.evaluate(() => (globalThis as unknown as { run: () => Promise<{ shape: number[]; threads: number; isolated: boolean; diff: number; big: number }> }).run());
        expect(errors, path).toEqual([]);
        expect(r.shape).toEqual([1, 97, 4, 64]);
        expect(r.isolated, path).toBe(path === '/');
        if (path === '/') expect(r.threads).toBeGreaterThan(1); else expect(r.threads).toBe(1);
        expect(r.diff, path).toBeLessThan(1e-5);
        expect(r.big, path).toBeLessThan(1e-5);
        await page.close();
      }
    } finally {
      await browser.close();
      await new Promise((r) => server.close(r));
    }
  }, 300_000);

  it('runs the command-line tool from its bin', () => {
    const bin = join(consumer, 'node_modules', 'vlm-attention', pkg.bin['vlm-attention']!);
    expect(node([bin, '--help'])).toMatch(/demo/);
    expect(node([bin, '--version']).trim()).toBe(`vlm-attention ${pkg.version}`);
    expect(node(['--input-type=module', '-e', "import p from 'vlm-attention/package.json' with { type: 'json' }; console.log(p.name)"]).trim()).toBe('vlm-attention');
    expect(node([bin, 'cost', 'attention', '--seq', '577', '--heads', '16', '--head-dim', '64'])).toMatch(/FLOP/i);
  }, 150_000);
});
