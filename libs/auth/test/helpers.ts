import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnFreePort } from '@angos/test-support';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { Argon2Pool, type Argon2PoolLimits } from '../src/authenticate/argon2-pool.js';
import { FailedPasswords, type PasswordChecks, VerifiedPasswords } from '../src/authenticate/basic.js';
import { FailedAttempts } from '../src/authenticate/failed-attempts.js';
import type { ClientRequestDetails } from '../src/webhook/headers.js';

export interface Running {
  readonly url: string;
  close(): Promise<void>;
}

export function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<Running & { server: Server }> {
  return listenOnFreePort(createServer(handler));
}

/** The client details of a plain pull request, as the gateway hands them to authorization. */
export const CLIENT: ClientRequestDetails = {
  method: 'GET',
  uri: '/v2/team/manifests/v1',
  host: 'h',
  proto: 'http',
  headers: {},
};

export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

async function signingKey(kid: string, alg = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/**
 * An OIDC issuer the tests run: a JWKS endpoint and a discovery document on 127.0.0.1, with keys
 * generated per test run, rotation, and counters of what was fetched.
 */
export interface TestIssuer extends Running {
  /** The issuer URL (`iss`), which is also where discovery lives. */
  readonly issuer: string;
  readonly jwksUri: string;
  jwksRequests: number;
  discoveryRequests: number;
  /** Answer JWKS requests with this status instead (e.g. 503), or undefined for the keys. */
  failWith: number | undefined;
  /** Signs a token with the current key (or `options.key`), valid for an hour by default. */
  sign(
    claims?: JWTPayload,
    options?: { kid?: string; alg?: string; expiresIn?: number; notBefore?: number; key?: SigningKey },
  ): Promise<string>;
  /** Publishes a new key (the old one is dropped) and signs with it from now on. */
  rotate(): Promise<void>;
  /** The current (first published) key, e.g. to forge a token with its public part. */
  current(): SigningKey;
  /** The published key of an algorithm (see `extraKeyAlgs`). */
  published(alg: string): SigningKey;
  /** A key the issuer never publishes. */
  stranger(alg?: string): Promise<SigningKey>;
}

let counter = 0;

export async function startIssuer(options: { extraKeyAlgs?: string[] } = {}): Promise<TestIssuer> {
  let keys: SigningKey[] = [await signingKey(`key-${++counter}`)];
  for (const alg of options.extraKeyAlgs ?? []) keys.push(await signingKey(`key-${++counter}`, alg));
  const state = { jwksRequests: 0, discoveryRequests: 0, failWith: undefined as number | undefined };
  let issuer = '';
  const running = await serve((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      state.discoveryRequests += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
      return;
    }
    if (req.url === '/keys') {
      state.jwksRequests += 1;
      if (state.failWith !== undefined) {
        res.statusCode = state.failWith;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: keys.map((key) => key.publicJwk) }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  issuer = running.url;
  const self: TestIssuer = {
    ...running,
    issuer,
    jwksUri: `${issuer}/keys`,
    get jwksRequests() {
      return state.jwksRequests;
    },
    set jwksRequests(value) {
      state.jwksRequests = value;
    },
    get discoveryRequests() {
      return state.discoveryRequests;
    },
    set discoveryRequests(value) {
      state.discoveryRequests = value;
    },
    get failWith() {
      return state.failWith;
    },
    set failWith(value) {
      state.failWith = value;
    },
    async sign(claims = {}, opts = {}) {
      const key = opts.key ?? keys[0]!;
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({ sub: 'repo:org/app:ref:refs/heads/main', ...claims })
        .setProtectedHeader({ alg: opts.alg ?? key.alg, kid: opts.kid ?? key.kid, typ: 'JWT' })
        .setIssuer(claims.iss ?? issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + (opts.expiresIn ?? 3600));
      if (opts.notBefore !== undefined) jwt.setNotBefore(now + opts.notBefore);
      return jwt.sign(key.privateKey);
    },
    async rotate() {
      keys = [await signingKey(`key-${++counter}`)];
    },
    current: () => keys[0]!,
    published(alg) {
      const key = keys.find((candidate) => candidate.alg === alg);
      if (key === undefined) throw new Error(`no published ${alg} key`);
      return key;
    },
    stranger: (alg = 'RS256') => signingKey(`key-${++counter}`, alg),
  };
  return self;
}

export function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/**
 * What BasicAuthenticator keeps across configuration versions, fresh, with a real Argon2 pool.
 * Each pool made here is closed by {@link closePasswordChecks}.
 */
const pools: Argon2Pool[] = [];

export function passwordChecks(
  limits: Argon2PoolLimits = { concurrency: 2, queueLimit: 100 },
): PasswordChecks {
  const argon2 = new Argon2Pool(limits);
  pools.push(argon2);
  return {
    verified: new VerifiedPasswords(),
    failed: new FailedPasswords(),
    argon2,
    attempts: new FailedAttempts(),
  };
}

export async function closePasswordChecks(): Promise<void> {
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
}
