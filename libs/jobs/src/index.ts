export { DEFAULT_RETRY_POLICY, type RetryPolicy, retryDelayMs } from './backoff.js';
export {
  CorruptRecordError,
  ENVELOPE_VERSION,
  type FailedJob,
  isJobId,
  isQueueName,
  type JobEnvelope,
  type ParsedPendingName,
} from './envelope.js';
export { TerminalJobError } from './errors.js';
export {
  type Enqueue,
  instrumentedEnqueue,
  JOB_DURATION_BUCKETS,
  type QueueGaugeOptions,
  type QueueGauges,
  recordJobFinished,
  startQueueGauges,
} from './metrics.js';
export { AGE_READS_PER_REFRESH, type PendingAgeGauge, PendingAgeTracker } from './pending-ages.js';
export {
  type EnqueueOptions,
  type EnqueueResult,
  GAUGE_COUNT_CAP,
  JobQueue,
  type JobQueueOptions,
  type Page,
  type PageOptions,
  type PendingJob,
} from './queue.js';
export { isJobQueue, JOB_QUEUES, type JobQueueName } from './queue-names.js';
export {
  type JobContext,
  type JobFinished,
  type JobHandler,
  type JobOutcome,
  JobRunner,
  type JobRunnerOptions,
  type QueuePool,
} from './runner.js';
