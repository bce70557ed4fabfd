import { writeFileSync, mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ShapeError, ValueError } from '../../../src/errors.js';
import { ndarrayFromValues } from '../../../src/io/npy.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';
import { type Capture, makeCapture } from '../../../src/viz/capture-file.js';
import { discoverHeads, headDiscoveryJson, headHeatmap, headHeatmapPng, headScores, headScores64, savClassify } from '../../../src/viz/heads.js';
import { decodePng } from '../../../src/viz/png.js';
import { syntheticCapture } from '../../../src/viz/synthetic.js';
import { expectClose } from '../../helpers/close.js';
import { randomAttention } from './fixtures.js';

const L = 3, H = 5, N = 11; // image span [1, 7) = 2×3 grid, text 7..10

function cap(seed: number): Capture {
  return makeCapture({
    tokens: Array.from({ length: N }, (_, i) => `t${i}`), grid: [2, 3], imageSpan: [1, 7],
    attention: Array.from({ length: L }, (_, l) => ndarrayFromValues(randomAttention(H, N, N, seed * 100 + l, 3), [H, N, N])),
  });
}

describe('head discovery statistics', () => {
  it('match a brute-force float64 computation (activation, variance, entropy, localisation, pointing)', () => {
    const caps = [cap(1), cap(2), cap(3), cap(4)];
    const masks = [[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1], undefined, [0, 1, 0, 0, 1, 0]];
    const toks = [[7, 9], [10], undefined, [8, 9, 10]];
    const d = discoverHeads(caps.map((c, i) => ({ capture: c, mask: masks[i] && Uint8Array.from(masks[i]!), tokens: toks[i] })));
    expect(d.method).toBe('localisation');
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
      const acts: number[] = [], ents: number[] = [], locs: number[] = [], points: number[] = [];
      caps.forEach((c, i) => {
        const T = toks[i] ?? [0, 7, 8, 9, 10]; // default: the stored rows outside the image span
        const a = [0, 0, 0, 0, 0, 0];
        for (const t of T) for (let p = 0; p < 6; p++) a[p] += c.attention[l]![(h * N + t) * N + 1 + p]! / T.length;
        const mass = a.reduce((x, y) => x + y, 0);
        acts.push(mass);
        const q = a.map((v) => v / mass);
        ents.push(-q.reduce((s, v) => s + v * Math.log(v), 0) / Math.log(6));
        if (masks[i]) {
          locs.push(q.reduce((s, v, p) => s + (masks[i]![p] ? v : 0), 0));
          points.push(masks[i]![q.indexOf(Math.max(...q))]!);
        }
      });
      const mean = acts.reduce((x, y) => x + y, 0) / 4;
      const s = d.stats[l * H + h]!;
      expect([s.layer, s.head]).toEqual([l, h]);
      expectClose([s.meanActivation, s.varianceActivation, s.entropy, s.localisation!, s.pointing!], [
        mean, acts.reduce((x, y) => x + (y - mean) ** 2, 0) / 3, ents.reduce((x, y) => x + y, 0) / 4,
        locs.reduce((x, y) => x + y, 0) / 3, points.reduce((x, y) => x + y, 0) / 3,
      ], { atol: 1e-6, label: `head ${l},${h}` });
      expect(s.savAccuracy).toBeNull();
    }
    // Ranks are a permutation ordered by score.
    const ranked = [...d.stats].sort((a, b) => a.rank - b.rank);
    expect(ranked.map((s) => s.rank)).toEqual(Array.from({ length: L * H }, (_, i) => i + 1));
    for (let i = 1; i < ranked.length; i++) expect(ranked[i]!.score).toBeLessThanOrEqual(ranked[i - 1]!.score);
    expect(d.top.length).toBe(15); // k = 20 clamped to L·H
    expect(discoverHeads([{ capture: caps[2]! }]).method).toBe('activation');
  });

  it('SAV: finds the informative heads, counts correct nearest-mean predictions exactly, and classifies held-out examples', () => {
    const dh = 6, rng = mulberry32(11);
    const labels = ['cat', 'dog', 'car'];
    const informative = [[1, 2], [2, 4]];
    const centre = new Map(labels.map((c) => [c, Array.from({ length: dh }, () => rng() * 2 - 1)]));
    const make = (label: string) => {
      const a = new Float32Array(L * H * dh);
      for (let lh = 0; lh < L * H; lh++) for (let c = 0; c < dh; c++) a[lh * dh + c] = rng() * 2 - 1;
      for (const [l, h] of informative) for (let c = 0; c < dh; c++) a[(l! * H + h!) * dh + c] = 3 * centre.get(label)![c]! + 0.3 * (rng() - 0.5);
      return a;
    };
    const train = Array.from({ length: 24 }, (_, i) => ({ label: labels[i % 3]!, acts: make(labels[i % 3]!) }));
    const c0 = cap(5);
    const d = discoverHeads(train.map((t) => ({ capture: c0, activations: t.acts, label: t.label })), { k: 2 });
    expect(d.method).toBe('sav');
    expect(d.top.map((t) => `${t.layer},${t.head}`).sort()).toEqual(['1,2', '2,4']);
    expect(d.top.every((t) => t.score === 1)).toBe(true);
    // Brute-force correct counts for every head.
    for (let lh = 0; lh < L * H; lh++) {
      const means = new Map(labels.map((c) => {
        const ex = train.filter((t) => t.label === c);
        return [c, Array.from({ length: dh }, (_, k) => ex.reduce((s, t) => s + t.acts[lh * dh + k]!, 0) / ex.length)];
      }));
      const cos = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0) / Math.hypot(...x) / Math.hypot(...y);
      let correct = 0;
      for (const t of train) {
        const x = Array.from(t.acts.subarray(lh * dh, (lh + 1) * dh));
        const best = [...labels].sort().reduce((b, c) => (cos(x, means.get(c)!) > cos(x, means.get(b)!) ? c : b));
        if (best === t.label) correct++;
      }
      expect(d.stats[lh]!.savAccuracy, `head ${lh}`).toBeCloseTo(correct / train.length, 12);
    }
    for (const label of labels) for (let r = 0; r < 5; r++) expect(savClassify(d, make(label)).label).toBe(label);
    const json = headDiscoveryJson(d, { withClassMeans: true });
    expect(JSON.parse(JSON.stringify(json)).classMeans.cat.length).toBe(L * H * dh);
  });

  it('localisation on synthetic scenes ranks the colour heads (0, 1) first', async () => {
    const examples = [];
    for (const seed of [1, 2, 3]) {
      const c = await syntheticCapture({ seed, numLayers: 2 });
      for (const [word, mask] of [['red', 'red_square'], ['blue', 'blue_disc'], ['green', 'green_triangle']] as const) {
        examples.push({ capture: c, tokens: [c.info.tokens.lastIndexOf(word)], mask });
      }
    }
    const d = discoverHeads(examples, { k: 4 });
    expect(d.method).toBe('localisation');
    expect(d.top.map((t) => t.head).sort()).toEqual([0, 0, 1, 1]);
    const bestOther = Math.max(...d.stats.filter((s) => s.head > 1).map((s) => s.localisation!));
    for (const t of d.top) expect(t.score).toBeGreaterThan(2 * bestOther);
    const png = headHeatmapPng(d, { cellPixels: 20 });
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync('test-artifacts/head-importance.png', png);
    const img = decodePng(png);
    expect(img.width).toBeGreaterThan(4 * 20);
    expect(img.height).toBeGreaterThan(2 * 20);
  }, 60_000);

  it('bad input: mismatched captures, unknown mask, wrong activation shapes', () => {
    expect(() => discoverHeads([{ capture: cap(1) }], { method: 'bogus' as never })).toThrow(expect.objectContaining({ argument: 'method' }));
    const other = makeCapture({ tokens: Array.from({ length: N }, () => 'x'), grid: [2, 3], imageSpan: [1, 7], attention: [ndarrayFromValues(randomAttention(H, N, N, 1), [H, N, N])] });
    expect(() => discoverHeads([{ capture: cap(1) }, { capture: other }])).toThrow(/numLayers|layers/);
    expect(() => discoverHeads([{ capture: cap(1), mask: 'nope' }])).toThrow(ValueError);
    expect(() => discoverHeads([{ capture: cap(1), mask: Uint8Array.from([1, 0]) }])).toThrow(ShapeError);
    expect(() => discoverHeads([{ capture: cap(1), tokens: [11] }])).toThrow(/not a stored query row/);
    expect(() => discoverHeads([{ capture: cap(1), activations: ndarrayFromValues(new Float32Array(L * 4 * 2), [L, 4, 2]), label: 'a' }])).toThrow(ShapeError);
    expect(() => discoverHeads([])).toThrow(ShapeError);
    expect(() => discoverHeads([{ capture: cap(1) }], { method: 'sav' })).toThrow(ValueError);
    expect(() => discoverHeads([{ capture: cap(1) }], { k: 0 })).toThrow(ValueError);
  });

  it('scores of huge but finite attention stay finite in float64, and their heatmap draws every cell (float32 overflowed to Infinity)', () => {
    const N = 9;
    const c = makeCapture({
      tokens: Array.from({ length: N }, (_, i) => `t${i}`), grid: [2, 3], imageSpan: [1, 7],
      // Head h's every entry is (1 + h)·1.5e38: finite, valid, and six patches of it sum past float32's 3.4e38.
      attention: [0, 1].map((l) => ndarrayFromValues(Float32Array.from({ length: 2 * N * N }, (_, i) => (1 + Math.floor(i / (N * N))) * 1.5e38 * (1 - 0.1 * l)), [2, N, N])),
    });
    const d = discoverHeads([{ capture: c }], { method: 'activation' });
    const s64 = headScores64(d);
    for (const v of s64) { expect(Number.isFinite(v)).toBe(true); expect(v).toBeGreaterThan(3.4e38); }
    expect([...headScores(d)].every((v) => v === Infinity)).toBe(true); // why headScores64 exists
    for (const scores of [s64, [1e40, 2e40, 3e40, 4e40]]) {
      const img = headHeatmap(scores, 2, 2, { cellPixels: 8 });
      // Every cell is drawn (opaque) and the four differ.
      const left = 6 * 1 + 10, top = 14, colours = new Set<string>();
      for (let l = 0; l < 2; l++) for (let h = 0; h < 2; h++) {
        const o = ((top + l * 8 + 4) * img.width + left + h * 8 + 4) * 4;
        expect(img.data[o + 3]).toBe(255);
        colours.add(Array.from(img.data.subarray(o, o + 3)).join(','));
      }
      expect(colours.size).toBe(scores === s64 ? new Set(s64).size : 4);
    }
    expect(decodePng(headHeatmapPng(d)).width).toBeGreaterThan(0);
  });
});
