/**
 * RedisFeatureStore against a real redis-server (the Debian package), started here on a free port
 * with a temporary directory and stopped afterwards. Under CI=true a missing or unstartable
 * redis-server fails these tests instead of skipping them.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { VisionFeatureCache, randn } from '../../../src/index.js';
import { RedisFeatureStore } from '../../../src/kvcache/redis-store.js';

const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
const CI = process.env.CI === 'true';
const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => { c.end(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`redis-server did not accept connections on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class RedisServer {
  proc: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'vlm-redis-'));
  constructor(readonly port: number) {}
  async start(): Promise<void> {
    if (!REDIS) throw new Error('redis-server not found (install the redis-server package)');
    this.proc = spawn(REDIS, ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    await waitForPort(this.port, 10_000);
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGTERM'); });
    this.proc = null;
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const available = !!REDIS || CI;

describe.skipIf(!available)('RedisFeatureStore with a real redis-server', () => {
  let server: RedisServer;
  let childBundle: string;
  const bundleDir = mkdtempSync(join(tmpdir(), 'vlm-redis-child-'));

  beforeAll(async () => {
    server = new RedisServer(await freePort());
    await server.start();
    childBundle = join(bundleDir, 'child.cjs');
    await build({ entryPoints: [fileURLToPath(new URL('./fixtures/feature-child.ts', import.meta.url))], bundle: true, platform: 'node', format: 'cjs', outfile: childBundle, logLevel: 'error' });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    server?.cleanup();
    rmSync(bundleDir, { recursive: true, force: true });
  });

  it('stores and loads tensors (f32 and f16) under a key prefix, with TTL', async () => {
    const store = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:a:', ttlSeconds: 60 });
    try {
      const t = randn([5, 7], 1), h = randn([3], 2, 'f16');
      await store.set('x', t);
      await store.set('h', h);
      expect(Array.from((await store.get('x'))!.data)).toEqual(Array.from(t.data));
      const h2 = (await store.get('h'))!;
      expect(h2.dtype).toBe('f16');
      expect(Array.from(h2.data)).toEqual(Array.from(h.data));
      expect(await store.get('missing')).toBeUndefined();
      const ttl = await store.client.ttl('test:a:x');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60);
      await store.delete('x');
      expect(await store.get('x')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('close() stays closed: a command under way or after it does not reconnect (the process can exit)', async () => {
    const store = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:close:' });
    const warnings: string[] = [];
    const cache = new VisionFeatureCache({ store, onWarning: (m) => warnings.push(m) });
    await cache.getOrCompute('warm', () => randn([2], 1)); // connected
    // A computation still running when the store closes: its store write must not open a new connection.
    const pending = cache.getOrCompute('slow', () => new Promise((r) => setTimeout(() => r(randn([2], 2)), 200)));
    await store.close();
    expect((await pending).shape).toEqual([2]);
    await expect(store.get('warm')).rejects.toThrow(expect.objectContaining({ name: 'StateError' }));
    await expect(store.set('x', randn([2], 3))).rejects.toThrow(/closed/);
    await new Promise((r) => setTimeout(r, 100));
    expect(store.client.status).toBe('end');
    await store.close(); // idempotent
    const check = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:close:' });
    try {
      expect(await check.get('slow')).toBeUndefined(); // written after close: it must not be
    } finally {
      await check.close();
    }
  });

  it('values over maxEntryBytes are not written (each would cost every reader a timeout); options are checked', async () => {
    const store = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:big:', maxEntryBytes: 1000 });
    try {
      await store.set('small', randn([10], 1));
      await store.set('big', randn([1000], 2));
      expect(await store.get('small')).toBeDefined();
      expect(await store.get('big')).toBeUndefined();
    } finally {
      await store.close();
    }
    expect(() => new RedisFeatureStore({ port: server.port, ttlSecond: 5 } as never)).toThrow(/did you mean 'ttlSeconds'/);
    expect(() => new RedisFeatureStore({ maxEntryBytes: -1 })).toThrow(expect.objectContaining({ argument: 'maxEntryBytes' }));
  });

  it('a given client is used as its owner set it up: commands while it is still connecting, no listener added', async () => {
    const client = new Redis({ port: server.port }); // connects at once, with an offline queue (ioredis's defaults)
    const listeners = client.listenerCount('error');
    const store = new RedisFeatureStore({ client, keyPrefix: 'test:given:' });
    try {
      expect(client.status).not.toBe('ready'); // still connecting: the first command queues rather than failing
      const t = randn([4, 3], 9);
      await store.set('x', t);
      expect(Array.from((await store.get('x'))!.data)).toEqual(Array.from(t.data));
      expect(client.listenerCount('error')).toBe(listeners);
    } finally {
      await store.close();
    }
  });

  it('commands issued together on a new store all wait for its one connect (none fails as an outage)', async () => {
    const store = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:concurrent:' });
    try {
      const cache = new VisionFeatureCache({ store });
      const ts = [0, 1, 2, 3].map((i) => randn([3, 2], 40 + i));
      await Promise.all(ts.map((t, i) => cache.getOrCompute(`img${i}`, () => t)));
      expect(cache.stats()).toMatchObject({ storeErrors: 0, computes: 4 });
      expect(await store.client.exists('test:concurrent:img0', 'test:concurrent:img1', 'test:concurrent:img2', 'test:concurrent:img3')).toBe(4);
      const fresh = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:concurrent:' });
      try {
        const got = await Promise.all([0, 1, 2, 3].map((i) => fresh.get(`img${i}`)));
        got.forEach((g, i) => expect(Array.from(g!.data)).toEqual(Array.from(ts[i]!.data)));
      } finally {
        await fresh.close();
      }
    } finally {
      await store.close();
    }
  });

  it('two clients share entries: the second cache hits without computing', async () => {
    const s1 = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:b:' }), s2 = new RedisFeatureStore({ port: server.port, keyPrefix: 'test:b:' });
    try {
      const c1 = new VisionFeatureCache({ store: s1 }), c2 = new VisionFeatureCache({ store: s2 });
      const t = await c1.getOrCompute('img', () => randn([8, 4], 3));
      let computed = false;
      const u = await c2.getOrCompute('img', () => { computed = true; return randn([8, 4], 4); });
      expect(computed).toBe(false);
      expect(Array.from(u.data)).toEqual(Array.from(t.data));
      expect(c2.stats()).toMatchObject({ storeHits: 1, computes: 0 });
    } finally {
      await s1.close();
      await s2.close();
    }
  });

  it('two processes share entries: the first computes, the second reads it from Redis', async () => {
    const child = async (seed: number) => JSON.parse((await run(process.execPath, [childBundle, String(server.port), 'shared-image-key', String(seed)], { timeout: 30_000 })).stdout);
    const a = await child(11);
    const b = await child(22); // a different seed: computing would give different features
    expect(a.computed).toBe(true);
    expect(b.computed).toBe(false);
    expect(b.checksum).toBe(a.checksum);
    expect(b.stats.storeHits).toBe(1);
    expect(a.warnings).toEqual([]);
  }, 60_000);

  it('Redis down: no crash, a warning, values computed, in-memory entries kept; back up: shared again', async () => {
    const port = await freePort();
    const own = new RedisServer(port);
    await own.start();
    const store = new RedisFeatureStore({ port, keyPrefix: 'test:c:', commandTimeoutMs: 500, connectTimeoutMs: 500 });
    const warnings: string[] = [];
    const cache = new VisionFeatureCache({ store, onWarning: (m) => warnings.push(m) });
    try {
      const kept = await cache.getOrCompute('kept', () => randn([4], 1));
      await own.stop();
      const t0 = Date.now();
      expect(await cache.getOrCompute('kept', () => randn([4], 2))).toBe(kept);
      const fresh = await cache.getOrCompute('fresh', () => randn([4], 3));
      const fresh2 = await cache.getOrCompute('fresh2', () => randn([4], 4));
      expect(Date.now() - t0).toBeLessThan(5_000); // fails fast, does not hang on the dead server
      expect(fresh.shape).toEqual([4]);
      expect(fresh2.shape).toEqual([4]);
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toMatch(/feature store 'redis'/);
      expect(cache.stats()).toMatchObject({ entries: 3, computes: 3 });
      expect(cache.stats().storeErrors).toBeGreaterThan(0);
      // Redis comes back on the same port: the client reconnects and the store is used again.
      await own.start();
      for (let i = 0; i < 100 && store.client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
      expect(store.client.status).toBe('ready');
      await cache.getOrCompute('after', () => randn([4], 5));
      const other = new RedisFeatureStore({ port, keyPrefix: 'test:c:' });
      expect(await other.get('after')).toBeDefined();
      await other.close();
    } finally {
      await store.close();
      await own.stop();
      own.cleanup();
    }
  }, 60_000);

  it('a store pointed at a port where nothing listens never throws to the caller', async () => {
    const store = new RedisFeatureStore({ port: await freePort(), connectTimeoutMs: 300, commandTimeoutMs: 300 });
    const warnings: string[] = [];
    const cache = new VisionFeatureCache({ store, onWarning: (m) => warnings.push(m) });
    try {
      const t = await cache.getOrCompute('k', () => randn([2], 1));
      expect(t.shape).toEqual([2]);
      expect(warnings.length).toBe(1);
      expect(await cache.getOrCompute('k', () => randn([2], 2))).toBe(t);
    } finally {
      await store.close();
    }
  });
});

it('redis-server is available (required under CI=true)', () => {
  if (CI) expect(REDIS, 'redis-server must be installed in CI').toBeDefined();
  else if (!REDIS) console.warn('redis-server not installed: Redis tests skipped (they fail under CI=true)');
});
