import { sendJson } from '@angos/http';
import {
  type FailedJob,
  isJobQueue,
  JOB_QUEUES,
  type JobEnvelope,
  type Page,
  type PendingJob,
} from '@angos/jobs';
import { OciError } from '@angos/oci';
import { pageLast, pageSize } from '../request.js';
import { nextPageLink, type RouteContext, sendEmpty } from '../route-context.js';

/**
 * The jobs API: what the durable queues hold, and the repairs an operator needs (retry a
 * dead-lettered job, delete a pending or failed one). Each endpoint is its own policy action
 * (`list-pending-jobs`, `list-failed-jobs`, `retry-job`, `delete-job`), judged by the gateway.
 */

/** Entries per page when the request names no `n` (the library's default, said here for the Link). */
const DEFAULT_PAGE_SIZE = 100;
/** Each listed job is one read of the store: a page is bounded so one request stays cheap. */
export const MAX_JOB_PAGE_SIZE = 1000;

/** A queue the API answers for; anything else (a typo above all) is a 400, not an empty list. */
function knownQueue(value: string | null): string {
  if (value === null || value === '') {
    throw new OciError(
      'REQUEST_INVALID',
      { parameter: 'queue', queues: JOB_QUEUES },
      'a job queue is required',
    );
  }
  if (!isJobQueue(value)) {
    throw new OciError(
      'REQUEST_INVALID',
      { queue: value.slice(0, 100), queues: JOB_QUEUES },
      'unknown job queue',
    );
  }
  return value;
}

function jobPageSize(query: URLSearchParams): number {
  const n = pageSize(query) ?? DEFAULT_PAGE_SIZE;
  if (n > MAX_JOB_PAGE_SIZE) throw new OciError('REQUEST_INVALID', { n, max: MAX_JOB_PAGE_SIZE });
  return n;
}

/**
 * A job as the API shows it: the envelope's fields, named one by one so that a field added to the
 * stored record is not published by accident. The payload is shown: it names what the job works
 * on (repository, tag, downstream), never credentials, which jobs read from the configuration.
 */
function jobView(job: JobEnvelope) {
  return {
    id: job.id,
    queue: job.queue,
    kind: job.kind,
    lockKey: job.lockKey,
    createdAt: job.createdAt,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    notBefore: job.notBefore,
    lastError: job.lastError,
    payload: job.payload,
  };
}

function pendingView(job: PendingJob) {
  return { ...jobView(job), claimed: job.claimed };
}

function failedView(job: FailedJob) {
  return { ...jobView(job), failedAt: job.failedAt };
}

/** A page of jobs; a `Link` to the next one when more may follow, as tag lists do. */
async function sendJobPage<T extends JobEnvelope>(
  ctx: RouteContext,
  path: string,
  list: (queue: string, page: { n: number; last?: string | undefined }) => Promise<Page<T>>,
  view: (job: T) => object,
): Promise<void> {
  const queue = knownQueue(ctx.query.get('queue'));
  const n = jobPageSize(ctx.query);
  // n=0 asks for nothing, as on a tag list; the queue library wants at least one.
  const page: Page<T> = n === 0 ? { items: [] } : await list(queue, { n, last: pageLast(ctx.query) });
  const headers: Record<string, string> = {};
  if (page.last !== undefined) headers.Link = nextPageLink(path, n, page.last, { queue });
  sendJson(ctx.res, 200, { queue, jobs: page.items.map(view) }, headers);
}

/** GET /v2/_ext/jobs/pending?queue=&n=&last=: pending jobs, ready ones first; `claimed` while one runs. */
export function listPendingJobs(ctx: RouteContext): Promise<void> {
  return sendJobPage(
    ctx,
    '/v2/_ext/jobs/pending',
    (queue, page) => ctx.jobs.listPending(queue, page),
    pendingView,
  );
}

/** GET /v2/_ext/jobs/failed?queue=&n=&last=: dead-lettered jobs, oldest first, with their last error. */
export function listFailedJobs(ctx: RouteContext): Promise<void> {
  return sendJobPage(
    ctx,
    '/v2/_ext/jobs/failed',
    (queue, page) => ctx.jobs.listFailed(queue, page),
    failedView,
  );
}

function unknownJob(queue: string, id: string): OciError {
  return new OciError('JOB_UNKNOWN', { queue, id: id.slice(0, 100) });
}

/** POST /v2/_ext/jobs/failed/<queue>/<id>/retry: back into the queue, its attempts reset. */
export async function retryFailedJob(ctx: RouteContext, queueText: string, id: string): Promise<void> {
  const queue = knownQueue(queueText);
  if (!(await ctx.jobs.retryFailed(queue, id))) throw unknownJob(queue, id);
  sendEmpty(ctx.res, 202, {});
}

/**
 * DELETE /v2/_ext/jobs/pending/<queue>/<id>: the job will not run. One that is running now is not
 * interrupted, but its outcome is dropped: a failure is neither retried nor dead-lettered.
 */
export async function deletePendingJob(ctx: RouteContext, queueText: string, id: string): Promise<void> {
  const queue = knownQueue(queueText);
  if (!(await ctx.jobs.deletePending(queue, id))) throw unknownJob(queue, id);
  sendEmpty(ctx.res, 202, {});
}

/** DELETE /v2/_ext/jobs/failed/<queue>/<id>: forgets a dead-lettered job. */
export async function deleteFailedJob(ctx: RouteContext, queueText: string, id: string): Promise<void> {
  const queue = knownQueue(queueText);
  if (!(await ctx.jobs.deleteFailed(queue, id))) throw unknownJob(queue, id);
  sendEmpty(ctx.res, 202, {});
}
