import type { LockManager } from '@angos/lock';
import { type DigestParts, formatDigest } from '@angos/oci';
import type { MetadataStore } from '@angos/storage';
import { blobLockKey } from './blob-index.js';

/**
 * The per-digest locks around grants, blob index updates and byte reclamation.
 *
 * Usually one lock per digest, shared by every namespace. With the S3 lock strategy and
 * compare-and-swap on the metadata store, the blob index coordinates updates across namespaces
 * by itself (`BlobIndex`, lock-free mode), so the global digest keys are left out and pushes of
 * a shared layer from many namespaces do not contend (configuration reference, contention note).
 * A digest is then locked per namespace only, which still keeps a grant and a revocation of the
 * same blob in one namespace apart.
 */
export class BlobLocks {
  /** True when the global digest keys are locked; false when the blob index is lock-free. */
  readonly global: boolean;

  constructor(
    private readonly locks: LockManager,
    metadata: MetadataStore,
  ) {
    this.global = !(locks.backend === 's3' && metadata.conditional !== undefined);
  }

  /** The lock keys of these blobs for work in `namespace`. */
  keys(namespace: string, digests: readonly DigestParts[]): string[] {
    return digests.map((digest) =>
      this.global ? blobLockKey(digest) : `blob:${namespace}:${formatDigest(digest)}`,
    );
  }

  /** Runs `work` in `namespace` holding the locks of these blobs. */
  run<T>(namespace: string, digests: readonly DigestParts[], work: () => Promise<T>): Promise<T> {
    return this.locks.withLocks(this.keys(namespace, digests), work);
  }
}
