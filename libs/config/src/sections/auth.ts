import { formatKeyPath } from '../key-path.js';
import {
  argon2Hash,
  headerName,
  httpUrl,
  integer,
  nonEmptyString,
  oneOf,
  secureUrl,
  string,
} from '../scalars.js';
import {
  arrayOf,
  type Fields,
  optional,
  record,
  refine,
  required,
  type Schema,
  table,
  tagged,
  withDefault,
} from '../schema.js';
import type {
  AuthConfig,
  AuthWebhookConfig,
  BasicAuthConfig,
  GenericOidcConfig,
  GithubOidcConfig,
  IdentityConfig,
  OidcConfig,
} from '../types.js';
import { requireBoth } from './pairs.js';

export const identitySchema = table<IdentityConfig>({
  // RFC 7617: the user-id of HTTP Basic credentials cannot contain a colon.
  username: required(
    refine(nonEmptyString(), (name) => (name.includes(':') ? 'must not contain ":"' : undefined)),
  ),
  password: required(argon2Hash()),
});

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const GITHUB_JWKS_URI = 'https://token.actions.githubusercontent.com/.well-known/jwks';

/** JWS algorithms a JWKS-verified token may use (`none` and HMAC are never acceptable here). */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;

const allowedAlgorithms = () =>
  arrayOf(oneOf(JWT_ALGORITHMS), {
    expected: 'expected array of JWT algorithm names',
    minItems: 1,
    tooFew: 'must list at least one algorithm',
  }) as Schema<string[]>;

const oidcCommonFields = {
  jwks_refresh_interval: withDefault(integer('u64', { nonZero: true }), 3600),
  required_audience: optional(nonEmptyString()),
  clock_skew_tolerance: withDefault(integer('u64'), 60),
  allowed_algorithms: withDefault(allowedAlgorithms(), () => ['RS256']),
};

const githubOidcSchema = table<GithubOidcConfig>(
  {
    provider: required(oneOf(['github'] as const)),
    issuer: withDefault(secureUrl(), GITHUB_ISSUER),
    jwks_uri: withDefault(secureUrl(), GITHUB_JWKS_URI),
    ...oidcCommonFields,
  } satisfies Fields<GithubOidcConfig>,
  {
    check(provider, at) {
      // GitHub signs tokens for every workflow of every repository, for any audience they ask for.
      if (provider.required_audience === undefined) {
        at.warn(
          'required_audience',
          'not set: any GitHub Actions token is accepted, whatever audience it was minted for; set the audience your workflows request',
        );
      }
    },
  },
);

const genericOidcSchema = table<GenericOidcConfig>({
  provider: required(oneOf(['generic'] as const)),
  issuer: required(secureUrl()),
  jwks_uri: optional(secureUrl()),
  ...oidcCommonFields,
} satisfies Fields<GenericOidcConfig>);

/** `[auth.oidc.<name>]`: `provider` selects the table's defaults and requirements. */
export const oidcSchema = tagged<OidcConfig>('provider', {
  github: githubOidcSchema,
  generic: genericOidcSchema,
});

const basicAuthSchema = table<BasicAuthConfig>({
  username: required(nonEmptyString()),
  password: required(string()),
});

export const authWebhookSchema = table<AuthWebhookConfig>(
  {
    url: required(httpUrl()),
    timeout_ms: required(integer('u64')),
    bearer_token: optional(nonEmptyString()),
    basic_auth: optional(basicAuthSchema),
    client_certificate_bundle: optional(nonEmptyString()),
    client_private_key: optional(nonEmptyString()),
    server_ca_bundle: optional(nonEmptyString()),
    forward_headers: withDefault(
      arrayOf(headerName(), { expected: 'expected array of header names' }),
      () => [],
    ),
    cache_ttl: withDefault(integer('u64'), 60),
  },
  {
    check(webhook, at) {
      requireBoth(webhook, 'client_certificate_bundle', 'client_private_key', at);
      // Both would claim the one Authorization header.
      if (webhook.bearer_token !== undefined && webhook.basic_auth !== undefined) {
        at.error('basic_auth', 'cannot be combined with bearer_token; choose one');
      }
    },
  },
);

export const authSchema = table<AuthConfig>({
  identity: withDefault(
    record(identitySchema, {
      placeholder: '<name>',
      check(identities, at, segment) {
        // Two entries with one username would make Basic credentials ambiguous.
        const firstWithName = new Map<string, string>();
        for (const [name, identity] of Object.entries(identities)) {
          const first = firstWithName.get(identity.username);
          if (first === undefined) firstWithName.set(identity.username, name);
          else {
            const original = formatKeyPath(['auth', 'identity', first]);
            at.error([segment(name), 'username'], `duplicates the username of ${original}`);
          }
        }
      },
    }),
    () => ({}),
  ),
  oidc: withDefault(record(oidcSchema, { placeholder: '<name>' }), () => ({})),
  webhook: withDefault(record(authWebhookSchema, { placeholder: '<name>' }), () => ({})),
  // Specific to this implementation: what a flood of wrong passwords may cost (issue 2.3).
  password_verify_concurrency: withDefault(integer('u8', { nonZero: true }), 2),
  password_verify_queue: withDefault(integer('u32'), 100),
  failed_auth_limit: withDefault(integer('u32'), 10),
  failed_auth_window_secs: withDefault(integer('u32', { nonZero: true }), 60),
});
