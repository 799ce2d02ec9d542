import { CorruptRecordError, parseRecord } from './envelope.js';

/**
 * Who runs a job: created with `putIfAbsent` when a worker picks the envelope, so two workers
 * never start the same one. The token tells the creator its claim from one that replaced it
 * (a takeover, under the job's lock, after the creator died).
 */
export interface ClaimRecord {
  readonly token: string;
  readonly lockKey: string;
  readonly worker: string;
  readonly claimedAt: string;
}

export function encodeClaim(claim: ClaimRecord): string {
  return JSON.stringify(claim);
}

export function decodeClaim(data: Buffer): ClaimRecord {
  const record = parseRecord(data);
  const { token, lockKey, worker, claimedAt } = record;
  if (typeof token !== 'string' || typeof lockKey !== 'string' || lockKey === '')
    throw new CorruptRecordError('invalid claim');
  return { token, lockKey, worker: String(worker), claimedAt: String(claimedAt) };
}

/** The pending job that enqueues of a lock key join (`_jobs/<queue>/lockkeys/<hash>`). */
export interface LockKeyRecord {
  readonly id: string;
  /** The pending key's name (`<not-before>-<id>`). */
  readonly name: string;
  readonly lockKey: string;
}

export function encodeLockKeyRecord(record: LockKeyRecord): string {
  return JSON.stringify(record);
}

export function decodeLockKeyRecord(data: Buffer): LockKeyRecord {
  const record = parseRecord(data);
  const { id, name, lockKey } = record;
  if (typeof id !== 'string' || typeof name !== 'string' || typeof lockKey !== 'string')
    throw new CorruptRecordError('invalid lock key record');
  return { id, name, lockKey };
}
