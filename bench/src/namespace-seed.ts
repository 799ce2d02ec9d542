import { createHash } from 'node:crypto';
import { type BlobStore, type DigestParts, keyFor, type MetadataStore } from '@angos/storage';

/**
 * A large registry for the extension API and web UI benchmarks, written straight into a store
 * through the storage contracts (any driver: memory, fs, S3) rather than pushed over HTTP: pushing
 * 100,000 tags would take longer than what is measured. What a push leaves (libs/registry), per
 * namespace: a revision link per manifest (media type, size, push time), a tag link per tag. The
 * manifests are shared by every namespace (one multi-platform index and its two images, each with a
 * config and a layer), so the bytes are written once; their blob-index entries name the first
 * namespace as holder, enough to keep background garbage collection from taking them.
 */

export interface NamespaceSeedShape {
  /** How many namespaces: `seed-<i mod prefixes>/app-<i>`. */
  readonly namespaces: number;
  /** Tags per namespace, `v0`…: every third one an image manifest, the others the index. */
  readonly tagsPerNamespace: number;
  /** Top-level prefixes the namespaces are spread over (default 100). */
  readonly prefixes?: number;
  /**
   * One more namespace holding this many tags, for paging within one namespace (absent: none).
   * Its name is `LARGE_NAMESPACE`.
   */
  readonly largeNamespaceTags?: number;
  /** Files written at once (default 64). */
  readonly concurrency?: number;
  /** Called with the namespaces written so far, every 500. */
  readonly onProgress?: (namespaces: number) => void;
}

/** The namespace `largeNamespaceTags` fills. */
export const LARGE_NAMESPACE = 'seed-large/many-tags';

const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** Push times start here and advance one minute per tag, so `sort=pushed` has something to sort. */
const EPOCH_MS = Date.parse('2026-01-01T00:00:00.000Z');

function digestOf(data: Uint8Array): DigestParts {
  return { algorithm: 'sha256', hex: createHash('sha256').update(data).digest('hex') };
}

const format = (digest: DigestParts) => `${digest.algorithm}:${digest.hex}`;

interface SeedBlob {
  readonly digest: DigestParts;
  readonly bytes: Buffer;
  readonly mediaType: string;
}

function blob(bytes: Buffer, mediaType: string): SeedBlob {
  return { digest: digestOf(bytes), bytes, mediaType };
}

function descriptor(item: SeedBlob, extra: Record<string, unknown> = {}) {
  return { mediaType: item.mediaType, digest: format(item.digest), size: item.bytes.length, ...extra };
}

/** The shared manifests: an index of linux/amd64 and linux/arm64 images, and every blob they name. */
export function seedManifests(): { index: SeedBlob; images: SeedBlob[]; blobs: SeedBlob[] } {
  const blobs: SeedBlob[] = [];
  const images: SeedBlob[] = [];
  for (const architecture of ['amd64', 'arm64']) {
    const config = blob(Buffer.from(JSON.stringify({ architecture, os: 'linux', rootfs: {} })), CONFIG);
    const layer = blob(Buffer.alloc(4096, architecture), LAYER);
    const image = blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST,
          config: descriptor(config),
          layers: [descriptor(layer)],
        }),
      ),
      MANIFEST,
    );
    blobs.push(config, layer);
    images.push(image);
  }
  const index = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: INDEX,
        manifests: images.map((image, i) =>
          descriptor(image, { platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } }),
        ),
      }),
    ),
    INDEX,
  );
  return { index, images, blobs };
}

/** `seed-<i mod prefixes>/app-<i>`. */
export function seedNamespaceName(index: number, prefixes = 100): string {
  return `seed-${index % prefixes}/app-${index}`;
}

function link(digest: DigestParts, createdAtMs: number, item?: SeedBlob): string {
  return JSON.stringify({
    digest: format(digest),
    ...(item !== undefined && { media_type: item.mediaType, size: item.bytes.length }),
    created_at: new Date(createdAtMs).toISOString(),
  });
}

/** What one namespace's keys hold, as path → value. */
function namespaceWrites(
  namespace: string,
  tags: number,
  manifests: ReturnType<typeof seedManifests>,
): Array<[string, string]> {
  const revisions = [manifests.index, ...manifests.images];
  const writes: Array<[string, string]> = revisions.map((item) => [
    keyFor({ kind: 'revisionLink', namespace, digest: item.digest }),
    link(item.digest, EPOCH_MS, item),
  ]);
  for (let t = 0; t < tags; t++) {
    const target = t % 3 === 2 ? manifests.images[0]! : manifests.index;
    writes.push([
      keyFor({ kind: 'tagLink', namespace, tag: `v${t}` }),
      link(target.digest, EPOCH_MS + t * 60_000),
    ]);
  }
  return writes;
}

/** Runs `tasks` with at most `concurrency` at once. */
export async function runBounded(concurrency: number, count: number, task: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await task(i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/**
 * Writes the registry described by `shape` into `stores`. Returns the namespaces written, sorted
 * (the large one included).
 */
export async function seedNamespaces(
  stores: { readonly metadata: MetadataStore; readonly blobs: BlobStore },
  shape: NamespaceSeedShape,
): Promise<string[]> {
  const manifests = seedManifests();
  const prefixes = shape.prefixes ?? 100;
  const concurrency = shape.concurrency ?? 64;
  const names = Array.from({ length: shape.namespaces }, (_, i) => seedNamespaceName(i, prefixes));
  const holder = names[0] ?? LARGE_NAMESPACE;
  for (const item of [manifests.index, ...manifests.images, ...manifests.blobs]) {
    await stores.blobs.putBlob(item.digest, item.bytes);
    const held = item.mediaType === MANIFEST || item.mediaType === INDEX ? ['manifest'] : ['layer'];
    await stores.metadata.put(
      keyFor({ kind: 'blobIndex', digest: item.digest }),
      JSON.stringify({ [holder]: held }),
    );
  }
  const writes: Array<[string, string]> = [];
  let done = 0;
  await runBounded(concurrency, names.length, async (i) => {
    for (const [path, value] of namespaceWrites(names[i]!, shape.tagsPerNamespace, manifests)) {
      await stores.metadata.put(path, value);
    }
    done++;
    if (done % 500 === 0) shape.onProgress?.(done);
  });
  if (shape.largeNamespaceTags !== undefined) {
    writes.push(...namespaceWrites(LARGE_NAMESPACE, shape.largeNamespaceTags, manifests));
    await runBounded(concurrency, writes.length, async (i) => {
      const [path, value] = writes[i]!;
      await stores.metadata.put(path, value);
    });
    names.push(LARGE_NAMESPACE);
  }
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
