import type { IncomingMessage } from 'node:http';
import { createMetrics, silentLogger } from '@angos/observability';
import { configOf } from '@angos/test-support';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BasicAuthenticator } from '../src/authenticate/basic.js';
import { type AuthenticationMethods, authenticateRequest } from '../src/authenticate/chain.js';
import { MemoryCache } from '../src/cache/memory.js';
import { isAuthenticated } from '../src/identity.js';
import { createAuthMetrics } from '../src/metrics.js';
import { JwksSource } from '../src/oidc/jwks.js';
import { OidcProvider } from '../src/oidc/provider.js';
import { closePasswordChecks, passwordChecks, startIssuer, type TestIssuer } from './helpers.js';

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';

let issuer: TestIssuer;
beforeEach(async () => {
  issuer = await startIssuer();
});
afterEach(async () => {
  await issuer.close();
  await closePasswordChecks();
});

function request(authorization?: string, remoteAddress = '::ffff:10.1.2.3'): IncomingMessage {
  return {
    headers: authorization === undefined ? {} : { authorization },
    socket: { remoteAddress },
  } as unknown as IncomingMessage;
}

const basicHeader = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function setup() {
  const config = configOf(`
[auth.identity.alice]
username = "alice"
password = "${ALICE_HASH}"
[auth.oidc.ci]
provider = "generic"
issuer = "${issuer.issuer}"
jwks_uri = "${issuer.jwksUri}"
`);
  const cache = new MemoryCache();
  const oidc = Object.entries(config.auth.oidc).map(
    ([name, provider]) =>
      new OidcProvider(
        name,
        provider,
        new JwksSource({
          issuer: provider.issuer,
          jwksUri: provider.jwks_uri,
          refreshSeconds: 3600,
          cache: () => cache,
        }),
      ),
  );
  const methods: AuthenticationMethods = {
    basic: new BasicAuthenticator(config.auth.identity, passwordChecks()),
    oidc,
  };
  const metrics = createMetrics({ defaultMetrics: false });
  const authenticate = (req: IncomingMessage) =>
    authenticateRequest(req, methods, createAuthMetrics(metrics), silentLogger);
  return { authenticate, metrics };
}

describe('authenticateRequest', () => {
  it('is anonymous without credentials, with the client address', async () => {
    const { authenticate } = setup();
    const identity = await authenticate(request());
    expect(identity).toEqual({ client_ip: '10.1.2.3' });
    expect(isAuthenticated(identity)).toBe(false);
  });

  it('authenticates basic credentials', async () => {
    const { authenticate } = setup();
    expect(await authenticate(request(basicHeader('alice', 'alice-secret')))).toEqual({
      client_ip: '10.1.2.3',
      id: 'alice',
      username: 'alice',
    });
  });

  it('authenticates a bearer token', async () => {
    const { authenticate } = setup();
    const identity = await authenticate(request(`Bearer ${await issuer.sign({ actor: 'octocat' })}`));
    expect(identity.oidc).toMatchObject({ provider_name: 'ci', claims: { actor: 'octocat' } });
    expect(identity.username).toBeUndefined();
  });

  it('authenticates a token sent as Basic credentials with the provider name as username (docker login)', async () => {
    const { authenticate } = setup();
    const identity = await authenticate(request(basicHeader('ci', await issuer.sign())));
    expect(identity.oidc?.provider_name).toBe('ci');
  });

  it('continues anonymously after credentials that fail (fail-open), counting each method', async () => {
    const { authenticate, metrics } = setup();
    const expired = await issuer.sign({}, { expiresIn: -3600 });
    for (const header of [
      basicHeader('alice', 'wrong'),
      `Bearer ${expired}`,
      basicHeader('ci', expired),
      'Bearer not-a-jwt',
    ]) {
      expect(isAuthenticated(await authenticate(request(header)))).toBe(false);
    }
    const text = (await metrics.render()).body;
    // The token sent as Basic credentials fails as OIDC, then as basic (no user "ci").
    expect(text).toContain('auth_attempts_total{method="basic",result="failed"} 2');
    expect(text).toContain('auth_attempts_total{method="oidc",result="failed"} 3');
  });
});
