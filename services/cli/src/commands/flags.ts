/**
 * Every command and flag of the CLI, in one place: the parser is built from these tables, `--help`
 * prints them, and the documentation's drift test compares them with the CLI reference.
 */

export interface FlagSpec {
  /** Long name, without the dashes: `dry-run`. */
  readonly name: string;
  /** One-letter short form, without the dash: `d`. */
  readonly alias?: string;
  readonly type: 'string' | 'boolean';
  /** What a value looks like, for `--help` and the docs: `<duration>`. Strings only. */
  readonly value?: string;
  readonly default?: string | boolean;
  readonly describe: string;
  /** False for flags the parser recognises but this build cannot run yet (they say so when given). */
  readonly supported: boolean;
}

export interface CommandSpec {
  readonly name: string;
  readonly describe: string;
  readonly flags: readonly FlagSpec[];
}

/** Accepted before or after any command. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'config',
    alias: 'c',
    type: 'string',
    value: '<path>',
    default: 'config.toml',
    describe: 'Path to configuration file',
    supported: true,
  },
  { name: 'help', type: 'boolean', describe: 'Display usage information', supported: true },
  {
    name: 'version',
    type: 'boolean',
    describe: 'Print the version and the commit it was built from',
    supported: true,
  },
];

/** `--workers`, on every service. */
const WORKERS_FLAG: FlagSpec = {
  name: 'workers',
  type: 'string',
  value: '<count>',
  describe:
    'Serving threads sharing the service port (default: [server] workers, else one per CPU it may use)',
  supported: true,
};

const SERVICE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'listen',
    type: 'string',
    value: '<host:port>',
    describe: 'Address to listen on, HOST:PORT (default: [server] bind_address and port)',
    supported: true,
  },
  WORKERS_FLAG,
];

/** `angos pull-through-cache`: the service flags, with its own default port. */
const PULL_THROUGH_CACHE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'listen',
    type: 'string',
    value: '<host:port>',
    describe: 'Address to listen on, HOST:PORT (default: [server] bind_address, port 8003)',
    supported: true,
  },
  WORKERS_FLAG,
];

const DURATION = '<duration>';

/** `angos scrub`, in the order of the CLI reference. */
const SCRUB_FLAGS: readonly FlagSpec[] = [
  {
    name: 'dry-run',
    alias: 'd',
    type: 'boolean',
    default: false,
    describe: 'Preview what would be removed without making changes',
    supported: true,
  },
  {
    name: 'uploads',
    alias: 'u',
    type: 'string',
    value: DURATION,
    describe:
      'Check upload sessions: remove broken or partial state and uploads older than the duration (e.g. 1h, 30m, 2d); on fs also leftover temp files',
    supported: true,
  },
  {
    name: 'multipart',
    alias: 'p',
    type: 'string',
    value: DURATION,
    describe: 'Clean up orphan S3 multipart uploads older than the duration (S3 only)',
    supported: true,
  },
  {
    name: 'tags',
    alias: 't',
    type: 'boolean',
    describe:
      'Check and fix tag references; remove tags whose manifest blob is missing or whose name is not a valid tag, and tag tombstones no longer needed',
    supported: true,
  },
  {
    name: 'manifests',
    alias: 'm',
    type: 'boolean',
    describe:
      'Check for manifest inconsistencies: remove revisions whose manifest bytes are gone, and stray pull times',
    supported: true,
  },
  {
    name: 'blobs',
    alias: 'b',
    type: 'boolean',
    describe:
      'Check blobs: re-hash every blob and remove corrupt ones, index un-indexed bytes, drop stale blob-index grants; then one garbage-collection pass',
    supported: true,
  },
  {
    name: 'retention',
    alias: 'r',
    type: 'boolean',
    describe:
      'Enforce retention policies: delete the manifests no retention rule keeps (their blobs go with garbage collection)',
    supported: true,
  },
  {
    name: 'links',
    alias: 'l',
    type: 'boolean',
    describe:
      'Fix link format inconsistencies; remove revisions whose manifest blob is missing; prune phantom referrer back-links',
    supported: true,
  },
  {
    name: 'reconcile-blob-index',
    type: 'boolean',
    describe:
      'Rebuild blob-index entries missing relative to the manifests that reference each blob (expensive)',
    supported: true,
  },
  {
    name: 'media-types',
    alias: 'M',
    type: 'boolean',
    describe:
      'Backfill missing media_type on manifest links; remove revisions whose manifest blob is missing',
    supported: true,
  },
  {
    name: 'referrers',
    alias: 'R',
    type: 'boolean',
    describe: 'Remove orphan referrer links whose referrer manifest is no longer a current revision',
    supported: true,
  },
  {
    name: 'replicate',
    type: 'boolean',
    describe: 'Reconcile every replicated namespace against its downstreams (with --dry-run: preview)',
    supported: true,
  },
  {
    name: 'replication-orphans',
    type: 'boolean',
    describe:
      'Delete replication jobs (pending and dead-lettered) whose downstream or repository is no longer configured',
    supported: true,
  },
  {
    name: 'cache-orphans',
    type: 'boolean',
    describe:
      'Delete cache jobs (pending and dead-lettered) whose repository is no longer configured for pull-through',
    supported: true,
  },
  {
    name: 'orphan-grants',
    type: 'string',
    value: DURATION,
    describe: 'Revoke blob-ownership grants older than the duration that no manifest references',
    supported: true,
  },
  {
    name: 'orphan-namespaces',
    alias: 'n',
    type: 'boolean',
    describe: 'Remove revisions, tags and uploads of namespaces no configured repository owns (destructive)',
    supported: true,
  },
];

