import { createLogger } from '@angos/observability';
import type { Argv, CommandModule } from 'yargs';
import { parseDurationMs } from '../duration.js';
import { CliError } from '../errors.js';
import { isJobQueueName, JOB_QUEUE_NAMES, type JobQueueName } from '../jobs.js';
import { shutdownSignal } from '../shutdown.js';
import { startWorker } from '../worker.js';
import { commandSpec } from './flags.js';
import type { GlobalOptions } from './global.js';
import { withFlags } from './yargs-flags.js';

interface WorkerOptions extends GlobalOptions {
  /** One string per `--queue` given (yargs makes an array of a repeated option). */
  queue?: string | string[];
  'poll-interval': string;
  listen?: string;
}

const WORKER = commandSpec('worker');

/** The `--queue` values, checked; every queue when none is given. */
function queuesOf(given: string | string[] | undefined): readonly JobQueueName[] {
  if (given === undefined) return JOB_QUEUE_NAMES;
  const names = [...new Set(Array.isArray(given) ? given : [given])];
  const unknown = names.filter((name) => !isJobQueueName(name));
  if (unknown.length > 0) {
    throw new CliError([
      ...unknown.map(
        (name) =>
          `--queue: unknown queue "${name}" (expected ${JOB_QUEUE_NAMES.slice(0, -1).join(', ')} or ${JOB_QUEUE_NAMES.at(-1)})`,
      ),
      'Run `angos worker --help` for usage.',
    ]);
  }
  return names as JobQueueName[];
}

function pollIntervalOf(text: string): number {
  const ms = parseDurationMs('poll-interval', text);
  if (ms === 0) throw new CliError(['--poll-interval: must be more than 0']);
  return ms;
}

/** Runs the worker until SIGTERM or SIGINT; a second signal exits at once (shutdownSignal). */
async function runWorker(options: WorkerOptions): Promise<void> {
  const queues = queuesOf(options.queue);
  const pollIntervalMs = pollIntervalOf(options['poll-interval']);
  const logger = createLogger({ filter: process.env['RUST_LOG'] });
  const worker = await startWorker({
    configPath: options.config,
    queues,
    pollIntervalMs,
    listen: options.listen,
    logger,
  });
  const signal = await shutdownSignal(logger);
  await worker.close(signal);
}

export const workerCommand: CommandModule<GlobalOptions, WorkerOptions> = {
  command: WORKER.name,
  describe: WORKER.describe,
  builder: (yargs: Argv<GlobalOptions>) => withFlags(yargs, WORKER.flags) as Argv<WorkerOptions>,
  handler: (options) => runWorker(options),
};
