import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal OIDC issuer for tests, with node:crypto only: an RS256 key generated per run, a JWKS
 * endpoint, a discovery document, and a signer (also for the forged tokens the security tests send).
 */
export interface TestIssuer {
  readonly issuer: string;
  readonly kid: string;
  /** A token signed with the published key; claims override the defaults (iss, sub, exp in 1 h). */
  token(claims?: Record<string, unknown>): string;
  /** A token with any header and claims, signed RS256 with `key` (default: the published key). */
  forge(header: Record<string, unknown>, claims: Record<string, unknown>, key?: KeyObject): string;
  /** `alg: none`, no signature. */
  unsigned(claims?: Record<string, unknown>): string;
  /** HS256 keyed with the published public key (the algorithm-confusion attack). */
  hmacWithPublicKey(claims?: Record<string, unknown>): string;
  close(): Promise<void>;
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

export async function startTestIssuer(): Promise<TestIssuer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-${Date.now()}`;
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  let issuer = '';
  const server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    } else if (req.url === '/jwks') {
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const claimsWith = (claims: Record<string, unknown>) => ({
    iss: issuer,
    sub: 'repo:org/app:ref:refs/heads/main',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 3600,
    ...claims,
  });
  const forge = (
    header: Record<string, unknown>,
    claims: Record<string, unknown>,
    key: KeyObject = privateKey,
  ) => {
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
  };
  return {
    issuer,
    kid,
    token: (claims = {}) => forge({ alg: 'RS256', kid, typ: 'JWT' }, claimsWith(claims)),
    forge,
    unsigned: (claims = {}) =>
      `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify(claimsWith(claims)))}.`,
    hmacWithPublicKey(claims = {}) {
      const input = `${b64url(JSON.stringify({ alg: 'HS256', kid, typ: 'JWT' }))}.${b64url(JSON.stringify(claimsWith(claims)))}`;
      const secret = publicKey.export({ format: 'pem', type: 'spki' });
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Another key pair, unknown to the issuer's JWKS. */
export function strangerKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}
