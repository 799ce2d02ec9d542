import { type Config, repositoryKeyFor } from '@angos/config';
import { type DigestParts, OciError, parseDigest } from '@angos/oci';
import { BlobIndex, uploadLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { deleteRevisionWithoutBytes, deleteTagWhile } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import { blobExists, isAlgorithm, list, namespaces, revisionDirs } from '../walk.js';
import { revokeOrphanGrant } from './orphan-grants.js';
import { removeTombstones } from './tombstones.js';

const CHECK = 'orphan-namespaces';

/** What `--orphan-namespaces` decides with: the configuration's `[repository."<ns>"]` tables. */
export interface OrphanNamespacesSettings {
  readonly config: Config;
}

/**
 * `--orphan-namespaces` (`-n`): the namespaces no `[repository."<ns>"]` of the configuration owns
 * (neither the key itself nor a path below it) lose, in this order:
 * - every tag: `delete-tag`, under its tag lock, and every tag tombstone: `delete-tombstone`;
 * - every revision: `delete-manifest`, the registry's manifest delete (tags, referrer link,
 *   revision, pull time and the manifest's blob-index references, under the manifest's lock), or,
 *   when the manifest's bytes are gone, the same removal without them;
 * - every upload session: `delete-upload`, under its session lock;
 * - every blob grant (`_layers` link and index `layer`): `revoke-grant`, through the reclamation
 *   protocol (index first, with the revocation recorded, then the link under the grant lock). A
 *   namespace's grant is its own: the bytes are reclaimed by garbage collection only once no other
 *   namespace (still configured or not) holds them, one grace period after the last one went.
 *   Manifest bytes are not reclaimed here: `--blobs` in the same pass reclaims them once their
 *   namespaces' holds are gone.
 * With no repository configured the check deletes nothing and says so: an emptied configuration
 * must never wipe the registry.
 *
 * Every action is planned from a listing that the earlier actions of the same namespace do not
 * change (tags first, then revisions, sessions, grants), so a dry run lists exactly what a real run
 * then does.
 */
export function orphanNamespacesCheck(settings: OrphanNamespacesSettings): ScrubCheck {
  return {
    name: CHECK,
    async *plan(ctx) {
      const { config } = settings;
      if (Object.keys(config.repository).length === 0) {
        ctx.logger.warn(
          'scrub --orphan-namespaces ignored: no [repository."<namespace>"] is configured, so every namespace would be an orphan',
        );
        return;
      }
      for await (const namespace of namespaces(ctx)) {
        if (repositoryKeyFor(config, namespace) !== undefined) continue;
        yield* removeNamespace(ctx, namespace);
      }
    },
  };
}

async function* removeNamespace(ctx: ScrubContext, namespace: string): AsyncIterable<ScrubAction> {
  const reason = 'no configured repository owns the namespace';
  for (const tag of await list(ctx, keyFor({ kind: 'tags', namespace }))) {
    yield {
      check: CHECK,
      action: 'delete-tag',
      key: keyFor({ kind: 'tagLink', namespace, tag }),
      reason,
      apply: () => deleteTagWhile(ctx, namespace, tag, async (link) => link !== undefined),
    };
  }
  yield* removeTombstones(ctx, CHECK, namespace, reason);
  for await (const entry of revisionDirs(ctx, namespace)) {
    if (!('digest' in entry)) continue;
    const { digest } = entry;
    yield {
      check: CHECK,
      action: 'delete-manifest',
      key: keyFor({ kind: 'revisionLink', namespace, digest }),
      reason,
      apply: () => deleteManifest(ctx, namespace, digest),
    };
  }
  for (const id of await list(ctx, keyFor({ kind: 'uploads', namespace }))) {
    yield {
      check: CHECK,
      action: 'delete-upload',
      key: keyFor({ kind: 'upload', namespace, id }),
      reason,
      apply: () =>
        ctx.locks.withLocks([uploadLockKey(namespace, id)], async (signal) => {
          signal.throwIfAborted();
          await ctx.blobs.deleteUpload(namespace, id);
          signal.throwIfAborted();
          await ctx.metadata.deletePrefix(keyFor({ kind: 'upload', namespace, id }));
        }),
    };
  }
  const index = new BlobIndex(ctx.metadata, ctx.locks, ctx.logger);
  const layers = keyFor({ kind: 'layersRoot', namespace });
  for (const algorithm of await list(ctx, layers)) {
    if (!isAlgorithm(algorithm)) continue; // `--links` quarantines it
    for (const hex of await list(ctx, keyFor({ kind: 'layerLinks', namespace, algorithm }))) {
      let digest: DigestParts;
      try {
        digest = parseDigest(`${algorithm}:${hex}`);
      } catch {
        continue;
      }
      yield {
        check: CHECK,
        action: 'revoke-grant',
        key: keyFor({ kind: 'layerLink', namespace, digest }),
        reason,
        apply: () =>
          revokeOrphanGrant(ctx, index, namespace, digest, () => ctx.now(), { orphansOnly: false }),
      };
    }
  }
}

/** The registry's delete of a manifest, or the same removal without its bytes when they are gone. */
async function deleteManifest(ctx: ScrubContext, namespace: string, digest: DigestParts): Promise<void> {
  if (!(await blobExists(ctx, digest))) {
    await deleteRevisionWithoutBytes(ctx, namespace, digest);
    return;
  }
  try {
    await ctx.registry.manifests.delete(namespace, { kind: 'digest', digest });
  } catch (error) {
    // Deleted meanwhile (or its bytes went): nothing left to do.
    if (error instanceof OciError && error.code === 'MANIFEST_UNKNOWN') return;
    throw error;
  }
}
