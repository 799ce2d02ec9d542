import { type Challenge, parseChallenges } from './challenge.js';
import { TokenCache } from './tokens.js';

/** Where Bearer tokens come from, as a `WWW-Authenticate: Bearer` challenge names it. */
export interface TokenEndpoint {
  readonly realm: string;
  readonly service: string | undefined;
}

export interface IssuedToken {
  readonly token: string;
  readonly lifetimeSeconds: number;
}

/** Asks a token endpoint for a token covering `scopes` (with the configured credentials, if any). */
export type TokenFetcher = (endpoint: TokenEndpoint, scopes: readonly string[]) => Promise<IssuedToken>;

/** The scheme an upstream asked for, learnt from its first 401. */
type Scheme = { readonly kind: 'basic' } | { readonly kind: 'bearer'; readonly endpoint: TokenEndpoint };

/**
 * The `Authorization` of one upstream's requests. The first request goes anonymous; its 401
 * challenge tells the scheme, which later requests use at once:
 *
 * - Basic: the configured username and password.
 * - Bearer (Docker Hub, GHCR, distribution's token auth): a token from the challenge's realm for
 *   `service` and the request's scope, asked for with the configured credentials as Basic or
 *   anonymously without them; cached per endpoint and scope until shortly before it expires
 *   (`expires_in`, 60 s when absent). Concurrent requests for the same scope share one token
 *   request.
 *
 * A request answered 401 is retried once with what `retryAfter` gives: a fresh token (the cached
 * one is dropped) or the credentials; a second 401 is final.
 */
export class UpstreamAuth {
  private scheme: Scheme | undefined;
  private readonly tokens: TokenCache;
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly basic: string | undefined,
    private readonly fetchToken: TokenFetcher,
    now: () => number = Date.now,
  ) {
    this.tokens = new TokenCache(now);
  }

  /** The header for a request needing `scope`, from what the upstream asked for before. */
  async authorization(scope: string): Promise<string | undefined> {
    const scheme = this.scheme;
    if (scheme === undefined) return undefined;
    if (scheme.kind === 'basic') return this.basic;
    return `Bearer ${await this.token(scheme.endpoint, scope, [scope])}`;
  }

  /**
   * After a 401 to a request that carried `sent`: the header to retry it with once, or undefined
   * when there is nothing else to try (no usable challenge; Basic asked but already sent or not
   * configured).
   */
  async retryAfter(
    wwwAuthenticate: string | readonly string[] | undefined,
    scope: string,
    sent: string | undefined,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params['realm'] !== undefined);
    if (bearer !== undefined) {
      const endpoint = endpointOf(bearer);
      this.scheme = { kind: 'bearer', endpoint };
      const key = cacheKey(endpoint, scope);
      if (sent?.startsWith('Bearer ')) this.tokens.discard(key, sent.slice('Bearer '.length));
      const asked = bearer.params['scope']?.split(' ').filter((s) => s !== '') ?? [];
      const scopes = [scope, ...asked.filter((s) => s !== scope)];
      return `Bearer ${await this.token(endpoint, scope, scopes)}`;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      this.scheme = { kind: 'basic' };
      return sent === this.basic ? undefined : this.basic;
    }
    return undefined;
  }

  /** A usable token for `scope`: cached, already being fetched, or fetched now. */
  private token(endpoint: TokenEndpoint, scope: string, scopes: readonly string[]): Promise<string> {
    const key = cacheKey(endpoint, scope);
    const cached = this.tokens.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    let pending = this.pending.get(key);
    if (pending === undefined) {
      pending = this.fetchToken(endpoint, scopes)
        .then((issued) => {
          this.tokens.set(key, issued.token, issued.lifetimeSeconds);
          return issued.token;
        })
        .finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }
}

function endpointOf(challenge: Challenge): TokenEndpoint {
  return { realm: challenge.params['realm']!, service: challenge.params['service'] };
}

function cacheKey(endpoint: TokenEndpoint, scope: string): string {
  return JSON.stringify([endpoint.realm, endpoint.service ?? '', scope]);
}

/** `Basic base64(username:password)`, or undefined without credentials. */
export function basicAuthorization(
  username: string | undefined,
  password: string | undefined,
): string | undefined {
  if (username === undefined || password === undefined) return undefined;
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
