import type { DigestParts } from '@angos/oci';
import { keyFor, type MetadataStore } from '@angos/storage';
import type { BlobIndex } from './blob-index.js';
import type { BlobLocks } from './blob-locks.js';
import { encodeLink, exists } from './links.js';

/**
 * A namespace may read a blob only when it holds a grant: the blob was
 * uploaded into it, mounted into it, or is one of its manifests.
 */
export class Grants {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobLocks: BlobLocks,
    private readonly index: BlobIndex,
  ) {}

  async canRead(namespace: string, digest: DigestParts): Promise<boolean> {
    return (
      (await exists(this.metadata, keyFor({ kind: 'layerLink', namespace, digest }))) ||
      (await exists(this.metadata, keyFor({ kind: 'revisionLink', namespace, digest })))
    );
  }

  /** Records a grant. The caller must hold the blob's lock (`BlobLocks`) and the bytes must exist. */
  async grantLocked(namespace: string, digest: DigestParts): Promise<void> {
    // Index first: a crash between the two leaves an extra index reference
    // (keeps bytes alive; scrub prunes it), never a grant to reclaimed bytes.
    await this.index.add(digest, namespace, ['layer']);
    await this.metadata.put(keyFor({ kind: 'layerLink', namespace, digest }), encodeLink({ digest }));
  }

  /** Removes a namespace's grant; returns false when it held none. Bytes go when nothing references them. */
  async revoke(namespace: string, digest: DigestParts): Promise<boolean> {
    return this.blobLocks.run(namespace, [digest], () => this.revokeLocked(namespace, digest));
  }

  async revokeLocked(namespace: string, digest: DigestParts): Promise<boolean> {
    const removed = await this.metadata.delete(keyFor({ kind: 'layerLink', namespace, digest }));
    await this.index.remove(digest, namespace, ['layer']);
    return removed;
  }
}
