import { type Config, loadConfig } from '@angos/config';
import { createLogger, inSpan, type Logger } from '@angos/observability';
import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../errors.js';
import { holdInstanceLock, InstanceLockRefusal } from '../open-storage.js';
import { executeScrub, planScrub, SCRUB_FLAG_NAMES } from '../scrub.js';
import { configHash, handOffScrub, handoffSocketPath } from '../scrub-handoff.js';
import { startTracingFor } from '../tracing.js';
import { commandSpec } from './flags.js';
import type { GlobalOptions } from './global.js';
import { withFlags } from './yargs-flags.js';

interface ScrubOptions extends GlobalOptions {
  'dry-run': boolean;
  uploads?: string;
  multipart?: string;
  tags?: boolean;
  manifests?: boolean;
  blobs?: boolean;
  links?: boolean;
  'media-types'?: boolean;
  referrers?: boolean;
  retention?: boolean;
  'reconcile-blob-index'?: boolean;
  'orphan-grants'?: string;
  'orphan-namespaces'?: boolean;
  'cache-orphans'?: boolean;
  'replication-orphans'?: boolean;
  replicate?: boolean;
}

const SCRUB = commandSpec('scrub');

/** The processes that take a scrub handed off to them (compose.ts starts the socket in each). */
const SERVING_HOLDERS = ['angos server', 'angos registry-api', 'angos pull-through-cache'];

/**
 * The scrub run in a trace of its own when `[observability.tracing]` is configured: its storage and
 * lock spans nest in one `scrub` span, exported before the command exits.
 */
async function runScrub(options: ScrubOptions): Promise<void> {
  const { config } = await loadConfig(options.config);
  const logger = createLogger({ filter: process.env['RUST_LOG'] }).child('scrub');
  const tracing = await startTracingFor(config, 'scrub', logger);
  try {
    await inSpan('scrub', { root: true }, () => scrubWith(options, config, logger));
  } finally {
    await tracing.shutdown();
  }
}

async function scrubWith(options: ScrubOptions, config: Config, logger: Logger): Promise<void> {
  const raw = options as unknown as Record<string, unknown>;
  const flags = Object.fromEntries(SCRUB_FLAG_NAMES.map((name) => [name, raw[name]]));
  const plan = planScrub(flags);
  const target = { config, logger, progress: process.stderr };
  // A dry run only reads, and runs beside a server.
  if (plan.dryRun) return executeScrub(plan, target);
  // A repairing run writes: with the memory lock it must be the directory's only writer, and keeps
  // a server from starting until it ends; beside a live server it is handed to that server.
  let instance: Awaited<ReturnType<typeof holdInstanceLock>>;
  try {
    instance = await holdInstanceLock(config, 'scrub', logger);
  } catch (error) {
    if (!(error instanceof InstanceLockRefusal)) throw error;
    return handOff(flags, config, options.config, error);
  }
  try {
    await executeScrub(plan, target);
  } finally {
    await instance?.release();
  }
}

/**
 * Hands the run to the live server on this host that holds the instance lock (scrub-handoff.ts).
 * When that cannot be done (another kind of holder, another host, no socket) it refuses as the
 * lock does, saying why the hand-off was not made.
 */
async function handOff(
  flags: Record<string, unknown>,
  config: Config,
  configPath: string,
  refusal: InstanceLockRefusal,
): Promise<void> {
  const { holder, root } = refusal.held;
  const refuse = (why: string): never => {
    throw new CliError([...refusal.lines, `scrub could not hand its run to that process: ${why}`]);
  };
  if (!SERVING_HOLDERS.includes(holder.command)) return refuse(`${holder.command} does not take scrub runs`);
  if (!refusal.onThisHost) return refuse('it runs on another host');
  const socket = handoffSocketPath(root);
  if (!('path' in socket)) return refuse(socket.unusable);
  try {
    await handOffScrub(socket.path, {
      flags,
      configHash: configHash(config),
      configPath,
      logFilter: process.env['RUST_LOG'],
      tty: process.stderr.isTTY === true,
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return refuse(`nothing listens on ${socket.path}`);
    if (code === 'EACCES')
      return refuse(`${socket.path} is the server's user's only: run scrub as that user`);
    throw error;
  }
}

export const scrubCommand: CommandModule<GlobalOptions, ScrubOptions> = {
  command: SCRUB.name,
  describe: SCRUB.describe,
  builder: (yargs: Argv<GlobalOptions>) => withFlags(yargs, SCRUB.flags) as Argv<ScrubOptions>,
  handler: (options) => runScrub(options),
};
