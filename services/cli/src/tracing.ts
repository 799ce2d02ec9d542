import type { Config } from '@angos/config';
import { type Logger, startTracing, type TracingHandle } from '@angos/observability';
import { buildInfo } from './version.js';

/** The commands that trace, as `service.name` reads (`angos-<command>`) unless OTEL_SERVICE_NAME says otherwise. */
export type TracedCommand = 'server' | 'gateway' | 'registry-api' | 'pull-through-cache' | 'worker' | 'scrub';

const NOT_TRACING: TracingHandle = { shutdown: async () => {}, forceFlush: async () => {} };

/**
 * Starts OpenTelemetry for one command when `[observability.tracing]` is configured; otherwise
 * nothing is loaded, exported or logged. Turning tracing on or off, or changing its settings,
 * takes a restart (config/restart.ts): the SDK is set up once per process.
 */
export async function startTracingFor(
  config: Config,
  command: TracedCommand,
  logger: Logger,
): Promise<TracingHandle> {
  const settings = config.observability.tracing;
  if (settings === undefined) return NOT_TRACING;
  const handle = await startTracing({
    endpoint: settings.endpoint,
    samplingRate: settings.sampling_rate,
    serviceName: `angos-${command}`,
    serviceVersion: buildInfo().version,
    logger,
  });
  logger.info('tracing enabled', { endpoint: settings.endpoint, sampling_rate: settings.sampling_rate });
  return handle;
}
