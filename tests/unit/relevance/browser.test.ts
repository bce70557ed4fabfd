/**
 * The relevance pipeline in a real browser (Debian's Chromium via playwright-core, started here):
 * the browser bundle builds without Node built-ins, decodeImageBrowser decodes PNG and JPEG through
 * createImageBitmap + OffscreenCanvas, and the whole pipeline gives the same allocation as in Node.
 * A missing Chromium fails this test (CI=true or not); it is never skipped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import sharp from 'sharp';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planRelevance, runRelevance } from '../../../src/relevance/pipeline.js';
import { generateScene } from '../../../src/relevance/scene.js';
import { encodePng } from '../../../src/viz/png.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const tmp = mkdtempSync(join(tmpdir(), 'vlm-relevance-browser-'));
let browser: BrowserContext;
let bundle = '';

const ENTRY = `
import { decodeImageBrowser, planRelevance, runRelevance, renderRelevancePngs, renderHtmlReport } from './src/relevance/index.ts';
globalThis.relevanceTest = async (b64, type, options) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const image = await decodeImageBrowser(new Blob([bytes], { type }));
  const plan = planRelevance(image.width, image.height, options);
  const r = await runRelevance(image, plan);
  const pngs = renderRelevancePngs(r, image);
  const html = renderHtmlReport(r, pngs);
  let sum = 0;
  for (let i = 0; i < image.data.length; i++) sum += image.data[i];
  return { width: image.width, height: image.height, sum, first: Array.from(image.data.subarray(0, 64)), tokens: Array.from(r.allocation.tokens), htmlBytes: html.length, pngBytes: pngs['allocation.png'].length };
};
`;

beforeAll(async () => {
  const out = await build({
    stdin: { contents: ENTRY, resolveDir: process.cwd(), loader: 'ts' }, bundle: true, platform: 'browser', format: 'iife', write: false,
    logLevel: 'silent', external: ['webgpu', 'node:*'], // dynamic, behind Node checks in the core
  });
  bundle = out.outputFiles[0]!.text;
  try {
    browser = await chromium.launchPersistentContext(mkdtempSync(join(tmp, 'profile-')), {
      executablePath: CHROMIUM, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    throw new Error(`Chromium could not start from ${CHROMIUM} (CI=${process.env.CI ?? 'unset'}); install Debian's chromium or set CHROMIUM_PATH.\n${(e as Error).message}`);
  }
}, 120_000);

afterAll(async () => {
  await browser?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('relevance in Chromium', () => {
  it('builds for the browser, decodes PNG and JPEG there, and allocates exactly as Node does', async () => {
    expect(bundle).not.toMatch(/require\("node:/);
    const scene = generateScene({ width: 280, height: 210, seed: 8 });
    const png = encodePng(scene.rgba);
    const jpg = await sharp(Buffer.from(scene.rgba.data), { raw: { width: 280, height: 210, channels: 4 } }).jpeg({ quality: 95 }).toBuffer();
    const options = { query: scene.objects[0]!.colour, budget: 512, min: 16, grid: { regionRows: 4, regionCols: 4 }, backend: 'cpu-ts' as const };
    const nodeRes = await runRelevance(scene.rgba, planRelevance(280, 210, options));

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.setContent('<!doctype html><title>relevance</title>');
    await page.addScriptTag({ content: bundle });
    type Out = { width: number; height: number; sum: number; first: number[]; tokens: number[]; htmlBytes: number; pngBytes: number };
    const fromPng = await page.evaluate(([b, o]) => (globalThis as unknown as { relevanceTest: (b: string, t: string, o: unknown) => Promise<Out> }).relevanceTest(b, 'image/png', o), [Buffer.from(png).toString('base64'), options] as const);
    expect([fromPng.width, fromPng.height]).toEqual([280, 210]);
    expect(fromPng.first).toEqual(Array.from(scene.rgba.data.subarray(0, 64)));
    expect(fromPng.sum).toBe(Array.from(scene.rgba.data).reduce((a, b) => a + b, 0));
    expect(fromPng.tokens).toEqual(Array.from(nodeRes.allocation.tokens));
    expect(fromPng.tokens.reduce((a, b) => a + b, 0)).toBe(512);
    expect(fromPng.htmlBytes).toBeGreaterThan(10_000);

    const fromJpg = await page.evaluate(([b, o]) => (globalThis as unknown as { relevanceTest: (b: string, t: string, o: unknown) => Promise<Out> }).relevanceTest(b, 'image/jpeg', o), [jpg.toString('base64'), options] as const);
    expect([fromJpg.width, fromJpg.height]).toEqual([280, 210]);
    expect(Math.abs(fromJpg.sum - fromPng.sum) / fromPng.sum).toBeLessThan(0.01);
    expect(fromJpg.tokens.reduce((a, b) => a + b, 0)).toBe(512);
    const top = (t: number[]) => t.indexOf(Math.max(...t));
    expect(top(fromJpg.tokens)).toBe(top(fromPng.tokens));
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
