import type { Socket } from 'node:net';
import type { Identity } from './context.js';

/** The logging target of the access log: `RUST_LOG=info,angos::access=off` turns it off. */
export const ACCESS_LOG_TARGET = 'angos::access';

/** How the caller authenticated, on the access line. */
export type AuthMethod = 'basic' | 'oidc' | 'mtls' | 'anonymous';

/** The `auth` of an access line. Basic and OIDC credentials name the caller before a certificate. */
export function authMethod(identity: Identity | undefined): AuthMethod {
  if (identity?.username !== undefined) return 'basic';
  if (identity?.oidc !== undefined) return 'oidc';
  if (identity?.certificate?.commonNames[0] !== undefined) return 'mtls';
  return 'anonymous';
}

/**
 * The `identity` of an access line: the basic-auth username, the OIDC subject (the provider's
 * name for a token without one), the client certificate's first common name, or `anonymous`.
 */
export function identityName(identity: Identity | undefined): string {
  return (
    identity?.username ??
    (identity?.oidc === undefined
      ? identity?.certificate?.commonNames[0]
      : (identity.oidc.subject ?? identity.oidc.providerName)) ??
    'anonymous'
  );
}

const COUNTED_READ = Symbol('angos.bytesReadCounted');
const COUNTED_WRITTEN = Symbol('angos.bytesWrittenCounted');

interface CountedSocket extends Socket {
  [COUNTED_READ]?: number;
  [COUNTED_WRITTEN]?: number;
}

/**
 * Bytes the connection carried for the request that just ended, headers included: what the
 * socket counted since the previous request on it ended (two numbers kept on the socket, no
 * stream listener). Approximate where requests overlap on one connection (pipelining) and where
 * a request ends with its body unread (the rest counts on the next request of the connection).
 * Call bytesIn, then bytesOut, once per request.
 */
export function bytesIn(socket: Socket): number {
  const counted = socket as CountedSocket;
  const read = counted.bytesRead;
  const bytes = read - (counted[COUNTED_READ] ?? 0);
  counted[COUNTED_READ] = read;
  return bytes;
}

export function bytesOut(socket: Socket): number {
  const counted = socket as CountedSocket;
  const written = counted.bytesWritten;
  const bytes = written - (counted[COUNTED_WRITTEN] ?? 0);
  counted[COUNTED_WRITTEN] = written;
  return bytes;
}
