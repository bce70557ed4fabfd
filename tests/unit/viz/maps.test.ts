import { mkdirSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError, UnsupportedError, ValueError } from '../../../src/errors.js';
import { ndarrayFromValues } from '../../../src/io/npy.js';
import { type Capture, makeCapture } from '../../../src/viz/capture-file.js';
import { colormapLut } from '../../../src/viz/colormap.js';
import { patchMap, renderMap, renderMapPng, tokenMap } from '../../../src/viz/maps.js';
import { decodePng } from '../../../src/viz/png.js';
import { attentionRollout } from '../../../src/viz/rollout.js';
import { SYNTHETIC_OBJECTS, syntheticCapture } from '../../../src/viz/synthetic.js';
import { expectClose } from '../../helpers/close.js';
import { randomAttention } from './fixtures.js';

let scene: Capture;
beforeAll(async () => { scene = await syntheticCapture({ seed: 3 }); });

const pos = (c: Capture, word: string) => c.info.tokens.lastIndexOf(word);

/** Inverts the colormap: each pixel's nearest LUT entry index (0..255). */
function heatFromPixels(png: Uint8Array, cm: 'inferno' | 'viridis' | 'magma'): { width: number; height: number; t: Uint8Array } {
  const img = decodePng(png);
  const lut = colormapLut(cm);
  const t = new Uint8Array(img.width * img.height);
  for (let i = 0; i < t.length; i++) {
    let best = 0, bd = Infinity;
    for (let k = 0; k < 256; k++) {
      const d = (img.data[i * 4]! - lut[k * 3]!) ** 2 + (img.data[i * 4 + 1]! - lut[k * 3 + 1]!) ** 2 + (img.data[i * 4 + 2]! - lut[k * 3 + 2]!) ** 2;
      if (d < bd) { bd = d; best = k; }
    }
    t[i] = best;
  }
  return { width: img.width, height: img.height, t };
}

