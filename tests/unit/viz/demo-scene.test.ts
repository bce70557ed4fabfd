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

const dir = mkdtempSync(join(tmpdir(), 'vlm-demo-viz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = async (name: string, argv: string[]): Promise<string> => (await runCommand(name, argv)).out;

describe('demo scene heatmaps', () => {
  it('the query object ("red striped" → the red striped circle) is hottest in the maps and in the PNG', async () => {
    await buildViewer();
    await quiet('demo', ['--out', join(dir, 'demo'), '--json']);
    const capFile = join(dir, 'demo', 'capture.vlmcap.safetensors');
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
  }, 120_000);
});
