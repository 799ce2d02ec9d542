import type { LockManager, LockWork } from '@angos/lock';
import { type DigestParts, formatDigest } from '@angos/oci';

/** The digest lock: held by a reclaim for its whole length, and by index updates without compare-and-swap. */
export function blobLockKey(digest: DigestParts): string {
  return `blob:${formatDigest(digest)}`;
}

/** The lock around one namespace's grant of a blob: its index `layer` and its `_layers` link change together. */
export function grantLockKey(namespace: string, digest: DigestParts): string {
  return `grant:${namespace}:${formatDigest(digest)}`;
}

/**
 * The short locks of the reclamation protocol (README, "Deletes and garbage collection"):
 * `grant:<namespace>:<digest>` around a grant's index update and link write (upload commit, mount, blob delete, revocation by garbage
 * collection), and `blob:<digest>` around a reclaim. Manifest pushes take neither: they update
 * the index atomically (`BlobIndex`), so pushes of a shared layer do not queue on it.
 */
export class BlobLocks {
  constructor(private readonly locks: LockManager) {}

  /** Runs `work` holding the grant lock of `digest` in `namespace`. */
  grant<T>(namespace: string, digest: DigestParts, work: LockWork<T>): Promise<T> {
    return this.locks.withLocks([grantLockKey(namespace, digest)], work);
  }

  /** Runs `work` holding the digest lock (a reclaim; proof of ownership over claims). */
  digest<T>(digest: DigestParts, work: LockWork<T>, signal?: AbortSignal): Promise<T> {
    return this.locks.withLocks([blobLockKey(digest)], work, { signal });
  }
}
