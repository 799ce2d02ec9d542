/**
 * A seeded, bounded fuzz run over the authentication of a real `angos server` on TLS with all
 * three methods configured: basic identities, an OIDC provider whose JWKS is served here on
 * 127.0.0.1, and client certificates (`client_ca_bundle`). It sends malformed and oversized Basic
 * and Bearer headers, JWTs with bad segments, huge claims, unknown key ids and algorithm
 * confusion, and broken client certificates, on raw TLS sockets so any byte can be sent. Every
 * answer must be a refusal (401 or 403), never a 5xx, a hang or a reset; a few valid credentials
 * are sent as controls and must get in, so a server that refuses everything does not pass.
 */
import { createHmac, createSign, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { createTestCa, freePort, random } from '@angos/test-support';
import { exchange, type FuzzCase, type FuzzReport, startServer } from './fuzz.js';

export interface AuthFuzzOptions {
  /** Seeded mutations of valid credentials, sent after the fixed cases. */
  readonly mutations: number;
  readonly seed: number;
}

/** alice's password, and its Argon2id hash with tiny parameters (the fuzz run pays one per Basic header). */
const ALICE_PASSWORD = 'alice-secret';
const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
const AUDIENCE = 'angos';
const GRANTED_SUBJECT = 'repo:org/app';

/** The server answers 431 to a request head over 16 KiB before any authentication runs. */
const HEADER_LIMIT = 16 * 1024;

/** Refusals an authentication failure may get. */
const REFUSALS = new Set([401, 403]);

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

function rsaKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, publicKey };
}

/** A compact JWS; `sign` receives the signing input and returns the signature bytes. */
function jwt(header: object, claims: object, sign: (input: string) => Buffer): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign(input))}`;
}

const rs256 = (key: SigningKey) => (input: string) =>
  createSign('RSA-SHA256').update(input).sign(key.privateKey);

/** One authentication attempt: its headers, the client certificate it presents, what it must get. */
interface AuthCase {
  readonly label: string;
  readonly headers: Buffer;
  readonly tls: ConnectionOptions;
  /** `refused`: 401 or 403; `granted`: a control that must get in (200); `oversized`: 431 too. */
  readonly expect: 'refused' | 'granted' | 'oversized';
}

/**
 * Routes that exist for their method, so the answer is about the credentials alone (a method a
 * route lacks is answered 405 before authentication).
 */
const ROUTES: readonly (readonly [string, string])[] = [
  ['GET', '/v2/'],
  ['GET', '/v2/org/app/manifests/v1'],
  ['HEAD', '/v2/org/app/manifests/v1'],
  ['DELETE', '/v2/org/app/manifests/v1'],
  ['GET', '/v2/org/app/tags/list'],
  ['GET', `/v2/org/app/blobs/sha256:${'0'.repeat(64)}`],
  ['POST', '/v2/org/app/blobs/uploads/'],
  ['GET', '/v2/_catalog'],
];

function toFuzzCase(method: string, path: string, authCase: AuthCase): FuzzCase {
  const head = Buffer.from(
    `${method} ${path} HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 0\r\nConnection: close\r\n`,
  );
  return {
    label: `${method} ${path} ${authCase.label}`,
    bytes: Buffer.concat([head, authCase.headers, Buffer.from('\r\n')]),
    answered: true,
  };
}

export async function fuzzAuth(options: AuthFuzzOptions): Promise<FuzzReport> {
  const next = random(options.seed);
  const sandbox = await mkdtemp(join(tmpdir(), 'angos-fuzz-auth-'));
  const rootDir = join(sandbox, 'data');
  await mkdir(rootDir);
  const ca = createTestCa('Fuzz CA');
  const otherCa = createTestCa('Stranger CA');
  const issuerKey = rsaKey('issuer-key');
  const strangerKey = rsaKey('issuer-key'); // same kid, other key: a forgery
  const jwks = await serveJwks(issuerKey);
  const report: FuzzReport = { requests: 0, statuses: {}, failures: [] };
  try {
    const serverCert = ca.issue('server', { subject: '/CN=127.0.0.1', usage: 'server' });
    const configPath = join(sandbox, 'config.toml');
    await writeFile(
      configPath,
      `[server]
