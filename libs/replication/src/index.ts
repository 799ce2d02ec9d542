export { DownstreamClient, type WriteOutcome } from './client.js';
export {
  eventDownstreams,
  findDownstream,
  matchesFilter,
  pushesOnEvents,
  reconcileDownstreams,
  reconciles,
} from './downstreams.js';
export { createReplicationEvents, type LocalChange, type ReplicationEvents } from './enqueue.js';
export { type ReplicationHandlerDeps, replicationHandler } from './handler.js';
export {
  type OutcomeRecorder,
  outcomeRecorder,
  type ReconcileOutcome,
  type ReplicationOutcome,
  recordReconcile,
  replicationLagGauge,
} from './metrics.js';
export {
  parseReplicationPayload,
  REPLICATION_JOB_KIND,
  REPLICATION_QUEUE,
  type ReplicationPayload,
  replicationLockKey,
} from './payload.js';
export { type ReconcileDecision, Reconciler, type ReconcilerDeps } from './reconcile.js';
