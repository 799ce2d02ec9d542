export { argon2HashProblem } from './argon2-hash.js';
export { ConfigError, type ConfigIssue, type ConfigWarning, formatIssue, isConfigError } from './errors.js';
export { formatKeyPath, type KeyPath, type PathSegment, type QuotedKey, quoted } from './key-path.js';
export { downstreamNamespace, namespacesOverlap, remoteNamespace } from './namespace.js';
export { type LoadedConfig, loadConfig, parseConfig } from './parse.js';
export { hasPullThroughRepositories, isPullThroughNamespace, mirrorNamespace } from './pull-through.js';
export { repositoryFor, repositoryKeyFor } from './repository-key.js';
export { restartRequiredChanges } from './restart.js';
export { configShape } from './root.js';
export type { Schema, Shape } from './schema.js';
export { GITHUB_ISSUER, GITHUB_JWKS_URI, JWT_ALGORITHMS } from './sections/auth.js';
export { EVENT_KINDS, EVENT_WEBHOOK_POLICIES } from './sections/event-webhook.js';
export { lockBackend } from './sections/lock-strategy.js';
export { DOWNSTREAM_MODES } from './sections/repository.js';
export { formatSize, parseSize, type SizeResult } from './size.js';
export type * from './types.js';
export {
  type ConfigWatcher,
  type ConfigWatchHandlers,
  type ConfigWatchOptions,
  watchConfig,
} from './watch.js';
