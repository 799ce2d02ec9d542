export { runCli } from './cli.js';
export {
  COMMANDS,
  type CommandSpec,
  commandSpec,
  type FlagSpec,
  flagSynopsis,
  GLOBAL_FLAGS,
} from './commands/flags.js';
export {
  type App,
  type AppDeps,
  composeGateway,
  composeRegistryApi,
  composeServer,
} from './compose.js';
export { CliError, failureLines } from './errors.js';
export { isJobQueueName, JOB_QUEUE_NAMES, type JobQueueName } from './jobs.js';
export { formatAddress, type ListenAddress, listenOn, parseListen } from './listen.js';
export { createLiveConfig, type LiveConfig, retainKeys } from './live-config.js';
export { createLocks, storesOptions } from './open-storage.js';
export { type RunningService, type ServiceKind, type StartServiceOptions, startService } from './service.js';
export { signalExitStatus } from './shutdown.js';
export { type BuildInfo, buildInfo, versionLine } from './version.js';
export { type RunningWorker, type StartWorkerOptions, startWorker, WORKER_PORT } from './worker.js';

import type { Logger } from '@angos/observability';
import { type RunningService, startService } from './service.js';

export interface StartServerOptions {
  readonly configPath: string;
  /** `HOST:PORT`; default `[server] bind_address` and `port`. */
  readonly listen?: string;
  /** Serving threads; default `[server] workers`, else one per CPU the process may use. */
  readonly workers?: number;
  /** Default: a logger on stderr filtered by RUST_LOG. Serving threads but this one log on stderr. */
  readonly logger?: Logger;
}

/** `angos server` in-process: resolves once listening. Used by the end-to-end tests. */
export function startServer(options: StartServerOptions): Promise<RunningService> {
  return startService({ kind: 'server', ...options });
}
