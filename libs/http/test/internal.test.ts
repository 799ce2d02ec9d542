import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  CONTEXT_HEADER,
  createInternalVerifier,
  createRequestSigner,
  deriveSigningKey,
  encodeContext,
  formatSignature,
  getContext,
  parseSignature,
  SIGNATURE_HEADER,
  SIGNATURE_WINDOW_MS,
} from '../src/index.js';

const TOKEN = 'internal-secret-0123456789';
const T0 = 1_800_000_000_000;

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
}

function fakeRequest(sent: Sent): IncomingMessage {
  return {
    method: sent.method,
    url: sent.url,
    headers: { ...sent.headers },
    socket: { remoteAddress: '10.0.0.9' },
  } as unknown as IncomingMessage;
}

/** What the gateway sends: the context header and a signature over it, at `at` with `nonce`. */
function signed(
  method: string,
  url: string,
  context = encodeContext({ clientIp: '192.0.2.7', identity: { id: 'alice', username: 'alice' } }),
  { at = T0, nonce = 'nonce-0123456789abcdef', token = TOKEN } = {},
): Sent {
  const signature = formatSignature(deriveSigningKey(token), {
    method,
    target: url,
    context,
    timestamp: at,
    nonce,
  });
  return { method, url, headers: { [CONTEXT_HEADER]: context, [SIGNATURE_HEADER]: signature } };
}

/** A verifier whose clock reads `clock.now`. */
function verifierAt(clock: { now: number }, token = TOKEN) {
  return createInternalVerifier(token, { now: () => clock.now });
}

const refusal = expect.objectContaining({ kind: 'UNAUTHORIZED', status: 401 });

