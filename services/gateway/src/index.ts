export { type Authorization, authorize } from './authorize.js';
export {
  createHttpForwarder,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MAX_SOCKETS,
  type HttpUpstreamOptions,
} from './forward-http.js';
export { type Forwarder, inProcessForwarder } from './forwarder.js';
export { AUTHENTICATE_CHALLENGE, buildGateway, type GatewayDeps, type Upstream } from './gateway.js';
export {
  type AccessPolicySection,
  type AccessRequest,
  DEFAULT_DECISION,
  type Decision,
  decide,
  type PolicyConfig,
  policyFor,
  repositoryKeyFor,
} from './policy.js';
export { sendUpstreamUnavailable, UPSTREAM_UNAVAILABLE_STATUS } from './upstream-error.js';
