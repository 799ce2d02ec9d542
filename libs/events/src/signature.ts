import { createHmac, timingSafeEqual } from 'node:crypto';

/** The request header that carries the signature of the body. */
export const SIGNATURE_HEADER = 'X-Registry-Signature-256';

/** `sha256=<hex HMAC-SHA256(token, body)>` over the exact bytes sent. */
export function signBody(token: string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', token).update(body).digest('hex')}`;
}

/** Whether `header` is the signature of `body` under `token` (constant-time compare). */
export function verifySignature(
  token: string,
  body: string | Uint8Array,
  header: string | undefined,
): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(signBody(token, body));
  const received = Buffer.from(header);
  return expected.length === received.length && timingSafeEqual(expected, received);
}
