import type { IncomingHttpHeaders } from 'node:http';

/** What a client presented in its `Authorization` header. */
export type Credentials =
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'bearer'; readonly token: string };

/** Above this an Authorization header is not a credential we issue or accept. */
const MAX_CREDENTIAL_LENGTH = 16 * 1024;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Reads `Authorization: Basic …` (RFC 7617) or `Authorization: Bearer …` (RFC 6750). Schemes are
 * case-insensitive. Anything malformed counts as no credentials: the request continues anonymously.
 */
export function readCredentials(headers: IncomingHttpHeaders): Credentials | undefined {
  const header = headers.authorization;
  if (header === undefined || header.length > MAX_CREDENTIAL_LENGTH) return undefined;
  const space = header.indexOf(' ');
  if (space === -1) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (value === '') return undefined;

  if (scheme === 'bearer') return { kind: 'bearer', token: value };
  if (scheme !== 'basic' || !BASE64.test(value)) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  // The user-id cannot contain a colon; the password can.
  const colon = decoded.indexOf(':');
  // `Basic Og==` (":") is how some clients (skopeo) say "no credentials" after a challenge.
  if (colon === -1 || decoded === ':') return undefined;
  return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
