import { createHash } from 'node:crypto';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { AuthCache } from '../cache/types.js';
import { discoverJwksUri } from './discovery.js';
import { DocumentFetchError, type FetchLike, fetchJson } from './fetch-json.js';

/** After a failed fetch, requests fail fast for this long instead of each asking the provider. */
const FAILURE_BACKOFF_MS = 5000;

/** After fetching keys because a token named an unknown one, wait this long before the next such fetch. */
export const DEFAULT_JWKS_COOLDOWN_MS = 30_000;

export interface JwksSourceOptions {
  readonly issuer: string;
  /** Absent: discovered from the issuer's `.well-known/openid-configuration`. */
  readonly jwksUri: string | undefined;
  /** `jwks_refresh_interval`, seconds: how long fetched keys are used before fetching again. */
  readonly refreshSeconds: number;
  /** The token and key cache in force (it may change on a configuration reload). */
  readonly cache: () => AuthCache;
  readonly fetch?: FetchLike;
  readonly cooldownMs?: number;
  readonly now?: () => number;
}

interface Stored {
  readonly fetched_at: number;
  readonly jwks: JSONWebKeySet;
}

interface Loaded {
  readonly fetchedAt: number;
  readonly keys: JWTVerifyGetKey;
}

function parseStored(text: string): Stored | undefined {
  try {
    const value = JSON.parse(text) as Partial<Stored>;
    if (typeof value.fetched_at !== 'number' || !Array.isArray(value.jwks?.keys)) return undefined;
    return value as Stored;
  } catch {
    return undefined;
  }
}

function keySetOf(jwks: unknown, source: string): JWTVerifyGetKey {
  if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as JSONWebKeySet).keys)) {
    throw new DocumentFetchError(`${source} is not a JSON Web Key Set`);
  }
  try {
    return createLocalJWKSet(jwks as JSONWebKeySet);
  } catch (error) {
    throw new DocumentFetchError(`${source} is not a valid JSON Web Key Set: ${(error as Error).message}`);
  }
}

/**
 * The signing keys of one OIDC provider. Keys are kept for `jwks_refresh_interval` in this
 * process and in the token and key cache (so replicas sharing Redis fetch once); a token signed
 * with a key not in the set triggers one early fetch (key rotation), at most once per cooldown so
 * tokens with made-up key ids cannot make us hammer the provider. Concurrent fetches are merged.
 */
export class JwksSource {
  private loaded: Loaded | undefined;
  private inflight: Promise<Loaded> | undefined;
  private lastNetworkFetch = Number.NEGATIVE_INFINITY;
  private lastFailure: { readonly at: number; readonly error: unknown } | undefined;
  private readonly now: () => number;
  private readonly cacheKey: string;

  constructor(private readonly options: JwksSourceOptions) {
    this.now = options.now ?? Date.now;
    const identity = options.jwksUri ?? `discover:${options.issuer}`;
    this.cacheKey = `auth:oidc:jwks:${createHash('sha256').update(identity).digest('hex')}`;
  }

  /**
   * The current key set, fetched when none is held or it is older than the refresh interval. When
   * the provider cannot be reached, keys past their interval are still used: they verified
   * yesterday's tokens and the provider being down must not lock every CI job out.
   */
  async keys(): Promise<JWTVerifyGetKey> {
    const loaded = this.loaded;
    if (loaded !== undefined && !this.expired(loaded.fetchedAt)) return loaded.keys;
    try {
      return (await this.load(false)).keys;
    } catch (error) {
      if (loaded !== undefined) return loaded.keys;
      throw error;
    }
  }

  /**
   * Fetches the keys again after a token named a key the set lacks. Undefined when a fetch
   * happened within the cooldown: the set is as fresh as it may get.
   */
  async refresh(): Promise<JWTVerifyGetKey | undefined> {
    if (this.now() - this.lastNetworkFetch < (this.options.cooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS)) {
      return undefined;
    }
    return (await this.load(true)).keys;
  }

  private expired(fetchedAt: number): boolean {
    return this.now() - fetchedAt >= this.options.refreshSeconds * 1000;
  }

  private load(skipSharedCache: boolean): Promise<Loaded> {
    // A provider that just failed is not asked again for every request that arrives meanwhile.
    const failure = this.lastFailure;
    if (failure !== undefined && this.now() - failure.at < this.failureBackoffMs()) {
      return Promise.reject(failure.error);
    }
    this.inflight ??= this.fetchKeys(skipSharedCache)
      .catch((error: unknown) => {
        this.lastFailure = { at: this.now(), error };
        throw error;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private failureBackoffMs(): number {
    return Math.min(FAILURE_BACKOFF_MS, this.options.cooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS);
  }

  private async fetchKeys(skipSharedCache: boolean): Promise<Loaded> {
    const cache = this.options.cache();
    if (!skipSharedCache) {
      const text = await cache.get(this.cacheKey);
      const stored = text === undefined ? undefined : parseStored(text);
      if (stored !== undefined && !this.expired(stored.fetched_at)) {
        this.loaded = { fetchedAt: stored.fetched_at, keys: keySetOf(stored.jwks, 'cached JWKS') };
        return this.loaded;
      }
    }
    this.lastNetworkFetch = this.now();
    const uri =
      this.options.jwksUri ??
      (await discoverJwksUri(this.options.issuer, cache, this.options.refreshSeconds, this.options.fetch));
    const jwks = await fetchJson(uri, this.options.fetch);
    const keys = keySetOf(jwks, uri);
    const fetchedAt = this.now();
    await cache.set(
      this.cacheKey,
      JSON.stringify({ fetched_at: fetchedAt, jwks: jwks as JSONWebKeySet } satisfies Stored),
      this.options.refreshSeconds,
    );
    this.loaded = { fetchedAt, keys };
    this.lastFailure = undefined;
    return this.loaded;
  }
}
