import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DigestParts } from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import { type S3Endpoint, s3Connection } from '@angos/test-support';
import { runBounded, seedManifests, seedNamespaceName } from './namespace-seed.js';

/**
 * The registry of namespace-seed.ts (the same namespaces, tags and manifests) written straight
 * into CNCF distribution's storage layout, for the scale scenario: pushing 100,000 tags over HTTP
 * would take longer than what is measured. These are distribution's paths, not Angos's (those live
 * in libs/storage keys.ts): its registry/storage/paths.go, under `<rootdirectory>/docker/registry/v2`.
 * Per repository, what a push of these images leaves there: a revision link per manifest, a layer
 * link per config and layer, and per tag its current link and its index entry; the manifests' and
 * blobs' bytes once, under `blobs/`. A link holds the digest as text.
 */

/** Where distribution's driver keeps everything, below `rootdirectory`. */
const V2 = 'docker/registry/v2';

const format = (digest: DigestParts) => `${digest.algorithm}:${digest.hex}`;

/** `blobs/<algorithm>/<first two hex>/<hex>/data` */
function blobDataPath(digest: DigestParts): string {
  return `${V2}/blobs/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}/data`;
}

/** What one repository's paths hold, as path → value. */
function repositoryWrites(
  name: string,
  tags: number,
  manifests: ReturnType<typeof seedManifests>,
): Array<[string, string]> {
  const repo = `${V2}/repositories/${name}`;
  const writes: Array<[string, string]> = [];
  for (const item of [manifests.index, ...manifests.images]) {
    const { algorithm, hex } = item.digest;
    writes.push([`${repo}/_manifests/revisions/${algorithm}/${hex}/link`, format(item.digest)]);
  }
  for (const item of manifests.blobs) {
    const { algorithm, hex } = item.digest;
    writes.push([`${repo}/_layers/${algorithm}/${hex}/link`, format(item.digest)]);
  }
  for (let t = 0; t < tags; t++) {
    // As namespace-seed.ts: every third tag an image manifest, the others the index.
    const target = t % 3 === 2 ? manifests.images[0]! : manifests.index;
    const tag = `${repo}/_manifests/tags/v${t}`;
    writes.push([`${tag}/current/link`, format(target.digest)]);
    writes.push([`${tag}/index/${target.digest.algorithm}/${target.digest.hex}/link`, format(target.digest)]);
  }
  return writes;
}

/** Writes a path: a file below a directory, or an object below a key prefix. */
type PutPath = (path: string, value: string | Buffer) => Promise<void>;

export function fsPaths(rootDirectory: string): PutPath {
  return async (path, value) => {
    const file = join(rootDirectory, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, value);
  };
}

/** Objects under `rootDirectory` (distribution's `rootdirectory`, without its leading `/`). */
export function s3Paths(s3: S3Endpoint, rootDirectory: string): { put: PutPath; close(): void } {
  const bucket = new S3Bucket(s3Connection(s3, rootDirectory));
  return {
    put: async (path, value) => {
      await bucket.put(path, value);
    },
    close: () => bucket.destroy(),
  };
}

/**
 * Writes `repositories` repositories named as namespace-seed.ts names them, `tags` tags each,
 * `concurrency` paths at once.
 */
export async function seedDistribution(
  put: PutPath,
  shape: {
    readonly repositories: number;
    readonly tags: number;
    readonly concurrency?: number;
    readonly onProgress?: (repositories: number) => void;
  },
): Promise<void> {
  const manifests = seedManifests();
  for (const item of [manifests.index, ...manifests.images, ...manifests.blobs]) {
    await put(blobDataPath(item.digest), item.bytes);
  }
  let done = 0;
  await runBounded(shape.concurrency ?? 64, shape.repositories, async (i) => {
    for (const [path, value] of repositoryWrites(seedNamespaceName(i), shape.tags, manifests))
      await put(path, value);
    done++;
    if (done % 500 === 0) shape.onProgress?.(done);
  });
}
