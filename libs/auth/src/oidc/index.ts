/**
 * `@angos/auth/oidc`: the OIDC token verifiers, apart from the package entry because they bring
 * jose (~7 MiB of RSS); the gateway loads them only when an `[auth.oidc]` provider is configured.
 */
export { DEFAULT_JWKS_COOLDOWN_MS, JwksSource, type JwksSourceOptions } from './jwks.js';
export { OidcProvider, type TokenVerdict, unverifiedIssuer } from './provider.js';
