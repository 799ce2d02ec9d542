import { isJobId, JobQueue } from '@angos/jobs';
import { keyFor } from '@angos/storage';
import type { ScrubCheck, ScrubContext } from '../types.js';
import { getValue, list } from '../walk.js';

/** One `--…-orphans` check: the jobs of one queue that the configuration no longer serves. */
export interface JobOrphansSpec {
  /** The check's flag, without dashes. */
  readonly check: string;
  readonly queue: string;
  /** Why a job is deleted, for the log line. */
  readonly reason: string;
  /** True when the job's payload names something no longer configured. */
  orphaned(payload: Readonly<Record<string, unknown>>): boolean;
}

/**
 * The payload of a stored job; undefined for a record that is gone, is not JSON, or has no
 * payload object: such a record is kept (the queue quarantines what it cannot read when it next
 * meets it; a dry run changes nothing).
 */
async function payloadOfJob(ctx: ScrubContext, key: string): Promise<Record<string, unknown> | undefined> {
  const data = await getValue(ctx, key);
  if (data === undefined) return undefined;
  let record: unknown;
  try {
    record = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  const payload = (record as { payload?: unknown } | null)?.payload;
  return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : undefined;
}

/** `<not-before>-<id>`, the name of a pending job's key: its id. */
const PENDING_NAME = /^\d{15}-([0-9a-z]{9}-[0-9a-f]{16})$/;

/**
 * Deletes the jobs of the queue, pending (`delete-pending-job`) and dead-lettered
 * (`delete-failed-job`), that `orphaned` judges so. Such a job would work for something no longer
 * configured, or sit in the dead letters for ever. A job that is running when its delete comes
 * finishes, but is not retried. The records are read as stored, without the queue's quarantine of
 * unreadable ones, so a dry run changes nothing and lists the same deletions.
 */
export function jobOrphansCheck(spec: JobOrphansSpec): ScrubCheck {
  const { check, queue: queueName, reason } = spec;
  return {
    name: check,
    async *plan(ctx) {
      const queue = new JobQueue({ store: ctx.metadata, logger: ctx.logger });
      const orphaned = async (key: string): Promise<boolean> => {
        const payload = await payloadOfJob(ctx, key);
        return payload !== undefined && spec.orphaned(payload);
      };
      for (const name of await list(ctx, keyFor({ kind: 'jobsPending', queue: queueName }))) {
        const id = PENDING_NAME.exec(name)?.[1];
        const key = keyFor({ kind: 'jobPending', queue: queueName, name });
        if (id === undefined || !(await orphaned(key))) continue;
        yield {
          check,
          action: 'delete-pending-job',
          key,
          reason,
          apply: async () => {
            await queue.deletePending(queueName, id);
          },
        };
      }
      for (const id of await list(ctx, keyFor({ kind: 'jobsFailed', queue: queueName }))) {
        const key = keyFor({ kind: 'jobFailed', queue: queueName, id });
        if (!isJobId(id) || !(await orphaned(key))) continue;
        yield {
          check,
          action: 'delete-failed-job',
          key,
          reason,
          apply: async () => {
            await queue.deleteFailed(queueName, id);
          },
        };
      }
    },
  };
}
