export {
  createHttpForwarder,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_SOCKETS,
  type HttpUpstreamOptions,
} from './forward-http.js';
export { type Forwarder, inProcessForwarder } from './forwarder.js';
export {
  AUTHENTICATE_CHALLENGE,
  buildGateway,
  type GatewayDeps,
  type PullThroughRoute,
  type Upstream,
} from './gateway.js';
export { contextIdentity } from './identity-context.js';
export { sendUpstreamUnavailable, UPSTREAM_UNAVAILABLE_STATUS } from './upstream-error.js';
