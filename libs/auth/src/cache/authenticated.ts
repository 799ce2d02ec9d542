import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from '@angos/observability';
import type { AuthCache } from './types.js';

/** Integrity failures repeat for every request that reads the entry; log them at most this often. */
const WARN_INTERVAL_MS = 30_000;

/** Tags the format, so a later one can be told apart from a forgery. */
const VERSION = 'v1';

/** `v1.<key id>.<expires at, ms>.<mac>.<value>`; the value may hold anything, dots included. */
const ENTRY = /^v1\.([0-9a-f]{16})\.(\d{1,15})\.([A-Za-z0-9_-]{43})\.(.*)$/s;

/**
 * Every entry carries an HMAC-SHA256, keyed by `[cache.redis] hmac_key`, over the cache key, its
 * expiry and its value: stored as `v1.<key id>.<expires at, ms>.<mac>.<value>`. Anyone who can
 * write to Redis could otherwise plant signing keys (and mint accepted OIDC tokens) or `allow`
 * decisions. Binding the cache key stops a genuine entry from being copied under another key (an
 * `allow` for one request replayed for another); binding the expiry stops one from being written
 * back after its TTL. An entry that fails the check is a miss, so the caller fetches again, and
 * is logged. The key id, a fingerprint of the secret, tells an entry written with another key
 * (replicas part-way through a key change) from a forgery in the log; either way it is a miss.
 */
export class AuthenticatedCache implements AuthCache {
  private readonly keyId: string;
  private lastWarning = Number.NEGATIVE_INFINITY;
  private unreported = 0;

  constructor(
    private readonly inner: AuthCache,
    private readonly secret: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.keyId = createHash('sha256').update(`angos cache key id\0${secret}`).digest('hex').slice(0, 16);
  }

  async get(key: string): Promise<string | undefined> {
    const stored = await this.inner.get(key);
    if (stored === undefined) return undefined;
    const entry = this.open(key, stored);
    if (typeof entry === 'string') {
      this.reject(key, entry);
      return undefined;
    }
    // The backend's own expiry rounds up to whole seconds: what outlives ours is a plain miss.
    return entry.expiresAt > this.now() ? entry.value : undefined;
  }

  async set(key: string, value: string, ttlSeconds: number): Promise<void> {
    if (!(ttlSeconds > 0)) return;
    const expiresAt = Math.ceil(this.now() + ttlSeconds * 1000);
    const mac = this.mac(key, expiresAt, value);
    await this.inner.set(key, `${VERSION}.${this.keyId}.${expiresAt}.${mac}.${value}`, ttlSeconds);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** The entry's value and expiry, or why it cannot be trusted. */
  private open(key: string, stored: string): { value: string; expiresAt: number } | string {
    const match = ENTRY.exec(stored);
    if (match === null) return 'not an authenticated entry';
    const [, keyId = '', expires = '', mac = '', value = ''] = match;
    if (keyId !== this.keyId) return 'written with another cache.redis.hmac_key';
    const expiresAt = Number(expires);
    const expected = Buffer.from(this.mac(key, expiresAt, value), 'base64url');
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return 'MAC does not match';
    }
    return { value, expiresAt };
  }

  private mac(key: string, expiresAt: number, value: string): string {
    // JSON keeps the fields apart whatever characters they hold.
    return createHmac('sha256', this.secret)
      .update(JSON.stringify(['angos cache entry', VERSION, key, expiresAt, value]))
      .digest('base64url');
  }

  private reject(key: string, reason: string): void {
    this.unreported += 1;
    const now = this.now();
    if (now - this.lastWarning < WARN_INTERVAL_MS) return;
    this.logger.warn('cache entry failed its integrity check, ignored', {
      key,
      reason,
      rejected_since_last_warning: this.unreported,
    });
    this.lastWarning = now;
    this.unreported = 0;
  }
}
