import type { Config } from '@angos/config';
import { type Enqueue, JobQueue } from '@angos/jobs';
import type { Metrics } from '@angos/observability';
import {
  REPLICATION_JOB_KIND,
  REPLICATION_QUEUE,
  Reconciler,
  reconciles,
  recordReconcile,
  replicationLockKey,
} from '@angos/replication';
import type { ScrubCheck } from '../types.js';
import { namespaces } from '../walk.js';

const CHECK = 'replicate';

/** What `--replicate` reconciles with, and where its jobs go. */
export interface ReplicateSettings {
  /** The repositories and their downstreams. */
  readonly config: Config;
  /** Where the replication jobs are enqueued; default the queue of the metadata store. */
  readonly enqueue?: Enqueue | undefined;
  /** Where `angos_replication_reconcile_total` is counted. */
  readonly metrics?: Metrics | undefined;
}

/**
 * `--replicate`: reconciles every namespace with the downstreams whose mode includes
 * reconciliation (libs/replication `Reconciler`). Each decision is one action:
 * `enqueue-replication-push` (a tag missing or diverging on the downstream) or
 * `enqueue-replication-delete` (a tag only a `prune` downstream holds), keyed by the job's lock
 * key, so a dry run lists exactly the jobs a real run enqueues. The queue joins a job of the
 * same tag and downstream that is already pending: re-running once converged enqueues nothing.
 * A downstream that could not be compared fails the check at its end (after every other one).
 * Counted in `angos_replication_reconcile_total`: `enqueued` or `failed` per job queued (not in a
 * dry run), `skipped` per namespace and downstream that could not be compared.
 */
export function replicateCheck(settings: ReplicateSettings): ScrubCheck {
  return {
    name: CHECK,
    async *plan(ctx) {
      // Nothing to reconcile: no walk of the namespaces.
      const reconciling = Object.values(settings.config.repository).some((repository) =>
        repository.downstream.some(reconciles),
      );
      if (!reconciling) return;
      const enqueue: Enqueue =
        settings.enqueue ??
        ((...args) => new JobQueue({ store: ctx.metadata, logger: ctx.logger }).enqueue(...args));
      const reconciler = new Reconciler({
        config: settings.config,
        registry: ctx.registry,
        logger: ctx.logger,
        metrics: settings.metrics,
        now: ctx.now,
      });
      try {
        for await (const namespace of namespaces(ctx)) {
          for await (const { payload, reason } of reconciler.reconcile(namespace)) {
            const key = replicationLockKey(payload);
            yield {
              check: CHECK,
              action: payload.change === 'push' ? 'enqueue-replication-push' : 'enqueue-replication-delete',
              key,
              reason,
              apply: async () => {
                try {
                  await enqueue(REPLICATION_QUEUE, REPLICATION_JOB_KIND, key, payload);
                } catch (error) {
                  if (settings.metrics) recordReconcile(settings.metrics, 'failed');
                  throw error;
                }
                if (settings.metrics) recordReconcile(settings.metrics, 'enqueued');
              },
            };
          }
        }
      } finally {
        reconciler.close();
      }
      if (reconciler.failures > 0) {
        throw new Error(`${reconciler.failures} namespace(s) could not be compared with a downstream`);
      }
    },
  };
}
