/**
 * The attention viewer in a real browser: Debian's Chromium driven by playwright-core, started here.
 * Under CI=true (and everywhere else) a missing Chromium fails this test; it is never skipped.
 * Screenshots are kept in test-artifacts/ (gitignored).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs build script without types
import { buildViewer } from '../../scripts/build-viewer.mjs';
import { type Capture, encodeCapture, makeCapture } from '../../src/viz/capture-file.js';
import { patchMap, tokenMap } from '../../src/viz/maps.js';
import { startViewerServer, type ViewerServer } from '../../src/viz/server.js';
import { syntheticCapture } from '../../src/viz/synthetic.js';
import { embedCapture } from '../../src/viz/viewer-html.js';
import { decodeCapture } from '../../src/viz/capture-file.js';
import demo from '../../src/cli/commands/demo.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = resolve('test-artifacts');
const tmp = mkdtempSync(join(tmpdir(), 'vlm-viewer-'));

let browser: BrowserContext;
let server: ViewerServer;
let capture: Capture;
let html: string;

/** Chromium with a fresh profile directory (playwright passes it as --user-data-dir). */
async function launch(): Promise<BrowserContext> {
  try {
    return await chromium.launchPersistentContext(mkdtempSync(join(tmp, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1200, height: 800 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    throw new Error(`Chromium could not start from ${CHROMIUM} (CI=${process.env.CI ?? 'unset'}); install Debian's chromium or set CHROMIUM_PATH.\n${(e as Error).message}`);
  }
}

beforeAll(async () => {
  const built = await buildViewer({ outFile: join(tmp, 'viewer.html') });
  html = readFileSync(built.outFile, 'utf8');
  capture = await syntheticCapture({ seed: 2 });
  server = await startViewerServer(capture, { html });
  browser = await launch();
  mkdirSync(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const pos = (word: string) => capture.info.tokens.lastIndexOf(word);

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('#stage[data-state="ready"], #stage[data-state="error"]', { timeout: 30_000 });
  await page.waitForFunction(() => document.getElementById('stage')!.dataset.state !== 'loading', undefined, { timeout: 30_000 });
}

async function stageData(page: Page): Promise<Record<string, string>> {
  return page.evaluate(() => ({ ...document.getElementById('stage')!.dataset }) as Record<string, string>);
}

/** Records every request the page makes; the viewer must only talk to its own 127.0.0.1 server (or nothing). */
function watchRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  return urls;
}

describe('attention viewer in Chromium', () => {
  it('served page: click a token → heatmap argmax on its object; rollout; click a patch; layer/head; screenshot', async () => {
    const page = await browser.newPage();
    const requests = watchRequests(page);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await ready(page);
    const initial = await stageData(page);
    expect(initial.state).toBe('ready');

    // Click "red": the argmax must be the one the library computes, on the red square.
    const red = pos('red');
    const rawRed = tokenMap(capture, [red], { mode: 'raw' });
    expect(capture.masks!.get('red_square')![rawRed.argmax.index]).toBe(1);
    await page.click(`.tok[data-position="${red}"]`);
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', red);
    let d = await stageData(page);
    expect(d.argmax).toBe(`${rawRed.argmax.row},${rawRed.argmax.col}`);
    expect(d.argmax).not.toBe(initial.argmax); // the heatmap changed (initial token is "triangle")

    // Switch to rollout.
    const rollRed = tokenMap(capture, [red], { mode: 'rollout' });
    await page.check('input[name="mode"][value="rollout"]');
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.mode === 'rollout' && document.getElementById('stage')!.dataset.state === 'ready');
    d = await stageData(page);
    expect(d.argmax).toBe(`${rollRed.argmax.row},${rollRed.argmax.col}`);
    expect(capture.masks!.get('red_square')![rollRed.argmax.index]).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-rollout-red.png'), fullPage: true });

    // Click the hottest patch: the tokens attending to it most are "red"/"square".
    const box = (await page.locator('#canvas').boundingBox())!;
    const { rows, cols } = capture.info.grid;
    await page.mouse.click(box.x + ((rollRed.argmax.col + 0.5) / cols) * box.width, box.y + ((rollRed.argmax.row + 0.5) / rows) * box.height);
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.view === 'patch' && document.getElementById('stage')!.dataset.state === 'ready');
    d = await stageData(page);
    expect(Number(d.patch)).toBe(rollRed.argmax.index);
    const pm = patchMap(capture, rollRed.argmax.index, { mode: 'rollout' });
    expect(Number(d.patchArgmax)).toBe(pm.argmax);
    expect(['red', 'square']).toContain(capture.info.tokens[pm.argmax]);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-patch.png'), fullPage: true });

    // Raw, layer 2, head 1 via the selectors, then "blue".
    await page.check('input[name="mode"][value="raw"]');
    await page.selectOption('#layer', '2');
    await page.selectOption('#head', '1');
    const blue = pos('blue');
    await page.click(`.tok[data-position="${blue}"]`);
    await page.waitForFunction((p) => { const s = document.getElementById('stage')!.dataset; return s.tokens === String(p) && s.mode === 'raw' && s.state === 'ready'; }, blue);
    const m = tokenMap(capture, [blue], { mode: 'raw', layers: [2], heads: [1] });
    expect((await stageData(page)).argmax).toBe(`${m.argmax.row},${m.argmax.col}`);
    expect(capture.masks!.get('blue_disc')![m.argmax.index]).toBe(1);

    // Head-importance grid: one cell per (layer, head); clicking selects it.
    expect(await page.locator('#heads .cell').count()).toBe(capture.info.numLayers * capture.info.numHeads);
    await page.click('#heads .cell[data-layer="1"][data-head="0"]');
    await page.waitForFunction(() => (document.getElementById('layer') as HTMLSelectElement).value === '1' && document.getElementById('stage')!.dataset.state === 'ready');
    const m10 = tokenMap(capture, [blue], { mode: 'raw', layers: [1], heads: [0] });
    expect((await stageData(page)).argmax).toBe(`${m10.argmax.row},${m10.argmax.col}`);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-raw-blue.png'), fullPage: true });

    expect(errors).toEqual([]);
    for (const u of requests) expect(u.startsWith(server.url) || u.startsWith('data:')).toBe(true);
    await page.close();
  }, 120_000);

  it('bad input shows clear errors in the page; the server keeps working', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}?tokens=9999`);
    await ready(page);
    expect((await stageData(page)).state).toBe('error');
    const msg = await page.textContent('#error');
    expect(msg).toMatch(/ShapeError: tokens contains 9999; the sequence has 208 positions/);
    // A layer or head the capture does not have: the page says so and shows all of them, and the controls say what is drawn.
    await page.goto(`${server.url}?tokens=${pos('red')}&layer=7`);
    await ready(page);
    expect(await page.textContent('#error')).toMatch(/layer 7 is not in this capture \(0–3\): showing all layers/);
    expect(await page.inputValue('#layer')).toBe('all');
    expect((await stageData(page)).argmax).toBe(`${tokenMap(capture, [pos('red')]).argmax.row},${tokenMap(capture, [pos('red')]).argmax.col}`);
    await page.goto(`${server.url}?tokens=${pos('red')}&head=9&mode=magic`);
    await ready(page);
    expect(await page.textContent('#error')).toMatch(/mode magic is not available.*head 9 is not in this capture/);
    expect(await page.isChecked('input[name="mode"][value="raw"]')).toBe(true);
    // The next click works and clears the note.
    await page.click(`.tok[data-position="${pos('blue')}"]`);
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', pos('blue'));
    expect(await page.isHidden('#error')).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-error.png') });
    // A corrupt capture uploaded through "Open capture…" → FormatError in the page, old capture kept.
    const bytes = encodeCapture(capture);
    await page.setInputFiles('#file', { name: 'broken.vlmcap.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(bytes.subarray(0, 1000)) });
    await page.waitForFunction(() => /could not open broken/.test(document.getElementById('error')!.textContent ?? ''));
    expect(await page.textContent('#error')).toMatch(/FormatError/);
    expect(server.capture).toBe(capture);
    // The page recovers with a good request.
    await page.goto(`${server.url}?tokens=${pos('green')}`);
    await ready(page);
    const g = tokenMap(capture, [pos('green')]);
    expect((await stageData(page)).argmax).toBe(`${g.argmax.row},${g.argmax.col}`);
    expect(await page.isHidden('#error')).toBe(true);
    await page.close();
  }, 120_000);

  it('the page shows only what it drew: selection kept to the capture, errors clear the old map, recolouring fetches nothing', async () => {
    const page = await browser.newPage();
    const maps: string[] = [];
    page.on('request', (r) => { if (r.url().includes('/api/')) maps.push(r.url()); });
    await page.goto(`${server.url}?tokens=${pos('red')}&mode=rollout`);
    await ready(page);
    const before = maps.length;
    // Opacity and colormap recolour the map on screen: no request (flow re-ran a map per slider step).
    for (let i = 0; i < 5; i++) await page.press('#alpha', 'ArrowLeft');
    await page.selectOption('#colormap', 'viridis');
    expect(maps.length).toBe(before);
    expect((await stageData(page)).state).toBe('ready');
    // A patch click, then a token click: the tokens' tooltips are theirs again, and the token view's attributes only.
    await page.click('#canvas', { position: { x: 10, y: 10 } });
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.view === 'patch' && document.getElementById('stage')!.dataset.state === 'ready');
    expect((await stageData(page)).tokens).toBeUndefined();
    await page.click(`.tok[data-position="${pos('green')}"]`);
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', pos('green'));
    expect(await page.getAttribute(`.tok[data-position="${pos('blue')}"]`, 'title')).toBe(`position ${pos('blue')}`);
    expect((await stageData(page)).patch).toBeUndefined();
    // A failed request leaves no trace of the previous map: no caption, no argmax.
    await page.evaluate(() => { location.hash = 'tokens=9999'; });
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.state === 'error');
    const d = await stageData(page);
    expect(d.argmax).toBeUndefined();
    expect(d.tokens).toBeUndefined();
    expect((await page.textContent('#caption'))?.trim()).toBe('');
    // Editing the link of the open page shows what it asks for (hashchange).
    await page.evaluate((p) => { location.hash = `tokens=${p}&mode=raw&layer=2`; }, pos('disc'));
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', pos('disc'));
    const m = tokenMap(capture, [pos('disc')], { layers: [2] });
    expect((await stageData(page)).argmax).toBe(`${m.argmax.row},${m.argmax.col}`);
    expect(await page.inputValue('#layer')).toBe('2');
    // Opening a capture that cannot do the current mode: it is shown in raw, and the radio says so.
    await page.evaluate(() => { location.hash = 'mode=rollout'; });
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.mode === 'rollout' && document.getElementById('stage')!.dataset.state === 'ready');
    const text = capture.info.textPositions;
    const rowsOnly = makeCapture({
      tokens: capture.info.tokens, grid: capture.info.grid, imageSpan: capture.info.imageSpan, queryPositions: text,
      attention: capture.attention.map((a) => {
        const H = capture.info.numHeads, N = capture.info.seqLen, out = new Float32Array(H * text.length * N);
        for (let h = 0; h < H; h++) text.forEach((t, i) => out.set(a.subarray((h * N + t) * N, (h * N + t + 1) * N), (h * text.length + i) * N));
        return { dtype: 'f32' as const, shape: [1, H, text.length, N], data: out };
      }),
    });
    await page.setInputFiles('#file', { name: 'rows.vlmcap.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(encodeCapture(rowsOnly)) });
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.state === 'ready' && document.getElementById('stage')!.dataset.mode === 'raw');
    expect(await page.isChecked('input[name="mode"][value="raw"]')).toBe(true);
    expect(await page.isDisabled('input[name="mode"][value="rollout"]')).toBe(true);
    expect(await page.textContent('#error')).toMatch(/mode rollout is not available for this capture: showing raw/);
    // The server views the test's capture again (it is shared by the tests).
    expect((await fetch(`${server.url}api/capture`, { method: 'POST', body: Buffer.from(encodeCapture(capture)) })).status).toBe(200);
    // Narrow screens do not scroll sideways.
    await page.setViewportSize({ width: 320, height: 640 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(320);
    await page.close();
  }, 120_000);

  it('self-contained viz HTML works offline from file:// with the same maps', async () => {
    const file = join(tmp, 'viewer-embedded.html');
    writeFileSync(file, embedCapture(html, encodeCapture(capture), 'embedded'));
    const page = await browser.newPage();
    const requests: string[] = [];
    await page.route('**/*', (route) => {
      requests.push(route.request().url());
      return route.request().url().startsWith('file:') || route.request().url().startsWith('data:') ? route.continue() : route.abort();
    });
    await page.goto(pathToFileURL(file).href + `#tokens=${pos('disc')}&mode=rollout`);
    await ready(page);
    const r = tokenMap(capture, [pos('disc')], { mode: 'rollout' });
    let d = await stageData(page);
    expect(d.state).toBe('ready');
    expect(d.argmax).toBe(`${r.argmax.row},${r.argmax.col}`);
    await page.click(`.tok[data-position="${pos('green')}"]`);
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', pos('green'));
    const g = tokenMap(capture, [pos('green')], { mode: 'rollout' });
    d = await stageData(page);
    expect(d.argmax).toBe(`${g.argmax.row},${g.argmax.col}`);
    expect(capture.masks!.get('green_triangle')![g.argmax.index]).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-embedded-green.png'), fullPage: true });
    expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    await page.close();
  }, 120_000);

  it('the relevance demo report links to its viewer; the query token\'s map peaks on the named object', async () => {
    const out = join(tmp, 'demo-out');
    process.env.VLM_ATTENTION_VIEWER_HTML = join(tmp, 'viewer.html');
    const log = console.log;
    console.log = () => {};
    try {
      await demo.run(['--out', out, '--json']);
    } finally {
      console.log = log;
    }
    const report = readFileSync(join(out, 'report.html'), 'utf8');
    expect(report).toContain('href="viewer.html"');
    expect(report).toContain(`vlm-attention view ${join(out, 'capture.vlmcap.safetensors')}`);
    const cap = decodeCapture(new Uint8Array(readFileSync(join(out, 'capture.vlmcap.safetensors'))));
    const page = await browser.newPage();
    const requests: string[] = [];
    await page.route('**/*', (route) => {
      requests.push(route.request().url());
      return route.request().url().startsWith('file:') || route.request().url().startsWith('data:') ? route.continue() : route.abort();
    });
    await page.goto(pathToFileURL(join(out, 'report.html')).href);
    await Promise.all([page.waitForURL(/viewer\.html/), page.click('#viewer-link')]);
    await ready(page);
    const red = cap.info.tokens.findIndex((t) => t.split('+').includes('red'));
    expect(red).toBeGreaterThan(0);
    await page.click(`.tok[data-position="${red}"]`);
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', red);
    const m = tokenMap(cap, [red]);
    const d = await stageData(page);
    expect(d.argmax).toBe(`${m.argmax.row},${m.argmax.col}`);
    const redMasks = [...cap.masks!.entries()].filter(([name]) => name.startsWith('red'));
    expect(redMasks.length).toBeGreaterThan(0);
    expect(redMasks.some(([, mask]) => mask[m.argmax.index] === 1)).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-from-demo-report.png'), fullPage: true });
    expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    await page.close();
  }, 180_000);
});
