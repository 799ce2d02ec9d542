import { once } from 'node:events';
import type { RedisCacheConfig } from '@angos/config';
import type { Logger } from '@angos/observability';
import type { Redis } from 'ioredis';
import type { AuthCache } from './types.js';

/** A cache lookup waits at most this long: authentication must not hang on a slow Redis. */
export const REDIS_COMMAND_TIMEOUT_MS = 1000;

/** How long the first commands wait for the initial connection. */
const FIRST_CONNECT_WAIT_MS = 500;

/** Connection failures repeat on every retry; log them at most this often. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * `[cache.redis]`: shared between replicas. Commands are not queued while disconnected and time
 * out quickly, so an unreachable Redis costs a miss, not a stalled request.
 */
export class RedisCache implements AuthCache {
  /**
   * ioredis costs ~21 MiB of RSS: imported when a RedisCache is created (only `[cache.redis]`
   * creates one), not with this module, which every process loads.
   */
  private readonly client: Promise<Redis>;
  private lastErrorLog = 0;

  constructor(
    config: RedisCacheConfig,
    private readonly logger: Logger,
  ) {
    this.client = import('ioredis').then(({ Redis }) => {
      const client = new Redis(config.url, {
        keyPrefix: config.key_prefix ?? '',
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
        connectTimeout: 5000,
        lazyConnect: false,
        retryStrategy: (attempt) => Math.min(attempt * 200, 5000),
      });
      client.on('error', (error: Error) => this.report('redis cache connection error', error));
      return client;
    });
  }

  /**
   * The client, when it can take commands. Commands are not queued while disconnected, so the
   * first ones after startup would miss while the connection is still being set up: those wait
   * for it, briefly. During a reconnect they miss (undefined).
   */
  private async connected(): Promise<Redis | undefined> {
    const client = await this.client;
    const status = client.status;
    if (status === 'ready') return client;
    if (status !== 'connecting' && status !== 'connect' && status !== 'wait') return undefined;
    try {
      await once(client, 'ready', { signal: AbortSignal.timeout(FIRST_CONNECT_WAIT_MS) });
      return client;
    } catch {
      return undefined;
    }
  }

  async get(key: string): Promise<string | undefined> {
    const client = await this.connected();
    if (client === undefined) return undefined;
    try {
      return (await client.get(key)) ?? undefined;
    } catch (error) {
      this.report('redis cache read failed', error);
      return undefined;
    }
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    const client = await this.connected();
    if (client === undefined) return;
    try {
      await client.set(key, value, 'EX', Math.max(1, Math.ceil(ttlSeconds)));
    } catch (error) {
      this.report('redis cache write failed', error);
    }
  }

  async close(): Promise<void> {
    const client = await this.client;
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  }

  private report(message: string, error: unknown): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLog = now;
    this.logger.warn(message, { error });
  }
}
