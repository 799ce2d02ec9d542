import { type Logger, silentLogger } from '@angos/observability';
import { Redis } from 'ioredis';
import { exponentialBackoff } from '../delays.js';
import { DistributedLockManager } from '../distributed.js';
import type { AcquireContext, KeyLockDriver, RenewOutcome } from '../driver.js';
import { RELEASE_SCRIPT, RENEW_SCRIPT } from './scripts.js';

/** `[metadata_store.<backend>.lock_strategy.redis]`, in the units the reference gives. */
export interface RedisLockOptions {
  readonly url: string;
  /** `ttl`: seconds a lock lives without renewal; renewed every ttl / 3. */
  readonly ttlSecs: number;
  /** `key_prefix`: lock keys are `<key_prefix>:<key>`. */
  readonly keyPrefix?: string | undefined;
  /** `max_retries` (default 100). */
  readonly maxRetries?: number | undefined;
  /** `retry_delay_ms` (default 10): the first retry delay, doubled per retry up to 1 s, plus jitter. */
  readonly retryDelayMs?: number | undefined;
  readonly logger?: Logger | undefined;
}

interface RedisHeld {
  readonly key: string;
  readonly redisKey: string;
  readonly token: string;
}

class RedisKeyDriver implements KeyLockDriver<RedisHeld> {
  readonly backend = 'redis';
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #logger: Logger;

  constructor(options: RedisLockOptions, heartbeatMs: number, logger: Logger) {
    this.#logger = logger;
    this.#prefix = options.keyPrefix ? `${options.keyPrefix}:` : '';
    this.#ttlMs = options.ttlSecs * 1000;
    this.#client = new Redis(options.url, {
      // Fail a command instead of queueing it for long while Redis is away: the heartbeat
      // counts the failure against its budget, an acquisition reports an error.
      maxRetriesPerRequest: 1,
      commandTimeout: Math.max(1000, heartbeatMs),
      connectTimeout: 5000,
    });
    let reported: string | undefined;
    this.#client.on('error', (error: Error) => {
      if (error.message === reported) return;
      reported = error.message;
      logger.warn('redis lock connection error', { error: error.message });
    });
    this.#client.on('ready', () => {
      reported = undefined;
    });
  }

  async tryAcquire(key: string, token: string, _context: AcquireContext): Promise<RedisHeld | undefined> {
    const redisKey = this.#prefix + key;
    try {
      const set = await this.#client.set(redisKey, token, 'PX', this.#ttlMs, 'NX');
      return set === 'OK' ? { key, redisKey, token } : undefined;
    } catch (error) {
      // A SET that timed out on our side may still run on the server. Redis runs one
      // connection's commands in order, so this compare-and-delete runs after it if it does.
      await this.release([{ key, redisKey, token }]).catch((cleanup: unknown) => {
        // Redis is likely away; the key (if the SET ran) expires after its TTL anyway.
        this.#logger.debug('could not remove the lock key of a failed SET; it lapses after its TTL', {
          key,
          error: String(cleanup),
        });
      });
      throw error;
    }
  }

  async renew(held: readonly RedisHeld[]): Promise<RenewOutcome> {
    if (held.length === 0) return { kind: 'renewed' };
    const lost = (await this.#client.eval(
      RENEW_SCRIPT,
      held.length,
      ...held.map((h) => h.redisKey),
      held[0]!.token,
      this.#ttlMs,
    )) as string[];
    const first = held.find((h) => lost.includes(h.redisKey));
    return first ? { kind: 'lost', reason: 'ownership_lost', key: first.key } : { kind: 'renewed' };
  }

  async release(held: readonly RedisHeld[]): Promise<void> {
    await this.#client.eval(RELEASE_SCRIPT, held.length, ...held.map((h) => h.redisKey), held[0]!.token);
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}

/**
 * Locks in Redis: `SET key token NX PX ttl` with a token unique to each `withLocks` call,
 * renewed every ttl / 3 and released by Lua compare-and-pexpire / compare-and-delete, so an
 * owner never touches a lock that expired under it and went to someone else. A holder that
 * dies leaves its keys to expire after `ttl`.
 */
export class RedisLockManager extends DistributedLockManager<RedisHeld> {
  constructor(options: RedisLockOptions) {
    const logger = options.logger ?? silentLogger;
    const ttlMs = options.ttlSecs * 1000;
    const heartbeatMs = ttlMs / 3;
    super(
      new RedisKeyDriver(options, heartbeatMs, logger),
      { ttlMs, heartbeatMs },
      {
        maxRetries: options.maxRetries ?? 100,
        retryDelayMs: exponentialBackoff(options.retryDelayMs ?? 10),
        parallelFirstAttempt: false,
      },
      logger,
    );
  }
}
