/**
 * Checks found by probing the interpretability API: values that would make a capture unreadable, colormap
 * names that are Object.prototype keys, flow's work limit, min > max, and head-discovery masks read as
 * makeCapture reads them.
 */
import { describe, expect, it } from 'vitest';
import { applyColormap, attentionFlow, rolloutRows, decodeCapture, discoverHeads, encodeCapture, overlayHeatmap, withHeadImportance } from '../../../src/index.js';
import { syntheticCapture } from '../../../src/viz/synthetic.js';

describe('interpretability API checks', () => {
  it('withHeadImportance refuses non-finite scores (what it wrote could not be read back)', async () => {
    const c = await syntheticCapture({ seed: 1 });
    const n = c.info.numLayers * c.info.numHeads;
    const bad = Array.from({ length: n }, (_, i) => (i === 3 ? NaN : i));
    expect(() => withHeadImportance(c, bad, 'probe')).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'scores' }));
    const good = withHeadImportance(c, Array.from({ length: n }, (_, i) => i), 'probe');
    expect(Array.from(decodeCapture(encodeCapture(good)).headImportance!)).toEqual(Array.from({ length: n }, (_, i) => i));
  });
  it('colormap names that are Object.prototype keys are a ValueError, not a TypeError', () => {
    for (const name of ['toString', 'constructor', '__proto__']) {
      expect(() => applyColormap([0, 1], 2, 1, { colormap: name as never })).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'colormap' }));
    }
  });
  it('min greater than max is refused (it painted one colour)', () => {
    expect(() => applyColormap([0, 1, 2, 3], 2, 2, { min: 3, max: 0 })).toThrow(/min \(3\) must not exceed max \(0\)/);
    const image = { width: 4, height: 4, data: new Uint8Array(64).fill(128) };
    expect(() => overlayHeatmap(image, [0, 1, 2, 3], 2, 2, { min: 3, max: 0 })).toThrow(/must not exceed/);
    expect(applyColormap([0, 1, 2, 3], 2, 2, { min: 1, max: 1 }).width).toBe(2); // equal bounds: the constant-grid colour
  });
  it('attentionFlow maxWork must be a positive number (NaN switched the guard off)', () => {
    const layer = Float64Array.from([1, 0, 0.5, 0.5]);
    for (const maxWork of [NaN, -1, 0, '1']) expect(() => attentionFlow([layer], 2, [1], { maxWork: maxWork as number })).toThrow(expect.objectContaining({ argument: 'maxWork' }));
    expect(attentionFlow([layer], 2, [1], { maxWork: 1e6 }).length).toBe(2);
    expect(() => rolloutRows([layer], 2, null as never)).toThrow(expect.objectContaining({ name: 'ValueError', argument: 'rows' }));
    expect(() => attentionFlow([layer], 2, null as never)).toThrow(expect.objectContaining({ argument: 'rows' }));
  });
  it('discoverHeads reads array masks as makeCapture stores them (> 0.5 inside) and refuses cells outside [0, 1]', async () => {
    const c = await syntheticCapture({ seed: 2 });
    const P = c.info.grid.rows * c.info.grid.cols;
    const soft = Array.from({ length: P }, (_, j) => (j === 0 ? 0.9 : 0.1));
    const hard = Array.from({ length: P }, (_, j) => (j === 0 ? 1 : 0));
    const a = discoverHeads([{ capture: c, mask: soft }], { k: 3 });
    const b = discoverHeads([{ capture: c, mask: hard }], { k: 3 });
    expect(a.top).toEqual(b.top);
    expect(() => discoverHeads([{ capture: c, mask: soft.map((x, j) => (j === 1 ? -1 : x)) }])).toThrow(expect.objectContaining({ name: 'ValueError' }));
    expect(() => discoverHeads([{} as never])).toThrow(/examples\[0\] must be/);
    expect(() => discoverHeads([null as never])).toThrow(/examples\[0\] must be/);
  });
});
