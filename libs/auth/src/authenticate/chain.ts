import type { IncomingMessage } from 'node:http';
import type { Logger } from '@angos/observability';
import { readCredentials } from '../credentials.js';
import { type AuthMethod, type Identity, normalizeClientIp, type OidcIdentity } from '../identity.js';
import type { AuthMetrics } from '../metrics.js';
import type { OidcProvider } from '../oidc/provider.js';
import type { BasicAuthenticator, BasicIdentity } from './basic.js';
import { authenticateCertificate } from './mtls.js';
import { ABSENT, authenticated, rejected, type StepOutcome } from './outcome.js';
import { AuthenticationRefused } from './refused.js';

/** The configured methods, rebuilt when the configuration changes. */
export interface AuthenticationMethods {
  readonly basic: BasicAuthenticator;
  /** In the order of `[auth.oidc.<name>]` tables in the configuration. */
  readonly oidc: readonly OidcProvider[];
}

async function verifyWith(
  providers: readonly OidcProvider[],
  token: string,
): Promise<StepOutcome<OidcIdentity>> {
  const reasons: string[] = [];
  for (const provider of providers) {
    const verdict = await provider.verify(token);
    if (verdict.valid) return authenticated(verdict.identity);
    reasons.push(`${provider.name}: ${verdict.reason}`);
  }
  return rejected(reasons.join('; '));
}

/** A bearer token goes to the providers whose issuer it names. */
async function verifyBearer(
  providers: readonly OidcProvider[],
  token: string,
): Promise<StepOutcome<OidcIdentity>> {
  // Not a static import: the module brings jose (~7 MiB of RSS), which only a configured provider
  // should load. There is one here, so the setup has loaded the module and this is a cache lookup.
  const { unverifiedIssuer } = await import('../oidc/provider.js');
  const issuer = unverifiedIssuer(token);
  const candidates = providers.filter((provider) => provider.issuer === issuer);
  if (candidates.length === 0) {
    return rejected(`no [auth.oidc] provider with issuer ${JSON.stringify(issuer ?? null)}`);
  }
  return verifyWith(candidates, token);
}

/** Basic authentication; a refusal (429, 503) counts as a failed attempt and ends the request. */
async function basicStep(
  basic: BasicAuthenticator,
  credentials: { readonly username: string; readonly password: string },
  clientIp: string,
  metrics: AuthMetrics,
  logger: Logger,
): Promise<StepOutcome<BasicIdentity>> {
  try {
    return await basic.authenticate(credentials.username, credentials.password, clientIp);
  } catch (error) {
    if (error instanceof AuthenticationRefused) {
      metrics.attempt('basic', 'failed');
      logger.debug('authentication refused', { method: 'basic', reason: error.message, client_ip: clientIp });
    }
    throw error;
  }
}

/**
 * The authentication chain: mTLS, then OIDC, then basic. Each method that sees credentials it
 * handles records an attempt; a rejection lets the next method try (fail-open), and a request
 * with no accepted credentials is anonymous. mTLS contributes the certificate and the
 * `Authorization` header then contributes the user, so one identity can carry both.
 * OIDC tokens arrive as `Authorization: Bearer <token>` or, for `docker login`, as Basic
 * credentials whose username is the provider's name and whose password is the token.
 * Throws {@link AuthenticationRefused} when basic authentication declines to check a password:
 * the address failed too often lately (429), or too many checks are waiting (503).
 */
export async function authenticateRequest(
  req: IncomingMessage,
  methods: AuthenticationMethods,
  metrics: AuthMetrics,
  logger: Logger,
): Promise<Identity> {
  const identity: {
    client_ip: string;
    id?: string;
    username?: string;
    certificate?: Identity['certificate'];
    oidc?: OidcIdentity;
  } = { client_ip: normalizeClientIp(req.socket.remoteAddress) };

  const record = <T>(method: AuthMethod, step: StepOutcome<T>): T | undefined => {
    if (step.outcome === 'absent') return undefined;
    metrics.attempt(method, step.outcome === 'authenticated' ? 'success' : 'failed');
    if (step.outcome === 'rejected') {
      logger.debug('authentication rejected', { method, reason: step.reason, client_ip: identity.client_ip });
      return undefined;
    }
    return step.value;
  };

  const certificate = record('mtls', authenticateCertificate(req.socket));
  if (certificate !== undefined) identity.certificate = certificate;

  const credentials = readCredentials(req.headers);
  if (credentials === undefined) return identity;

  if (credentials.kind === 'bearer') {
    const oidc = record(
      'oidc',
      methods.oidc.length === 0 ? ABSENT : await verifyBearer(methods.oidc, credentials.token),
    );
    if (oidc !== undefined) identity.oidc = oidc;
    return identity;
  }

  const provider = methods.oidc.find((candidate) => candidate.name === credentials.username);
  if (provider !== undefined) {
    const oidc = record('oidc', await verifyWith([provider], credentials.password));
    if (oidc !== undefined) {
      identity.oidc = oidc;
      return identity;
    }
  }

  const basic = record(
    'basic',
    await basicStep(methods.basic, credentials, identity.client_ip, metrics, logger),
  );
  if (basic !== undefined) {
    identity.id = basic.id;
    identity.username = basic.username;
  }
  return identity;
}