describe('maps on the synthetic scene (real attention from the library kernels)', () => {
  it('each colour word and noun puts its maximum on its own object, in raw, rollout and flow', () => {
    const sum = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0);
    for (const obj of SYNTHETIC_OBJECTS) {
      const mask = scene.masks!.get(obj.name)!;
      expect(sum(mask)).toBeGreaterThanOrEqual(4);
      for (const word of [obj.colour, obj.noun]) {
        for (const mode of ['raw', 'rollout'] as const) {
          const m = tokenMap(scene, [pos(scene, word)], { mode });
          expect(mask[m.argmax.index], `${word} ${mode} argmax ${m.argmax.row},${m.argmax.col}`).toBe(1);
        }
      }
      // Flow is costly: one token, two layers.
      const f = tokenMap(scene, [pos(scene, obj.colour)], { mode: 'flow', layers: [0, 1], maxWork: 1e12 });
      expect(mask[f.argmax.index], `${obj.colour} flow`).toBe(1);
    }
  }, 120_000);

  it('rendered heatmap PNG (alpha 1, uniform) has its hottest pixel on the queried object', () => {
    const W = scene.info.image!.width, S = W / scene.info.grid.cols;
    mkdirSync('test-artifacts', { recursive: true });
    for (const obj of SYNTHETIC_OBJECTS) {
      const m = tokenMap(scene, [pos(scene, obj.colour)], { mode: 'raw' });
      const png = renderMapPng(scene, m, { alpha: 1, weightByValue: false, colormap: 'inferno' });
      writeFileSync(`test-artifacts/synthetic-${obj.colour}-heat.png`, png);
      writeFileSync(`test-artifacts/synthetic-${obj.colour}-overlay.png`, renderMapPng(scene, m));
      const { width, t } = heatFromPixels(png, 'inferno');
      let best = 0;
      for (let i = 1; i < t.length; i++) if (t[i]! > t[best]!) best = i;
      const px = best % width, py = Math.floor(best / width);
      const patch = Math.floor(py / S) * scene.info.grid.cols + Math.floor(px / S);
      expect(scene.masks!.get(obj.name)![patch], `${obj.colour}: hottest pixel (${px}, ${py})`).toBe(1);
    }
  });

  it('raw map equals a float64 average computed directly from the arrays', () => {
    const toks = [pos(scene, 'red'), pos(scene, 'disc')];
    const layers = [1, 3], heads = [0, 2, 3];
    const m = tokenMap(scene, toks, { layers, heads });
    const { seqLen: N, imageSpan: [s0, s1] } = scene.info;
    const ref = new Float64Array(s1 - s0);
    for (const l of layers) for (const h of heads) for (const t of toks) for (let p = 0; p < ref.length; p++) ref[p] += scene.attention[l]![(h * N + t) * N + s0 + p]!;
    expectClose(m.values, Array.from(ref, (v) => v / (layers.length * heads.length * toks.length)), { atol: 1e-7, label: 'raw map' });
  });

  it('rollout map equals the float64 rollout of head-mean matrices over the chosen stack', () => {
    const t = pos(scene, 'blue');
    const layers = [0, 2, 3], heads = [0, 1];
    const m = tokenMap(scene, [t], { mode: 'rollout', layers, heads });
    const N = scene.info.seqLen;
    const mats = layers.map((l) => {
      const a = new Float64Array(N * N);
      for (const h of heads) for (let i = 0; i < N * N; i++) a[i] += scene.attention[l]![h * N * N + i]! / heads.length;
      return a;
    });
    const full = attentionRollout(mats, N);
    const [s0, s1] = scene.info.imageSpan;
    expectClose(m.values, Array.from(full.subarray(t * N + s0, t * N + s1)), { atol: 1e-7, label: 'rollout map' });
  });

  it('rollout: a token listed twice is rolled out once (same map as listing it once); maxWork bounds the work', () => {
    const t = pos(scene, 'blue'), u = pos(scene, 'red');
    const once = tokenMap(scene, [t, u, t], { mode: 'rollout' });
    const weights = tokenMap(scene, [t], { mode: 'rollout' }).values.map((x, i) => (2 * x + tokenMap(scene, [u], { mode: 'rollout' }).values[i]!) / 3);
    expectClose(once.values, Array.from(weights), { atol: 1e-6, label: 'duplicates' });
    const N = scene.info.seqLen, L = scene.info.numLayers;
    expect(() => tokenMap(scene, [t, u, t], { mode: 'rollout', maxWork: 2 * L * N * N - 1 })).toThrow(ValueError);
    expect(tokenMap(scene, [t, u, t], { mode: 'rollout', maxWork: 2 * L * N * N }).values.length).toBe(once.values.length);
  });

  it('renderMap checks alpha with or without an image', () => {
    const m = tokenMap(scene, [pos(scene, 'red')]);
    const noImage = { ...scene, imagePng: undefined } as Capture;
    for (const c of [scene, noImage]) expect(() => renderMap(c, m, { alpha: 5 })).toThrow(ValueError);
    expect(renderMap(noImage, m, { alpha: 0.5 }).width).toBeGreaterThan(0);
  });

  it('patch map: the patch on the red square is attended to most by "red" or "square"', () => {
    const mask = scene.masks!.get('red_square')!;
    const best = tokenMap(scene, [pos(scene, 'red')]).argmax.index;
    expect(mask[best]).toBe(1);
    for (const mode of ['raw', 'rollout'] as const) {
      const pm = patchMap(scene, best, { mode });
      expect(pm.positions).toEqual(scene.info.textPositions);
      expect(['red', 'square']).toContain(scene.info.tokens[pm.argmax]);
    }
  });

  it('renders without an image as a plain grid', () => {
    const c = makeCapture({ tokens: ['a', 'b', 'c', 'd', 'e'], grid: [2, 2], imageSpan: [0, 4], attention: [ndarrayFromValues(randomAttention(1, 5, 5, 1), [1, 5, 5])] });
    const img = renderMap(c, tokenMap(c, [4]), { cellPixels: 5 });
    expect([img.width, img.height]).toEqual([10, 10]);
  });
});

