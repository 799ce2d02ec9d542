import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  decodeContext,
  encodeContext,
  getContext,
  InvalidContextError,
  setContext,
  stripInternalHeaders,
} from '../src/index.js';

function fakeRequest(headers: Record<string, string | string[]> = {}): IncomingMessage {
  return { headers, socket: { remoteAddress: '10.0.0.9' } } as unknown as IncomingMessage;
}

const b64 = (value: string) => Buffer.from(value, 'utf8').toString('base64url');

describe('request context', () => {
  it('defaults to an anonymous context with the socket address', () => {
    expect(getContext(fakeRequest())).toEqual({ clientIp: '10.0.0.9' });
  });

  it('returns what was set', () => {
    const req = fakeRequest();
    setContext(req, { clientIp: '1.2.3.4', mountAllowedFrom: ['base'] });
    expect(getContext(req)).toEqual({ clientIp: '1.2.3.4', mountAllowedFrom: ['base'] });
  });

  it.each([
    { clientIp: '127.0.0.1' },
    { clientIp: '::1', identity: { id: 'alice', username: 'alice' } },
    { clientIp: '10.1.1.1', identity: {}, mountAllowedFrom: ['team/base', 'library/alpine'] },
    {
      clientIp: '10.0.0.2',
      identity: { certificate: { commonNames: ['ci-runner'], organizations: ['Platform', 'DevOps'] } },
    },
    {
      clientIp: '10.0.0.3',
      identity: { oidc: { providerName: 'github', subject: 'repo:org/app:ref:main' } },
    },
    { clientIp: '10.0.0.4', identity: { oidc: { providerName: 'corp' } } },
    {
      clientIp: '10.0.0.5',
      identity: { username: 'replicator' },
      sourceTimestamp: '2026-01-01T00:00:00.000Z',
    },
  ])('round-trips %j', (context) => {
    const encoded = encodeContext(context);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeContext(encoded)).toEqual(context);
  });

  it.each([
    ['not base64 json', '!!!'],
    ['an array', b64('[]')],
    ['no clientIp', b64('{}')],
    ['a numeric clientIp', b64('{"clientIp":1}')],
    ['an identity string', b64('{"clientIp":"x","identity":"admin"}')],
    ['a numeric username', b64('{"clientIp":"x","identity":{"username":1}}')],
    ['mount sources not strings', b64('{"clientIp":"x","mountAllowedFrom":[1]}')],
    ['a numeric source timestamp', b64('{"clientIp":"x","sourceTimestamp":1}')],
    ['a certificate without lists', b64('{"clientIp":"x","identity":{"certificate":{"commonNames":"a"}}}')],
    [
      'an organization not a string',
      b64('{"clientIp":"x","identity":{"certificate":{"commonNames":[],"organizations":[1]}}}'),
    ],
    ['an oidc identity without provider', b64('{"clientIp":"x","identity":{"oidc":{"subject":"s"}}}')],
    ['a numeric oidc subject', b64('{"clientIp":"x","identity":{"oidc":{"providerName":"p","subject":1}}}')],
    ['a huge header', 'a'.repeat(10_000)],
  ])('rejects %s', (_name, header) => {
    expect(() => decodeContext(header)).toThrow(InvalidContextError);
  });

  it('ignores unknown keys', () => {
    expect(decodeContext(b64('{"clientIp":"x","future":true}'))).toEqual({ clientIp: 'x' });
  });
});

describe('internal trust', () => {
  it('strips every x-angos-* header', () => {
    const req = fakeRequest({ 'x-angos-signature': 't', 'x-angos-context': 'c', 'x-other': 'kept' });
    stripInternalHeaders(req);
    expect(req.headers).toEqual({ 'x-other': 'kept' });
  });
});