bind_address = "127.0.0.1"
[server.tls]
server_certificate_bundle = "${serverCert.certPath}"
server_private_key = "${serverCert.keyPath}"
client_ca_bundle = "${ca.certPath}"
[blob_store.fs]
root_dir = "${rootDir}"
[auth]
# Every case must reach the authenticators: the per-address limit would answer most with 429.
failed_auth_limit = 0
[auth.identity.alice]
username = "alice"
password = "${ALICE_HASH}"
[auth.oidc.ci]
provider = "generic"
issuer = "${jwks.issuer}"
jwks_uri = "${jwks.issuer}/keys"
required_audience = "${AUDIENCE}"
[global.access_policy]
default = "deny"
rules = [
  "has(identity.username) && identity.username == 'alice'",
  "has(identity.oidc) && identity.oidc.claims.sub == '${GRANTED_SUBJECT}'",
  "has(identity.certificate) && 'robot' in identity.certificate.common_names",
]
`,
    );

    const robot = ca.issue('robot', { subject: '/CN=robot/O=Fuzz', usage: 'client' });
    const certificates = {
      none: {},
      valid: { cert: robot.cert, key: robot.key },
      notGranted: pemPair(ca.issue('other', { subject: '/CN=other/O=Fuzz', usage: 'client' })),
      strangerCa: pemPair(otherCa.issue('robot', { subject: '/CN=robot/O=Fuzz', usage: 'client' })),
      expired: pemPair(
        ca.issue('expired', {
          subject: '/CN=robot/O=Fuzz',
          usage: 'client',
          startdate: '20200101000000Z',
          enddate: '20200102000000Z',
        }),
      ),
      notYetValid: pemPair(
        ca.issue('future', {
          subject: '/CN=robot/O=Fuzz',
          usage: 'client',
          startdate: '20990101000000Z',
          enddate: '20990102000000Z',
        }),
      ),
      serverUsage: pemPair(ca.issue('server-usage', { subject: '/CN=robot/O=Fuzz', usage: 'server' })),
      // Subject named like the trusted CA, issued by another: a name is not a signature.
      namedLikeCa: pemPair(otherCa.issue('robot-2', { subject: '/CN=Fuzz CA', usage: 'client' })),
    } satisfies Record<string, ConnectionOptions>;

    const now = Math.floor(Date.now() / 1000);
    const claims = (extra: object = {}) => ({
      iss: jwks.issuer,
      aud: AUDIENCE,
      sub: GRANTED_SUBJECT,
      iat: now,
      exp: now + 3600,
      ...extra,
    });
    const header = { alg: 'RS256', kid: issuerKey.kid, typ: 'JWT' };
    const validToken = jwt(header, claims(), rs256(issuerKey));
    const cases = fixedCases({ certificates, header, claims, issuerKey, strangerKey, validToken });

    const port = await freePort();
    const server = await startServer(configPath, port, sandbox, { readyStatus: 401, tls: {} });
    try {
      const send = async (fuzzCase: FuzzCase, authCase: AuthCase) => {
        const reply = await exchange(port, fuzzCase, authCase.tls);
        report.requests++;
        const key = reply.status === undefined ? 'none' : String(reply.status);
        report.statuses[key] = (report.statuses[key] ?? 0) + 1;
        const where = `#${report.requests} ${fuzzCase.label.slice(0, 160)}`;
        const status = reply.status;
        if (reply.problem !== undefined || status === undefined) {
          report.failures.push(`${where}: ${reply.problem ?? 'no status'}`);
        } else if (authCase.expect === 'granted' ? status !== 200 : !refusal(status, authCase)) {
          report.failures.push(`${where}: ${status}`);
        }
        if (server.exitCode !== null) report.failures.push(`${where}: the registry exited`);
      };

      for (const authCase of cases) {
        const [method, path] = authCase.expect === 'granted' ? ['GET', '/v2/'] : pick(next, ROUTES);
        await send(toFuzzCase(method, path, authCase), authCase);
      }
      for (let i = 0; i < options.mutations; i++) {
        const authCase = mutation(next, validToken, certificates.none);
        const [method, path] = pick(next, ROUTES);
        await send(toFuzzCase(method, path, authCase), authCase);
      }
    } finally {
      server.kill('SIGKILL');
    }
    return report;
  } finally {
    await jwks.close();
    await rm(sandbox, { recursive: true, force: true });
    await rm(ca.dir, { recursive: true, force: true });
    await rm(otherCa.dir, { recursive: true, force: true });
  }
}

