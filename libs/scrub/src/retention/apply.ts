import { OciError, parseDigest } from '@angos/oci';
import type { DeleteOutcome, Manifests } from '@angos/registry';
import type { RemovedManifest } from './decide.js';

/**
 * What became of a manifest retention decided to remove: deleted with its tags; left alone because
 * it was pushed or tagged again after the decision, or because an index pushed since lists it; or
 * already gone (another scrub, a client).
 */
export type RemovalOutcome = DeleteOutcome | 'gone';

/**
 * Deletes one manifest of a retention plan, safely beside clients and other replicas: the registry
 * checks, under the manifest's lock, that it was not pushed since the decision (a push of it, or
 * of a tag moved to it, rewrites its revision under that lock) and that no manifest of the
 * namespace lists it (an index pushed over it since), so nothing acknowledged after the decision
 * loses a manifest it needs. Delete `remove` in plan order: an index goes before its children,
 * which it would otherwise still list. Blobs go with a later garbage-collection pass.
 */
export async function removeManifest(
  manifests: Manifests,
  namespace: string,
  removal: RemovedManifest,
): Promise<RemovalOutcome> {
  try {
    return await manifests.delete(
      namespace,
      { kind: 'digest', digest: parseDigest(removal.digest) },
      { unlessPushedAfter: removal.pushedAt, unlessReferenced: true },
    );
  } catch (error) {
    if (error instanceof OciError && error.code === 'MANIFEST_UNKNOWN') return 'gone';
    throw error;
  }
}
