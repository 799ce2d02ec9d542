import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { OciError } from '@angos/oci';
import { decodeContext, InvalidContextError, type RequestContext, setContext } from './context.js';

/**
 * The split deployment's trust channel: the gateway vouches for a request with the shared
 * `[services] internal_token` and passes what it decided in the context header. Clients must never
 * be able to send these themselves, so the gateway strips every `x-angos-*` header it receives.
 */
export const INTERNAL_HEADER_PREFIX = 'x-angos-';
export const INTERNAL_TOKEN_HEADER = 'x-angos-internal-token';
export const CONTEXT_HEADER = 'x-angos-context';

/** Removes every `x-angos-*` header a client sent (they could otherwise forge trust). */
export function stripInternalHeaders(req: IncomingMessage): void {
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith(INTERNAL_HEADER_PREFIX)) delete req.headers[name];
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? undefined : value;
}

/** Constant-time comparison of the request's internal token with the expected one. */
export function hasInternalToken(req: IncomingMessage, token: string): boolean {
  const presented = headerValue(req, INTERNAL_TOKEN_HEADER);
  if (presented === undefined || token === '') return false;
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(token, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * For a service behind the gateway: accepts the request only with the right internal token
 * (401 UNAUTHORIZED otherwise), then attaches the gateway's context so getContext() sees it.
 * A vouched-for request with an unreadable context is refused rather than run with guessed rights.
 */
export function acceptInternalRequest(req: IncomingMessage, token: string): RequestContext {
  if (!hasInternalToken(req, token)) {
    throw new OciError('UNAUTHORIZED', undefined, 'missing or invalid internal token');
  }
  const header = headerValue(req, CONTEXT_HEADER);
  let context: RequestContext;
  try {
    context = header === undefined ? { clientIp: req.socket.remoteAddress ?? '' } : decodeContext(header);
  } catch (error) {
    if (error instanceof InvalidContextError) {
      throw new OciError('REQUEST_INVALID', undefined, 'invalid x-angos-context header');
    }
    throw error;
  }
  setContext(req, context);
  return context;
}
