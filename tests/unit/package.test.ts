/**
 * What `npm install vlm-attention` gets must run on its own: the tarball `npm pack` makes is unpacked into a
 * consumer folder outside this repository whose node_modules holds only the package's dependencies and
 * optional dependencies (links to this checkout's copies), never its devDependencies, so a runtime import of a
 * dev-only package, a file missing from `files` or an export pointing nowhere fails here.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = resolve('.');
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  exports: Record<string, { types: string; default: string }>;
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
      expect(existsSync(join(root, e.default)), `${name} → ${e.default}`).toBe(true);
      expect(existsSync(join(root, e.types)), `${name} types → ${e.types}`).toBe(true);
    }
    for (const b of Object.values(pkg.bin)) expect(existsSync(join(root, b)), b).toBe(true);
    expect(readdirSync(root).sort()).toEqual(['LICENSE', 'README.md', 'dist', 'package.json']);
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

  it('runs the command-line tool from its bin', () => {
    const bin = join(consumer, 'node_modules', 'vlm-attention', pkg.bin['vlm-attention']!);
    expect(node([bin, '--help'])).toMatch(/demo/);
    expect(node([bin, 'cost', 'attention', '--seq', '577', '--heads', '16', '--head-dim', '64'])).toMatch(/FLOP/i);
  }, 150_000);
});
