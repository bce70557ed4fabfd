import { describe, expect, it } from 'vitest';
import { causal } from '../../../src/masks/mask.js';
import { Tensor, mulberry32, randn } from '../../../src/tensor/tensor.js';
import { planGrid } from '../../../src/relevance/regions.js';
import { computeTexture, NUM_TEXTURE_CHANNELS } from '../../../src/relevance/texture.js';
import { parseQuery } from '../../../src/relevance/lexicon.js';
import {
  informationRaw, informationScore, participatoryFromAttention, participatoryFromEmbeddings, participatoryFromLexicon, salienceFromAttention, salienceScore,
  SCORE_EPS, toDistribution, tokensToRegions,
} from '../../../src/relevance/scorers.js';
import { ShapeError, ValueError } from '../../../src/errors.js';
import { expectClose } from '../../helpers/close.js';
import type { RgbImage } from '../../../src/relevance/image-ops.js';

const BACKENDS = ['cpu-ts', 'wasm'] as const;

function randomImage(w: number, h: number, seed: number): RgbImage {
  const rnd = mulberry32(seed);
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, () => rnd()) };
}

/** Float64: explicit softmax of q·kᵀ·scale over visible keys, column sums over text rows, mean over heads/rows, renormalised over the visual span. */
function participatoryRef(q: Tensor, k: Tensor, rows: [number, number], span: [number, number], scale: number, isCausal: boolean): Float64Array {
  const [, Sq, H, D] = q.shape as number[] as [number, number, number, number];
  const Sk = k.shape[1]!, Hk = k.shape[2]!;
  const Q = q.toFloat32(), K = k.toFloat32();
  const rel = new Float64Array(Sk);
  for (let h = 0; h < H; h++) {
    const hk = Math.floor(h / (H / Hk));
    for (let i = rows[0]; i < rows[1]; i++) {
      const s = new Float64Array(Sk).fill(-Infinity);
      for (let j = 0; j < Sk; j++) {
        if (isCausal && j > i + Sk - Sq) continue;
        let d = 0;
        for (let c = 0; c < D; c++) d += Q[(i * H + h) * D + c]! * K[(j * Hk + hk) * D + c]!;
        s[j] = d * scale;
      }
      const m = Math.max(...s);
      let z = 0;
      for (let j = 0; j < Sk; j++) z += Math.exp(s[j]! - m);
      for (let j = 0; j < Sk; j++) rel[j] += Math.exp(s[j]! - m) / z / (H * (rows[1] - rows[0]));
    }
  }
  const v = rel.subarray(span[0], span[1]);
  const tot = v.reduce((a, b) => a + b, 0);
  return Float64Array.from(v, (x) => x / tot);
}

