import { randomBytes } from 'node:crypto';

/** The version of the stored record format; a record of another version is quarantined. */
export const ENVELOPE_VERSION = 1;

/**
 * One unit of work in a queue, as stored (JSON) under `_jobs/<queue>/pending/` and, once
 * dead-lettered, `_jobs/<queue>/failed/`. Times are ISO 8601 strings.
 */
export interface JobEnvelope {
  readonly id: string;
  readonly queue: string;
  /** Selects the handler (`JobHandler.kind`). */
  readonly kind: string;
  /** The key locked for the whole run; enqueues of a lock key with a pending job join it. */
  readonly lockKey: string;
  readonly createdAt: string;
  /**
   * Runs started so far, each counted (durably) as it starts, before its handler runs: a run cut
   * off by a kill or a lost lock counts as a failed one does. A handler sees its own run counted.
   */
  readonly attempts: number;
  /** The attempt budget; the runner's default when absent. */
  readonly maxAttempts?: number | undefined;
  /** Not run before this time (backoff after a failure, or a delayed enqueue). */
  readonly notBefore: string;
  readonly payload: unknown;
  /** The error of the last failed run. */
  readonly lastError?: string | undefined;
  /**
   * The W3C trace context (`traceparent`, `tracestate`) of the request that enqueued the job, when
   * it was traced: the job's span links to it. Absent otherwise, and in records written before.
   */
  readonly trace?: Readonly<Record<string, string>> | undefined;
}

/** A dead-lettered job: its envelope, when it failed and (in `lastError`) why. */
export interface FailedJob extends JobEnvelope {
  readonly failedAt: string;
}

/** A stored record that cannot be read as what its key says it is. */
export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
}

/** Queue names are one storage-key segment that every backend accepts and a URL needs no escaping for. */
const QUEUE_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** Ids as `newJobId` makes them; anything else in a key is not one of ours. */
const JOB_ID = /^[0-9a-z]{9}-[0-9a-f]{16}$/;
/** `<not-before, ms since the epoch, 15 digits>-<id>`: code-point order is not-before order. */
const PENDING_NAME = /^(\d{15})-([0-9a-z]{9}-[0-9a-f]{16})$/;

export function isQueueName(name: string): boolean {
  return QUEUE_NAME.test(name);
}

export function assertQueueName(name: string): void {
  if (!isQueueName(name)) throw new RangeError(`invalid job queue name: ${JSON.stringify(name)}`);
}

export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

let lastIdMs = 0;

/**
 * A fresh id: creation time first, then 64 random bits. The time part never repeats within a
 * process, so the jobs one process enqueues sort (and run, when equally ready) in enqueue order.
 */
export function newJobId(nowMs: number): string {
  lastIdMs = Math.max(Math.floor(nowMs), lastIdMs + 1);
  return `${lastIdMs.toString(36).padStart(9, '0')}-${randomBytes(8).toString('hex')}`;
}

/** The name of a pending job's key: its not-before time, so that listing shows what is ready. */
export function pendingName(notBeforeMs: number, id: string): string {
  return `${String(Math.max(0, Math.floor(notBeforeMs))).padStart(15, '0')}-${id}`;
}

export interface ParsedPendingName {
  readonly notBeforeMs: number;
  readonly id: string;
}

export function parsePendingName(name: string): ParsedPendingName | undefined {
  const match = PENDING_NAME.exec(name);
  if (match === null) return undefined;
  return { notBeforeMs: Number(match[1]), id: match[2] as string };
}

export function encodeEnvelope(envelope: JobEnvelope | FailedJob): string {
  return JSON.stringify({ version: ENVELOPE_VERSION, ...envelope });
}

/** Reads a stored envelope; CorruptRecordError when it is not one (of this version). */
export function decodeEnvelope(data: Buffer | string): JobEnvelope {
  const record = parseRecord(data);
  const { id, queue, kind, lockKey, createdAt, attempts, maxAttempts, notBefore, lastError, trace } = record;
  if (record['version'] !== ENVELOPE_VERSION) throw new CorruptRecordError('unknown envelope version');
  if (typeof id !== 'string' || !isJobId(id)) throw new CorruptRecordError('missing or invalid id');
  if (typeof queue !== 'string' || !isQueueName(queue)) throw new CorruptRecordError('invalid queue');
  if (typeof kind !== 'string' || kind === '') throw new CorruptRecordError('missing kind');
  if (typeof lockKey !== 'string' || lockKey === '') throw new CorruptRecordError('missing lock key');
  if (!isTime(createdAt) || !isTime(notBefore)) throw new CorruptRecordError('invalid time');
  if (!Number.isSafeInteger(attempts) || (attempts as number) < 0)
    throw new CorruptRecordError('invalid attempts');
  if (maxAttempts !== undefined && (!Number.isSafeInteger(maxAttempts) || (maxAttempts as number) < 1))
    throw new CorruptRecordError('invalid max attempts');
  if (lastError !== undefined && typeof lastError !== 'string')
    throw new CorruptRecordError('invalid last error');
  if (!('payload' in record)) throw new CorruptRecordError('missing payload');
  return {
    id,
    queue,
    kind,
    lockKey,
    createdAt: createdAt as string,
    attempts: attempts as number,
    maxAttempts: maxAttempts as number | undefined,
    notBefore: notBefore as string,
    payload: record['payload'],
    lastError,
    // Only a link hangs on it: a malformed one is dropped, never a reason to quarantine the job.
    trace: isStringRecord(trace) ? trace : undefined,
  };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((item) => typeof item === 'string')
  );
}

export function decodeFailedJob(data: Buffer | string): FailedJob {
  const envelope = decodeEnvelope(data);
  const failedAt = parseRecord(data)['failedAt'];
  if (!isTime(failedAt)) throw new CorruptRecordError('invalid failure time');
  return { ...envelope, failedAt };
}

/** The JSON object in a record; CorruptRecordError for anything else. */
export function parseRecord(data: Buffer | string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    throw new CorruptRecordError('not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CorruptRecordError('not a JSON object');
  return parsed as Record<string, unknown>;
}

function isTime(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}