/** `angos worker`, in the order of the CLI reference. */
const WORKER_FLAGS: readonly FlagSpec[] = [
  {
    name: 'queue',
    type: 'string',
    value: '<name>',
    describe: 'Queue to drain: cache, replication or events; repeatable (default: all)',
    supported: true,
  },
  {
    name: 'poll-interval',
    type: 'string',
    value: DURATION,
    default: '1s',
    describe:
      'Least idle wait between claim attempts (e.g. 500ms, 2s); a queue of only backed-off jobs waits for the soonest, up to 1 minute',
    supported: true,
  },
  {
    name: 'listen',
    type: 'string',
    value: '<host:port>',
    describe:
      'Address of /healthz, /readyz and /metrics, HOST:PORT (default: [server] bind_address, port 8002)',
    supported: true,
  },
];

/** The commands, in the order `angos --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  { name: 'server', describe: 'Run the registry HTTP server', flags: SERVICE_FLAGS },
  {
    name: 'registry-api',
    describe: 'Run the OCI API service behind a gateway (split deployment)',
    flags: SERVICE_FLAGS,
  },
  {
    name: 'gateway',
    describe: 'Run the gateway in front of registry-api (split deployment)',
    flags: SERVICE_FLAGS,
  },
  {
    name: 'pull-through-cache',
    describe: 'Run the pull-through cache service behind a gateway (split deployment)',
    flags: PULL_THROUGH_CACHE_FLAGS,
  },
  {
    name: 'scrub',
    describe: 'Check storage for inconsistencies and perform maintenance tasks',
    flags: SCRUB_FLAGS,
  },
  {
    name: 'worker',
    describe: 'Drain the durable job queue ([global.job_queue])',
    flags: WORKER_FLAGS,
  },
  { name: 'argon', describe: 'Generate an Argon2 password hash for basic authentication', flags: [] },
  { name: 'help', describe: 'Display usage information', flags: [] },
];

export function commandSpec(name: string): CommandSpec {
  const spec = COMMANDS.find((command) => command.name === name);
  if (spec === undefined) throw new Error(`no such command: ${name}`);
  return spec;
}

/** `--multipart <duration>` / `-p, --multipart <duration>`: how help and docs spell a flag. */
export function flagSynopsis(flag: FlagSpec): string {
  const long = `--${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`;
  return flag.alias === undefined ? long : `-${flag.alias}, ${long}`;
}
