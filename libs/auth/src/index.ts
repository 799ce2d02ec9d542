export { type Auth, type AuthOptions, createAuth } from './auth.js';
export {
  Argon2JobFailed,
  Argon2Pool,
  Argon2PoolBusy,
  type Argon2PoolLimits,
  type Argon2PoolStats,
} from './authenticate/argon2-pool.js';
export {
  BasicAuthenticator,
  type BasicIdentity,
  FailedPasswords,
  type FailureLimit,
  type PasswordChecks,
  VerifiedPasswords,
} from './authenticate/basic.js';
export { type AuthenticationMethods, authenticateRequest } from './authenticate/chain.js';
export { attemptKey, DEFAULT_TRACKED_ADDRESSES, FailedAttempts } from './authenticate/failed-attempts.js';
export { authenticateCertificate } from './authenticate/mtls.js';
export type { StepOutcome } from './authenticate/outcome.js';
export { AuthenticationRefused } from './authenticate/refused.js';
export {
  type Authorization,
  type AuthorizationSetup,
  authorizeRequest,
  type DecidedBy,
} from './authorize.js';
export { AuthenticatedCache } from './cache/authenticated.js';
export { cacheSettingsKey, createCache } from './cache/create.js';
export { MemoryCache } from './cache/memory.js';
export { RedisCache } from './cache/redis.js';
export type { AuthCache } from './cache/types.js';
export { type Credentials, readCredentials } from './credentials.js';
export {
  type AuthMethod,
  type CertificateIdentity,
  type Identity,
  isAuthenticated,
  normalizeClientIp,
  type OidcIdentity,
} from './identity.js';
export { type AuthMetrics, createAuthMetrics, type WebhookResult } from './metrics.js';
export { discoverJwksUri, discoveryUrl } from './oidc/discovery.js';
export { DocumentFetchError, type FetchLike, fetchJson } from './oidc/fetch-json.js';
// The OIDC verifiers live behind `@angos/auth/oidc`: they bring jose (~7 MiB of RSS), which loads
// only when an `[auth.oidc]` provider is configured.
export type { JwksSource, JwksSourceOptions } from './oidc/jwks.js';
export type { OidcProvider, TokenVerdict } from './oidc/provider.js';
export {
  type CompiledPolicies,
  type CompiledPolicy,
  type CompiledRule,
  compilePolicies,
  PolicyCompileError,
} from './policy/compile.js';
export { activation, IDENTITY_SCHEMA, policyEnvironment, REQUEST_SCHEMA } from './policy/environment.js';
export {
  evaluatePolicy,
  type PolicyDecision,
  RULE_FAILURE_WARN_INTERVAL_MS,
  RuleFailureLog,
} from './policy/evaluate.js';
export { GLOBAL_ACCESS_POLICY_KEY, refusesEveryRequest } from './policy/refuses-all.js';
export { webhookNameFor } from './repository.js';
export { type AccessRequest, describeRequest, mountFallbackRequest, mountSourceRequest } from './request.js';
export {
  type AuthResources,
  type AuthSetup,
  argon2Limits,
  buildAuthSetup,
  checkAuthConfig,
} from './setup.js';
export {
  createWebhookAgent,
  WebhookAuthorizer,
  type WebhookDecision,
  WebhookSetupError,
} from './webhook/authorizer.js';
export { type ClientRequestDetails, webhookCredentials, webhookHeaders } from './webhook/headers.js';
