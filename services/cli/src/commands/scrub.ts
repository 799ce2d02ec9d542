import { loadConfig } from '@angos/config';
import { createLogger } from '@angos/observability';
import type { Argv, CommandModule } from 'yargs';
import { holdInstanceLock } from '../compose.js';
import { CliError } from '../errors.js';
import { parseDuration, type StoreScrubRequest, scrubMultipart, scrubStore } from '../scrub.js';
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
}

const SCRUB = commandSpec('scrub');

/**
 * The checks of the CLI reference this build cannot run yet: recognised, so that asking for one
 * says so instead of being rejected as an unknown option.
 */
const LATER_CHECKS = SCRUB.flags.filter((flag) => !flag.supported);

/** The flags that select a check (every supported one but `--dry-run`). */
const CHECK_FLAGS = SCRUB.flags.filter((flag) => flag.supported && flag.name !== 'dry-run');

async function runScrub(options: ScrubOptions): Promise<void> {
  const raw = options as unknown as Record<string, unknown>;
  const asked = (name: string) => raw[name] !== undefined && raw[name] !== false;
  const later = LATER_CHECKS.filter(({ name }) => asked(name));
  if (later.length > 0) throw new CliError(later.map(({ name }) => `not supported yet: scrub --${name}`));
  if (!CHECK_FLAGS.some(({ name }) => asked(name))) {
    throw new CliError([
      'specify which checks to run (e.g. -t -m -b, --uploads 1h, --multipart 24h); see `angos scrub --help`',
    ]);
  }
  const multipartSecs =
    options.multipart === undefined ? undefined : parseDuration('multipart', options.multipart);
  const uploadsSecs = options.uploads === undefined ? undefined : parseDuration('uploads', options.uploads);
  const orphanGrantsSecs =
    options['orphan-grants'] === undefined
      ? undefined
      : parseDuration('orphan-grants', options['orphan-grants']);
  const { config } = await loadConfig(options.config);
  const logger = createLogger({ filter: process.env['RUST_LOG'] }).child('scrub');
  const dryRun = options['dry-run'];
  // A repairing run writes: with the memory lock it must be the directory's only writer, and keeps
  // a server from starting until it ends. A dry run only reads, and runs beside a server.
  const instance = dryRun ? undefined : await holdInstanceLock(config, 'scrub', logger);
  try {
    if (multipartSecs !== undefined) await scrubMultipart(config, multipartSecs, dryRun, logger);
    const request: StoreScrubRequest = {
      dryRun,
      tags: options.tags,
      manifests: options.manifests,
      links: options.links,
      mediaTypes: options['media-types'],
      referrers: options.referrers,
      retention: options.retention,
      uploads: uploadsSecs !== undefined,
      uploadsOlderThanMs: uploadsSecs === undefined ? undefined : uploadsSecs * 1000,
      blobs: options.blobs,
      reconcileBlobIndex: options['reconcile-blob-index'],
      orphanGrants: orphanGrantsSecs !== undefined,
      orphanGrantsOlderThanMs: orphanGrantsSecs === undefined ? undefined : orphanGrantsSecs * 1000,
      orphanNamespaces: options['orphan-namespaces'],
      cacheOrphans: options['cache-orphans'],
    };
    if (!CHECK_FLAGS.some(({ name }) => name !== 'multipart' && asked(name))) return;
    const { summary, exitCode } = await scrubStore(config, request, logger);
    // Every failure was logged with its key; the run went on with the rest.
    if (exitCode !== 0) throw new CliError([`scrub: ${summary.failures} check(s) or repair(s) failed`]);
  } finally {
    await instance?.release();
  }
}

export const scrubCommand: CommandModule<GlobalOptions, ScrubOptions> = {
  command: SCRUB.name,
  describe: SCRUB.describe,
  builder: (yargs: Argv<GlobalOptions>) => withFlags(yargs, SCRUB.flags) as Argv<ScrubOptions>,
  handler: (options) => runScrub(options),
};
