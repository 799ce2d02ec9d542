export { basicAuthorization, type IssuedToken, type TokenEndpoint, UpstreamAuth } from './auth.js';
export { type Challenge, parseChallenges } from './challenge.js';
export {
  type ManifestHead,
  type RequestOptions,
  type UpstreamBlob,
  UpstreamClient,
  type UpstreamClientOptions,
  type UpstreamManifest,
  type UpstreamReferrers,
} from './client.js';
export {
  isUpstreamError,
  parseRetryAfter,
  UpstreamError,
  type UpstreamErrorDetails,
  type UpstreamErrorKind,
  UpstreamSetupError,
} from './errors.js';
export { DEFAULT_TOKEN_LIFETIME_SECONDS, TokenCache } from './tokens.js';
export { DEFAULT_UPSTREAM_TIMEOUTS, type UpstreamTimeouts } from './transport.js';
export { VerifyingStream } from './verify.js';
