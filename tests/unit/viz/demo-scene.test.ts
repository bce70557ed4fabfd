/**
 * The bar "heatmap PNGs of the demo scene show the query's object hottest": run `vlm-attention demo`
 * (the relevance pipeline on its built-in procedural scene, which writes a capture file), then
 * `vlm-attention viz` on that capture, and locate the hottest pixel of the rendered heatmap.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs build script without types
import { buildViewer } from '../../../scripts/build-viewer.mjs';
import { colormapLut } from '../../../src/viz/colormap.js';
import { renderMapPng, tokenMap } from '../../../src/viz/maps.js';
import { readCapture } from '../../../src/viz/node-files.js';
import { decodePng } from '../../../src/viz/png.js';
import { runCommand } from '../../helpers/cli.js';
import { sceneSource } from '../../../src/cli/commands/demo.js';
import { demoScene, generateScene } from '../../../src/relevance/scene.js';

const dir = mkdtempSync(join(tmpdir(), 'vlm-demo-viz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = async (name: string, argv: string[]): Promise<string> => (await runCommand(name, argv)).out;

describe('demo scene heatmaps', () => {
  it('the query object ("red striped" → the red striped circle) is hottest in the maps and in the PNG', async () => {
    await buildViewer();
    // A folder with a space and a quote: the report's `view` command must still paste as one argument.
    const demoDir = join(dir, "demo out's");
    const summary = JSON.parse(await quiet('demo', ['--out', demoDir, '--json']));
    const capFile = join(demoDir, 'capture.vlmcap.safetensors');
    expect(existsSync(capFile)).toBe(true);
    const c = await readCapture(capFile);
    const target = c.info.masks.find((m) => /red/.test(m) && /strip/.test(m));
    expect(target, `masks: ${c.info.masks.join(', ')}`).toBeDefined();
    const mask = c.masks!.get(target!)!;
    const query = c.info.textPositions[0]!;
    const m = tokenMap(c, [query]);
    expect(mask[m.argmax.index], `argmax ${m.argmax.row},${m.argmax.col}`).toBe(1);
    // Most of the query's image attention lies on the object.
    let inside = 0;
    for (let p = 0; p < mask.length; p++) if (mask[p]) inside += m.values[p]!;
    expect(inside / m.total).toBeGreaterThan(0.5);
    // The CLI's map PNG and its summary.
    const s = JSON.parse(await quiet('viz', [capFile, '--out', join(dir, 'viz'), '--json']));
    const mm = s.maps.find((x: { tokens: number[] }) => x.tokens[0] === query);
    expect(mask[mm.argmax.row * c.info.grid.cols + mm.argmax.col]).toBe(1);
    expect(existsSync(mm.file)).toBe(true);
    // Hottest pixel of the rendered heatmap (uniform alpha 1, so pixels map back to colormap values).
    const img = decodePng(renderMapPng(c, m, { alpha: 1, weightByValue: false }));
    const lut = colormapLut('inferno');
    let best = -1, bestT = -1;
    for (let i = 0; i < img.width * img.height; i++) {
      let t = 0, bd = Infinity;
      for (let k = 0; k < 256; k++) {
        const d = (img.data[i * 4]! - lut[k * 3]!) ** 2 + (img.data[i * 4 + 1]! - lut[k * 3 + 1]!) ** 2 + (img.data[i * 4 + 2]! - lut[k * 3 + 2]!) ** 2;
        if (d < bd) { bd = d; t = k; }
      }
      if (t > bestT) { bestT = t; best = i; }
    }
    const px = best % img.width, py = Math.floor(best / img.width);
    const patch = Math.floor((py * c.info.grid.rows) / img.height) * c.info.grid.cols + Math.floor((px * c.info.grid.cols) / img.width);
    expect(mask[patch], `hottest pixel (${px}, ${py})`).toBe(1);
    expect(readFileSync(join(dir, 'viz', 'viewer.html'), 'utf8')).toContain('vlm-capture');
    expect(summary.scene).toEqual({ builtIn: true, objects: demoScene().objects.map((o) => o.name) });
  }, 120_000);

  it('the report names the scene truthfully, quotes its `view` command, and its images\' alt texts are not their captions', async () => {
    // The run above wrote it (vitest runs a file's tests in order).
    const demoDir = join(dir, "demo out's");
    const report = readFileSync(join(demoDir, 'report.html'), 'utf8');
    const unescape = (h: string) => h.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    // The built-in scene is seed 7 plus a fixed object list: "seed 7" sent people to `demo --seed 7`, another scene.
    expect(report).toContain('Source: the built-in procedural scene');
    expect(report).not.toMatch(/seed 7/);
    expect(generateScene({ seed: 7 }).objects.map((o) => o.name)).not.toEqual(demoScene().objects.map((o) => o.name));
    expect(sceneSource()).toBe('the built-in procedural scene');
    expect(sceneSource(7)).toBe('a random procedural scene (seed 7)');
    expect(unescape(report)).toContain(`npx vlm-attention view '${join(demoDir, 'capture.vlmcap.safetensors').replace(/'/g, "'\\''")}'`);
    const figures = [...report.matchAll(/<img alt="([^"]*)"[^>]*><figcaption>([^<]*)<\/figcaption>/g)];
    expect(figures.length).toBe(6);
    for (const [, alt, cap] of figures) { expect(alt!.length).toBeGreaterThan(10); expect(alt).not.toBe(cap); }
  });
});
