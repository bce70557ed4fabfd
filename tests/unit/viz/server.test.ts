import { request } from 'node:http';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ndarrayFromValues } from '../../../src/io/npy.js';
import { handleApi } from '../../../src/viz/api.js';
import { type Capture, encodeCapture, makeCapture } from '../../../src/viz/capture-file.js';
import { patchMap, tokenMap } from '../../../src/viz/maps.js';
import { isOwnHost, startViewerServer, type ViewerServer } from '../../../src/viz/server.js';
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

function http(method: string, path: string, opts: { body?: Uint8Array; host?: string; headers?: Record<string, string>; chunked?: boolean; port?: number } = {}): Promise<{ status: number; body: string; type: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const length = opts.body && !opts.chunked ? { 'Content-Length': opts.body.length } : {};
    const req = request({ host: '127.0.0.1', port: opts.port ?? server.port, method, path, headers: { ...(opts.host ? { Host: opts.host } : {}), ...length, ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8'), type: String(res.headers['content-type']), headers: res.headers }));
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

/** The capture's PNG with one byte of its IDAT data changed; `fixCrc` recomputes the chunk's CRC (then the zlib stream is what is wrong). */
function corruptIdat(png: Uint8Array, fixCrc: boolean): Uint8Array {
  const out = png.slice();
  const dv = new DataView(out.buffer);
  let at = 8;
  while (String.fromCharCode(...out.subarray(at + 4, at + 8)) !== 'IDAT') at += 12 + dv.getUint32(at);
  const len = dv.getUint32(at);
  out[at + 8 + Math.floor(len / 2)] ^= 0x5a;
  if (fixCrc) dv.setUint32(at + 8 + len, crc32(out.subarray(at + 4, at + 8 + len)));
  return out;
}

describe('viewer API: tokens, methods, head scores', () => {
  const c = cap(3);
  const get = (path: string, q: Record<string, string> = {}, method = 'GET') => {
    const r = handleApi(c, method, path, new URLSearchParams(q));
    return { status: r.status, headers: r.headers ?? {}, body: typeof r.body === 'string' && r.body ? JSON.parse(r.body) : r.body };
  };

  it("tokens: missing, 'all' and malformed lists get one form of message; a repeated token is refused as a repeated layer is", () => {
    const form = /comma-separated sequence positions and a-b ranges/;
    for (const q of [{}, { tokens: '' }, { tokens: 'all' }, { tokens: 'x' }, { tokens: '10;11' }] as Record<string, string>[]) {
      const r = get('/api/map', q);
      expect(r.status, JSON.stringify(q)).toBe(400);
      expect(r.body).toMatchObject({ error: 'ShapeError', argument: 'tokens', dimension: 'seqLen' });
      expect(r.body.message, JSON.stringify(q)).toMatch(form);
      // 'all' is not offered (the shared parser's message offered it, then the handler refused it).
      expect(r.body.message).not.toMatch(/'all' or/);
    }
    // 198,202,202 was accepted and counted twice in raw, rollout and flow; layers 0,0 was refused.
    for (const tokens of ['10,11,11', '10-11,11']) {
      for (const mode of ['raw', 'rollout', 'flow']) {
        const r = get('/api/map', { tokens, mode });
        expect(r.status, `${tokens} ${mode}`).toBe(400);
        expect(r.body).toMatchObject({ error: 'ShapeError', argument: 'tokens' });
        expect(r.body.message).toMatch(/tokens contains 11 twice/);
      }
    }
    expect(get('/api/map', { tokens: '11', layers: '0,0' }).body.message).toMatch(/layers contains 0 twice/);
    expect(get('/api/map', { tokens: '10-11' }).status).toBe(200);
  });

  it('405 names the allowed methods (Allow); HEAD is refused where it would compute a whole map', () => {
    for (const [method, path, allow] of [['POST', '/api/map', 'GET'], ['DELETE', '/api/info', 'GET, HEAD'], ['HEAD', '/api/map', 'GET'], ['HEAD', '/api/patch', 'GET'], ['PUT', '/api/image', 'GET, HEAD']] as const) {
      const r = get(path, { tokens: '11', patch: '4' }, method);
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.Allow).toBe(allow);
      expect(r.body.message).toContain(allow);
    }
    expect(get('/api/info', {}, 'HEAD').status).toBe(200);
    expect(get('/api/heads', {}, 'HEAD').status).toBe(200);
  });

  it('head scores stay finite for a capture of huge but finite attention values (they overflowed float32 to Infinity, sent as null)', () => {
    const huge = makeCapture({
      tokens: ['<bos>', ...Array.from({ length: 9 }, (_, i) => `<img ${i}>`), 'big', 'dog'], grid: [3, 3], imageSpan: [1, 10],
      // Entries up to ~3.4e38 (finite, so valid): nine patches of them sum past float32's range.
      attention: [0, 1].map((l) => ndarrayFromValues(Float32Array.from(randomAttention(2, N, N, 20 + l), (v) => Math.min(3.4e38, (0.5 + v) * 3e38)), [2, N, N])),
    });
    const r = handleApi(huge, 'GET', '/api/heads', new URLSearchParams());
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body as string);
    expect(body.scores.length).toBe(4);
    for (const v of body.scores) { expect(typeof v).toBe('number'); expect(Number.isFinite(v)).toBe(true); expect(v).toBeGreaterThan(3.5e38); }
    // The maps of such a capture stay finite too.
    const m = JSON.parse(handleApi(huge, 'GET', '/api/map', new URLSearchParams({ tokens: '11' })).body as string);
    expect(m.values.every((v: unknown) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
  });
});

describe('viewer server: generations, hosts, methods, limits', () => {
  it('every answer names its capture generation; a request for a replaced capture gets 409 instead of the new capture\'s numbers', async () => {
    const s = await startViewerServer(cap(1), { html: HTML });
    try {
      // Opaque: <server id>-<count>, the count 1 for the capture started with.
      expect(s.generation).toMatch(/^[0-9a-f]{8}-1$/);
      const g1 = s.generation, id = g1.slice(0, -2);
      const info = await http('GET', '/api/info', { port: s.port });
      expect(JSON.parse(info.body).generation).toBe(g1);
      expect(info.headers['x-capture-generation']).toBe(g1);
      const mine = { 'X-Capture-Generation': g1 };
      expect((await http('GET', '/api/map?tokens=11', { port: s.port, headers: mine })).status).toBe(200);
      // Another tab uploads a capture: the count goes up, the server's id stays.
      const up = await http('POST', '/api/capture', { port: s.port, body: encodeCapture(cap(7)) });
      expect(up.status).toBe(200);
      const g2 = `${id}-2`;
      expect(JSON.parse(up.body).generation).toBe(g2);
      expect(s.generation).toBe(g2);
      for (const path of ['/api/map?tokens=11', '/api/patch?patch=4', '/api/heads', '/api/image']) {
        const stale = await http('GET', path, { port: s.port, headers: mine });
        expect(stale.status, path).toBe(409);
        expect(JSON.parse(stale.body)).toMatchObject({ error: 'CaptureChanged', generation: g2 });
        expect(stale.headers['x-capture-generation']).toBe(g2);
      }
      // An unknown path is 404 whatever capture it names; the favicon's 204 names the capture too.
      expect((await http('GET', '/api/nope', { port: s.port, headers: mine })).status).toBe(404);
      const icon = await http('GET', '/favicon.ico', { port: s.port });
      expect(icon.status).toBe(204);
      expect(icon.headers['x-capture-generation']).toBe(g2);
      // The current generation, or none (curl, scripts), is answered.
      expect((await http('GET', '/api/map?tokens=11', { port: s.port, headers: { 'X-Capture-Generation': g2 } })).status).toBe(200);
      expect((await http('GET', '/api/map?tokens=11', { port: s.port })).headers['x-capture-generation']).toBe(g2);
      // A refused upload changes nothing.
      const bad = await http('POST', '/api/capture', { port: s.port, body: new Uint8Array([1, 2, 3]) });
      expect(bad.status).toBe(400);
      expect(bad.headers['x-capture-generation']).toBe(g2);
      expect(s.generation).toBe(g2);
    } finally {
      await s.close();
    }
  });

  it('a server restarted on the same port does not reuse the generations of the one before (an old tab gets 409, not the new capture)', async () => {
    const a = await startViewerServer(cap(1), { html: HTML });
    const old = a.generation, port = a.port;
    await a.close();
    const b = await startViewerServer(cap(7), { html: HTML, port });
    try {
      expect(b.generation).not.toBe(old);
      expect(b.generation.endsWith('-1')).toBe(true);
      const stale = await http('GET', '/api/map?tokens=11', { port, headers: { 'X-Capture-Generation': old } });
      expect(stale.status).toBe(409);
      expect(JSON.parse(stale.body).generation).toBe(b.generation);
    } finally {
      await b.close();
    }
  });

  it('an upload whose image has a corrupt IDAT (CRC or zlib) is refused with 400 and the old capture stays', async () => {
    const good = cap(2);
    const s = await startViewerServer(good, { html: HTML });
    try {
      for (const fixCrc of [false, true]) {
        const broken = { ...cap(5), imagePng: corruptIdat(good.imagePng!, fixCrc) };
        // encodeCapture does not validate: the bytes are what a damaged file would hold.
        const r = await http('POST', '/api/capture', { port: s.port, body: encodeCapture(broken) });
        expect(r.status, fixCrc ? 'zlib' : 'crc').toBe(400);
        expect(JSON.parse(r.body).error).toBe('FormatError');
        expect(JSON.parse(r.body).message).toMatch(fixCrc ? /image\.png.*(corrupt|truncated|checksum)/ : /image\.png.*CRC mismatch in IDAT/);
        expect(s.capture).toBe(good);
        expect(s.generation).toMatch(/-1$/);
      }
      expect((await http('GET', '/api/image', { port: s.port })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('Host: without a port only on port 80 (where clients leave it out); other hosts stay refused', async () => {
    for (const h of ['127.0.0.1:80', 'localhost:80', '127.0.0.1', 'LOCALHOST']) expect(isOwnHost(h, 80), h).toBe(true);
    for (const h of ['evil.example', 'evil.example:80', '127.0.0.1:8080', '127.0.0.2', '', undefined]) expect(isOwnHost(h, 80), String(h)).toBe(false);
    expect(isOwnHost('127.0.0.1', 8080)).toBe(false);
    expect(isOwnHost('localhost:8080', 8080)).toBe(true);
    expect((await http('GET', '/api/info', { host: '127.0.0.1' })).status).toBe(403); // this server is not on port 80
    // On port 80 itself, where this process may bind it (root, or the port free).
    let s80: ViewerServer | null = null;
    try { s80 = await startViewerServer(cap(1), { html: HTML, port: 80 }); } catch (e) { expect(['EACCES', 'EADDRINUSE']).toContain((e as NodeJS.ErrnoException).code); }
    if (s80) {
      try {
        expect((await http('GET', '/api/info', { port: 80, host: '127.0.0.1' })).status).toBe(200);
        expect((await http('GET', '/api/info', { port: 80, host: 'localhost' })).status).toBe(200);
        expect((await http('GET', '/api/info', { port: 80, host: 'evil.example' })).status).toBe(403);
        const own = await http('POST', '/api/capture', { port: 80, host: '127.0.0.1', body: encodeCapture(cap(4)), headers: { Origin: 'http://127.0.0.1' } });
        expect(own.status).toBe(200);
      } finally {
        await s80.close();
      }
    }
  });

  it('405 with Allow (GET /api/capture was a 404), 431 for an over-long URL, //api/info is /api/info, HEAD /api/map computes nothing', async () => {
    const get = await http('GET', '/api/capture');
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const del = await http('DELETE', '/api/map');
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe('GET');
    const root = await http('POST', '/');
    expect(root.status).toBe(405);
    expect(root.headers.allow).toBe('GET, HEAD');
    const long = await http('GET', `/api/map?tokens=${'11,'.repeat(12_000)}11`);
    expect(long.status).toBe(431);
    expect(JSON.parse(long.body).message).toMatch(/shorten the URL/);
    const slashes = await http('GET', '//api/info');
    expect(slashes.status).toBe(200);
    expect(JSON.parse(slashes.body).info.seqLen).toBe(N);
    expect((await http('GET', '///api//map?tokens=11')).status).toBe(200);
    const head = await http('HEAD', '/api/map?tokens=11&mode=flow');
    expect(head.status).toBe(405);
    expect(head.headers.allow).toBe('GET');
    expect(head.body).toBe('');
    // Still serving.
    expect((await http('GET', '/api/info')).status).toBe(200);
  });
});
