/**
 * The token and key cache (`[cache]`): JWKS documents, OIDC discovery documents and webhook
 * decisions. In memory by default, in Redis with `[cache.redis]` and its `hmac_key` so replicas
 * share it, every entry authenticated (authenticated.ts). A cache is an optimisation, never a
 * source of truth: a failing backend, or an entry that fails its check, behaves as a miss.
 */
export interface AuthCache {
  /** The value stored under `key`, or undefined when absent, expired or unreachable. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` for `ttlSeconds` (> 0). Failures are logged and swallowed. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Releases connections; the cache must not be used afterwards. */
  close(): Promise<void>;
}
