export * from './cache/index.js';
export { checkUpstreamConfig } from './check.js';
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
  UpstreamError,
  type UpstreamErrorDetails,
  type UpstreamErrorKind,
  UpstreamSetupError,
} from './errors.js';
export { DEFAULT_UPSTREAM_TIMEOUTS, type UpstreamTimeouts } from './transport.js';
export { VerifyingStream } from './verify.js';
