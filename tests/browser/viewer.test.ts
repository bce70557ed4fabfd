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
import { ndarrayFromValues } from '../../src/io/npy.js';
import { randomAttention, tinyPng } from '../unit/viz/fixtures.js';

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
    expect(await page.textContent('#error')).toMatch(/mode "magic" is not a mode \(raw, rollout or flow\).*head 9 is not in this capture/);
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
    expect(await page.getAttribute(`.tok[data-position="${pos('blue')}"]`, 'title')).toBe(`blue · position ${pos('blue')}`);
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
    // The address follows the view in the offline file too (replaceState on file://).
    expect(new URL(page.url()).hash).toBe(`#tokens=${pos('green')}&mode=rollout`);
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

  it('deep links: an edited hash shows exactly what the link says (from the defaults); UI changes rewrite the URL, and a copied URL reopens the view', async () => {
    const page = await browser.newPage();
    const red = pos('red');
    await page.goto(`${server.url}#patch=5&mode=rollout&layer=2&head=all`);
    await ready(page);
    expect(await stageData(page)).toMatchObject({ view: 'patch', mode: 'rollout', patch: '5' });
    // tokens= goes back to the token view; mode and layer are not carried over from the previous link.
    await page.evaluate((p) => { location.hash = `tokens=${p}`; }, red);
    await page.waitForFunction((p) => { const s = document.getElementById('stage')!.dataset; return s.view === 'token' && s.tokens === String(p) && s.state === 'ready'; }, red);
    expect((await stageData(page)).mode).toBe('raw');
    expect(await page.inputValue('#layer')).toBe('all');
    expect(await page.isChecked('input[name="mode"][value="raw"]')).toBe(true);
    const raw = tokenMap(capture, [red]);
    expect((await stageData(page)).argmax).toBe(`${raw.argmax.row},${raw.argmax.col}`);
    // Changes on the page are written to the address.
    const settled = () => page.waitForFunction(() => document.getElementById('stage')!.dataset.state === 'ready');
    await page.selectOption('#layer', '2');
    await page.waitForFunction(() => location.hash.includes('layer=2'));
    await page.check('input[name="mode"][value="rollout"]');
    await page.waitForFunction(() => location.hash.includes('mode=rollout'));
    await page.selectOption('#colormap', 'magma');
    await page.waitForFunction(() => location.hash.includes('colormap=magma'));
    await settled();
    // Opacity is part of the view too (a copied link reopened at 75).
    await page.$eval('#alpha', (el) => { (el as HTMLInputElement).value = '40'; el.dispatchEvent(new Event('input', { bubbles: true })); });
    await page.waitForFunction(() => location.hash.includes('opacity=40'));
    expect(new URL(page.url()).hash).toBe(`#tokens=${red}&mode=rollout&layer=2&colormap=magma&opacity=40`);
    const shown = await stageData(page);
    const roll = tokenMap(capture, [red], { mode: 'rollout', layers: [0, 1, 2] });
    expect(shown.argmax).toBe(`${roll.argmax.row},${roll.argmax.col}`);
    // The copied URL, opened fresh, shows the same view.
    const copy = await browser.newPage();
    await copy.goto(page.url());
    await ready(copy);
    const again = await stageData(copy);
    expect({ tokens: again.tokens, mode: again.mode, argmax: again.argmax, view: again.view }).toEqual({ tokens: shown.tokens, mode: shown.mode, argmax: shown.argmax, view: shown.view });
    expect(await copy.inputValue('#layer')).toBe('2');
    expect(await copy.inputValue('#colormap')).toBe('magma');
    expect(await copy.inputValue('#alpha')).toBe('40');
    await copy.close();
    // A patch click is a link too.
    await page.click('#canvas', { position: { x: 5, y: 5 } });
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.view === 'patch' && document.getElementById('stage')!.dataset.state === 'ready');
    expect(new URL(page.url()).hash).toBe('#patch=0&mode=rollout&layer=2&colormap=magma&opacity=40');
    await page.close();
    // A link's notes are all said when it is applied, with its error (not after the next click); layer=03 is layer 3.
    const bad = await browser.newPage();
    await bad.goto(`${server.url}#tokens=999&layer=9&mode=bogus`);
    await ready(bad);
    expect((await stageData(bad)).state).toBe('error');
    const said = (await bad.textContent('#error'))!;
    expect(said).toMatch(/999/);
    expect(said).toMatch(/layer 9 is not in this capture/);
    expect(said).toMatch(/mode "bogus" is not a mode/);
    await bad.evaluate((p) => { location.hash = `tokens=${p}&layer=03`; }, red);
    await bad.waitForFunction(() => document.getElementById('stage')!.dataset.state === 'ready');
    expect(await bad.inputValue('#layer')).toBe('3');
    expect(new URL(bad.url()).hash).toBe(`#tokens=${red}&layer=3`);
    await bad.close();
  }, 120_000);

  it('keyboard and screen readers: Open capture… is a tab stop, the canvas is an image with a label and a patch cursor, tokens and heads are one tab stop each', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const red = pos('red');
    await page.goto(`${server.url}?tokens=${red}`);
    await ready(page);
    // Open capture…: the first tab stop, and Space opens the file chooser.
    expect(await page.$eval('#file', (el) => getComputedStyle(el).display)).not.toBe('none');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('file');
    const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 10_000 }), page.keyboard.press('Space')]);
    expect(chooser.isMultiple()).toBe(false);

    // Tokens: one tab stop, arrow keys move it, aria-pressed says what is selected, Enter selects.
    const tabStops = (sel: string) => page.$$eval(sel, (els) => els.filter((e) => (e as HTMLElement).tabIndex === 0).map((e) => (e as HTMLElement).dataset.position ?? `${(e as HTMLElement).dataset.layer},${(e as HTMLElement).dataset.head}`));
    expect(await tabStops('#tokens .tok')).toEqual([String(red)]);
    expect(await page.getAttribute(`.tok[data-position="${red}"]`, 'aria-pressed')).toBe('true');
    expect(await page.$$eval('#tokens .tok[aria-pressed="true"]', (els) => els.length)).toBe(1);
    expect(await page.getAttribute('#tokens', 'role')).toBe('toolbar');
    const text = capture.info.textPositions;
    const next = text[text.indexOf(red) + 1]!;
    await page.focus(`.tok[data-position="${red}"]`);
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.position)).toBe(String(next));
    expect(await tabStops('#tokens .tok')).toEqual([String(next)]);
    await page.keyboard.press('Enter');
    await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', next);
    expect(await page.getAttribute(`.tok[data-position="${next}"]`, 'aria-pressed')).toBe('true');
    expect(await page.getAttribute(`.tok[data-position="${red}"]`, 'aria-pressed')).toBe('false');

    // Head grid: one tab stop; up/down move layers, left/right heads; Enter views the head.
    expect(await tabStops('#heads .cell')).toEqual(['0,0']);
    await page.focus('#heads .cell[data-layer="0"][data-head="0"]');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => { const d = (document.activeElement as HTMLElement).dataset; return `${d.layer},${d.head}`; })).toBe('1,1');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => (document.getElementById('layer') as HTMLSelectElement).value === '1' && (document.getElementById('head') as HTMLSelectElement).value === '1' && document.getElementById('stage')!.dataset.state === 'ready');
    expect(await page.$$eval('#heads .cell[aria-pressed="true"]', (els) => els.map((e) => `${(e as HTMLElement).dataset.layer},${(e as HTMLElement).dataset.head}`))).toEqual(['1,1']);
    expect(await tabStops('#heads .cell')).toEqual(['1,1']);

    // Canvas: an image with a label naming the map; arrow keys move a patch cursor from the hottest patch; Enter picks it.
    expect(await page.getAttribute('#canvas', 'role')).toBe('img');
    expect(await page.getAttribute('#canvas', 'tabindex')).toBe('0');
    const m = tokenMap(capture, [next], { layers: [1], heads: [1] });
    const label = (await page.getAttribute('#canvas', 'aria-label'))!;
    expect(label).toContain(`(position ${next})`);
    expect(label).toContain(`hottest patch row ${m.argmax.row}, col ${m.argmax.col}`);
    await page.focus('#canvas');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    const { rows, cols } = capture.info.grid;
    const row = Math.min(rows - 1, m.argmax.row + 1), col = Math.min(cols - 1, m.argmax.col + 1);
    expect(await page.textContent('#cursor-status')).toBe(`patch row ${row}, col ${col}`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('stage')!.dataset.view === 'patch' && document.getElementById('stage')!.dataset.state === 'ready');
    expect(Number((await stageData(page)).patch)).toBe(row * cols + col);
    expect(await page.getAttribute('#canvas', 'aria-label')).toContain(`patch row ${row}, col ${col}`);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-keyboard-cursor.png') });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('head scores that are null or not finite show as "—", and the map still draws; a capture of huge attention values works', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const { numLayers, numHeads } = capture.info;
    await page.route('**/api/heads', (route) => route.fulfill({
      contentType: 'application/json',
      body: JSON.stringify({ numLayers, numHeads, method: 'probe', description: 'scores past the float range', scores: Array.from({ length: numLayers * numHeads }, (_, i) => (i === 0 ? null : i === 1 ? 'Infinity' : i * 1e300)) }),
    }));
    await page.goto(`${server.url}?tokens=${pos('red')}`);
    await ready(page);
    expect((await stageData(page)).state).toBe('ready');
    expect(await page.locator('#heads .cell').count()).toBe(numLayers * numHeads);
    expect(await page.getAttribute('#heads .cell[data-layer="0"][data-head="0"]', 'title')).toBe('layer 0, head 0: —');
    expect(await page.getAttribute('#heads .cell[data-layer="0"][data-head="1"]', 'title')).toBe('layer 0, head 1: —');
    expect(await page.getAttribute('#heads .cell[data-layer="0"][data-head="2"]', 'title')).toBe('layer 0, head 2: 2.000e+300');
    await page.close();

    // End to end: attention values near the float32 maximum validate, and their head scores no longer overflow.
    const S = capture.info.seqLen, H = capture.info.numHeads, Q = capture.info.queryPositions.length;
    const huge = makeCapture({
      tokens: capture.info.tokens, grid: capture.info.grid, imageSpan: capture.info.imageSpan, imagePng: capture.imagePng,
      // Entries up to ~3.4e38 (finite, so valid): a head's mass over the patches sums past float32's range.
      attention: capture.attention.map((a) => ({ dtype: 'f32' as const, shape: [H, Q, S], data: Float32Array.from(a, (v) => Math.min(3.4e38, (0.5 + v) * 3e38)) })),
    });
    const hs = await startViewerServer(huge, { html });
    try {
      const p2 = await browser.newPage();
      p2.on('pageerror', (e) => errors.push(e.message));
      await p2.goto(hs.url);
      await ready(p2);
      expect((await stageData(p2)).state).toBe('ready');
      const titles = await p2.$$eval('#heads .cell', (els) => els.map((e) => e.getAttribute('title')!));
      expect(titles.length).toBe(capture.info.numLayers * H);
      for (const t of titles) expect(t).toMatch(/: \d\.\d{3}e\+\d+$/);
      await p2.close();
    } finally {
      await hs.close();
    }
    expect(errors).toEqual([]);
  }, 120_000);

  it('awkward captures: a tall narrow image fits the window and clicks still find their patch; long and bidi tokens stay in their box', async () => {
    const rows = 17, cols = 3, P = rows * cols;
    const long = 'x'.repeat(3000), bidi = 'ab\u202Ecd', emoji = `${'y'.repeat(58)}😀😀`;
    const tokens = ['<bos>', ...Array.from({ length: P }, (_, i) => `<img ${i}>`), long, bidi, 'dog', emoji, '\u200B'];
    const S = tokens.length;
    const tall = makeCapture({
      tokens, grid: [rows, cols], imageSpan: [1, 1 + P], imagePng: tinyPng(30, 170), meta: { prompt: 'see \u202Eabc' },
      attention: [0, 1].map((l) => ndarrayFromValues(randomAttention(2, S, S, 40 + l), [2, S, S])),
    });
    const ts = await startViewerServer(tall, { html });
    const page = await browser.newPage();
    try {
      await page.goto(ts.url);
      await ready(page);
      const vh = await page.evaluate(() => innerHeight);
      const box = (await page.locator('#canvas').boundingBox())!;
      expect(box.height).toBeLessThanOrEqual(vh);
      expect(Math.abs(box.width / box.height - 30 / 170)).toBeLessThan(0.02);
      // The caption is on screen, not thousands of pixels below.
      expect(await page.$eval('#caption', (el) => el.getBoundingClientRect().bottom)).toBeLessThanOrEqual(vh);
      await page.screenshot({ path: join(ARTIFACTS, 'viewer-tall-image.png') });
      // Token view: the whole of a 3,000-character token is in its title.
      expect(await page.getAttribute(`.tok[data-position="${1 + P}"]`, 'title') === `${long} · position ${1 + P}`).toBe(true);
      const [r, c] = [15, 2];
      await page.mouse.click(box.x + ((c + 0.5) / cols) * box.width, box.y + ((r + 0.5) / rows) * box.height);
      await page.waitForFunction(() => document.getElementById('stage')!.dataset.view === 'patch' && document.getElementById('stage')!.dataset.state === 'ready');
      expect(Number((await stageData(page)).patch)).toBe(r * cols + c);
      // A 3,000-character token: one line's worth on its button, all of it in the title; the page does not widen.
      const longTok = page.locator(`.tok[data-position="${1 + P}"]`);
      expect((await longTok.boundingBox())!.width).toBeLessThan(320);
      expect(await longTok.getAttribute('title')).toMatch(new RegExp(`^${long}: attention to patch \\(15, 2\\) `));
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1200);
      // A right-to-left override shows as a code point, isolated in its button and in the caption.
      const bidiTok = page.locator(`.tok[data-position="${2 + P}"]`);
      expect(await bidiTok.textContent()).toBe('ab⟨U+202E⟩cd');
      expect(await bidiTok.locator('bdi').evaluate((el) => getComputedStyle(el).unicodeBidi)).toBe('isolate');
      await bidiTok.click();
      await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', 2 + P);
      expect(await page.$eval('#caption bdi', (el) => el.textContent)).toBe('ab⟨U+202E⟩cd');
      await longTok.click();
      await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', 1 + P);
      expect(await page.$eval('#caption', (el) => el.getBoundingClientRect().bottom)).toBeLessThanOrEqual(vh);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1200);
      // 60 code points (62 UTF-16 units): shown whole, no surrogate pair split into "�". An invisible token has a visible
      // placeholder; the prompt's bidi control shows as a code point, as in tokens.
      await page.click(`.tok[data-position="${4 + P}"]`);
      await page.waitForFunction((p) => document.getElementById('stage')!.dataset.tokens === String(p) && document.getElementById('stage')!.dataset.state === 'ready', 4 + P);
      expect(await page.$eval('#caption bdi', (el) => el.textContent)).toBe(emoji);
      expect(await page.textContent(`.tok[data-position="${5 + P}"]`)).toBe('⟨U+200B⟩');
      expect(await page.textContent('#meta')).toContain('see ⟨U+202E⟩abc');
    } finally {
      await page.close();
      await ts.close();
    }
  }, 120_000);

  it('a capture without an image asks for none; an all-zero map names no hottest patch; a stopped server is said in words', async () => {
    const N = 12;
    const a = randomAttention(2, N, N, 9);
    for (let h = 0; h < 2; h++) { const o = (h * N + 11) * N; a.fill(0, o, o + N); a[o] = 1; } // "dog" attends to <bos> only
    const bare = makeCapture({ tokens: ['<bos>', ...Array.from({ length: 9 }, (_, i) => `<img ${i}>`), 'big', 'dog'], grid: [3, 3], imageSpan: [1, 10], attention: [ndarrayFromValues(a, [2, N, N])] });
    const bs = await startViewerServer(bare, { html });
    const page = await browser.newPage();
    const requests = watchRequests(page);
    const consoleErrors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    try {
      await page.goto(bs.url);
      await ready(page);
      expect((await stageData(page)).tokens).toBe('11');
      expect(requests.filter((u) => u.includes('/api/image'))).toEqual([]);
      expect(consoleErrors).toEqual([]);
      expect(await page.textContent('#caption')).toMatch(/no attention on the image \(every patch is 0\)/);
      expect(await page.textContent('#caption')).not.toMatch(/hottest patch row 0, col 0/);
      await bs.close();
      await page.click('.tok[data-position="10"]');
      await page.waitForFunction(() => document.getElementById('stage')!.dataset.state === 'error');
      expect(await page.textContent('#error')).toMatch(/viewer server .* is not answering/);
      expect(await page.textContent('#error')).not.toMatch(/Failed to fetch/);
    } finally {
      await page.close();
      await bs.close().catch(() => undefined);
    }
  }, 120_000);

  it('another tab uploads a capture: the open page does not label it with its old tokens; it reloads the capture and says so', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.url}?tokens=${pos('red')}&layer=2`);
    await ready(page);
    const g0 = (await stageData(page)).generation;
    expect(g0).toBe(server.generation);
    // "Another tab": an upload the page knows nothing of, with other tokens and provenance.
    const other = await syntheticCapture({ seed: 3, numLayers: 3 });
    const replaced = { ...other, info: { ...other.info, meta: { ...other.info.meta, prompt: 'the replacing capture' } } };
    expect((await fetch(`${server.url}api/capture`, { method: 'POST', body: Buffer.from(encodeCapture(replaced)) })).status).toBe(200);
    await page.click(`.tok[data-position="${pos('blue')}"]`);
    const g1 = server.generation;
    expect(g1).not.toBe(g0);
    await page.waitForFunction((g) => { const s = document.getElementById('stage')!.dataset; return s.generation === g && s.state === 'ready'; }, g1);
    expect(await page.textContent('#error')).toMatch(/the capture on the server was replaced/);
    expect(await page.getAttribute('#error', 'role')).toBe('alert');
    expect(await page.textContent('#meta')).toContain('the replacing capture');
    // The new capture's default view, its own layers in the selector.
    const d = await stageData(page);
    expect(d.tokens).toBe(String(replaced.info.textPositions[replaced.info.textPositions.length - 1]));
    expect(await page.inputValue('#layer')).toBe('all');
    expect(await page.locator('#layer option').count()).toBe(1 + 3);
    const m = tokenMap(server.capture, [Number(d.tokens)]);
    expect(d.argmax).toBe(`${m.argmax.row},${m.argmax.col}`);
    // The test's capture goes back (the server is shared by the tests).
    expect((await fetch(`${server.url}api/capture`, { method: 'POST', body: Buffer.from(encodeCapture(capture)) })).status).toBe(200);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
  it('capture races: an upload during the first load keeps the link; one during a reload reloads again; one racing this tab\'s own upload is said', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const other = await syntheticCapture({ seed: 3, numLayers: 3 });
    const upload = async (c: Capture) => expect((await fetch(`${server.url}api/capture`, { method: 'POST', body: Buffer.from(encodeCapture(c)) })).status).toBe(200);
    const headsUrl = (u: URL) => u.pathname === '/api/heads', mapUrl = (u: URL) => u.pathname === '/api/map';
    const settledAt = (g: string) => page.waitForFunction((g) => { const s = document.getElementById('stage')!.dataset; return s.generation === g && s.state === 'ready'; }, g);
    const red = other.info.tokens.lastIndexOf('red');
    try {
      // An upload while the first load asks for the head scores: the retry applies the link again and says why.
      let armed = true, uploaded = 0;
      await page.route(headsUrl, async (route) => { if (armed) { armed = false; await upload(other); uploaded++; } await route.continue(); });
      await page.goto(`${server.url}#tokens=${red}&layer=2`);
      await expect.poll(() => uploaded, { timeout: 30_000 }).toBe(1);
      await settledAt(server.generation);
      expect(await stageData(page)).toMatchObject({ tokens: String(red) });
      expect(await page.inputValue('#layer')).toBe('2');
      expect(await page.textContent('#error')).toMatch(/replaced while this page loaded/);
      await page.unroute(headsUrl);

      // Another upload (the page gets 409 on its next click) and, while it reloads, one more: it reloads again and
      // ends ready on the latest capture with the notice, not stuck in 'loading'. The keyboard stays in the tokens.
      await upload(capture);
      let onReload = true;
      await page.route(mapUrl, async (route) => {
        if (onReload && route.request().headers()['x-capture-generation'] === server.generation) { onReload = false; await upload(other); uploaded++; }
        await route.continue();
      });
      await page.click(`.tok[data-position="${red}"]`);
      await expect.poll(() => uploaded, { timeout: 30_000 }).toBe(2);
      await settledAt(server.generation);
      expect(await page.textContent('#error')).toMatch(/the capture on the server was replaced/);
      expect(await page.evaluate(() => document.activeElement?.matches('#tokens .tok') ?? false)).toBe(true);
      await page.unroute(mapUrl);

      // This tab opens a file, and another client's upload lands before its info: the page says it shows that one.
      // The race is made in the page, so that it lands exactly between the upload's answer and the page's next request.
      let raced = false;
      await page.exposeFunction('raceUpload', async () => { await upload(capture); raced = true; });
      await page.evaluate(() => {
        const f = window.fetch;
        window.fetch = async (input, init) => {
          const r = await f(input, init);
          if (init?.method === 'POST') await (window as unknown as { raceUpload(): Promise<void> }).raceUpload();
          return r;
        };
      });
      const mine = { ...other, info: { ...other.info, meta: { ...other.info.meta, prompt: 'this tab\'s file' } } };
      await page.setInputFiles('#file', { name: 'mine.vlmcap.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(encodeCapture(mine)) });
      await expect.poll(() => raced, { timeout: 30_000 }).toBe(true);
      await settledAt(server.generation);
      expect(await page.textContent('#error')).toMatch(/the capture on the server was replaced/);
      expect(await page.textContent('#meta')).not.toContain('this tab\'s file');
      expect(await page.locator('#layer option').count()).toBe(1 + capture.info.numLayers);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      // The test's capture goes back (the server is shared by the tests).
      await upload(capture);
    }
  }, 120_000);
});
