import { OciError, parseDigest } from '@angos/oci';
import type { Manifests } from '@angos/registry';
import type { RemovedManifest } from './decide.js';

/**
 * What became of a manifest retention decided to remove: deleted with its tags; left alone because
 * it was pushed or tagged again after the decision; or already gone (another scrub, a client).
 */
export type RemovalOutcome = 'deleted' | 'pushed-since' | 'gone';

/**
 * Deletes one manifest of a retention plan, safely beside clients and other replicas: the registry
 * checks, under the manifest's lock, that it was not pushed since the decision (a push of it, or
 * of a tag moved to it, rewrites its revision under that lock), so nothing acknowledged after the
 * decision is lost. Its blobs go with a later garbage-collection pass, one grace period on.
 */
export async function removeManifest(
  manifests: Manifests,
  namespace: string,
  removal: RemovedManifest,
): Promise<RemovalOutcome> {
  try {
    const deleted = await manifests.delete(
      namespace,
      { kind: 'digest', digest: parseDigest(removal.digest) },
      { unlessPushedAfter: removal.pushedAt },
    );
    return deleted ? 'deleted' : 'pushed-since';
  } catch (error) {
    if (error instanceof OciError && error.code === 'MANIFEST_UNKNOWN') return 'gone';
    throw error;
  }
}
