import type { Logger } from '@angos/observability';
import {
  ALGORITHMS,
  type DigestParts,
  formatDigest,
  isIndexMediaType,
  OciError,
  parseManifest,
} from '@angos/oci';
import { linkCreatedAtMs, readLink } from '@angos/registry';
import { type BlobStore, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';
import type { ImageFacts, TagFacts } from './decide.js';

/** Reads in flight at once: S3 answers each in milliseconds, so one at a time would take minutes. */
const READ_CONCURRENCY = 16;

/** `map` over `items`, at most `limit` calls at a time, results in the order of `items`. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  map: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) results[index] = await map(items[index]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface FactsStores {
  readonly metadata: MetadataStore;
  /** Where manifest bodies are: read for indexes only, to find their children. */
  readonly blobs: BlobStore;
}

/** The last pull time recorded for a manifest (`update_pull_time`), or undefined. */
async function lastPulledAt(metadata: MetadataStore, namespace: string, digest: DigestParts) {
  try {
    const at = Date.parse(
      (await metadata.get(keyFor({ kind: 'pulledAt', namespace, digest }))).toString('utf8'),
    );
    return Number.isNaN(at) ? undefined : at;
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

interface Revision {
  readonly digest: DigestParts;
  readonly mediaType: string;
  readonly pushedAt: number;
}

/** The namespace's manifests: revisions whose link exists and records a media type. */
async function revisions(metadata: MetadataStore, namespace: string): Promise<Revision[]> {
  const digests: DigestParts[] = [];
  for (const algorithm of ALGORITHMS) {
    for (const hex of await metadata.list(keyFor({ kind: 'revisionLinks', namespace, algorithm }))) {
      digests.push({ algorithm, hex });
    }
  }
  const found = await mapBounded(digests, READ_CONCURRENCY, async (digest): Promise<Revision | undefined> => {
    const link = await readLink(metadata, keyFor({ kind: 'revisionLink', namespace, digest }));
    // No link: only a pull time is left there; no media type: not a manifest the registry serves.
    if (link === undefined || link.mediaType === undefined) return undefined;
    return { digest, mediaType: link.mediaType, pushedAt: linkCreatedAtMs(link) };
  });
  return found.filter((revision): revision is Revision => revision !== undefined);
}

/** Tags by the digest they point at. */
async function tagsByDigest(metadata: MetadataStore, namespace: string): Promise<Map<string, TagFacts[]>> {
  const names = await metadata.list(keyFor({ kind: 'tags', namespace }));
  const links = await mapBounded(names, READ_CONCURRENCY, (tag) =>
    readLink(metadata, keyFor({ kind: 'tagLink', namespace, tag })),
  );
  const tags = new Map<string, TagFacts[]>();
  names.forEach((name, index) => {
    const link = links[index];
    if (link === undefined) return; // deleted meanwhile
    const digest = formatDigest(link.digest);
    tags.set(digest, [...(tags.get(digest) ?? []), { name, pushedAt: linkCreatedAtMs(link) }]);
  });
  return tags;
}

/** Subjects by referrer digest, from the namespace's referrer links. */
async function subjectsByReferrer(metadata: MetadataStore, namespace: string): Promise<Map<string, string>> {
  const subjects = new Map<string, string>();
  for (const subjectAlgorithm of ALGORITHMS) {
    for (const subjectHex of await metadata.list(
      keyFor({ kind: 'referrerSubjects', namespace, algorithm: subjectAlgorithm }),
    )) {
      const subject = { algorithm: subjectAlgorithm, hex: subjectHex };
      for (const algorithm of ALGORITHMS) {
        for (const hex of await metadata.list(keyFor({ kind: 'referrers', namespace, subject, algorithm }))) {
          subjects.set(formatDigest({ algorithm, hex }), formatDigest(subject));
        }
      }
    }
  }
  return subjects;
}

/**
 * The manifests an index lists. An index whose bytes are gone or do not parse lists none (and is
 * logged): it cannot be pulled anyway, so nothing that works depends on its children. Any other
 * failure (the store unavailable) is thrown: retention never decides on partial facts.
 */
async function childrenOf(
  stores: FactsStores,
  namespace: string,
  revision: Revision,
  logger: Logger | undefined,
): Promise<string[]> {
  if (!isIndexMediaType(revision.mediaType)) return [];
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await stores.blobs.readBlob(revision.digest)) chunks.push(chunk as Buffer);
    const index = parseManifest(Buffer.concat(chunks), revision.mediaType);
    return index.manifests.map((child) => child.digest);
  } catch (error) {
    if (!(error instanceof NotFoundError || error instanceof OciError)) throw error;
    logger?.warn('index unreadable, its children are judged on their own', {
      namespace,
      digest: formatDigest(revision.digest),
      error: error.message,
    });
    return [];
  }
}

/**
 * Reads what retention needs to know of every manifest of a namespace: tags and when each was
 * pushed (tag link creation time), when the manifest was pushed (revision link creation time),
 * when it was last pulled (`pulledat`, written when `update_pull_time` is on), the children of
 * indexes and the subject of referrers. Tags pointing at no manifest of the namespace are left
 * out (scrub --tags deals with them).
 */
export async function collectImageFacts(
  stores: FactsStores,
  namespace: string,
  options: { logger?: Logger | undefined } = {},
): Promise<ImageFacts[]> {
  const { metadata } = stores;
  const tags = await tagsByDigest(metadata, namespace);
  const subjects = await subjectsByReferrer(metadata, namespace);
  return mapBounded(await revisions(metadata, namespace), READ_CONCURRENCY, async (revision) => {
    const digest = formatDigest(revision.digest);
    const subject = subjects.get(digest);
    return {
      digest,
      mediaType: revision.mediaType,
      pushedAt: revision.pushedAt,
      lastPulledAt: await lastPulledAt(metadata, namespace, revision.digest),
      tags: (tags.get(digest) ?? []).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      children: await childrenOf(stores, namespace, revision, options.logger),
      ...(subject === undefined ? {} : { subject }),
    };
  });
}
