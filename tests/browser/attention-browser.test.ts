/**
 * The attention kernels in a real browser: the library bundled for the browser (esbuild, no Node
 * built-ins), served on 127.0.0.1 with cross-origin isolation (COOP/COEP, so SharedArrayBuffer and
 * kernel Web Workers are available), run in Debian's Chromium with WebGPU on SwiftShader's Vulkan
 * driver (--enable-unsafe-webgpu --enable-unsafe-swiftshader --enable-features=Vulkan). The WASM
 * backend (multi-threaded) and the WebGPU backend are checked against the float64 reference computed
 * here from the same seeded inputs. A missing Chromium or WebGPU adapter fails the test (never skips).
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionReference, causal, randn, slidingWindow, type Mask } from '../../src/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const tmp = mkdtempSync(join(tmpdir(), 'vlm-attention-browser-'));
let browser: BrowserContext;
let server: Server;
let origin = '';

// The page's entry: inputs from the library's seeded generator, so Node can rebuild them exactly.
const ENTRY = `
import { attention, randn, causal, slidingWindow, cpuRuntime, gpuContext, lastKernelStats } from './src/index.ts';
const masks = { none: () => null, causal: () => causal(), window: () => slidingWindow(9, 3) };
// Every case at once (no repeats): calls overlap while the pool's caller polls its workers asynchronously.
globalThis.attentionConcurrent = async (cases, backend) => {
  const rt = await cpuRuntime();
  const outs = await Promise.all(cases.map(async (c) => {
    const q = randn([c.B, c.Sq, c.H, c.D], c.seed), k = randn([c.B, c.Sk, c.Hk, c.D], c.seed + 1), v = randn([c.B, c.Sk, c.Hk, c.D], c.seed + 2);
    const r = await attention(q, k, v, { mask: masks[c.mask](), softcap: c.softcap, returnLse: true, backend });
    return { out: Array.from(r.out.toFloat32()), lse: Array.from(r.lse.toFloat32()), readAhead: [] };
  }));
  return { info: { isolated: globalThis.crossOriginIsolated === true, threads: rt.threads, shared: rt.heap.shared }, outs };
};
globalThis.attentionTest = async (cases, backend) => {
  const info = { isolated: globalThis.crossOriginIsolated === true };
  if (backend === 'wasm') { const rt = await cpuRuntime(); info.variant = rt.variant; info.threads = rt.threads; }
  else { const ctx = await gpuContext(); info.adapter = ctx.caps.vendor + ' ' + ctx.caps.architecture + ' ' + ctx.caps.description; }
  const outs = [];
  for (const c of cases) {
    const q = randn([c.B, c.Sq, c.H, c.D], c.seed), k = randn([c.B, c.Sk, c.Hk, c.D], c.seed + 1), v = randn([c.B, c.Sk, c.Hk, c.D], c.seed + 2);
    // repeat: the same call again (the WASM decode's read-ahead tuner alternates its two ways on a size's first calls).
    let r;
    const readAhead = new Set();
    for (let i = 0; i < (c.repeat ?? 1); i++) {
      r = await attention(q, k, v, { mask: masks[c.mask](), softcap: c.softcap, returnLse: true, backend });
      if (backend === 'wasm' && lastKernelStats && lastKernelStats.readAhead !== undefined) readAhead.add(lastKernelStats.readAhead);
    }
    outs.push({ out: Array.from(r.out.toFloat32()), lse: Array.from(r.lse.toFloat32()), readAhead: [...readAhead] });
  }
  return { info, outs };
};
`;

const HTML = '<!doctype html><meta charset="utf-8"><title>vlm-attention kernels</title><script src="/bundle.js"></script>';

interface Case { name: string; B: number; Sq: number; Sk: number; H: number; Hk: number; D: number; mask: 'none' | 'causal' | 'window'; softcap?: number; seed: number; repeat?: number }
const CASES: Case[] = [
  { name: 'cross 97×130 GQA 2, causal', B: 1, Sq: 97, Sk: 130, H: 4, Hk: 2, D: 40, mask: 'causal', seed: 11 },
  { name: 'decode 1×300, GQA 4, batch 2', B: 2, Sq: 1, Sk: 300, H: 8, Hk: 2, D: 64, mask: 'none', seed: 21 },
  { name: 'self 65, window + softcap', B: 1, Sq: 65, Sk: 65, H: 2, Hk: 2, D: 24, mask: 'window', softcap: 20, seed: 31 },
  // 9 MB of f32 K/V: the WASM decode times reading tiles ahead against not (performance.now in the page).
  { name: 'decode over 9 MB of K/V, 4 calls', B: 1, Sq: 1, Sk: 1100, H: 32, Hk: 8, D: 128, mask: 'none', seed: 41, repeat: 4 },
];
type PageOut = { out: number[]; lse: number[]; readAhead: boolean[] };

function maskOf(c: Case): Mask | null {
  return c.mask === 'causal' ? causal() : c.mask === 'window' ? slidingWindow(9, 3) : null;
}

beforeAll(async () => {
  const out = await build({
    stdin: { contents: ENTRY, resolveDir: process.cwd(), loader: 'ts' }, bundle: true, platform: 'browser', format: 'iife', write: false,
    logLevel: 'silent', external: ['webgpu', 'node:*'], // dynamic, behind Node checks in the core
  });
  const bundle = out.outputFiles[0]!.text;
  server = createServer((req, res) => {
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    if (req.url === '/bundle.js') res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' }).end(bundle);
    else if (req.url === '/') res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(HTML);
    // Without COOP/COEP: no SharedArrayBuffer, so one thread over a heap whose growth detaches its buffer.
    else if (req.url === '/plain/') res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store' }).end(HTML);
    else res.writeHead(404, headers).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  try {
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmp, 'profile-')), {
      executablePath: CHROMIUM, headless: true,
      args: ['--headless', '--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--enable-features=Vulkan', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    throw new Error(`Chromium could not start from ${CHROMIUM} (CI=${process.env.CI ?? 'unset'}); install Debian's chromium or set CHROMIUM_PATH.\n${(e as Error).message}`);
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

async function runInPage(backend: 'wasm' | 'webgpu', mode: { concurrent?: Case[]; path?: string } = {}): Promise<{ info: Record<string, unknown>; outs: PageOut[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(origin + (mode.path ?? '/'));
  await page.waitForFunction(() => typeof (globalThis as { attentionTest?: unknown }).attentionTest === 'function');
  type Fn = (c: unknown, b: string) => Promise<{ info: Record<string, unknown>; outs: PageOut[] }>;
  try {
    if (mode.concurrent) return await page.evaluate(([cases, b]) => (globalThis as unknown as { attentionConcurrent: Fn }).attentionConcurrent(cases, b), [mode.concurrent, backend] as const);
    return await page.evaluate(([cases, b]) => (globalThis as unknown as { attentionTest: Fn }).attentionTest(cases, b), [CASES, backend] as const);
  } finally {
    expect(errors).toEqual([]);
    await page.close();
  }
}

function checkAgainstReference(outs: PageOut[], cases: Case[] = CASES): void {
  cases.forEach((c, i) => {
    const q = randn([c.B, c.Sq, c.H, c.D], c.seed), k = randn([c.B, c.Sk, c.Hk, c.D], c.seed + 1), v = randn([c.B, c.Sk, c.Hk, c.D], c.seed + 2);
    const ref = attentionReference(q, k, v, { mask: maskOf(c), softcap: c.softcap });
    const got = outs[i]!;
    expect(got.out.length, c.name).toBe(ref.out.length);
    let err = 0;
    for (let x = 0; x < ref.out.length; x++) err = Math.max(err, Math.abs(got.out[x]! - ref.out[x]!));
    expect(err, `${c.name}: max |out − float64|`).toBeLessThan(2e-5);
    let lerr = 0;
    for (let x = 0; x < ref.lse.length; x++) {
      if (ref.lse[x] === -Infinity) expect(got.lse[x], c.name).toBe(-Infinity);
      else lerr = Math.max(lerr, Math.abs(got.lse[x]! - ref.lse[x]!));
    }
    expect(lerr, `${c.name}: max |lse − float64|`).toBeLessThan(2e-5);
  });
}

describe('attention kernels in Chromium', () => {
  it('WebAssembly SIMD backend, cross-origin isolated: worker threads over shared memory', async () => {
    const { info, outs } = await runInPage('wasm');
    console.log(`Chromium WASM runtime: ${info.variant}, ${info.threads} threads, crossOriginIsolated ${info.isolated}`);
    expect(info.isolated).toBe(true);
    expect(info.threads as number).toBeGreaterThan(1);
    expect(['relaxed-simd', 'simd128']).toContain(info.variant);
    checkAgainstReference(outs);
    expect(outs[3]!.readAhead.sort(), 'the 9 MB decode ran both ways').toEqual([false, true]);
    expect(outs[1]!.readAhead, 'under 8 MiB: never').toEqual([]);
  }, 180_000);

  // Overlapping calls: the isolated page's pool polls asynchronously, so a second call once reset the workers'
  // shared done counter mid-call; the plain page's heap is not shared, so a call's growth detached others' views.
  const CONCURRENT: Case[] = [...CASES.slice(0, 3), ...CASES.slice(0, 3).map((c) => ({ ...c, seed: c.seed + 100 })),
    { name: 'cross 16×6000, grows the heap', B: 1, Sq: 16, Sk: 6000, H: 8, Hk: 8, D: 64, mask: 'none', seed: 51 }, ...CASES.slice(0, 2).map((c) => ({ ...c, seed: c.seed + 200 }))];
  it('WebAssembly SIMD backend: overlapping calls, cross-origin isolated and not', async () => {
    const iso = await runInPage('wasm', { concurrent: CONCURRENT });
    expect(iso.info.threads as number).toBeGreaterThan(1);
    checkAgainstReference(iso.outs, CONCURRENT);
    const plain = await runInPage('wasm', { concurrent: CONCURRENT, path: '/plain/' });
    expect(plain.info).toMatchObject({ isolated: false, threads: 1, shared: false });
    checkAgainstReference(plain.outs, CONCURRENT);
  }, 180_000);

  it('WebGPU backend (SwiftShader adapter in headless Chromium)', async () => {
    const { info, outs } = await runInPage('webgpu');
    console.log(`Chromium WebGPU adapter: ${info.adapter}`);
    expect(typeof info.adapter).toBe('string');
    checkAgainstReference(outs);
  }, 300_000);
});
