import {
  createHmac,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomUUID,
  timingSafeEqual,
} from 'node:crypto';

/**
 * The split deployment's request signature, in one place: how the gateway signs a forwarded request
 * and how registry-api checks it. The header reads
 *
 *     x-angos-signature: t=<unix time in ms>,n=<nonce>,s=<hex HMAC-SHA256>
 *
 * The HMAC is keyed by a key derived from `[services] internal_token` (HKDF-SHA256, fixed label) and
 * covers, one per line: a version tag, the method, the path, the raw query, the exact
 * `x-angos-context` value, the timestamp and the nonce. None of them can contain a line break (HTTP
 * forbids it in a request line and in header values; the others are checked here), so the message
 * is unambiguous. The path is the one registry-api routes on: a path prefix in
 * `registry_api_url` (for a proxy that strips it) is not part of it. The body is not covered: it
 * streams, and blob digests are checked anyway; TLS protects it on an untrusted network.
 */
export const SIGNATURE_HEADER = 'x-angos-signature';

/** The HKDF label, and the first line of every signed message: a new format gets a new version. */
const KEY_LABEL = 'angos internal request signature v1';
const MESSAGE_VERSION = 'angos-v1';

/** A nonce: what randomUUID writes, or any other 16 to 64 URL-safe characters. */
const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
/** Milliseconds since the epoch, without sign or leading zeros; 15 digits reach the year 33658. */
const TIMESTAMP = /^[1-9][0-9]{0,14}$/;
const SIGNATURE_HEX = /^[0-9a-f]{64}$/;

/** What a signature covers, besides the key. */
export interface SignedFields {
  readonly method: string;
  /** The request target as registry-api receives it: path and, after `?`, the raw query. */
  readonly target: string;
  /** The `x-angos-context` header value, byte for byte ('' when absent). */
  readonly context: string;
  readonly timestamp: number;
  readonly nonce: string;
}

export interface ParsedSignature {
  readonly timestamp: number;
  readonly nonce: string;
  readonly signature: Buffer;
}

/** The signing key for a shared token: never the token itself, so a leaked key is not the token. */
export function deriveSigningKey(token: string): KeyObject {
  const key = hkdfSync('sha256', Buffer.from(token, 'utf8'), Buffer.alloc(0), KEY_LABEL, 32);
  return createSecretKey(Buffer.from(key));
}

function mac(key: KeyObject, fields: SignedFields): Buffer {
  const mark = fields.target.indexOf('?');
  const path = mark === -1 ? fields.target : fields.target.slice(0, mark);
  const query = mark === -1 ? '' : fields.target.slice(mark + 1);
  const message = [
    MESSAGE_VERSION,
    fields.method,
    path,
    query,
    fields.context,
    String(fields.timestamp),
    fields.nonce,
  ].join('\n');
  return createHmac('sha256', key).update(message, 'utf8').digest();
}

/** The header value for a request with these fields. */
export function formatSignature(key: KeyObject, fields: SignedFields): string {
  return `t=${fields.timestamp},n=${fields.nonce},s=${mac(key, fields).toString('hex')}`;
}

/** Signs a request now, with a fresh nonce (randomUUID: 122 random bits, from a pooled source). */
export function signRequest(key: KeyObject, method: string, target: string, context: string): string {
  return formatSignature(key, { method, target, context, timestamp: Date.now(), nonce: randomUUID() });
}

/** Reads a header written by formatSignature; undefined for anything else. */
export function parseSignature(header: string): ParsedSignature | undefined {
  const parts = header.split(',');
  if (parts.length !== 3) return undefined;
  const [t, n, s] = parts as [string, string, string];
  if (!t.startsWith('t=') || !n.startsWith('n=') || !s.startsWith('s=')) return undefined;
  const timestamp = t.slice(2);
  const nonce = n.slice(2);
  const signature = s.slice(2);
  if (!TIMESTAMP.test(timestamp) || !NONCE.test(nonce) || !SIGNATURE_HEX.test(signature)) return undefined;
  return { timestamp: Number(timestamp), nonce, signature: Buffer.from(signature, 'hex') };
}

/** Whether the signature is the one for these fields, compared in constant time. */
export function signatureMatches(
  key: KeyObject,
  parsed: ParsedSignature,
  request: Omit<SignedFields, 'timestamp' | 'nonce'>,
): boolean {
  const expected = mac(key, { ...request, timestamp: parsed.timestamp, nonce: parsed.nonce });
  return timingSafeEqual(expected, parsed.signature);
}
