import type { Metrics } from '@angos/observability';

/**
 * How a replication job ended for its downstream (`outcome` of angos_replication_push_total):
 * - `pushed`: the downstream took the write (a push, or a delete);
 * - `converged`: nothing to send (the downstream already held it, or the delete was done);
 * - `superseded`: the downstream holds a later write (409 REPLICATION_SUPERSEDED);
 * - `unsupported`: the downstream does not do this (a tag delete on a registry without it);
 * - `failed`: the run failed (retried, or dead-lettered).
 */
export type ReplicationOutcome = 'pushed' | 'converged' | 'superseded' | 'unsupported' | 'failed';

/** The replication metrics of the replication guide, with its names and labels. */
function replicationMetrics(metrics: Metrics) {
  return {
    pushes: metrics.counter({
      name: 'angos_replication_push_total',
      help: 'Replication jobs run, by downstream and outcome (pushed, converged, superseded, unsupported, failed)',
      labelNames: ['downstream', 'outcome'],
    }),
    lastSuccess: metrics.gauge({
      name: 'angos_replication_last_success_timestamp_seconds',
      help: 'Unix time of the last successful replication job per downstream',
      labelNames: ['downstream'],
    }),
  };
}

/** Records one job's outcome. Every outcome but `failed` is a success: the downstream converged. */
export function recordOutcome(metrics: Metrics, downstream: string, outcome: ReplicationOutcome): void {
  const m = replicationMetrics(metrics);
  m.pushes.inc({ downstream, outcome });
  if (outcome !== 'failed') m.lastSuccess.set({ downstream }, Date.now() / 1000);
}