function refusal(status: number, authCase: AuthCase): boolean {
  return REFUSALS.has(status) || (authCase.expect === 'oversized' && status === 431);
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

function pemPair(issued: { cert: string; key: string }): ConnectionOptions {
  return { cert: issued.cert, key: issued.key };
}

function authorization(value: string | Buffer): Buffer {
  return Buffer.concat([Buffer.from('Authorization: '), Buffer.from(value), Buffer.from('\r\n')]);
}

/** A case that is refused, or answered 431 when its header cannot fit the server's head limit. */
function refused(label: string, headers: Buffer, tls: ConnectionOptions = {}): AuthCase {
  return { label, headers, tls, expect: headers.length > HEADER_LIMIT - 512 ? 'oversized' : 'refused' };
}

function fixedCases(input: {
  certificates: Record<
    | 'none'
    | 'valid'
    | 'notGranted'
    | 'strangerCa'
    | 'expired'
    | 'notYetValid'
    | 'serverUsage'
    | 'namedLikeCa',
    ConnectionOptions
  >;
  header: { alg: string; kid: string; typ: string };
  claims: (extra?: object) => object;
  issuerKey: SigningKey;
  strangerKey: SigningKey;
  validToken: string;
}): AuthCase[] {
  const { certificates, header, claims, issuerKey, strangerKey, validToken } = input;
  const basic = (text: string | Buffer) =>
    authorization(Buffer.concat([Buffer.from('Basic '), Buffer.from(Buffer.from(text).toString('base64'))]));
  const bearer = (token: string | Buffer) =>
    authorization(Buffer.concat([Buffer.from('Bearer '), Buffer.from(token)]));
  const signed = (extra: object, key = issuerKey, head: object = header) =>
    jwt(head, claims(extra), rs256(key));
  const [h, p, s] = validToken.split('.') as [string, string, string];
  const publicPem = issuerKey.publicKey.export({ format: 'pem', type: 'spki' });
  const publicJwkText = JSON.stringify(issuerKey.publicKey.export({ format: 'jwk' }));
  const hs256 = (secret: string | Buffer) => (input: string) =>
    createHmac('sha256', secret).update(input).digest();
  const none = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`;

  const cases: AuthCase[] = [
    // Controls: each method gets in with valid credentials.
    { label: 'control: basic', headers: basic(`alice:${ALICE_PASSWORD}`), tls: {}, expect: 'granted' },
    { label: 'control: bearer', headers: bearer(validToken), tls: {}, expect: 'granted' },
    {
      label: 'control: client certificate',
      headers: Buffer.alloc(0),
      tls: certificates.valid,
      expect: 'granted',
    },

    // Basic, malformed and oversized.
    refused('anonymous', Buffer.alloc(0)),
    refused('basic: wrong password', basic('alice:wrong')),
    refused('basic: unknown user', basic('mallory:alice-secret')),
    refused('basic: no colon', basic('alice')),
    refused('basic: empty', authorization('Basic ')),
    refused('basic: only a colon', basic(':')),
    refused('basic: bad base64', authorization('Basic !!!not*base64###')),
    refused(
      'basic: base64 with spaces',
      authorization(
        `Basic ${Buffer.from('alice:alice-secret')
          .toString('base64')
          .replace(/(.{4})/g, '$1 ')}`,
      ),
    ),
    refused('basic: padding only', authorization('Basic ====')),
    refused('basic: non-UTF-8 credentials', basic(Buffer.from([0xff, 0xfe, 0x3a, 0xc3, 0x28, 0x80]))),
    refused(
      'basic: non-UTF-8 header bytes',
      authorization(Buffer.from([0x42, 0x61, 0x73, 0x69, 0x63, 0x20, 0xff, 0xfe, 0xfd])),
    ),
    refused('basic: NUL in the password', basic('alice:alice-secret\0')),
    refused('basic: 9 KiB password', basic(`alice:${'x'.repeat(9 * 1024)}`)),
    refused('basic: 9 KiB user', basic(`${'u'.repeat(9 * 1024)}:x`)),
    refused('basic: 20 KiB header', basic(`alice:${'x'.repeat(20 * 1024)}`)),
    refused('basic: lower-case scheme, wrong password', authorization(`basic ${b64url('alice:nope')}`)),
    refused('basic: two headers', Buffer.concat([basic('alice:wrong'), basic('mallory:x')])),
    refused('scheme only', authorization('Basic')),
    refused('unknown scheme', authorization('Digest username="alice"')),
    refused('empty authorization', authorization('')),

    // Bearer, malformed and oversized.
    refused('bearer: empty', authorization('Bearer ')),
    refused('bearer: not a JWT', bearer('opaque-token')),
    refused('bearer: two segments', bearer(`${h}.${p}`)),
    refused('bearer: four segments', bearer(`${h}.${p}.${s}.${s}`)),
    refused('bearer: empty segments', bearer('..')),
    refused('bearer: bad base64 header', bearer(`!!!.${p}.${s}`)),
    refused('bearer: bad base64 payload', bearer(`${h}.%%%%.${s}`)),
    refused('bearer: bad base64 signature', bearer(`${h}.${p}.***`)),
    refused('bearer: header is not JSON', bearer(`${b64url('{"alg":')}.${p}.${s}`)),
    refused('bearer: payload is not JSON', bearer(`${h}.${b64url('not json')}.${s}`)),
    refused('bearer: payload is an array', bearer(jwt(header, [1, 2, 3], rs256(issuerKey)))),
    refused('bearer: header is a string', bearer(`${b64url('"RS256"')}.${p}.${s}`)),
    refused('bearer: non-UTF-8 payload', bearer(`${h}.${b64url(Buffer.from([0xff, 0xfe, 0x7b]))}.${s}`)),
    refused('bearer: non-UTF-8 header bytes', bearer(Buffer.from([0xff, 0xfe, 0x2e, 0xfd, 0x2e, 0xfc]))),
    refused(
      'bearer: signature of another token',
      bearer(`${h}.${b64url(JSON.stringify(claims({ sub: 'x' })))}.${s}`),
    ),
    refused('bearer: 12 KiB token', bearer('a'.repeat(12 * 1024))),
    refused('bearer: 20 KiB header', bearer(`${h}.${'A'.repeat(20 * 1024)}.${s}`)),

    // Claims.
    refused(
      'bearer: huge claim, forged signature',
      bearer(signed({ pad: 'x'.repeat(10 * 1024) }, strangerKey)),
    ),
    refused(
      'bearer: deeply nested claim, forged',
      bearer(signed({ deep: JSON.parse(`${'['.repeat(2000)}${']'.repeat(2000)}`) }, strangerKey)),
    ),
    refused(
      'bearer: many claims, forged',
      bearer(signed(Object.fromEntries(Array.from({ length: 800 }, (_, i) => [`c${i}`, i])), strangerKey)),
    ),
    refused(
      'bearer: huge claim, valid signature, subject not granted',
      bearer(signed({ sub: 'repo:other/app', pad: 'x'.repeat(10 * 1024) })),
    ),
    refused('bearer: valid, subject not granted', bearer(signed({ sub: 'repo:other/app' }))),
    refused('bearer: expired', bearer(signed({ exp: Math.floor(Date.now() / 1000) - 3600 }))),
    refused('bearer: not yet valid', bearer(signed({ nbf: Math.floor(Date.now() / 1000) + 3600 }))),
    refused('bearer: no exp', bearer(signed({ exp: undefined }))),
    refused('bearer: exp is a string', bearer(signed({ exp: 'tomorrow' }))),
    refused('bearer: wrong issuer', bearer(signed({ iss: 'https://evil.example' }))),
    refused('bearer: wrong audience', bearer(signed({ aud: 'someone-else' }))),
    refused('bearer: issuer is an object', bearer(signed({ iss: { $ne: '' } }))),

    // Keys and algorithms.
    refused("bearer: signed by a stranger with the issuer's kid", bearer(signed({}, strangerKey))),
    refused('bearer: unknown kid', bearer(signed({}, strangerKey, { ...header, kid: 'no-such-key' }))),
    refused(
      'bearer: another unknown kid',
      bearer(signed({}, strangerKey, { ...header, kid: 'x'.repeat(2000) })),
    ),
    refused('bearer: kid is an object', bearer(signed({}, issuerKey, { ...header, kid: { a: 1 } }))),
    refused('bearer: no kid', bearer(signed({}, strangerKey, { alg: 'RS256', typ: 'JWT' }))),
    refused('bearer: alg none', bearer(none)),
    refused(
      'bearer: alg None',
      bearer(`${b64url(JSON.stringify({ alg: 'None', kid: issuerKey.kid }))}.${p}.`),
    ),
    refused(
      'bearer: alg none with the kid and a signature',
      bearer(`${b64url(JSON.stringify({ alg: 'none', kid: issuerKey.kid }))}.${p}.${s}`),
    ),
    refused(
      'bearer: HS256 keyed with the public key (PEM)',
      bearer(jwt({ ...header, alg: 'HS256' }, claims(), hs256(publicPem))),
    ),
    refused(
      'bearer: HS256 keyed with the public key (JWK)',
      bearer(jwt({ ...header, alg: 'HS256' }, claims(), hs256(publicJwkText))),
    ),
    refused(
      'bearer: RS256 signature relabelled PS256',
      bearer(`${b64url(JSON.stringify({ ...header, alg: 'PS256' }))}.${p}.${s}`),
    ),
    refused(
      'bearer: ES256 label on an RSA signature',
      bearer(`${b64url(JSON.stringify({ ...header, alg: 'ES256' }))}.${p}.${s}`),
    ),
    refused(
      'bearer: alg is a number',
      bearer(`${b64url(JSON.stringify({ ...header, alg: 256 }))}.${p}.${s}`),
    ),
    refused(
      'bearer: jku pointing elsewhere',
      bearer(signed({}, strangerKey, { ...header, jku: 'http://127.0.0.1:1/keys' })),
    ),
    refused(
      'bearer: embedded jwk',
      bearer(signed({}, strangerKey, { ...header, jwk: strangerKey.publicKey.export({ format: 'jwk' }) })),
    ),
    refused('bearer: crit header', bearer(signed({}, issuerKey, { ...header, crit: ['exp'] }))),
    refused('bearer: a valid token after Basic', authorization(`Basic ${validToken}`)),

    // Client certificates that must not identify anyone (and no other credentials).
    refused('certificate: valid, common name not granted', Buffer.alloc(0), certificates.notGranted),
    refused('certificate: from another CA', Buffer.alloc(0), certificates.strangerCa),
    refused('certificate: expired', Buffer.alloc(0), certificates.expired),
    refused('certificate: not yet valid', Buffer.alloc(0), certificates.notYetValid),
    refused(
      'certificate: from another CA, named like the trusted CA',
      Buffer.alloc(0),
      certificates.namedLikeCa,
    ),
    refused('certificate: trusted CA, server use only', Buffer.alloc(0), certificates.serverUsage),
    refused('certificate: from another CA, bad Basic too', basic('alice:wrong'), certificates.strangerCa),
    refused('certificate: expired, forged Bearer too', bearer(signed({}, strangerKey)), certificates.expired),
  ];
  return cases;
}

/** A valid token or Basic header with one random change: a cut, a flipped character, a splice. */
function mutation(next: () => number, validToken: string, tls: ConnectionOptions): AuthCase {
  const valid =
    next() < 0.5
      ? `Bearer ${validToken}`
      : `Basic ${Buffer.from(`alice:${ALICE_PASSWORD}`).toString('base64')}`;
  const scheme = valid.slice(0, valid.indexOf(' ') + 1);
  const credential = valid.slice(scheme.length);
  const at = 1 + Math.floor(next() * (credential.length - 2));
  // Basic credentials have no dots to drop.
  const kind = pick(
    next,
    scheme === 'Bearer '
      ? ['cut', 'flip', 'insert', 'drop-dot', 'repeat']
      : ['cut', 'flip', 'insert', 'repeat'],
  );
  let changed: string;
  switch (kind) {
    case 'cut':
      changed = credential.slice(0, at);
      break;
    case 'flip': {
      const original = credential[at]!;
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.';
      let replacement = pick(next, [...alphabet]);
      if (replacement === original) replacement = original === 'A' ? 'B' : 'A';
      changed = `${credential.slice(0, at)}${replacement}${credential.slice(at + 1)}`;
      break;
    }
    case 'insert':
      changed = `${credential.slice(0, at)}${pick(next, ['.', '=', '%', ' ', '\t', '..'])}${credential.slice(at)}`;
      break;
    case 'drop-dot':
      changed = credential.replace('.', '');
      break;
    default:
      changed = credential.repeat(2 + Math.floor(next() * 3));
  }
  return refused(`mutation ${kind} of ${scheme.trim()} at ${at}`, authorization(`${scheme}${changed}`), tls);
}

async function serveJwks(key: SigningKey): Promise<{ issuer: string; close(): Promise<void> }> {
  const jwk = { ...key.publicKey.export({ format: 'jwk' }), kid: key.kid, alg: 'RS256', use: 'sig' };
  const server: Server = createServer((req, res) => {
    if (req.url === '/keys') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.statusCode = 404;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    issuer: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
