import type { Writable } from 'node:stream';
import {
  type Descriptor,
  formatDigest,
  OciError,
  parseDigest,
  parseManifest,
  parseReference,
  type Reference,
} from '@angos/oci';
import type { Registry } from '@angos/registry';
import type { DownstreamClient, WriteOutcome } from './client.js';
import { forEachLimited } from './limited.js';

/** What one replication needs: where from, where to, and how wide the blob fan-out is. */
export interface Replication {
  readonly registry: Registry;
  readonly client: DownstreamClient;
  /** The local namespace. */
  readonly namespace: string;
  /** The downstream's namespace for it (`remoteNamespace` of the downstream url). */
  readonly remote: string;
  /** `max_concurrent_pushes`: blob pushes in flight per manifest. */
  readonly concurrency: number;
  /**
   * Where on the downstream a blob may be already: the namespaces that other local holders of it
   * replicate to (same downstream). A mount from the first spares the upload.
   */
  readonly mountSources: (digest: string) => Promise<string[]>;
  readonly signal: AbortSignal;
}

/**
 * Pushes what `reference` names here to the downstream: its blobs first (skipped when the
 * downstream has them), then its child manifests (by digest, each the same way), then the
 * manifest itself, by tag with the tag's time as `X-Angos-Source-Timestamp`. The downstream
 * never holds a manifest before its content. When the downstream's `reference` already names the
 * same digest nothing is sent (`converged`): a redelivered job costs HEAD requests only.
 */
export async function pushManifest(
  replication: Replication,
  reference: Reference,
  sourceTimestamp: string | undefined,
): Promise<WriteOutcome> {
  const { registry, client, namespace, remote, signal } = replication;
  const stored = await registry.manifests.read(namespace, reference);
  const digest = formatDigest(stored.digest);
  const text = reference.kind === 'tag' ? reference.tag : digest;
  if ((await client.manifestDigest(remote, text, signal)) === digest) return 'converged';
  await pushContent(replication, stored.body, stored.mediaType);
  return client.putManifest(
    remote,
    text,
    { mediaType: stored.mediaType, body: stored.body },
    { sourceTimestamp, signal },
  );
}

/** The blobs and child manifests of a manifest, pushed before it. */
async function pushContent(replication: Replication, body: Buffer, mediaType: string): Promise<void> {
  const manifest = parseManifest(body, mediaType);
  const blobs = [...(manifest.config === undefined ? [] : [manifest.config]), ...manifest.layers];
  await forEachLimited(unique(blobs), replication.concurrency, (blob) => pushBlob(replication, blob));
  for (const child of unique(manifest.manifests)) {
    replication.signal.throwIfAborted();
    // A child the namespace does not hold (an index pushed with allow_missing_manifest_references)
    // cannot be sent; the downstream decides whether it takes the index without it.
    const reference = parseReference(child.digest);
    if (!(await holdsManifest(replication.registry, replication.namespace, reference))) continue;
    await pushManifest(replication, reference, undefined);
  }
}

async function pushBlob(replication: Replication, blob: Descriptor): Promise<void> {
  const { registry, client, namespace, remote, signal } = replication;
  if (await client.hasBlob(remote, blob.digest, signal)) return;
  let session: URL | undefined;
  const [from] = await replication.mountSources(blob.digest);
  if (from !== undefined) {
    const mounted = await client.mountBlob(remote, blob.digest, from, signal);
    if (mounted === true) return;
    // Refused (the downstream lacks it there): the session it opened takes the bytes instead.
    session = mounted;
  }
  const digest = parseDigest(blob.digest);
  let size: number;
  try {
    ({ size } = await registry.blobs.stat(namespace, digest));
  } catch (error) {
    // Not held here (a manifest pushed over missing references): nothing to send.
    if (error instanceof OciError && error.kind === 'BLOB_UNKNOWN') return;
    throw error;
  }
  await client.uploadBlob(
    remote,
    blob.digest,
    size,
    async (request: Writable) => {
      const copy = await registry.blobs.open(namespace, digest);
      try {
        await copy.copyTo(request);
      } finally {
        await copy.close();
      }
    },
    signal,
    session,
  );
}

async function holdsManifest(registry: Registry, namespace: string, reference: Reference): Promise<boolean> {
  try {
    await registry.manifests.resolve(namespace, reference);
    return true;
  } catch (error) {
    if (error instanceof OciError && error.kind === 'MANIFEST_UNKNOWN') return false;
    throw error;
  }
}

function unique(descriptors: readonly Descriptor[]): Descriptor[] {
  return [...new Map(descriptors.map((descriptor) => [descriptor.digest, descriptor])).values()];
}
