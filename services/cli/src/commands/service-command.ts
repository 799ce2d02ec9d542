import type { Argv, CommandModule } from 'yargs';
import { type ServiceKind, startService } from '../service.js';
import { shutdownSignal } from '../shutdown.js';
import type { GlobalOptions } from './global.js';

interface ServiceOptions extends GlobalOptions {
  listen?: string;
}

/** Runs a service until SIGTERM or SIGINT, then drains it. */
async function runUntilSignal(kind: ServiceKind, options: ServiceOptions): Promise<void> {
  const service = await startService({ kind, configPath: options.config, listen: options.listen });
  await shutdownSignal();
  await service.close();
}

/** `server`, `registry-api`, `gateway`: same options, different composition. */
export function serviceCommand(
  kind: ServiceKind,
  describe: string,
): CommandModule<GlobalOptions, ServiceOptions> {
  return {
    command: kind,
    describe,
    builder: (yargs: Argv<GlobalOptions>) =>
      yargs.option('listen', {
        type: 'string',
        describe: 'Address to listen on, HOST:PORT (default: [server] bind_address and port)',
      }) as Argv<ServiceOptions>,
    handler: (options) => runUntilSignal(kind, options),
  };
}
