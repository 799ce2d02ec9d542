import { createHash } from 'node:crypto';
import type { AuthCache } from '../cache/types.js';
import { DocumentFetchError, type FetchLike, fetchJson } from './fetch-json.js';

/** OpenID Connect Discovery 1.0 §4: the configuration document lives under the issuer. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

function isHttpUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * The `jwks_uri` an issuer publishes in its discovery document. The document must name the same
 * issuer (Discovery §4.3), so a misconfigured or impersonating host cannot substitute its keys.
 * Cached for `ttlSeconds` in the token and key cache.
 */
export async function discoverJwksUri(
  issuer: string,
  cache: AuthCache,
  ttlSeconds: number,
  fetchFn?: FetchLike,
): Promise<string> {
  const key = `auth:oidc:discovery:${createHash('sha256').update(issuer).digest('hex')}`;
  const cached = await cache.get(key);
  if (cached !== undefined && isHttpUrl(cached)) return cached;

  const url = discoveryUrl(issuer);
  const document = await fetchJson(url, fetchFn);
  if (typeof document !== 'object' || document === null) {
    throw new DocumentFetchError(`${url} is not a discovery document`);
  }
  const record = document as Record<string, unknown>;
  if (typeof record['issuer'] !== 'string' || !sameIssuer(record['issuer'], issuer)) {
    throw new DocumentFetchError(`${url} names issuer ${JSON.stringify(record['issuer'])}, not ${issuer}`);
  }
  const jwksUri = record['jwks_uri'];
  if (!isHttpUrl(jwksUri)) throw new DocumentFetchError(`${url} has no valid jwks_uri`);
  await cache.set(key, jwksUri, ttlSeconds);
  return jwksUri;
}
