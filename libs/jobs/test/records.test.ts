import { isValidKey } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../src/backoff.js';
import {
  CorruptRecordError,
  decodeEnvelope,
  encodeEnvelope,
  type JobEnvelope,
  newJobId,
  parsePendingName,
  pendingName,
} from '../src/envelope.js';
import { paths } from '../src/layout.js';

const envelope: JobEnvelope = {
  id: newJobId(Date.now()),
  queue: 'replication',
  kind: 'push',
  lockKey: 'tag:team/app:latest',
  createdAt: new Date(0).toISOString(),
  attempts: 0,
  notBefore: new Date(0).toISOString(),
  payload: { digest: 'sha256:abc' },
};

describe('job records', () => {
  it('are valid storage keys on every backend, lock keys with / and : included', () => {
    const name = pendingName(Date.now(), envelope.id);
    for (const path of [
      paths.pending('replication', name),
      paths.claim('replication', envelope.id),
      paths.lockKey('replication', 'tag:team/app:latest'),
      paths.failed('replication', envelope.id),
      paths.quarantined('replication', name),
    ]) {
      expect(path.startsWith('_jobs/replication/'), path).toBe(true);
      expect(isValidKey(path), path).toBe(true);
    }
  });

  it('name pending keys so that code-point order is not-before order', () => {
    const names = [5, 1_000, 20, 1_700_000_000_000].map((ms) => pendingName(ms, newJobId(ms)));
    const sorted = [...names].sort();
    expect(sorted.map((name) => parsePendingName(name)?.notBeforeMs)).toEqual([
      5, 20, 1_000, 1_700_000_000_000,
    ]);
    expect(parsePendingName('garbage')).toBeUndefined();
  });

  it('give ids that sort in creation order within a process, even in one millisecond', () => {
    const ids = Array.from({ length: 50 }, () => newJobId(42));
    expect([...ids].sort()).toEqual(ids);
  });

  it('round-trip an envelope, and call anything else corrupt', () => {
    expect(decodeEnvelope(encodeEnvelope(envelope))).toEqual({
      ...envelope,
      maxAttempts: undefined,
      lastError: undefined,
    });
    for (const bad of [
      'not json',
      '[]',
      JSON.stringify({ ...JSON.parse(encodeEnvelope(envelope)), version: 2 }),
      JSON.stringify({ ...JSON.parse(encodeEnvelope(envelope)), attempts: -1 }),
      JSON.stringify({ ...JSON.parse(encodeEnvelope(envelope)), notBefore: 'soon' }),
      JSON.stringify({ ...JSON.parse(encodeEnvelope(envelope)), payload: undefined }),
    ]) {
      expect(() => decodeEnvelope(bad), bad).toThrow(CorruptRecordError);
    }
  });

  it('back off exponentially, jittered over the upper half, up to the ceiling', () => {
    const policy = { maxAttempts: 5, baseDelayMs: 1000, maxDelayMs: 10_000 };
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, policy, () => 1))).toEqual([
      1000, 2000, 4000, 8000, 10_000,
    ]);
    expect([1, 2, 3].map((n) => retryDelayMs(n, policy, () => 0))).toEqual([500, 1000, 2000]);
  });
});
