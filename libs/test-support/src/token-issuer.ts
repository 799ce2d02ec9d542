import { execFileSync } from 'node:child_process';
import { randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { listenOnFreePort } from './listen.js';

/** One `access` entry of a distribution token: what may be done to which repository. */
export interface TokenAccess {
  readonly type: 'repository';
  readonly name: string;
  readonly actions: readonly string[];
}

/** One token request the issuer answered, as the tests inspect them. */
export interface TokenRequest {
  readonly service: string | null;
  readonly scopes: readonly string[];
  /** The username of valid Basic credentials; undefined for an anonymous request. */
  readonly username: string | undefined;
  readonly status: number;
}

export interface TokenIssuerSettings {
  /** `expires_in` of the answers, and the token's lifetime. */
  lifetimeSeconds: number;
  /** `requested`: the pull and push the scopes ask for; `nothing`: a valid token without access. */
  grant: 'requested' | 'nothing';
  /** Whether a request without credentials is refused (401) rather than served anonymously. */
  requireCredentials: boolean;
}

export interface TokenIssuer {
  /** The realm: `http://127.0.0.1:<port>/token`. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** The self-signed certificate whose key signs the tokens: distribution's `rootcertbundle`. */
  readonly certPath: string;
  /** Every token request so far, oldest first. */
  readonly requests: readonly TokenRequest[];
  /** Changed by tests between requests. */
  readonly settings: TokenIssuerSettings;
  /** A signed token granting `access`, as the realm would hand out. */
  mint(access: readonly TokenAccess[], subject?: string): string;
  stop(): Promise<void>;
}

export interface TokenIssuerOptions {
  /** Holds the signing key and certificate. */
  readonly dir: string;
  /** Basic credentials the issuer accepts; wrong ones are always refused. */
  readonly credentials?: { readonly username: string; readonly password: string };
  readonly service?: string;
  readonly issuer?: string;
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * A token server for CNCF distribution's `auth.token` (the Docker registry token specification):
 * GET /token?service=…&scope=repository:<name>:pull,push answers `{token, access_token,
 * expires_in, issued_at}`. The tokens are ES256 JWTs whose `x5c` header carries the signing
 * certificate, which distribution checks against `rootcertbundle`. It counts and records every
 * request, so tests can see the Bearer flow exactly as Docker Hub's clients drive it.
 */
export async function startTokenIssuer(options: TokenIssuerOptions): Promise<TokenIssuer> {
  const keyPath = join(options.dir, 'token-signing.key');
  const certPath = join(options.dir, 'token-signing.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=angos test token issuer',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const key = readFileSync(keyPath);
  const certDer = new X509Certificate(readFileSync(certPath)).raw;
  const service = options.service ?? 'angos-test-upstream';
  const issuer = options.issuer ?? 'angos-test-issuer';
  const settings: TokenIssuerSettings = {
    lifetimeSeconds: 300,
    grant: 'requested',
    requireCredentials: false,
  };
  const requests: TokenRequest[] = [];

  const mint = (access: readonly TokenAccess[], subject = '') => {
    const now = Math.floor(Date.now() / 1000);
    const head = base64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }));
    const claims = base64url(
      JSON.stringify({
        iss: issuer,
        sub: subject,
        aud: service,
        exp: now + settings.lifetimeSeconds,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      }),
    );
    const signature = sign('sha256', Buffer.from(`${head}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
    return `${head}.${claims}.${base64url(signature)}`;
  };

  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    const scopes = url.searchParams.getAll('scope');
    const respond = (status: number, body: unknown, username?: string) => {
      requests.push({ service: url.searchParams.get('service'), scopes, username, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== '/token') return respond(404, { errors: [{ code: 'NOT_FOUND' }] });
    const username = checkBasic(req.headers.authorization, options.credentials);
    if (username === null || (username === undefined && settings.requireCredentials)) {
      return respond(401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad or missing credentials' }] });
    }
    const access: TokenAccess[] =
      settings.grant === 'nothing'
        ? []
        : scopes.flatMap((scope) => {
            const [type, name, actions] = splitScope(scope);
            return type === 'repository' && name !== undefined
              ? [{ type, name, actions: (actions ?? '').split(',').filter((a) => a !== '') }]
              : [];
          });
    const token = mint(access, username ?? '');
    respond(
      200,
      {
        token,
        access_token: token,
        expires_in: settings.lifetimeSeconds,
        issued_at: new Date().toISOString(),
      },
      username,
    );
  };

  const listening = await listenOnFreePort(createServer(answer));
  return {
    realm: `${listening.url}/token`,
    service,
    issuer,
    certPath,
    requests,
    settings,
    mint,
    stop: () => listening.close(),
  };
}

/** `repository:team/app:pull,push` → [type, name, actions]; the name itself may not hold a colon. */
function splitScope(scope: string): [string, string | undefined, string | undefined] {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return [scope, undefined, undefined];
  return [scope.slice(0, first), scope.slice(first + 1, last), scope.slice(last + 1)];
}

/** The username of valid Basic credentials; undefined when none were sent; null when they are wrong. */
function checkBasic(
  header: string | undefined,
  credentials: TokenIssuerOptions['credentials'],
): string | undefined | null {
  if (header === undefined) return undefined;
  if (credentials === undefined || !header.startsWith('Basic ')) return null;
  const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
  return decoded === `${credentials.username}:${credentials.password}` ? credentials.username : null;
}
