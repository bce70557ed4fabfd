/**
 * Redis-backed FeatureStore (Node only; exported from `vlm-attention/node`): lets several processes
 * or machines share vision-encoder outputs. Values use the tensor wire format of feature-cache.ts
 * under `keyPrefix + key`, optionally with a TTL. Bounding the shared level in bytes is Redis's job:
 * run it with `maxmemory <bytes>` and `maxmemory-policy allkeys-lru`.
 *
 * Failure behaviour: commands fail fast instead of queueing while Redis is unreachable
 * (`enableOfflineQueue: false`, one connect attempt per call while down, `commandTimeoutMs`), and
 * ioredis keeps reconnecting in the background. The errors reach `VisionFeatureCache`, which warns
 * and computes locally; they never reach its caller.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Tensor } from '../tensor/tensor.js';
import { type FeatureStore, decodeTensor, encodeTensor } from './feature-cache.js';
import { StateError, ValueError, checkOptionKeys, optionNames } from '../errors.js';

/** Options of `RedisFeatureStore`: where Redis is (url, host/port or an existing client), key prefix, TTL and timeouts. */
export interface RedisFeatureStoreOptions {
  /** redis://[user:password@]host:port[/db]; or host/port. Default redis://127.0.0.1:6379. */
  url?: string;
  /** Redis host when no url is given; default '127.0.0.1'. */
  host?: string;
  /** Redis port when no url is given; default 6379. */
  port?: number;
  /** Prefix of every key; default 'vlm-attention:features:'. */
  keyPrefix?: string;
  /** Expire entries after this many seconds (default: no expiry, rely on maxmemory-policy). */
  ttlSeconds?: number;
  /** Per-command timeout (default 1000 ms). */
  commandTimeoutMs?: number;
  /** Connection timeout (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Use an existing ioredis client instead (its options are left as they are). */
  client?: Redis;
  /**
   * Values larger than this many bytes (encoded) are not written (default 64 MiB): one that cannot come back
   * within commandTimeoutMs would cost every process a timeout, a warning and a recompute at each request.
   */
  maxEntryBytes?: number;
}

const REDIS_OPTION_KEYS = optionNames<RedisFeatureStoreOptions>({ url: true, host: true, port: true, keyPrefix: true, ttlSeconds: true, commandTimeoutMs: true, connectTimeoutMs: true, client: true, maxEntryBytes: true });

/**
 * A FeatureStore in Redis (Node only, from `vlm-attention/node`; ioredis), so several processes or
 * machines share vision-encoder outputs. Tensors are stored in `encodeTensor`'s format under
 * keyPrefix + key, optionally with a TTL; bound it in bytes with Redis's `maxmemory` and
 * `maxmemory-policy allkeys-lru`. Built from options (not `client`), it connects on the first command;
 * while Redis is down its commands fail fast (no offline queue) and the client reconnects in the
 * background. Use it as a VisionFeatureCache's `store`, which turns those failures into one warning
 * per outage.
 */
export class RedisFeatureStore implements FeatureStore {
  /** 'redis', for the cache's warnings. */
  readonly name = 'redis';
  /** The ioredis client: the one given in the options, or one created from them. */
  readonly client: Redis;
  /** Prefix of every Redis key; default 'vlm-attention:features:'. */
  readonly keyPrefix: string;
  private readonly ttlSeconds: number | undefined;
  /** Encoded values larger than this are not written (RedisFeatureStoreOptions.maxEntryBytes). */
  readonly maxEntryBytes: number;
  private connecting: Promise<void> | null = null;
  private closed = false;

  constructor(opts: RedisFeatureStoreOptions = {}) {
    checkOptionKeys(opts ?? {}, REDIS_OPTION_KEYS, 'RedisFeatureStore');
    this.keyPrefix = opts.keyPrefix ?? 'vlm-attention:features:';
    const maxEntry = opts.maxEntryBytes ?? 64 * 1024 * 1024;
    if (typeof maxEntry !== 'number' || !(maxEntry >= 0) || !Number.isFinite(maxEntry)) throw new ValueError(`maxEntryBytes must be a non-negative number, got ${String(maxEntry)}`, 'maxEntryBytes');
    this.maxEntryBytes = maxEntry;
    if (opts.ttlSeconds !== undefined && (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < 1)) {
      throw new ValueError(`ttlSeconds must be a positive integer, got ${opts.ttlSeconds}`, 'ttlSeconds');
    }
    this.ttlSeconds = opts.ttlSeconds;
    this.ownClient = !opts.client;
    if (opts.client) {
      this.client = opts.client;
    } else {
      const common: RedisOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: opts.connectTimeoutMs ?? 1000,
        commandTimeout: opts.commandTimeoutMs ?? 1000,
        // Keep retrying in the background (capped backoff) so the store recovers when Redis returns.
        retryStrategy: (times) => Math.min(100 * times, 2000),
      };
      this.client = opts.url ? new Redis(opts.url, common) : new Redis({ ...common, host: opts.host ?? '127.0.0.1', port: opts.port ?? 6379 });
      // An 'error' event without a listener is reported by ioredis on stderr at every retry; the cache reports outages
      // itself. Only on a client made here: a given one's error reporting stays its owner's.
      this.client.on('error', () => undefined);
    }
  }

  /** Whether the client was made from the options (a given one is used as its owner set it up). */
  private readonly ownClient: boolean;

  private async ready(): Promise<void> {
    // Closed stays closed: a command after close() (or one that was waiting when it ran) must not reconnect, or
    // the socket it opens keeps the process alive.
    if (this.closed) throw new StateError('the Redis feature store was closed');
    // A given client connects, queues and retries by its own options.
    if (!this.ownClient) return;
    const st = this.client.status;
    if (st === 'ready') return;
    // A connect this store started is still under way ('connecting', 'connect'): wait for it with the first caller,
    // rather than failing every command issued meanwhile as an outage.
    if (this.connecting) { await this.connecting; return; }
    if (st === 'wait' || st === 'end' || st === 'close') {
      this.connecting ??= this.client.connect().finally(() => { this.connecting = null; });
      await this.connecting;
      return;
    }
    throw new Error(`Redis is not connected (status '${st}')`);
  }

  /** The tensor under keyPrefix + key, or undefined. Rejects while Redis is unreachable, and with FormatError on an entry not in the wire format. */
  async get(key: string): Promise<Tensor | undefined> {
    await this.ready();
    const buf = await this.client.getBuffer(this.keyPrefix + key);
    return buf ? decodeTensor(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), `redis key ${this.keyPrefix + key}`) : undefined;
  }

  /** Stores the tensor under keyPrefix + key (expiring after ttlSeconds when set). Rejects while Redis is unreachable. */
  async set(key: string, value: Tensor): Promise<void> {
    await this.ready();
    const bytes = encodeTensor(value);
    if (bytes.byteLength > this.maxEntryBytes) return;
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (this.ttlSeconds) await this.client.set(this.keyPrefix + key, buf, 'EX', this.ttlSeconds);
    else await this.client.set(this.keyPrefix + key, buf);
  }

  /** Deletes keyPrefix + key. Rejects while Redis is unreachable. */
  async delete(key: string): Promise<void> {
    await this.ready();
    await this.client.del(this.keyPrefix + key);
  }

  /**
   * Closes the connection (QUIT, or a hard disconnect when Redis is unreachable) and the store: later commands,
   * and commands still waiting for a connection, reject with StateError rather than reconnect. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.client.status === 'ready') await this.client.quit();
      else this.client.disconnect();
    } catch {
      this.client.disconnect();
    }
  }
}
