import type { OciClient } from './oci-client.js';
import type { OciLayout } from './oci-layout.js';

interface Document {
  mediaType: string;
  manifests?: { digest: string }[];
  config?: { digest: string };
  layers?: { digest: string }[];
}

/**
 * Pushes the image manifest or index `digest` of `layout` byte for byte over the registry API,
 * children first (blobs, then manifests, then the index), under `tag` or by digest: for tests
 * whose client pulls what it cannot push (docker and an index) or needs an image to work on.
 */
export async function pushLayout(
  client: OciClient,
  layout: OciLayout,
  repo: string,
  digest: string,
  tag?: string,
): Promise<void> {
  const doc = await layout.json<Document>(digest);
  for (const child of doc.manifests ?? []) await pushLayout(client, layout, repo, child.digest);
  for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
    await client.pushBlob(repo, await layout.blob(blob.digest));
  }
  const pushed = await client.pushManifest(repo, tag ?? digest, await layout.blob(digest), doc.mediaType);
  if (pushed.status !== 201 || pushed.digest !== digest) {
    throw new Error(`push of manifest ${digest} to ${repo}: HTTP ${pushed.status} ${pushed.text}`);
  }
}
