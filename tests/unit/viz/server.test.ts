import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ndarrayFromValues } from '../../../src/io/npy.js';
import { handleApi } from '../../../src/viz/api.js';
import { type Capture, encodeCapture, makeCapture } from '../../../src/viz/capture-file.js';
import { patchMap, tokenMap } from '../../../src/viz/maps.js';
import { startViewerServer, type ViewerServer } from '../../../src/viz/server.js';
import { randomAttention, tinyPng } from './fixtures.js';

const N = 12; // <bos>, 3×3 image, 2 words
function cap(seed: number, full = true): Capture {
  const q = full ? N : 3;
  return makeCapture({
    tokens: ['<bos>', ...Array.from({ length: 9 }, (_, i) => `<img ${i}>`), 'big', 'dog'], grid: [3, 3], imageSpan: [1, 10],
    attention: [0, 1, 2].map((l) => ndarrayFromValues(randomAttention(2, q, N, seed + l), [1, 2, q, N])),
    ...(full ? {} : { queryPositions: [0, 10, 11] }), imagePng: tinyPng(30, 30),
  });
}

let server: ViewerServer;
const HTML = '<!doctype html><title>t</title><!--VLM-ATTENTION-CAPTURE-->';

function http(method: string, path: string, opts: { body?: Uint8Array; host?: string; headers?: Record<string, string>; chunked?: boolean; port?: number } = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const length = opts.body && !opts.chunked ? { 'Content-Length': opts.body.length } : {};
    const req = request({ host: '127.0.0.1', port: opts.port ?? server.port, method, path, headers: { ...(opts.host ? { Host: opts.host } : {}), ...length, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    if (opts.body && opts.chunked) {
      // Transfer-Encoding: chunked, in 16 KiB writes.
      for (let o = 0; o < opts.body.length; o += 16384) req.write(Buffer.from(opts.body.subarray(o, o + 16384)));
      req.end();
    } else if (opts.body) req.end(Buffer.from(opts.body)); else req.end();
  });
}

beforeAll(async () => { server = await startViewerServer(cap(1), { html: HTML }); });
afterAll(async () => { await server.close(); });

describe('viewer API (pure handler)', () => {
  const c = cap(3);
  const get = (path: string, q: Record<string, string> = {}) => {
    const r = handleApi(c, 'GET', path, new URLSearchParams(q));
    return { status: r.status, body: typeof r.body === 'string' ? JSON.parse(r.body) : r.body };
  };
  it('answers maps equal to the library functions', () => {
    const m = get('/api/map', { tokens: '11', mode: 'rollout', layers: '0-1', heads: 'all' });
    expect(m.status).toBe(200);
    const ref = tokenMap(c, [11], { mode: 'rollout', layers: [0, 1] });
    expect(m.body.values).toEqual(Array.from(ref.values));
    expect(m.body.argmax).toEqual(ref.argmax);
    const p = get('/api/patch', { patch: '4', layers: '2', heads: '1' });
    expect(p.body.argmax).toBe(patchMap(c, 4, { layers: [2], heads: [1] }).argmax);
    expect(get('/api/heads').body.scores.length).toBe(6);
    expect(get('/api/info').body.available.rollout).toBe(true);
    // What /api/info offers, /api/patch and /api/map serve: a patch's flow needs a flow row per text token.
    const av = get('/api/info').body.available;
    expect(typeof av.patchFlow).toBe('boolean');
    expect(get('/api/patch', { patch: '4', mode: 'flow' }).status).toBe(av.patchFlow ? 200 : 400);
    expect(get('/api/map', { tokens: '11', mode: 'flow' }).status).toBe(av.flow ? 200 : 400);
  });
  it('bad parameters → 400 naming the argument and dimension; unsupported → 422; unknown path 404; POST 405', () => {
    const cases: [Record<string, string>, string, string][] = [
      [{ tokens: '12' }, 'tokens', 'seqLen'], [{ tokens: '-1' }, 'tokens', 'seqLen'], [{ tokens: 'x' }, 'tokens', 'seqLen'], [{}, 'tokens', 'seqLen'],
      [{ tokens: '11', layers: '3' }, 'layers', 'numLayers'], [{ tokens: '11', heads: '2' }, 'heads', 'numHeads'], [{ tokens: '11', heads: '0,0' }, 'heads', 'numHeads'],
      [{ tokens: '11', layers: '1.5' }, 'layers', 'numLayers'], [{ tokens: '11', mode: 'magic' }, 'mode', ''],
    ];
    for (const [q, argument, dimension] of cases) {
      const r = get('/api/map', q);
      expect(r.status, JSON.stringify(q)).toBe(400);
      expect(r.body.argument).toBe(argument);
      if (dimension) expect(r.body.dimension).toBe(dimension);
      expect(r.body.message.length).toBeGreaterThan(10);
    }
    expect(get('/api/patch', { patch: '9' }).body.dimension).toBe('grid');
    const partial = cap(4, false);
    const r = handleApi(partial, 'GET', '/api/map', new URLSearchParams({ tokens: '11', mode: 'rollout' }));
    expect(r.status).toBe(422);
    expect(JSON.parse(r.body as string).error).toBe('UnsupportedError');
    expect(JSON.parse(handleApi(partial, 'GET', '/api/map', new URLSearchParams({ tokens: '3' })).body as string).dimension).toBe('numQueries');
    expect(get('/api/nope').status).toBe(404);
    expect(handleApi(c, 'POST', '/api/map', new URLSearchParams()).status).toBe(405);
  });
  it('lists that expand past their dimension or 100,000 entries → 400 before anything is expanded (a 12 KB URL of ranges killed the server)', () => {
    const t0 = performance.now();
    const huge = get('/api/map', { tokens: Array(1400).fill('0-100000').join(',') });
    expect(huge.status).toBe(400);
    expect(huge.body).toMatchObject({ error: 'ShapeError', argument: 'tokens', dimension: 'seqLen' });
    expect(huge.body.message).toMatch(/tokens contains 100000 \(range 0-100000\); seqLen has 12 entries/);
    const many = get('/api/map', { tokens: Array(10_000).fill('0-11').join(',') }); // 120,000 entries, each in range
    expect(many.status).toBe(400);
    expect(many.body).toMatchObject({ error: 'ValueError', argument: 'tokens' });
    expect(get('/api/map', { tokens: '11', layers: '0-3' }).body).toMatchObject({ argument: 'layers', dimension: 'numLayers' });
    expect(get('/api/patch', { patch: '3-1' }).body).toMatchObject({ argument: 'patch', dimension: 'grid' });
    expect(get('/api/patch', { patch: '1.5' }).body.message).toMatch(/^patch must be one integer/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
  it('fuzz: arbitrary query strings never give 5xx', () => {
    fc.assert(fc.property(fc.constantFrom('/api/map', '/api/patch', '/api/heads', '/api/info'), fc.dictionary(fc.constantFrom('tokens', 'patch', 'layers', 'heads', 'mode'), fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String), fc.constant('0-99999999'))), (path, q) => {
      const r = handleApi(c, 'GET', path, new URLSearchParams(q));
      expect(r.status).toBeLessThan(500);
    }), { numRuns: 1500 });
  });
});

describe('viewer server', () => {
  it('binds 127.0.0.1 only and serves the page', async () => {
    const addr = server.server.address();
    expect(typeof addr === 'object' && addr?.address).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    const r = await http('GET', '/');
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/html');
  });
  it('4xx with a message for bad input, and keeps serving', async () => {
    const bad = await http('GET', '/api/map?tokens=999&mode=raw');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).message).toMatch(/tokens contains 999/);
    expect((await http('GET', '/api/map?tokens=11&layers=7')).status).toBe(400);
    expect((await http('GET', '/api/map?tokens=11&heads=5')).status).toBe(400);
    expect((await http('GET', '/api/x')).status).toBe(404);
    expect((await http('DELETE', '/api/map')).status).toBe(405);
    expect((await http('GET', '/api/map?tokens=11', { host: 'evil.example:80' })).status).toBe(403);
    expect((await http('GET', '/api/map?tokens=11')).status).toBe(200);
  });
  it('uploads: a corrupt capture → 400 FormatError and the old capture stays; a valid one replaces it', async () => {
    const before = server.capture;
    const good = encodeCapture(cap(9));
    const corrupt = good.slice(0, good.length - 5);
    const r = await http('POST', '/api/capture', { body: corrupt });
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toBe('FormatError');
    expect(server.capture).toBe(before);
    const junk = await http('POST', '/api/capture', { body: new Uint8Array([1, 2, 3]) });
    expect(junk.status).toBe(400);
    const ok = await http('POST', '/api/capture', { body: good });
    expect(ok.status).toBe(200);
    expect(server.capture).not.toBe(before);
    const m = JSON.parse((await http('GET', '/api/map?tokens=10')).body);
    expect(m.values).toEqual(Array.from(tokenMap(server.capture, [10]).values));
  });
  it('oversize uploads get a 413 answer, with or without Content-Length (chunked ones once got a connection reset)', async () => {
    const small = await startViewerServer(cap(1), { html: HTML, maxUploadBytes: 100_000 });
    try {
      const big = new Uint8Array(300_000).fill(7);
      for (const chunked of [false, true]) {
        const r = await http('POST', '/api/capture', { body: big, chunked, port: small.port });
        expect(r.status, chunked ? 'chunked' : 'Content-Length').toBe(413);
        expect(JSON.parse(r.body).argument).toBe('body');
      }
      // Still serving.
      expect((await http('GET', '/api/info', { port: small.port })).status).toBe(200);
    } finally {
      await small.close();
    }
  });
  it('uploads from another origin are refused (403), the page\'s own origin is accepted', async () => {
    const before = server.capture;
    const good = encodeCapture(cap(5));
    const text = { 'Content-Type': 'text/plain' };
    for (const headers of [{ ...text, Origin: 'http://evil.example' }, { ...text, Origin: 'null' }, { ...text, 'Sec-Fetch-Site': 'cross-site' }]) {
      const r = await http('POST', '/api/capture', { body: good, headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(server.capture).toBe(before);
    }
    const own = await http('POST', '/api/capture', { body: good, headers: { Origin: `http://127.0.0.1:${server.port}`, 'Sec-Fetch-Site': 'same-origin' } });
    expect(own.status).toBe(200);
    expect(server.capture).not.toBe(before);
  });
  it('fuzz: random paths, queries and upload bodies never crash the server', async () => {
    const base = encodeCapture(cap(2));
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 40 }), fc.nat({ max: base.length }), fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), async (s, cut, flips) => {
      const r = await http('GET', `/api/map?tokens=${encodeURIComponent(s)}&layers=${encodeURIComponent(s)}`);
      expect(r.status).toBeLessThan(500);
      const b = base.slice(0, cut || base.length);
      for (const [i, v] of flips) if (i < b.length) b[i] = v;
      const u = await http('POST', '/api/capture', { body: b });
      expect(u.status).toBeLessThan(500);
    }), { numRuns: 150 });
    expect((await http('GET', '/api/info')).status).toBe(200);
  });
});
