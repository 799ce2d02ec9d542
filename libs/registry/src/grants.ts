import type { DigestParts } from '@angos/oci';
import { keyFor, type MetadataStore } from '@angos/storage';
import type { BlobIndex, UpdateOptions } from './blob-index.js';
import type { BlobLocks } from './blob-locks.js';
import { encodeLink, exists } from './links.js';

/**
 * A namespace may read a blob only when it holds a grant: the blob was
 * uploaded into it, mounted into it, or is one of its manifests.
 *
 * A grant is two records, changed together under the short lock `grant:<namespace>:<digest>`:
 * the index reference `layer` (what garbage collection and pushes reason on) and the `_layers`
 * link (what reads check). The index goes first when granting and the link first when revoking,
 * so a link stands only where the index grants too (a manifest push checks the index).
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

  /**
   * Upload commit: the index grant first (so the entry has a holder, and no reclaim can start,
   * before the bytes are written; a standing claim is waited for or taken over by lock proof),
   * then `commit` (the bytes), then the link. A crash in between leaves an orphan grant that
   * garbage collection revokes after the grace period, never a link to missing bytes.
   */
  async commitAndGrant(namespace: string, digest: DigestParts, commit: () => Promise<void>): Promise<void> {
    await this.blobLocks.grant(namespace, digest, async (signal) => {
      signal.throwIfAborted();
      await this.index.add(digest, namespace, ['layer'], { signal });
      signal.throwIfAborted();
      await commit();
      signal.throwIfAborted();
      await this.#link(namespace, digest);
    });
  }

  /**
   * Mount: grants `namespace` a blob only if `from` holds it in the index (atomically checked in
   * the same write), and its bytes exist. Returns false otherwise (the client then uploads).
   */
  async mount(
    namespace: string,
    digest: DigestParts,
    from: string,
    bytesExist: () => Promise<boolean>,
  ): Promise<boolean> {
    return this.blobLocks.grant(namespace, digest, async (signal) => {
      signal.throwIfAborted();
      const added = await this.index.add(digest, namespace, ['layer'], { signal, requireGrantOf: from });
      if (added === 'refused') return false;
      if (!(await bytesExist())) {
        // The source's grant had no bytes behind it (a failed commit): take back what we added.
        signal.throwIfAborted();
        if (added === 'added') await this.index.remove(digest, namespace, ['layer'], { signal });
        return false;
      }
      signal.throwIfAborted();
      await this.#link(namespace, digest);
      return true;
    });
  }

  /**
   * Blob DELETE: removes the namespace's grant (link, then index `layer`), nothing else; the bytes
   * stay for garbage collection. Returns false when the namespace held no grant.
   */
  async revoke(namespace: string, digest: DigestParts): Promise<boolean> {
    return this.blobLocks.grant(namespace, digest, async (signal) => {
      signal.throwIfAborted();
      const linked = await this.metadata.delete(keyFor({ kind: 'layerLink', namespace, digest }));
      signal.throwIfAborted();
      await this.index.remove(digest, namespace, ['layer'], { signal });
      return linked;
    });
  }

  /**
   * Garbage collection, after it removed the namespace's orphan grant from the index: deletes the
   * link if the index, read fresh under the grant lock, still does not grant it (an upload commit
   * or mount may have granted it again meanwhile). Returns whether the link went.
   */
  async unlinkRevoked(namespace: string, digest: DigestParts, options: UpdateOptions = {}): Promise<boolean> {
    return this.blobLocks.grant(namespace, digest, async (signal) => {
      const entry = await this.index.read(digest);
      if (entry?.holders[namespace]?.includes('layer')) return false;
      signal.throwIfAborted();
      options.signal?.throwIfAborted();
      return this.metadata.delete(keyFor({ kind: 'layerLink', namespace, digest }));
    });
  }

  #link(namespace: string, digest: DigestParts): Promise<void> {
    return this.metadata.put(keyFor({ kind: 'layerLink', namespace, digest }), encodeLink({ digest }));
  }
}