describe('maps: bad input', () => {
  const N = 8;
  const small = () => makeCapture({
    tokens: Array.from({ length: N }, (_, i) => `t${i}`), grid: [2, 2], imageSpan: [1, 5], queryPositions: [5, 6, 7],
    attention: [ndarrayFromValues(randomAttention(2, 3, N, 1), [2, 3, N]), ndarrayFromValues(randomAttention(2, 3, N, 2), [2, 3, N])],
  });
  it('token out of range, not stored, unknown layer or head → ShapeError naming argument and dimension', () => {
    const c = small();
    const cases: [() => unknown, string, string][] = [
      [() => tokenMap(c, [8]), 'tokens', 'seqLen'],
      [() => tokenMap(c, [-1]), 'tokens', 'seqLen'],
      [() => tokenMap(c, [2]), 'tokens', 'numQueries'],
      [() => tokenMap(c, []), 'tokens', 'seqLen'],
      [() => tokenMap(c, [5], { layers: [2] }), 'layers', 'numLayers'],
      [() => tokenMap(c, [5], { heads: [0, 2] }), 'heads', 'numHeads'],
      [() => tokenMap(c, [5], { heads: [1, 1] }), 'heads', 'numHeads'],
      [() => tokenMap(c, [5], { heads: [0.5] }), 'heads', 'numHeads'],
      [() => patchMap(c, 4), 'patch', 'grid'],
    ];
    for (const [f, argument, dimension] of cases) {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(err, argument).toBeInstanceOf(ShapeError);
      expect((err as ShapeError).argument).toBe(argument);
      expect((err as ShapeError).dimension, (err as Error).message).toBe(dimension);
    }
    expect(() => tokenMap(c, [5], { mode: 'nope' as 'raw' })).toThrow(ValueError);
  });
  it('rollout without full rows or layer means → UnsupportedError; with layer means it works (all heads only)', () => {
    const c = small();
    expect(() => tokenMap(c, [5], { mode: 'rollout' })).toThrow(UnsupportedError);
    const means = [0, 1].map((l) => ndarrayFromValues(randomAttention(1, N, N, 10 + l), [N, N]));
    // CaptureInfo describes stored head scores and masks by name; CaptureInit takes the data (none here).
    const { headImportance: _scores, masks: _masks, ...info } = c.info;
    const d = makeCapture({ ...info, tokens: c.info.tokens, grid: c.info.grid, imageSpan: c.info.imageSpan, attention: c.attention.map((a) => ndarrayFromValues(a, [2, 3, N])), layerMeans: means });
    const m = tokenMap(d, [6], { mode: 'rollout' });
    const full = attentionRollout(means.map((a) => a.data as Float32Array), N);
    expectClose(m.values, Array.from(full.subarray(6 * N + 1, 6 * N + 5)), { atol: 1e-7 });
    expect(() => tokenMap(d, [6], { mode: 'rollout', heads: [0] })).toThrow(UnsupportedError);
    // A capture with only a precomputed rollout serves it as exported: another residual is refused, not ignored.
    const rows = c.info.queryPositions.flatMap((q) => Array.from(full.subarray(q * N, (q + 1) * N)));
    const e = makeCapture({ ...info, tokens: c.info.tokens, grid: c.info.grid, imageSpan: c.info.imageSpan, attention: c.attention.map((a) => ndarrayFromValues(a, [2, 3, N])), rollout: ndarrayFromValues(rows, [c.info.queryPositions.length, N]) });
    expectClose(tokenMap(e, [6], { mode: 'rollout' }).values, Array.from(full.subarray(6 * N + 1, 6 * N + 5)), { atol: 1e-7 });
    expect(() => tokenMap(e, [6], { mode: 'rollout', residual: 0.2 })).toThrow(UnsupportedError);
    expect(() => patchMap(e, 0, { mode: 'rollout', residual: 0.2 })).toThrow(UnsupportedError);
  });
});
