import {
  type DigestParts,
  formatDigest,
  parseDigest,
  parseManifest,
  referencedDescriptors,
} from '@angos/oci';
import { BlobIndex, type BlobReference, grantLockKey, manifestLockKey, manifestRef } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { decodeOrUndefined, sameDigest } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import { getValue, isAlgorithm, list, namespaces, readManifestBytes, revisionDirs } from '../walk.js';

const CHECK = 'reconcile-blob-index';

/** One hold a stored manifest or link implies: `namespace` holds `reference` on `digest`. */
interface Hold {
  readonly digest: DigestParts;
  readonly reference: BlobReference;
}

/**
 * `--reconcile-blob-index`: rebuilds the blob-index holds that the namespaces' manifests and links
 * imply and the index lacks (an index lost, corrupted or tampered with out-of-band, or a store
 * written before the index existed). It reads every manifest, so it is expensive.
 * - a revision whose manifest is stored: its `manifest` hold on its own digest and a `ref:<M>` on
 *   every blob it references (config, layers, children, subject excluded): `reindex-manifest`,
 *   added under the manifest's lock, which its delete holds while it removes them, after the
 *   revision is found still there;
 * - a `_layers` link: its `layer` grant: `reindex-grant`, added under the grant lock (which a
 *   blob DELETE and garbage collection's revocation hold while they remove the link), after the
 *   link is found still there.
 * Holds are only ever added here; stale ones are `--blobs`' and the garbage-collection pass's.
 */
export const reconcileBlobIndexCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    const index = new BlobIndex(ctx.metadata, ctx.locks, ctx.logger);
    for await (const namespace of namespaces(ctx)) {
      for await (const entry of revisionDirs(ctx, namespace)) {
        if ('digest' in entry) yield* reconcileManifest(ctx, index, namespace, entry.digest);
      }
      yield* reconcileGrants(ctx, index, namespace);
    }
  },
};

async function* reconcileManifest(
  ctx: ScrubContext,
  index: BlobIndex,
  namespace: string,
  digest: DigestParts,
): AsyncIterable<ScrubAction> {
  const path = keyFor({ kind: 'revisionLink', namespace, digest });
  const holds = await manifestHolds(ctx, namespace, digest);
  if (holds === undefined) return;
  const missing = await missingHolds(index, namespace, holds);
  if (missing.length === 0) return;
  yield {
    check: CHECK,
    action: 'reindex-manifest',
    key: path,
    reason: `the blob index lacks ${missing.map(describeHold).join(', ')}`,
    apply: () =>
      ctx.locks.withLocks([manifestLockKey(namespace, digest)], async (signal) => {
        // Re-read under the lock: a delete of the manifest removes its holds under the same lock.
        const now = await manifestHolds(ctx, namespace, digest, true);
        if (now === undefined) return;
        for (const hold of await missingHolds(index, namespace, now)) {
          signal.throwIfAborted();
          await index.add(hold.digest, namespace, [hold.reference], { signal });
        }
      }),
  };
}

/** The holds a stored manifest implies; undefined when it is not a readable manifest. */
async function manifestHolds(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
  fresh = false,
): Promise<Hold[] | undefined> {
  const link = await getValue(ctx, keyFor({ kind: 'revisionLink', namespace, digest }), { fresh });
  const record = link && decodeOrUndefined(link);
  if (!record || !sameDigest(record.digest, digest)) return undefined; // `--links`'s
  const body = await readManifestBytes(ctx, digest);
  if (body === undefined) return undefined; // `--manifests`'
  let manifest: ReturnType<typeof parseManifest>;
  try {
    manifest = parseManifest(body, record.mediaType);
  } catch {
    return undefined;
  }
  const holds: Hold[] = [{ digest, reference: 'manifest' }];
  const seen = new Set<string>();
  for (const descriptor of referencedDescriptors(manifest)) {
    if (seen.has(descriptor.digest)) continue;
    seen.add(descriptor.digest);
    holds.push({ digest: parseDigest(descriptor.digest), reference: manifestRef(digest) });
  }
  return holds;
}

async function missingHolds(index: BlobIndex, namespace: string, holds: readonly Hold[]): Promise<Hold[]> {
  const missing: Hold[] = [];
  for (const hold of holds) {
    const held = (await index.read(hold.digest))?.holders[namespace] ?? [];
    if (!held.includes(hold.reference)) missing.push(hold);
  }
  return missing;
}

function describeHold(hold: Hold): string {
  return `${hold.reference} on ${formatDigest(hold.digest)}`;
}

async function* reconcileGrants(
  ctx: ScrubContext,
  index: BlobIndex,
  namespace: string,
): AsyncIterable<ScrubAction> {
  const root = keyFor({ kind: 'layersRoot', namespace });
  for (const algorithm of await list(ctx, root)) {
    if (!isAlgorithm(algorithm)) continue; // `--links` quarantines it
    for (const hex of await list(ctx, keyFor({ kind: 'layerLinks', namespace, algorithm }))) {
      let digest: DigestParts;
      try {
        digest = parseDigest(`${algorithm}:${hex}`);
      } catch {
        continue;
      }
      const path = keyFor({ kind: 'layerLink', namespace, digest });
      if ((await getValue(ctx, path)) === undefined) continue;
      if ((await index.read(digest))?.holders[namespace]?.includes('layer')) continue;
      yield {
        check: CHECK,
        action: 'reindex-grant',
        key: path,
        reason: `the blob index lacks the namespace's layer grant of ${formatDigest(digest)}`,
        apply: () =>
          ctx.locks.withLocks([grantLockKey(namespace, digest)], async (signal) => {
            if ((await getValue(ctx, path, { fresh: true })) === undefined) return;
            signal.throwIfAborted();
            await index.add(digest, namespace, ['layer'], { signal });
          }),
      };
    }
  }
}
