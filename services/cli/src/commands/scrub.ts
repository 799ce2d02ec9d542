import { loadConfig } from '@angos/config';
import { createLogger } from '@angos/observability';
import type { Argv, CommandModule } from 'yargs';
import { CliError } from '../errors.js';
import { parseDuration, scrubMultipart } from '../scrub.js';
import type { GlobalOptions } from './global.js';

interface ScrubOptions extends GlobalOptions {
  'dry-run': boolean;
  multipart?: string;
}

/**
 * Every check of the CLI reference, so that each is recognised: all but
 * `--multipart` come later, and asking for one says so instead of being
 * rejected as an unknown option.
 */
const LATER_CHECKS = [
  { flag: 'uploads', alias: 'u', type: 'string', describe: 'Check upload sessions older than the duration' },
  { flag: 'tags', alias: 't', type: 'boolean', describe: 'Check and fix tag references' },
  { flag: 'manifests', alias: 'm', type: 'boolean', describe: 'Check for manifest inconsistencies' },
  { flag: 'blobs', alias: 'b', type: 'boolean', describe: 'Check for blob inconsistencies' },
  { flag: 'retention', alias: 'r', type: 'boolean', describe: 'Enforce retention policies' },
  { flag: 'links', alias: 'l', type: 'boolean', describe: 'Fix link format inconsistencies' },
  { flag: 'reconcile-blob-index', type: 'boolean', describe: 'Rebuild missing blob-index entries' },
  { flag: 'media-types', alias: 'M', type: 'boolean', describe: 'Backfill missing media types' },
  { flag: 'referrers', alias: 'R', type: 'boolean', describe: 'Remove orphan referrer links' },
  { flag: 'replicate', type: 'boolean', describe: 'Reconcile replicated namespaces' },
  { flag: 'replication-orphans', type: 'boolean', describe: 'Delete orphan replication jobs' },
  { flag: 'cache-orphans', type: 'boolean', describe: 'Delete orphan cache jobs' },
  { flag: 'orphan-grants', type: 'string', describe: 'Revoke unreferenced grants older than the duration' },
  { flag: 'orphan-namespaces', alias: 'n', type: 'boolean', describe: 'Clear unowned namespaces' },
] as const;

async function runScrub(options: ScrubOptions): Promise<void> {
  const raw = options as unknown as Record<string, unknown>;
  const later = LATER_CHECKS.filter(({ flag }) => raw[flag] !== undefined && raw[flag] !== false);
  if (later.length > 0) throw new CliError(later.map(({ flag }) => `not supported yet: scrub --${flag}`));
  if (options.multipart === undefined) {
    throw new CliError(['specify which checks to run (e.g. --multipart 24h); see `angos scrub --help`']);
  }
  const olderThanSecs = parseDuration('multipart', options.multipart);
  const { config } = await loadConfig(options.config);
  const logger = createLogger({ filter: process.env['RUST_LOG'] }).child('scrub');
  await scrubMultipart(config, olderThanSecs, options['dry-run'], logger);
}

export const scrubCommand: CommandModule<GlobalOptions, ScrubOptions> = {
  command: 'scrub',
  describe: 'Check storage for inconsistencies and perform maintenance tasks',
  builder: (yargs: Argv<GlobalOptions>) => {
    let built = yargs
      .option('dry-run', {
        alias: 'd',
        type: 'boolean',
        default: false,
        describe: 'Preview what would be removed without making changes',
      })
      .option('multipart', {
        alias: 'p',
        type: 'string',
        describe: 'Cleanup orphan S3 multipart uploads older than duration (S3 only)',
      }) as Argv<ScrubOptions>;
    for (const check of LATER_CHECKS) {
      built = built.option(check.flag, {
        ...('alias' in check && { alias: check.alias }),
        type: check.type,
        describe: `${check.describe} (not supported yet)`,
      }) as Argv<ScrubOptions>;
    }
    return built;
  },
  handler: (options) => runScrub(options),
};
