import type { OidcConfig } from '@angos/config';
import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import type { OidcIdentity } from '../identity.js';
import type { JwksSource } from './jwks.js';

export type TokenVerdict =
  | { readonly valid: true; readonly identity: OidcIdentity }
  | { readonly valid: false; readonly reason: string };

/**
 * A compact JWS: three base64url segments, nothing else. jose's decoder skips characters outside
 * the alphabet (white space in the signature decoded to the same bytes), so a token altered that
 * way would verify; it is refused before being decoded. An empty signature gets through here to
 * be refused for its algorithm (`none`), which says more.
 */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function invalid(reason: string): TokenVerdict {
  return { valid: false, reason };
}

/** A JWT's unverified issuer, to pick the provider that may verify it; undefined when unreadable. */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One `[auth.oidc.<name>]` provider: verifies bearer tokens against its JWKS. The token header's
 * `alg` must be in `allowed_algorithms` before any key is looked up or any signature checked, so
 * `none`, HMAC algorithms keyed with a public key, and anything else outside the list are refused
 * without being processed (no algorithm confusion). Then the signature, the issuer, the audience
 * (`required_audience`), and the time claims (`exp` required, `nbf`; `clock_skew_tolerance`).
 */
export class OidcProvider {
  constructor(
    readonly name: string,
    readonly config: OidcConfig,
    private readonly jwks: JwksSource,
    private readonly now: () => number = Date.now,
  ) {}

  get issuer(): string {
    return this.config.issuer;
  }

  async verify(token: string): Promise<TokenVerdict> {
    if (!COMPACT_JWS.test(token)) return invalid('malformed token');
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return invalid('malformed token');
    }
    if (typeof alg !== 'string' || !this.config.allowed_algorithms.includes(alg)) {
      return invalid(`algorithm ${JSON.stringify(alg)} is not in allowed_algorithms`);
    }

    let keys: Awaited<ReturnType<JwksSource['keys']>>;
    try {
      keys = await this.jwks.keys();
    } catch (error) {
      return invalid(`signing keys unavailable: ${(error as Error).message}`);
    }
    try {
      return this.accepted(await this.check(token, keys));
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) return invalid(describe(error));
    }
    // Signed with a key we do not hold: the provider may have rotated its keys.
    let refreshed: typeof keys | undefined;
    try {
      refreshed = await this.jwks.refresh();
    } catch (error) {
      return invalid(`signing keys unavailable: ${(error as Error).message}`);
    }
    if (refreshed === undefined) return invalid('no matching signing key');
    try {
      return this.accepted(await this.check(token, refreshed));
    } catch (error) {
      return invalid(describe(error));
    }
  }

  private check(token: string, keys: Awaited<ReturnType<JwksSource['keys']>>): Promise<JWTPayload> {
    return jwtVerify(token, keys, {
      issuer: this.config.issuer,
      ...(this.config.required_audience === undefined ? {} : { audience: this.config.required_audience }),
      clockTolerance: this.config.clock_skew_tolerance,
      algorithms: this.config.allowed_algorithms,
      requiredClaims: ['exp'],
      currentDate: new Date(this.now()),
    }).then((result) => result.payload);
  }

  private accepted(claims: JWTPayload): TokenVerdict {
    return { valid: true, identity: { provider_name: this.name, claims } };
  }
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed)
    return `claim ${error.claim} ${error.reason.replaceAll('_', ' ')}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (error instanceof errors.JOSEError) return error.message;
  return (error as Error).message ?? String(error);
}