describe('signed internal requests', () => {
  it('accepts what the gateway signed and attaches its context', () => {
    const verify = createInternalVerifier(TOKEN);
    const context = encodeContext({ clientIp: '192.0.2.7', mountAllowedFrom: ['src'] });
    const url = '/v2/app/blobs/uploads/?mount=sha256:abc&from=src';
    const req = fakeRequest({
      method: 'POST',
      url,
      headers: {
        [CONTEXT_HEADER]: context,
        [SIGNATURE_HEADER]: createRequestSigner(TOKEN)('POST', url, context),
      },
    });
    expect(verify(req)).toEqual({ clientIp: '192.0.2.7', mountAllowedFrom: ['src'] });
    expect(getContext(req).mountAllowedFrom).toEqual(['src']);
  });

  it('writes t=<ms>,n=<nonce>,s=<64 hex> with a fresh nonce each time', () => {
    const sign = createRequestSigner(TOKEN);
    const first = sign('GET', '/v2/', 'c');
    expect(first).toMatch(/^t=\d+,n=[A-Za-z0-9_-]{16,64},s=[0-9a-f]{64}$/);
    expect(parseSignature(first)?.nonce).not.toBe(parseSignature(sign('GET', '/v2/', 'c'))?.nonce);
  });

  it('refuses a request without a signature, even with the context and the old static token', () => {
    const verify = verifierAt({ now: T0 });
    const { headers } = signed('GET', '/v2/');
    const req = fakeRequest({
      method: 'GET',
      url: '/v2/',
      headers: { [CONTEXT_HEADER]: String(headers[CONTEXT_HEADER]), 'x-angos-internal-token': TOKEN },
    });
    expect(() => verify(req)).toThrow(refusal);
  });

  it.each([
    ['another method', (s: Sent) => ({ ...s, method: 'DELETE' })],
    ['another path', (s: Sent) => ({ ...s, url: '/v2/other/manifests/latest?n=1' })],
    ['a path with the query moved into it', (s: Sent) => ({ ...s, url: '/v2/app/manifests/latest%3Fn=1' })],
    ['another query', (s: Sent) => ({ ...s, url: '/v2/app/manifests/latest?n=2' })],
    ['a query removed', (s: Sent) => ({ ...s, url: '/v2/app/manifests/latest' })],
    [
      'another context',
      (s: Sent) => ({
        ...s,
        headers: {
          ...s.headers,
          [CONTEXT_HEADER]: encodeContext({
            clientIp: '192.0.2.7',
            identity: { id: 'admin', username: 'admin' },
          }),
        },
      }),
    ],
    [
      'the context removed',
      (s: Sent) => ({ ...s, headers: { [SIGNATURE_HEADER]: s.headers[SIGNATURE_HEADER] as string } }),
    ],
    [
      'another timestamp',
      (s: Sent) => ({
        ...s,
        headers: {
          ...s.headers,
          [SIGNATURE_HEADER]: String(s.headers[SIGNATURE_HEADER]).replace('t=', 't=1'),
        },
      }),
    ],
    [
      'another nonce',
      (s: Sent) => ({
        ...s,
        headers: {
          ...s.headers,
          [SIGNATURE_HEADER]: String(s.headers[SIGNATURE_HEADER]).replace('n=n', 'n=m'),
        },
      }),
    ],
    [
      'a flipped signature bit',
      (s: Sent) => ({
        ...s,
        headers: {
          ...s.headers,
          [SIGNATURE_HEADER]: String(s.headers[SIGNATURE_HEADER]).replace(/s=(.)/, (_m, c: string) =>
            c === '0' ? 's=1' : 's=0',
          ),
        },
      }),
    ],
  ])('refuses a signed request with %s', (_name, tamper) => {
    const verify = verifierAt({ now: T0 });
    const original = signed('GET', '/v2/app/manifests/latest?n=1');
    expect(() => verify(fakeRequest(tamper(original)))).toThrow(refusal);
    // The untouched request still passes: only the change was refused.
    expect(() => verify(fakeRequest(original))).not.toThrow();
  });

  it('refuses a signature made with another token', () => {
    const verify = verifierAt({ now: T0 });
    expect(() =>
      verify(fakeRequest(signed('GET', '/v2/', undefined, { token: 'another-token-0123456' }))),
    ).toThrow(refusal);
  });

  it.each([
    ['empty', ''],
    ['fields out of order', 'n=nonce-0123456789abcdef,t=1800000000000,s=' + 'a'.repeat(64)],
    ['a short signature', 't=1800000000000,n=nonce-0123456789abcdef,s=abc'],
    ['upper-case hex', `t=1800000000000,n=nonce-0123456789abcdef,s=${'A'.repeat(64)}`],
    ['a negative time', `t=-1800000000000,n=nonce-0123456789abcdef,s=${'a'.repeat(64)}`],
    ['a short nonce', `t=1800000000000,n=abc,s=${'a'.repeat(64)}`],
    ['an extra field', `t=1800000000000,n=nonce-0123456789abcdef,s=${'a'.repeat(64)},x=1`],
  ])('refuses a malformed signature: %s', (_name, header) => {
    const verify = verifierAt({ now: T0 });
    const req = fakeRequest({ method: 'GET', url: '/v2/', headers: { [SIGNATURE_HEADER]: header } });
    expect(() => verify(req)).toThrow(refusal);
  });

  it('refuses a repeated signature header', () => {
    const verify = verifierAt({ now: T0 });
    const sent = signed('GET', '/v2/');
    const header = String(sent.headers[SIGNATURE_HEADER]);
    expect(() =>
      verify(fakeRequest({ ...sent, headers: { ...sent.headers, [SIGNATURE_HEADER]: [header, header] } })),
    ).toThrow(refusal);
  });

  it('refuses a request replayed after the window, though it was accepted inside it', () => {
    const clock = { now: T0 };
    const verify = verifierAt(clock);
    const sent = signed('GET', '/v2/app/manifests/latest');
    expect(() => verify(fakeRequest(sent))).not.toThrow();
    clock.now = T0 + SIGNATURE_WINDOW_MS + 1;
    expect(() => verify(fakeRequest(sent))).toThrow(refusal);
    // Long after, with every nonce forgotten, still refused.
    clock.now = T0 + 10 * SIGNATURE_WINDOW_MS;
    expect(() => verify(fakeRequest(sent))).toThrow(refusal);
  });

  it('refuses a signature dated beyond the window either way, and accepts one inside it', () => {
    const verify = verifierAt({ now: T0 });
    const at = (offset: number, nonce: string) =>
      fakeRequest(signed('GET', '/v2/', undefined, { at: T0 + offset, nonce }));
    expect(() => verify(at(-SIGNATURE_WINDOW_MS - 1, 'nonce-past-000000000'))).toThrow(refusal);
    expect(() => verify(at(SIGNATURE_WINDOW_MS + 1, 'nonce-future-0000000'))).toThrow(refusal);
    expect(() => verify(at(-SIGNATURE_WINDOW_MS + 1, 'nonce-late-000000000'))).not.toThrow();
    expect(() => verify(at(SIGNATURE_WINDOW_MS - 1, 'nonce-early-00000000'))).not.toThrow();
  });

  it('refuses a request replayed inside the window (a reused nonce)', () => {
    const clock = { now: T0 };
    const verify = verifierAt(clock);
    const sent = signed('PUT', '/v2/app/manifests/latest');
    expect(() => verify(fakeRequest(sent))).not.toThrow();
    clock.now = T0 + 1_000;
    expect(() => verify(fakeRequest(sent))).toThrow(
      expect.objectContaining({ status: 401, message: 'replayed internal request' }),
    );
  });

  it('does not let forged signatures use up nonces', () => {
    const verify = verifierAt({ now: T0 });
    const sent = signed('GET', '/v2/');
    const forged = { ...sent, url: '/v2/other/tags/list' };
    expect(() => verify(fakeRequest(forged))).toThrow(refusal);
    expect(() => verify(fakeRequest(sent))).not.toThrow();
  });

  it('accepts nothing when the token is empty', () => {
    const verify = createInternalVerifier('', { now: () => T0 });
    expect(() => verify(fakeRequest(signed('GET', '/v2/', undefined, { token: '' })))).toThrow(refusal);
  });

  it('refuses an unreadable context with a 400, not a 500, even when signed', () => {
    const verify = verifierAt({ now: T0 });
    expect(() => verify(fakeRequest(signed('GET', '/v2/', '%%%')))).toThrow(
      expect.objectContaining({ status: 400 }),
    );
  });
});
