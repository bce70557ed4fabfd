import { describe, expect, it } from 'vitest';
import { demoScene, generateScene, SCENE_COLOURS } from '../../../src/relevance/scene.js';
import { planRelevance, relevancePrecision, runRelevance, latencyTable, STAGES, SEED_PLAN_MS } from '../../../src/relevance/pipeline.js';
import { buildRelevanceCapture, gridImage, renderHtmlReport, renderRelevancePngs, formatAllocationTable } from '../../../src/relevance/report.js';
import { decodeCapture } from '../../../src/viz/capture-file.js';
import { decodePng, encodePng } from '../../../src/viz/png.js';
import { InfeasibleError, ValueError } from '../../../src/errors.js';
import { randn } from '../../../src/tensor/tensor.js';

const OPTS = { budget: 1600, min: 16, grid: { regionRows: 7, regionCols: 7 } } as const;

describe('procedural scenes', () => {
  it('are deterministic per seed, with disjoint masks that match the drawn colours', () => {
    const a = generateScene({ width: 200, height: 160, seed: 5 }), b = generateScene({ width: 200, height: 160, seed: 5 });
    expect(Buffer.from(a.rgba.data).equals(Buffer.from(b.rgba.data))).toBe(true);
    expect(new Set(a.objects.map((o) => o.colour)).size).toBe(a.objects.length);
    const owner = new Int8Array(200 * 160).fill(-1);
    a.objects.forEach((o, k) => {
      let area = 0;
      for (let i = 0; i < o.mask.length; i++) if (o.mask[i]) { expect(owner[i]).toBe(-1); owner[i] = k; area++; }
      expect(area).toBe(o.area);
      expect(area).toBeGreaterThan(100);
      expect(SCENE_COLOURS).toContain(o.colour);
    });
    const c = generateScene({ width: 200, height: 160, seed: 6 });
    expect(Buffer.from(c.rgba.data).equals(Buffer.from(a.rgba.data))).toBe(false);
    expect(() => generateScene({ width: 0 })).toThrow(ValueError);
  });
});

