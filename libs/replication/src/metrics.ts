import type { Config } from '@angos/config';
import type { PendingAgeGauge } from '@angos/jobs';
import type { Metrics } from '@angos/observability';
import { REPLICATION_QUEUE } from './payload.js';

/**
 * How a replication job ended for its downstream (`outcome` of angos_replication_push_total):
 * - `pushed`: the downstream took the write (a push, or a delete);
 * - `converged`: nothing to send (the downstream already held it, or the delete was done);
 * - `superseded`: the downstream holds a later write (409 REPLICATION_SUPERSEDED);
 * - `unsupported`: the downstream does not do this (a tag delete on a registry without it);
 * - `failed`: the run failed (retried, or dead-lettered).
 */
export type ReplicationOutcome = 'pushed' | 'converged' | 'superseded' | 'unsupported' | 'failed';

/** The outcomes that mean the downstream converged: they move the last-success time. */
const CONVERGED: ReadonlySet<ReplicationOutcome> = new Set(['pushed', 'converged', 'superseded']);

/** Counts one replication job's outcome for its downstream. */
export type OutcomeRecorder = (downstream: string, outcome: ReplicationOutcome) => void;

/**
 * The replication metrics of the replication guide, with its names and labels, registered at once
 * (a process that runs replication jobs lists them on /metrics before the first job), and the
 * recorder of one job's outcome. `pushed`, `converged` and `superseded` move the last-success
 * time; `unsupported` (the downstream cannot do it) and `failed` do not.
 */
export function outcomeRecorder(metrics: Metrics): OutcomeRecorder {
  const pushes = metrics.counter({
    name: 'angos_replication_push_total',
    help: 'Replication jobs run, by downstream and outcome (pushed, converged, superseded, unsupported, failed)',
    labelNames: ['downstream', 'outcome'],
  });
  const lastSuccess = metrics.gauge({
    name: 'angos_replication_last_success_timestamp_seconds',
    help: 'Unix time of the last replication job per downstream that ended pushed, converged or superseded',
    labelNames: ['downstream'],
  });
  return (downstream, outcome) => {
    pushes.inc({ downstream, outcome });
    if (CONVERGED.has(outcome)) lastSuccess.set({ downstream }, Date.now() / 1000);
  };
}

/**
 * What `angos scrub --replicate` did about one divergence (`outcome` of
 * angos_replication_reconcile_total), as the metrics reference names it: `enqueued` (its push, or
 * its prune delete, was queued), `failed` (queueing it failed), `skipped` (a downstream could not
 * be compared, so the tags of the namespace there wait for the next run; counted once per
 * namespace and downstream).
 */
export type ReconcileOutcome = 'enqueued' | 'failed' | 'skipped';

export function recordReconcile(metrics: Metrics, outcome: ReconcileOutcome, count = 1): void {
  metrics
    .counter({
      name: 'angos_replication_reconcile_total',
      help: 'Reconciliation by angos scrub --replicate, by outcome (enqueued, failed: the enqueue failed, skipped: a downstream that could not be compared)',
      labelNames: ['outcome'],
    })
    .inc({ outcome }, count);
}

/**
 * `angos_replication_lag_seconds{downstream}`: the age of the oldest pending replication job of
 * each downstream, 0 for a configured downstream with none (a series per downstream of the
 * configuration now, plus any that still has jobs). Refreshed with the job queue gauges.
 */
export function replicationLagGauge(deps: {
  readonly config: () => Config;
  readonly metrics: Metrics;
}): PendingAgeGauge {
  const lag = deps.metrics.gauge({
    name: 'angos_replication_lag_seconds',
    help: 'Age of the oldest pending replication job per downstream (0: none pending); refreshed with angos_job_queue_pending',
    labelNames: ['downstream'],
  });
  return {
    queue: REPLICATION_QUEUE,
    group(payload) {
      const downstream = (payload as { downstream?: unknown } | null)?.downstream;
      return typeof downstream === 'string' ? downstream : undefined;
    },
    publish(ages) {
      lag.reset();
      if (ages === undefined) return;
      for (const repository of Object.values(deps.config().repository)) {
        for (const downstream of repository.downstream) lag.set({ downstream: downstream.name }, 0);
      }
      for (const [downstream, seconds] of ages) lag.set({ downstream }, seconds);
    },
  };
}
