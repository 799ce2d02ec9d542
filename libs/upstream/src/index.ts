// The transport and authorization of one remote registry, shared with replication (libs/replication)
// for its downstreams: TLS files, mTLS, max_redirect, Basic and Bearer.
export { basicAuthorization, type IssuedToken, type TokenEndpoint, UpstreamAuth } from './auth.js';
export * from './cache/index.js';
export { checkUpstreamConfig } from './check.js';
export {
  type BlobRequestOptions,
  type ManifestHead,
  nextTagListPage,
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
export {
  DEFAULT_UPSTREAM_TIMEOUTS,
  header,
  type RequestBody,
  readBody,
  type SendOptions,
  Transport,
  type UpstreamTimeouts,
} from './transport.js';
export { VerifyingStream } from './verify.js';
