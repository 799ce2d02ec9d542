import type { IncomingMessage } from 'node:http';
import { OciError } from '@angos/oci';
import { decodeContext, InvalidContextError, type RequestContext, setContext } from './context.js';
import {
  deriveSigningKey,
  parseSignature,
  SIGNATURE_HEADER,
  signatureMatches,
  signRequest,
} from './internal-signature.js';
import { type Admission, ReplayGuard, type ReplayGuardOptions } from './replay-guard.js';

/**
 * The split deployment's trust channel: the gateway signs every request it forwards with a key
 * derived from the shared `[services] internal_token` (internal-signature.ts) and passes what it
 * decided in the context header, which the signature covers. Clients must never be able to send
 * these themselves, so the gateway strips every `x-angos-*` header it receives.
 */
export const INTERNAL_HEADER_PREFIX = 'x-angos-';
export const CONTEXT_HEADER = 'x-angos-context';
/**
 * The time the author of a replicated write wrote it (RFC 3339), sent by replication senders on
 * manifest pushes and deletes. A client header like any `x-angos-*`: the gateway reads it before
 * stripping them and forwards it, in the signed context, only for callers allowed to replicate.
 */
export const SOURCE_TIMESTAMP_HEADER = 'x-angos-source-timestamp';

/** Removes every `x-angos-*` header a client sent (they could otherwise forge trust). */
export function stripInternalHeaders(req: IncomingMessage): void {
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith(INTERNAL_HEADER_PREFIX)) delete req.headers[name];
  }
}

/** For the gateway: the signature header value for a request it forwards. */
export type RequestSigner = (method: string, target: string, context: string) => string;

export function createRequestSigner(token: string): RequestSigner {
  const key = deriveSigningKey(token);
  return (method, target, context) => signRequest(key, method, target, context);
}

/** For a service behind the gateway: the context of a request the gateway signed, or an OciError. */
export type InternalRequestVerifier = (req: IncomingMessage) => RequestContext;

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? undefined : value;
}

/**
 * Where the verifier remembers the nonces it admitted: a ReplayGuard of its own, or the
 * SharedReplayGuard of every serving thread of the service.
 */
export interface NonceMemory {
  admit(timestamp: number, nonce: string): Admission;
}

function unauthorized(detail: string): OciError {
  return new OciError('UNAUTHORIZED', undefined, detail);
}

/**
 * Accepts a request only when the gateway signed it, for this method, target and context, within
 * the window, and never before (401 UNAUTHORIZED otherwise); then attaches the gateway's context
 * so getContext() sees it. A signed request with an unreadable context is refused rather than run
 * with guessed rights. An empty token accepts nothing.
 */
export function createInternalVerifier(
  token: string,
  options: ReplayGuardOptions & { readonly replays?: NonceMemory | undefined } = {},
): InternalRequestVerifier {
  const key = token === '' ? undefined : deriveSigningKey(token);
  const replays = options.replays ?? new ReplayGuard(options);
  return (req) => {
    const header = headerValue(req, SIGNATURE_HEADER);
    if (key === undefined || header === undefined) throw unauthorized('missing internal request signature');
    const parsed = parseSignature(header);
    if (parsed === undefined) throw unauthorized('malformed internal request signature');
    const context = headerValue(req, CONTEXT_HEADER);
    const signed = { method: req.method ?? '', target: req.url ?? '/', context: context ?? '' };
    if (!signatureMatches(key, parsed, signed)) throw unauthorized('invalid internal request signature');
    // Only a correct signature reaches the nonce cache: forgeries cannot fill it.
    const admission = replays.admit(parsed.timestamp, parsed.nonce);
    if (admission === 'outside-window') {
      throw unauthorized('internal request signature outside the allowed time window (check both clocks)');
    }
    if (admission === 'replayed') throw unauthorized('replayed internal request');
    return attachContext(req, context);
  };
}

function attachContext(req: IncomingMessage, header: string | undefined): RequestContext {
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
