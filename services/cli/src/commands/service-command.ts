import { createLogger } from '@angos/observability';
import type { Argv, CommandModule } from 'yargs';
import { type ServiceKind, startService } from '../service.js';
import { shutdownSignal } from '../shutdown.js';
import { parseWorkers } from '../workers.js';
import { commandSpec } from './flags.js';
import type { GlobalOptions } from './global.js';
import { withFlags } from './yargs-flags.js';

interface ServiceOptions extends GlobalOptions {
  listen?: string;
  workers?: string;
}

/**
 * Runs a service until SIGTERM or SIGINT, then drains it; a second signal while it drains exits
 * at once (shutdownSignal).
 */
async function runUntilSignal(kind: ServiceKind, options: ServiceOptions): Promise<void> {
  const logger = createLogger({ filter: process.env['RUST_LOG'] });
  // Listened for from the start: a signal while the service starts (its serving threads take a
  // moment after the first one answers) drains it once started, instead of killing the process.
  const signalled = shutdownSignal(logger);
  const service = await startService({
    kind,
    configPath: options.config,
    listen: options.listen,
    workers: options.workers === undefined ? undefined : parseWorkers(options.workers),
    logger,
  });
  await service.close(await signalled);
}

/** `server`, `registry-api`, `gateway`: same options, different composition. */
export function serviceCommand(kind: ServiceKind): CommandModule<GlobalOptions, ServiceOptions> {
  const spec = commandSpec(kind);
  return {
    command: spec.name,
    describe: spec.describe,
    builder: (yargs: Argv<GlobalOptions>) => withFlags(yargs, spec.flags) as Argv<ServiceOptions>,
    handler: (options) => runUntilSignal(kind, options),
  };
}
