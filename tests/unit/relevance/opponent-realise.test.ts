import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { opponentProcess } from '../../../src/relevance/opponent.js';
import { adaptiveBounds, attendRealised, realiseTokens, tokenGridShape } from '../../../src/relevance/realise.js';
import { planGrid } from '../../../src/relevance/regions.js';
import { planRelevance, runRelevance } from '../../../src/relevance/pipeline.js';
import { computeTexture, NUM_TEXTURE_CHANNELS } from '../../../src/relevance/texture.js';
import { attentionReferenceVarlen } from '../../../src/reference/attention-ref.js';
import { mulberry32 } from '../../../src/tensor/tensor.js';
import { ShapeError, ValueError } from '../../../src/errors.js';
import { expectClose } from '../../helpers/close.js';

const dist = fc.array(fc.double({ min: 0.001, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 }).map((a) => { const s = a.reduce((x, y) => x + y, 0); return a.map((x) => x / s); });

describe('opponent processing', () => {
  it('computes mix, temperature and explore floor exactly as the spec (float64 reference)', () => {
    const I = [0.5, 0.3, 0.2], S = [0.2, 0.2, 0.6], P = [0.1, 0.8, 0.1];
    const r = opponentProcess(I, S, P, { weights: [0.2, 0.3, 0.5], temperature: 0.5, explore: 0.1 });
    const mix = I.map((_, i) => 0.2 * I[i]! + 0.3 * S[i]! + 0.5 * P[i]!);
    const pw = mix.map((m) => m ** 2), z = pw.reduce((a, b) => a + b, 0);
    expectClose(r.mixed, mix, { atol: 1e-15 });
    expectClose(r.rho, pw.map((p) => 0.9 * (p / z) + 0.1 / 3), { atol: 1e-15 });
  });

  it('properties: ρ is a distribution with ρ_r ≥ ε_x/R; τ < 1 sharpens and τ > 1 flattens', () => {
    fc.assert(fc.property(dist, fc.double({ min: 0.05, max: 5, noNaN: true }), fc.double({ min: 0.001, max: 1, noNaN: true }), (p, tau, eps) => {
      const r = opponentProcess(p, p, p, { temperature: tau, explore: eps });
      const s = r.rho.reduce((a, b) => a + b, 0);
      if (Math.abs(s - 1) > 1e-9) return false;
      if (r.rho.some((x) => x < eps / p.length - 1e-15)) return false;
      const maxT = Math.max(...r.tempered), maxP = Math.max(...p);
      return tau <= 1 ? maxT >= maxP - 1e-12 : maxT <= maxP + 1e-12;
    }), { numRuns: 500 });
  });

  it('validates the knobs and the input distributions', () => {
    const p = [0.5, 0.5];
    expect(() => opponentProcess(p, p, p, { weights: [0.5, 0.5, 0.5] })).toThrow(/simplex/);
    expect(() => opponentProcess(p, p, p, { temperature: 0 })).toThrow(/temperature/);
    expect(() => opponentProcess(p, p, p, { explore: 0 })).toThrow(/explore/);
    expect(() => opponentProcess(p, p, p, { explore: 1.5 })).toThrow(ValueError);
    expect(() => opponentProcess(p, [1], p)).toThrow(ShapeError);
    expect(() => opponentProcess(p, [0.7, 0.7], p)).toThrow(/sum to 1/);
  });
});

describe('token realisation', () => {
  it('tokenGridShape factors t into a × b closest to the region aspect', () => {
    expect(tokenGridShape(400, 1)).toEqual([20, 20]);
    expect(tokenGridShape(208, 1)).toEqual([13, 16]);
    expect(tokenGridShape(96, 1)).toEqual([8, 12]);
    expect(tokenGridShape(64, 0.25)).toEqual([4, 16]);
    expect(tokenGridShape(64, 1, 4, 4)).toBeNull();
    expect(adaptiveBounds(10, 3, 1)).toEqual([3, 7]);
  });

  it('pools region features by adaptive average pooling, positions at base-grid centres, raster order', () => {
    const rnd = mulberry32(4);
    const W = 6 * 7, H = 5 * 7;
    const img = { width: W, height: H, data: Float32Array.from({ length: 3 * W * H }, () => rnd()) };
    const plan = planGrid(W, H, { patchSize: 7, regionRows: 2, regionCols: 3 });
    const tex = computeTexture(img, plan);
    const alloc = [6, 0, 4, 4, 1, 2];
    for (const mode of ['reencode', 'pool'] as const) {
      const t = realiseTokens(tex, alloc, { mode });
      expect(t.count).toBe(17);
      expect(Array.from(t.cuSeqlens)).toEqual([0, 6, 10, 14, 15, 17]);
      expect(t.sequenceRegions).toEqual([0, 2, 3, 4, 5]);
      expect(t.shapes[1]).toEqual([0, 0]);
      const C = NUM_TEXTURE_CHANNELS, n = W * H, g = plan.gridRows * plan.gridCols;
      let o = 0;
      for (const reg of plan.regions) {
        const [a, b] = t.shapes[reg.index]!;
        const pr = reg.patchRow1 - reg.patchRow0, pc = reg.patchCol1 - reg.patchCol0;
        const unit = mode === 'pool' ? 1 : 7;
        for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) {
          const [y0, y1] = adaptiveBounds(pr * unit, a, i), [x0, x1] = adaptiveBounds(pc * unit, b, j);
          for (let c = 0; c < C; c++) {
            let s = 0;
            for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
              s += mode === 'pool'
                ? tex.patches[c * g + (reg.patchRow0 + y) * plan.gridCols + reg.patchCol0 + x]!
                : tex.pixels[c * n + (reg.patchRow0 * 7 + y) * W + reg.patchCol0 * 7 + x]!;
            }
            expect(Math.abs(t.features[o * C + c]! - s / ((y1 - y0) * (x1 - x0)))).toBeLessThan(1e-5);
          }
          expect(t.positions[o * 2]).toBeCloseTo(reg.patchRow0 + ((i + 0.5) * pr) / a, 6);
          expect(t.positions[o * 2 + 1]).toBeCloseTo(reg.patchCol0 + ((j + 0.5) * pc) / b, 6);
          expect(t.positionIds[o * 2]).toBe(Math.round(t.positions[o * 2]! * t.positionScale));
          expect(t.regionOf[o]).toBe(reg.index);
          o++;
        }
      }
    }
    expect(() => realiseTokens(tex, [64, 0, 0, 0, 0, 0], { mode: 'pool' })).toThrow(/cannot hold/);
    expect(() => realiseTokens(tex, [1, 2], {})).toThrow(ShapeError);
    expect(() => realiseTokens(tex, [1.5, 0, 0, 0, 0, 0])).toThrow(ValueError);
  });

  it("'reencode' upsamples a crop smaller than its token grid (the pipeline realises every count it allocates)", async () => {
    // A 28×28 image: four regions of 14×14 pixels, each allocated 400 tokens (20×20, more than its pixels).
    const W = 28, H = 28, rnd = mulberry32(9);
    const data = new Uint8Array(W * H * 4).map((_, i) => (i % 4 === 3 ? 255 : Math.floor(rnd() * 256)));
    const plan = planRelevance(W, H, { query: 'red', budget: 1600 });
    const res = await runRelevance({ width: W, height: H, data }, plan);
    expect(Array.from(res.allocation.tokens)).toEqual([400, 400, 400, 400]);
    expect(res.tokens.count).toBe(1600);
    expect(res.tokens.shapes).toEqual([[20, 20], [20, 20], [20, 20], [20, 20]]);
    // Each token is the mean of the pixels its adaptive-pool cell covers (cells of one or two pixels a side).
    const tex = computeTexture({ width: W, height: H, data: new Float32Array(3 * W * H).map(() => rnd()) }, plan.grid);
    const t = realiseTokens(tex, [400, 0, 0, 0]);
    const C = NUM_TEXTURE_CHANNELS;
    for (const [i, j] of [[0, 0], [7, 13], [19, 19]] as const) {
      const [y0, y1] = adaptiveBounds(14, 20, i), [x0, x1] = adaptiveBounds(14, 20, j);
      let s = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += tex.pixels[y * W + x]!;
      expect(Math.abs(t.features[(i * 20 + j) * C]! - s / ((y1 - y0) * (x1 - x0)))).toBeLessThan(1e-5);
    }
    // 'pool' cannot: 400 tokens need a 20×20 grid of base patches, and the error says so.
    expect(() => realiseTokens(tex, [400, 0, 0, 0], { mode: 'pool' })).toThrow(/base patches \(mode 'pool'\); use mode 'reencode'/);
  });

  for (const backend of ['cpu-ts', 'wasm'] as const) {
    it(`LOD attention is one varlen call equal to the float64 reference (per-region and with-query) on ${backend}`, async () => {
      const rnd = mulberry32(6);
      const W = 8 * 6, H = 8 * 6;
      const img = { width: W, height: H, data: Float32Array.from({ length: 3 * W * H }, () => rnd()) };
      const tex = computeTexture(img, planGrid(W, H, { patchSize: 8, regionRows: 2, regionCols: 2 }));
      const t = realiseTokens(tex, [16, 9, 0, 25]);
      const per = await attendRealised(t, { backend, numHeads: 3, headDim: 24 });
      expect(Array.from(per.cuSeqlens)).toEqual([0, 16, 25, 50]);
      const ref = attentionReferenceVarlen(per.q, per.k, per.v, per.cuSeqlens, per.cuSeqlens);
      expectClose(per.out.toFloat32(), ref.out, { atol: 2e-5, rtol: 1e-4, label: 'per-region' });
      const qf = Float32Array.from({ length: 2 * NUM_TEXTURE_CHANNELS }, () => rnd());
      const all = await attendRealised(t, { backend, mode: 'with-query', queryFeatures: qf, numHeads: 2, headDim: 16 });
      expect(all.out.shape).toEqual([52, 2, 16]);
      const ref2 = attentionReferenceVarlen(all.q, all.k, all.v, [0, 52], [0, 52]);
      expectClose(all.out.toFloat32(), ref2.out, { atol: 2e-5, rtol: 1e-4, label: 'with-query' });
    });
  }
});
