import { loadConfig } from '@angos/config';
import { createLogger } from '@angos/observability';
import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../errors.js';
import { parseDuration, scrubBlobs, scrubMultipart } from '../scrub.js';
import { commandSpec } from './flags.js';
import type { GlobalOptions } from './global.js';
import { withFlags } from './yargs-flags.js';

interface ScrubOptions extends GlobalOptions {
  'dry-run': boolean;
  multipart?: string;
  blobs?: boolean;
}

const SCRUB = commandSpec('scrub');

/**
 * The checks of the CLI reference this build cannot run yet: recognised, so that asking for one
 * says so instead of being rejected as an unknown option.
 */
const LATER_CHECKS = SCRUB.flags.filter((flag) => !flag.supported);

async function runScrub(options: ScrubOptions): Promise<void> {
  const raw = options as unknown as Record<string, unknown>;
  const later = LATER_CHECKS.filter(({ name }) => raw[name] !== undefined && raw[name] !== false);
  if (later.length > 0) throw new CliError(later.map(({ name }) => `not supported yet: scrub --${name}`));
  if (options.multipart === undefined && !options.blobs) {
    throw new CliError([
      'specify which checks to run (e.g. --blobs, --multipart 24h); see `angos scrub --help`',
    ]);
  }
  const multipartSecs =
    options.multipart === undefined ? undefined : parseDuration('multipart', options.multipart);
  const { config } = await loadConfig(options.config);
  const logger = createLogger({ filter: process.env['RUST_LOG'] }).child('scrub');
  const dryRun = options['dry-run'];
  if (multipartSecs !== undefined) await scrubMultipart(config, multipartSecs, dryRun, logger);
  if (options.blobs) {
    const report = await scrubBlobs(config, dryRun, logger);
    // Every failure was logged with its digest; the pass went on with the other blobs.
    if (report.errors > 0)
      throw new CliError([`scrub --blobs: ${report.errors} blob(s) could not be processed`]);
  }
}

export const scrubCommand: CommandModule<GlobalOptions, ScrubOptions> = {
  command: SCRUB.name,
  describe: SCRUB.describe,
  builder: (yargs: Argv<GlobalOptions>) => withFlags(yargs, SCRUB.flags) as Argv<ScrubOptions>,
  handler: (options) => runScrub(options),
};
