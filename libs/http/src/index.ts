export {
  ACCESS_LOG_TARGET,
  type AuthMethod,
  authMethod,
  bytesIn,
  bytesOut,
  identityName,
} from './access-log.js';
export {
  decodeContext,
  encodeContext,
  getContext,
  type Identity,
  InvalidContextError,
  type PolicyIdentity,
  type RequestContext,
  setContext,
} from './context.js';
export { announcesBody, type Handler, requestPath, requestQuery } from './handler.js';
export { type HealthOptions, healthHandler, isServiceEndpoint } from './health.js';
export {
  IN_FLIGHT_COUNTER_BYTES,
  type InFlightCounter,
  localInFlightCounter,
  sharedInFlightCounter,
} from './in-flight.js';
export {
  CONTEXT_HEADER,
  createInternalVerifier,
  createRequestSigner,
  INTERNAL_HEADER_PREFIX,
  type InternalRequestVerifier,
  type NonceMemory,
  type RequestSigner,
  SOURCE_TIMESTAMP_HEADER,
  stripInternalHeaders,
} from './internal.js';
export {
  deriveSigningKey,
  formatSignature,
  parseSignature,
  SIGNATURE_HEADER,
  type SignedFields,
} from './internal-signature.js';
export {
  BODY_IDLE_TIMEOUT_MS,
  RETRY_AFTER_SECS,
  type RefusalReason,
  type RequestLimits,
} from './limits.js';
export {
  CLIENT_CLOSED_STATUS,
  methodLabel,
  type ObservabilityOptions,
  routeLabel,
  withObservability,
} from './observe.js';
export { type Admission, DEFAULT_NONCE_CAPACITY, ReplayGuard, SIGNATURE_WINDOW_MS } from './replay-guard.js';
export { assignRequestId, REQUEST_ID_HEADER } from './request-id.js';
export { type HeaderValues, sendBody, sendError, sendJson, sendText } from './respond.js';
export {
  createHttpServer,
  HEADERS_TIMEOUT_MS,
  type HttpServerOptions,
  INTERNAL_MAX_HEADER_SIZE,
  KEEP_ALIVE_TIMEOUT_MS,
  MAX_HEADER_SIZE,
} from './server.js';
export {
  SHARED_NONCE_MEMORY_BYTES,
  SharedReplayGuard,
  type SharedReplayGuardOptions,
} from './shared-replay-guard.js';