describe('participatory scorer', () => {
  for (const backend of BACKENDS) {
    it(`equals the float64 reference (explicit softmax of QKᵀ, column sums) within 1e-5 on ${backend}: GQA, causal, text rows after the image`, async () => {
      // Sequence: [BOS][image 9×11 = 99 tokens][text 7 tokens]; 8 query heads over 2 KV heads; d = 40.
      const plan = planGrid(11 * 14, 9 * 14, { patchSize: 14, regionRows: 3, regionCols: 4 });
      const Sk = 1 + 99 + 7;
      const q = randn([1, Sk, 8, 40], 11), k = randn([1, Sk, 2, 40], 12);
      for (const isCausal of [true, false]) {
        const res = await participatoryFromAttention({ q, k, queryRows: [100, 107], visualSpan: [1, 100], causal: isCausal }, plan, { backend });
        const ref = participatoryRef(q, k, [100, 107], [1, 100], 1 / Math.sqrt(40), isCausal);
        expectClose(res.tokens, ref, { atol: 1e-5, label: `tokens causal=${isCausal}` });
        const regions = toDistribution(tokensToRegions(ref, { rows: 9, cols: 11 }, plan));
        expectClose(res.regions, regions, { atol: 1e-5, label: 'regions' });
        expect(res.regions.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      }
    });

    it(`lexicon queries equal an explicit float64 Gaussian-kernel softmax within 1e-5 on ${backend}`, async () => {
      const img = randomImage(9 * 8, 7 * 8, 5);
      const plan = planGrid(72, 56, { patchSize: 8, regionRows: 2, regionCols: 3 });
      const tex = computeTexture(img, plan);
      const query = parseQuery('red striped blue left');
      expect(query.tokens.length).toBe(2);
      const sigma = 0.17;
      const res = await participatoryFromLexicon(query, tex, { backend, bandwidth: sigma });
      const g = plan.gridRows * plan.gridCols, C = NUM_TEXTURE_CHANNELS;
      const ref = new Float64Array(g);
      for (const tok of query.tokens) {
        const logit = new Float64Array(g);
        for (let j = 0; j < g; j++) for (let c = 0; c < C; c++) logit[j] -= tok.weight[c]! * (tex.patches[c * g + j]! - tok.target[c]!) ** 2 / (2 * sigma * sigma);
        const m = Math.max(...logit);
        const z = logit.reduce((a, l) => a + Math.exp(l - m), 0);
        for (let j = 0; j < g; j++) ref[j] += Math.exp(logit[j]! - m) / z / query.tokens.length;
      }
      expectClose(res.tokens, ref, { atol: 1e-5, label: 'lexicon tokens' });
    });

    it(`embeddings (standalone variant, 2 heads, projections) equal the reference on ${backend}`, async () => {
      const plan = planGrid(5 * 10, 4 * 10, { patchSize: 10, regionRows: 2, regionCols: 2 });
      const D = 12, T = 3, N = 20;
      const rnd = mulberry32(3);
      const text = Float32Array.from({ length: T * D }, () => rnd() * 2 - 1), patches = Float32Array.from({ length: N * D }, () => rnd() * 2 - 1);
      const wq = Float32Array.from({ length: D * D }, () => rnd() - 0.5), wk = Float32Array.from({ length: D * D }, () => rnd() - 0.5);
      const res = await participatoryFromEmbeddings(text, patches, D, plan, { backend, numHeads: 2, wq, wk });
      const proj = (x: Float32Array, w: Float32Array) => Float32Array.from({ length: x.length }, (_, i) => { const r = Math.floor(i / D), o = i % D; let s = 0; for (let c = 0; c < D; c++) s += x[r * D + c]! * w[c * D + o]!; return s; });
      const q = Tensor.fromValues(proj(text, wq), [1, T, 2, D / 2]), k = Tensor.fromValues(proj(patches, wk), [1, N, 2, D / 2]);
      expectClose(res.tokens, participatoryRef(q, k, [0, T], [0, N], 1 / Math.sqrt(D / 2), false), { atol: 1e-5 });
    });
  }

  it('salience from CLS attention is the CLS row restricted to the patches', async () => {
    const plan = planGrid(4 * 14, 4 * 14, { patchSize: 14, regionRows: 2, regionCols: 2 });
    const q = randn([1, 17, 4, 16], 21), k = randn([1, 17, 4, 16], 22);
    const res = await salienceFromAttention({ q, k, queryRows: [0, 1], visualSpan: [1, 17] }, plan);
    expectClose(res.tokens, participatoryRef(q, k, [0, 1], [1, 17], 0.25, false), { atol: 1e-5 });
  });

  it('rejects bad spans and shapes with typed errors', async () => {
    const plan = planGrid(56, 56, { patchSize: 14, regionRows: 2, regionCols: 2 });
    const q = randn([1, 20, 2, 8], 1), k = randn([1, 20, 2, 8], 2);
    await expect(participatoryFromAttention({ q, k, queryRows: [16, 16], visualSpan: [0, 16] }, plan)).rejects.toThrow(ShapeError);
    await expect(participatoryFromAttention({ q, k, queryRows: [16, 20], visualSpan: [0, 15] }, plan)).rejects.toThrow(/visualGrid/);
    await expect(participatoryFromAttention({ q, k, queryRows: [16, 21], visualSpan: [0, 16] }, plan)).rejects.toThrow(/queryRows/);
    await expect(participatoryFromAttention({ q: randn([2, 20, 2, 8], 1), k, queryRows: [16, 20], visualSpan: [0, 16] }, plan)).rejects.toThrow(ShapeError);
    // A negative grid whose product matches (it dropped every token and returned a uniform score).
    await expect(participatoryFromAttention({ q, k, queryRows: [16, 20], visualSpan: [0, 16], visualGrid: { rows: -4, cols: -4 } }, plan)).rejects.toThrow(/visualGrid must have positive integer/);
    // A missing range names itself (it was a TypeError).
    const noRows = { q, k, visualSpan: [0, 16] } as unknown as Parameters<typeof participatoryFromAttention>[0];
    await expect(participatoryFromAttention(noRows, plan)).rejects.toMatchObject({ name: 'ShapeError', argument: 'queryRows' });
    // NaN in q: the mass is NaN, said as such (it blamed visualSpan: 'all masked?').
    const qNaN = randn([1, 20, 2, 8], 1);
    (qNaN.data as Float32Array)[16 * 16 + 3] = NaN;
    await expect(participatoryFromAttention({ q: qNaN, k, queryRows: [16, 20], visualSpan: [0, 16] }, plan)).rejects.toMatchObject({ name: 'ValueError', argument: 'q' });
  });
});

describe('information and salience scorers', () => {
  it('information = 16-bin luminance entropy / 4 bits per region, against a reference', () => {
    const img = randomImage(48, 32, 8);
    const plan = planGrid(48, 32, { patchSize: 8, regionRows: 2, regionCols: 3 });
    const tex = computeTexture(img, plan);
    const raw = informationRaw(tex);
    const n = 48 * 32;
    for (const r of plan.regions) {
      const hist = new Float64Array(16);
      let tot = 0;
      for (let y = r.patchRow0 * 8; y < r.patchRow1 * 8; y++) for (let x = r.patchCol0 * 8; x < r.patchCol1 * 8; x++) {
        hist[Math.min(15, Math.floor(tex.pixels[3 * n + y * 48 + x]! * 16))] += 1; tot++;
      }
      const H = -hist.reduce((s, c) => (c > 0 ? s + (c / tot) * Math.log2(c / tot) : s), 0);
      expect(raw[r.index]).toBeCloseTo(H / 4, 10);
    }
    const p = informationScore(tex);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const flat = computeTexture({ width: 16, height: 16, data: new Float32Array(768).fill(0.5) }, planGrid(16, 16, { patchSize: 4, regionRows: 2, regionCols: 2 }));
    expect(Array.from(informationRaw(flat))).toEqual([0, 0, 0, 0]);
    expectClose(informationScore(flat), [0.25, 0.25, 0.25, 0.25], { atol: 1e-12 }); // ε keeps it a distribution
    expectClose(salienceScore(flat), [0.25, 0.25, 0.25, 0.25], { atol: 1e-12 });
  });

  it('toDistribution adds ε = 1e-6 and rejects negative or NaN scores', () => {
    expectClose(toDistribution([1, 0]), [(1 + SCORE_EPS) / (1 + 2 * SCORE_EPS), SCORE_EPS / (1 + 2 * SCORE_EPS)], { atol: 1e-15 });
    expect(() => toDistribution([1, -1])).toThrow(ValueError);
    expect(() => toDistribution([1, NaN])).toThrow(/scores\[1\]/);
  });
});

describe('concept lexicon', () => {
  it('merges non-conflicting words into one token, splits conflicting ones, ignores unknown words', () => {
    const q = parseQuery('the bright red striped car on the left');
    expect(q.tokens.map((t) => t.words)).toEqual([['bright', 'red', 'striped', 'left']]);
    expect(q.unknownWords).toEqual(['the', 'car', 'on', 'the']);
    expect(parseQuery('red blue').tokens.length).toBe(2);
    expect(parseQuery('Center GRAY').tokens[0]!.words).toEqual(['centre', 'grey']);
  });
  it('empty queries and queries with no known word raise ValueError naming query', () => {
    for (const text of ['', '   ', 'car truck']) {
      try { parseQuery(text); throw new Error('no throw'); } catch (e) {
        expect(e).toBeInstanceOf(ValueError);
        expect((e as ValueError).argument).toBe('query');
      }
    }
  });
});
