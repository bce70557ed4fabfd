/**
 * The static calculator page: one self-contained HTML file (no external resources), and in Chromium
 * it computes the same numbers as the API, draws both plots and recomputes when an input changes.
 * Chromium is started by the test; if it cannot start, the test fails (it is never skipped).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attentionCost, formatFlopsSI, kvCacheSize, formatBytesSI, visualTokens } from '../../../src/index.js';
import { svgPlot } from '../../../src/cost/page/plot.js';

const dir = mkdtempSync(join(tmpdir(), 'vlm-cost-page-'));
const out = join(dir, 'cost.html');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-cost-page.mjs', '--out', out], { stdio: 'pipe' });
}, 60_000);

describe('cost page build', () => {
  it('is one self-contained file: inline script and style, no external references', () => {
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/<script>[\s\S]{10000,}<\/script>/);
    expect(html).toMatch(/<style>[\s\S]+<\/style>/);
    expect(html).not.toMatch(/<script[^>]*\ssrc=/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    expect(html).not.toMatch(/url\(\s*["']?https?:/i);
    expect(html).not.toMatch(/\bfetch\(|XMLHttpRequest|WebSocket|import\(/);
    expect(html).toContain("default-src 'none'");
    // The kernels (and their embedded WebAssembly) are not in the page.
    expect(html.length).toBeLessThan(400_000);
  });
});

describe('svgPlot', () => {
  it('maps log axes to pixels and draws one path per series, skipping non-positive points', () => {
    const svg = svgPlot({
      title: 't', xLabel: 'x', yLabel: 'y', logX: true, logY: true, width: 400, height: 300,
      series: [{ name: 'a', color: '#f00', points: [[1, 1], [10, 10], [100, 100]] }, { name: 'b', color: '#00f', points: [[1, 0], [10, 5]] }],
    });
    expect(svg.match(/<path /g)!.length).toBe(2);
    // L=78, R=150, T=30, B=46: x from 78 to 250, y from 254 to 30; (10,10) is the middle.
    expect(svg).toContain('d="M78.0 254.0 L164.0 142.0 L250.0 30.0"');
    expect(svg).toContain('d="M164.0 ');
  });
});

describe('cost page in Chromium', () => {
  it('computes the API\'s numbers, draws both plots and recomputes on input', async () => {
    const { chromium } = await import('playwright-core');
    const executablePath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
    expect(executablePath, 'a Chromium binary').toBeTruthy();
    const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [], requests: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
      await page.goto(pathToFileURL(out).href);
      await page.waitForFunction(() => Number(document.body.dataset.ready ?? 0) >= 1);
      const expected = attentionCost({ batch: 1, seqLenQ: 2048, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16', causal: true }, { tiling: { tileQ: 64, tileK: 64 } });
      const text = await page.locator('#attention-out').innerText();
      expect(text).toContain(formatFlopsSI(expected.flops.total));
      expect(text).toContain(`${expected.tiling.visitedTiles} of ${expected.tiling.totalTiles}`);
      expect(await page.locator('#plot-time path.series').count()).toBe(6);
      expect(await page.locator('#plot-kv path.series').count()).toBeGreaterThanOrEqual(3);
      const kv = kvCacheSize({ numLayers: 32, numHeads: 32, numKvHeads: 8, headDim: 128, seqLen: 2112 });
      expect(await page.locator('#kv-out').innerText()).toContain(formatBytesSI(kv.totalBytes));
      expect(await page.locator('#tokens-out').innerText()).toContain(String(visualTokens('qwen2-vl', { width: 1024, height: 1024 }).llmTokens));
      // Change an input: the page recomputes.
      await page.fill('#seqLenQ', '4096');
      await page.dispatchEvent('#seqLenQ', 'change');
      await page.waitForFunction(() => Number(document.body.dataset.ready) >= 2);
      const again = attentionCost({ batch: 1, seqLenQ: 4096, numHeads: 32, numKvHeads: 8, headDim: 128, dtype: 'f16', causal: true });
      expect(await page.locator('#attention-out').innerText()).toContain(formatFlopsSI(again.flops.total));
      // Bad input shows the typed error instead of numbers.
      await page.fill('#numKvHeads', '5');
      await page.dispatchEvent('#numKvHeads', 'change');
      await page.waitForFunction(() => Number(document.body.dataset.ready) >= 3);
      expect(await page.locator('#attention-out .error').innerText()).toContain('ShapeError');
      if (process.env.VLM_COST_PAGE_SHOT) await page.screenshot({ path: process.env.VLM_COST_PAGE_SHOT, fullPage: true });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