describe('relevance pipeline', () => {
  it('puts the most tokens on the object the colour query names, ≥ 2× uniform precision, exact budget', async () => {
    const scene = demoScene();
    for (const colour of ['red', 'blue', 'green', 'yellow'] as const) {
      const plan = planRelevance(scene.width, scene.height, { ...OPTS, query: colour, lodAttention: 'none' });
      const res = await runRelevance(scene.image, plan);
      expect(res.allocation.total).toBe(1600);
      const obj = scene.objects.find((o) => o.colour === colour)!;
      const p = relevancePrecision(res.allocation.tokens, plan.grid, obj.mask);
      expect(p.precision / p.uniformPrecision, colour).toBeGreaterThanOrEqual(2);
      // The region with the most tokens is one the object covers.
      const top = res.allocation.tokens.indexOf(Math.max(...res.allocation.tokens));
      expect(p.targetRegions).toContain(top);
    }
  });

  it('times every stage and tabulates them against the seed plan (LLM excluded from the total)', async () => {
    const scene = generateScene({ width: 320, height: 256, seed: 3 });
    const plan = planRelevance(320, 256, { query: 'striped', budget: 640, min: 16, grid: { regionRows: 4, regionCols: 5 }, lodAttention: 'with-query' });
    const res = await runRelevance(scene.rgba, plan);
    for (const s of STAGES) expect(res.timings[s]).toBeGreaterThanOrEqual(0);
    const rows = latencyTable(res.timings);
    expect(rows.map((r) => r.stage)).toEqual([...STAGES, 'llm', 'total']);
    expect(rows.at(-1)!.planMs).toBe(100);
    expect(rows.find((r) => r.stage === 'llm')!.measuredMs).toBeNull();
    expect(SEED_PLAN_MS['lod-attention']).toBe(40);
    expect(res.attention!.out.shape[0]).toBe(res.tokens.count + 1);
    expect(formatAllocationTable(res)).toMatch(/total 640 tokens/);
  });

  it('gives the same allocation on the cpu-ts and wasm backends (backend is passed through)', async () => {
    const scene = generateScene({ width: 256, height: 256, seed: 4 });
    const allocs = [];
    for (const backend of ['cpu-ts', 'wasm'] as const) {
      const plan = planRelevance(256, 256, { query: scene.objects[0]!.colour, budget: 512, min: 16, grid: { regionRows: 4, regionCols: 4 }, backend });
      allocs.push(Array.from((await runRelevance(scene.image, plan)).allocation.tokens));
    }
    expect(allocs[0]).toEqual(allocs[1]);
  });

  it('accepts an LLM layer (attention inputs) as the query and encoder CLS attention as salience', async () => {
    const scene = generateScene({ width: 112, height: 112, seed: 2 });
    const q = randn([1, 1 + 64 + 3, 4, 16], 1), k = randn([1, 1 + 64 + 3, 2, 16], 2);
    const plan = planRelevance(112, 112, {
      query: { attention: { q, k, queryRows: [65, 68], visualSpan: [1, 65], visualGrid: { rows: 8, cols: 8 }, causal: true } },
      salienceAttention: { q: randn([1, 65, 2, 8], 3), k: randn([1, 65, 2, 8], 4), queryRows: [0, 1], visualSpan: [1, 65], visualGrid: { rows: 8, cols: 8 } },
      budget: 256, min: 16, grid: { patchSize: 14, regionRows: 2, regionCols: 2 },
    });
    const res = await runRelevance(scene.image, plan);
    expect(res.allocation.total).toBe(256);
    expect(res.participatoryTokens.length).toBe(64);
  });

  it('rejects NaN, negative and infeasible budgets and empty queries with typed errors at planning', () => {
    const bad: Array<[object, new (...a: never[]) => Error, string]> = [
      [{ query: 'red', budget: NaN }, ValueError, 'budget'],
      [{ query: 'red', budget: -16 }, ValueError, 'budget'],
      [{ query: 'red', budget: 1601 }, InfeasibleError, 'budget-not-multiple-of-quantum'],
      [{ query: 'red', budget: 320 }, InfeasibleError, 'too-many-regions-for-minimum'],
      [{ query: 'red', budget: 16000 }, InfeasibleError, 'budget-exceeds-capacity'],
      [{ query: '' }, ValueError, 'query'],
      [{ query: 'zebra' }, ValueError, 'query'],
    ];
    for (const [opts, cls, what] of bad) {
      try { planRelevance(784, 784, opts as never); throw new Error('no throw'); } catch (e) {
        expect(e, what).toBeInstanceOf(cls);
        expect(e instanceof InfeasibleError ? e.condition : (e as { argument?: string }).argument).toBe(what);
        if (e instanceof InfeasibleError) expect(e.argument).toBe('budget');
      }
    }
    expect(() => planRelevance(0, 10, { query: 'red' })).toThrow(/zero-area/);
  });

  it("the query heatmap and the capture's image cover the grid's crop, not the whole image", async () => {
    // 1099 px wide, 100-px patches: the grid is a central crop x = 49..1048; the query's red column is its last patch.
    const W = 1099, H = 400;
    const data = new Uint8Array(W * H * 4);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const i = (y * W + x) * 4, red = x >= 949 && x < 1049;
      data[i] = red ? 220 : 128; data[i + 1] = red ? 25 : 128; data[i + 2] = red ? 25 : 128; data[i + 3] = 255;
    }
    const img = { width: W, height: H, data };
    const plan = planRelevance(W, H, { query: 'red', budget: 256, min: 16, grid: { patchSize: 100, maxSide: 2000, regionRows: 2, regionCols: 2 }, lodAttention: 'none' });
    expect(plan.grid.crop).toEqual({ x: 49, y: 0, width: 1000, height: 400 });
    const res = await runRelevance(img, plan);
    const heat = decodePng(renderRelevancePngs(res, img, 2000)['heatmap-query.png']);
    const changed = (x: number, y: number) => [0, 1, 2].reduce((d, c) => d + Math.abs(heat.data[(y * W + x) * 4 + c]! - data[(y * W + x) * 4 + c]!), 0);
    for (const y of [0, 200, 399]) {
      for (const x of [0, 48, 1049, 1080, 1098]) expect(changed(x, y)).toBe(0); // outside the crop: untouched
      expect(changed(1000, y)).toBeGreaterThan(60);                               // on the query's patch: hot
    }
    const grid = gridImage(res, img, 2000);
    expect([grid.width, grid.height]).toEqual([1000, 400]);
    expect(Array.from(grid.data.subarray(0, 4))).toEqual(Array.from(data.subarray(49 * 4, 50 * 4)));
    const cap = decodeCapture(await buildRelevanceCapture(res, encodePng(grid)));
    const shown = decodePng(cap.imagePng!);
    expect([shown.width, shown.height]).toEqual([1000, 400]);
  });

  it('renders heatmaps (query object hottest), the allocation overlay, a self-contained HTML report and a capture file', async () => {
    const scene = demoScene(392, 392);
    const plan = planRelevance(392, 392, { query: 'blue', budget: 1024, min: 16, grid: { regionRows: 4, regionCols: 4 } });
    const res = await runRelevance(scene.rgba, plan);
    const pngs = renderRelevancePngs(res, scene.rgba);
    const heat = decodePng(pngs['heatmap-query.png']);
    expect([heat.width, heat.height]).toEqual([392, 392]);
    // Mean change from the image inside vs outside the named object: the object must be hottest.
    const blue = scene.objects.find((o) => o.colour === 'blue')!;
    let inD = 0, inN = 0, outD = 0, outN = 0;
    for (let i = 0; i < 392 * 392; i++) {
      let d = 0;
      for (let c = 0; c < 3; c++) d += Math.abs(heat.data[i * 4 + c]! - scene.rgba.data[i * 4 + c]!);
      if (blue.mask[i]) { inD += d; inN++; } else { outD += d; outN++; }
    }
    expect(inD / inN).toBeGreaterThan(5 * (outD / outN));
    const html = renderHtmlReport(res, pngs, { title: 't' });
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/(src|href)="(?!data:)/);
    expect((html.match(/data:image\/png;base64,/g) ?? []).length).toBe(6);
    const cap = decodeCapture(await buildRelevanceCapture(res, pngs['image.png'], { blue: new Uint8Array(plan.grid.gridRows * plan.grid.gridCols) }));
    expect(cap.info.grid).toEqual({ rows: plan.grid.gridRows, cols: plan.grid.gridCols });
    expect(cap.info.meta.query).toBe('blue');
    const row = cap.attention[0]!.subarray(0, cap.info.seqLen);
    const mass = row.subarray(0, plan.grid.gridRows * plan.grid.gridCols).reduce((a, b) => a + b, 0);
    expect(mass).toBeCloseTo(1, 4);
  });
});
