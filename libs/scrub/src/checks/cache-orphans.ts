import { type Config, isPullThroughNamespace } from '@angos/config';
import { isJobId, JobQueue } from '@angos/jobs';
import { keyFor } from '@angos/storage';
import type { ScrubCheck, ScrubContext } from '../types.js';
import { getValue, list } from '../walk.js';

const CHECK = 'cache-orphans';

/** The durable queue of the pull-through cache's fills. */
const CACHE_QUEUE = 'cache';

const REASON = 'its repository is no longer configured for pull-through';

/** What `--cache-orphans` decides with: the configuration's repositories and their upstreams. */
export interface CacheOrphansSettings {
  readonly config: Config;
}

/**
 * The local namespace a stored cache job fills: every `cache` job carries it in its payload.
 * Undefined for a record that is gone, is not JSON, or has no namespace: such a record is kept
 * (the queue quarantines what it cannot read when it next meets it; a dry run changes nothing).
 */
async function namespaceOfJob(ctx: ScrubContext, key: string): Promise<string | undefined> {
  const data = await getValue(ctx, key);
  if (data === undefined) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  const payload = (record as { payload?: unknown } | null)?.payload;
  const namespace = (payload as { namespace?: unknown } | null | undefined)?.namespace;
  return typeof namespace === 'string' ? namespace : undefined;
}

/** `<not-before>-<id>`, the name of a pending job's key: its id. */
const PENDING_NAME = /^\d{15}-([0-9a-z]{9}-[0-9a-f]{16})$/;

/**
 * `--cache-orphans`: deletes the jobs of the `cache` queue, pending (`delete-pending-job`) and
 * dead-lettered (`delete-failed-job`), whose namespace no repository with an upstream governs any
 * more: its repository was removed, or lost its upstreams. Such a job would fill a namespace that
 * is no longer a cache, or sit in the dead letters for ever. A job that is running when its delete
 * comes finishes, but is not retried. The records are read as stored, without the queue's
 * quarantine of unreadable ones, so a dry run changes nothing and lists the same deletions.
 */
export function cacheOrphansCheck(settings: CacheOrphansSettings): ScrubCheck {
  return {
    name: CHECK,
    async *plan(ctx) {
      const queue = new JobQueue({ store: ctx.metadata, logger: ctx.logger });
      const orphaned = async (key: string): Promise<boolean> => {
        const namespace = await namespaceOfJob(ctx, key);
        if (namespace === undefined) return false;
        return !isPullThroughNamespace(settings.config, namespace);
      };
      for (const name of await list(ctx, keyFor({ kind: 'jobsPending', queue: CACHE_QUEUE }))) {
        const id = PENDING_NAME.exec(name)?.[1];
        const key = keyFor({ kind: 'jobPending', queue: CACHE_QUEUE, name });
        if (id === undefined || !(await orphaned(key))) continue;
        yield {
          check: CHECK,
          action: 'delete-pending-job',
          key,
          reason: REASON,
          apply: async () => {
            await queue.deletePending(CACHE_QUEUE, id);
          },
        };
      }
      for (const id of await list(ctx, keyFor({ kind: 'jobsFailed', queue: CACHE_QUEUE }))) {
        const key = keyFor({ kind: 'jobFailed', queue: CACHE_QUEUE, id });
        if (!isJobId(id) || !(await orphaned(key))) continue;
        yield {
          check: CHECK,
          action: 'delete-failed-job',
          key,
          reason: REASON,
          apply: async () => {
            await queue.deleteFailed(CACHE_QUEUE, id);
          },
        };
      }
    },
  };
}
