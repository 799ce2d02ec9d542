import { randomUUID } from 'node:crypto';
import { LockUnsupportedError } from '../errors.js';
import type { EtagForm, LockBucket } from './lock-bucket.js';

export interface LockSupport {
  readonly etagForm: EtagForm;
  /** Whether `DeleteObject` honours `If-Match` (RGW 16 deletes regardless). */
  readonly deleteIfMatch: boolean;
}

const WRONG_ETAG = 'ffffffffffffffffffffffffffffffff';
/** Bound on removing the scratch object once the probe is over. */
const CLEANUP_TIMEOUT_MS = 10_000;

/**
 * Checks, on a scratch lock object, that the provider performs the conditional writes the lock
 * relies on and refuses them when the condition fails, and finds which `If-Match` form it
 * compares (quoted, or bare as Ceph RGW 16 does). `deleteIfMatch` is probed unless declared.
 * Throws `LockUnsupportedError` naming the missing capability.
 */
export async function probeLockSupport(
  bucket: LockBucket,
  declaredDeleteIfMatch: boolean | undefined,
  signal: AbortSignal,
): Promise<LockSupport> {
  const key = bucket.objectKey(`.probe-${randomUUID()}`);
  try {
    const created = await unlessRejected('put_if_none_match', () => bucket.create(key, 'created', signal));
    const again = await unlessRejected('put_if_none_match', () => bucket.create(key, 'again', signal));
    if (created.kind !== 'written' || again.kind !== 'unmet')
      throw new LockUnsupportedError('put_if_none_match');

    const etagForm = await findEtagForm(bucket, key, signal);
    let deleteIfMatch = declaredDeleteIfMatch;
    if (deleteIfMatch === undefined) {
      const refused = !(await bucket.delete(key, WRONG_ETAG, signal).catch(() => true));
      deleteIfMatch = refused && (await bucket.get(key, signal)) !== undefined;
    }
    return { etagForm, deleteIfMatch };
  } finally {
    // Not `signal`: the scratch object must go even when the probe was cut short.
    await bucket.delete(key, undefined, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)).catch(() => {});
  }
}

async function findEtagForm(bucket: LockBucket, key: string, signal: AbortSignal): Promise<EtagForm> {
  for (const form of ['quoted', 'unquoted'] as const) {
    bucket.etagForm = form;
    const current = await bucket.get(key, signal);
    if (current === undefined) break;
    const wrong = await unlessRejected('put_if_match', () =>
      bucket.replace(key, 'stale', WRONG_ETAG, signal),
    );
    if (wrong.kind === 'written') break; // If-Match ignored
    const right = await unlessRejected('put_if_match', () =>
      bucket.replace(key, `updated-${form}`, current.etag, signal),
    );
    if (right.kind === 'written') return form;
  }
  throw new LockUnsupportedError('put_if_match');
}

/** A provider that rejects the condition header itself (400, 501) does not support it. */
async function unlessRejected<T>(
  capability: 'put_if_none_match' | 'put_if_match',
  step: () => Promise<T>,
): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 400 || status === 501) throw new LockUnsupportedError(capability);
    throw error;
  }
}
