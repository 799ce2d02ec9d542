import { randomUUID } from 'node:crypto';
import { StorageError } from '../types.js';
import type { S3Bucket } from './bucket.js';
import type { S3Capabilities } from './options.js';

/**
 * Probed capabilities by endpoint, bucket and key prefix, for the life of the
 * process: a configuration reload that rebuilds the stores does not probe
 * again (configuration reference, "Probe behavior").
 */
const probed = new Map<string, Promise<S3Capabilities>>();

/**
 * The conditional writes the provider honours: the declared ones as given,
 * the rest probed (once per process and bucket).
 */
export async function resolveCapabilities(
  bucket: S3Bucket,
  declared: Partial<S3Capabilities> | undefined,
  cacheKey: string,
): Promise<S3Capabilities> {
  if (
    declared?.putIfNoneMatch !== undefined &&
    declared.putIfMatch !== undefined &&
    declared.deleteIfMatch !== undefined
  ) {
    return declared as S3Capabilities;
  }
  let probe = probed.get(cacheKey);
  if (probe === undefined) {
    probe = probeCapabilities(bucket);
    probed.set(cacheKey, probe);
    // A failed probe (S3 unreachable) is not remembered: the next start or reload tries again.
    probe.catch(() => probed.delete(cacheKey));
  }
  const found = await probe;
  return {
    putIfNoneMatch: declared?.putIfNoneMatch ?? found.putIfNoneMatch,
    putIfMatch: declared?.putIfMatch ?? found.putIfMatch,
    deleteIfMatch: declared?.deleteIfMatch ?? found.deleteIfMatch,
  };
}

/**
 * Tries each conditional write on a scratch key and checks that the provider
 * both refuses the unmet condition and performs the met one: some providers
 * ignore the headers (RGW 16 deletes despite a wrong If-Match). The scratch
 * key starts with `_`, which no namespace can, and is removed afterwards.
 */
export async function probeCapabilities(bucket: S3Bucket): Promise<S3Capabilities> {
  const key = `_capability_probe/${randomUUID()}`;
  const wrongEtag = 'ffffffffffffffffffffffffffffffff';
  try {
    const putIfNoneMatch = await supported(
      async () =>
        (await bucket.put(key, 'created', { ifNoneMatch: '*' })) &&
        !(await bucket.put(key, 'overwritten', { ifNoneMatch: '*' })),
    );
    // Without a working create-only write the object may not exist yet.
    if (!putIfNoneMatch) await bucket.put(key, 'created');
    const current = await bucket.head(key);
    const putIfMatch = await supported(
      async () =>
        current !== undefined &&
        !(await bucket.put(key, 'stale', { ifMatch: wrongEtag })) &&
        (await bucket.put(key, 'updated', { ifMatch: current.etag })) &&
        (await bucket.getBuffer(key))?.data.toString() === 'updated',
    );
    const deleteIfMatch = await supported(
      async () => !(await bucket.delete(key, wrongEtag)) && (await bucket.head(key)) !== undefined,
    );
    return { putIfNoneMatch, putIfMatch, deleteIfMatch };
  } finally {
    await bucket.delete(key);
  }
}

/** A step's outcome; a provider that rejects the header itself (400, 501) does not support it. */
async function supported(step: () => Promise<boolean>): Promise<boolean> {
  try {
    return await step();
  } catch (error) {
    const status = error instanceof StorageError ? error.details.status : undefined;
    if (status === 400 || status === 501) return false;
    throw error;
  }
}
