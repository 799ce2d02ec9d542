import {
  ALGORITHMS,
  type Descriptor,
  type DigestParts,
  formatDigest,
  OciError,
  parseManifest,
} from '@angos/oci';
import { type BlobStore, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';
import { holdsManifest } from '../catalog.js';
import { type LinkRecord, readLink } from '../links.js';
import type { Manifests } from '../manifests.js';
import { byCodePoint, mapBounded } from './bounded.js';
import { NamespaceBrowser } from './namespaces.js';
import { ManifestSummaries, type ManifestSummary, type PlatformView } from './summaries.js';

export type { EntryPage, NamespaceEntry, Readable } from './namespaces.js';
export type { ManifestSummary, PlatformView } from './summaries.js';

/** Store reads in flight for one page. */
const CONCURRENCY = 16;

export type TagSort = 'name' | 'pushed';
export type SortOrder = 'asc' | 'desc';

export interface TagDetail {
  readonly name: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly artifactType: string | null;
  readonly size: number;
  readonly platforms: readonly PlatformView[];
  /** RFC 3339, or null when the link records no time. */
  readonly pushedAt: string | null;
  readonly lastPulledAt: string | null;
}

export interface RevisionDetail {
  readonly digest: string;
  readonly mediaType: string;
  readonly artifactType: string | null;
  readonly size: number;
  readonly tags: readonly string[];
  /** Indexes of the namespace that list this manifest. */
  readonly parents: readonly string[];
  readonly subject: string | null;
  readonly pushedAt: string | null;
  readonly lastPulledAt: string | null;
}

export interface ReferrerView {
  readonly digest: string;
  readonly mediaType: string;
  readonly artifactType: string | null;
  readonly size: number;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface ManifestDetail extends RevisionDetail {
  readonly annotations: Readonly<Record<string, string>>;
  readonly config: Descriptor | null;
  readonly layers: readonly Descriptor[];
  readonly manifests: readonly Descriptor[];
  readonly subjectDescriptor: Descriptor | null;
  readonly referrers: readonly ReferrerView[];
}

export interface UploadDetail {
  readonly id: string;
  readonly size: number;
  readonly startedAt: string | null;
}

export interface Paged<T> {
  readonly items: T[];
  readonly more: boolean;
  readonly total: number;
}

/** Tags by the digest they point at, and parents (indexes listing it) by digest. */
interface Relations {
  readonly tagsOf: ReadonlyMap<string, string[]>;
  readonly parentsOf: ReadonlyMap<string, string[]>;
}

interface TagLink {
  readonly name: string;
  readonly link: LinkRecord;
}

/**
 * The read-only views of the extension API (docs/extension-api.md): namespaces with counts, tags
 * and revisions with sizes, platforms and times, one manifest in detail, upload sessions. One call
 * per page; the per-entry reads run with bounded concurrency, and what is immutable (a manifest's
 * size and platforms, by digest) is cached.
 */
export class Browser {
  readonly namespaces: NamespaceBrowser;
  readonly #summaries: ManifestSummaries;

  constructor(private readonly deps: { metadata: MetadataStore; blobs: BlobStore; manifests: Manifests }) {
    this.namespaces = new NamespaceBrowser(deps.metadata);
    this.#summaries = new ManifestSummaries(deps.blobs);
  }

  /** NAME_UNKNOWN unless the namespace holds a tag or a manifest. */
  async #assertExists(namespace: string, tags: readonly string[]): Promise<void> {
    if (tags.length === 0 && !(await holdsManifest(this.deps.metadata, namespace))) {
      throw new OciError('NAME_UNKNOWN', { namespace });
    }
  }

  async #tagNames(namespace: string): Promise<string[]> {
    return this.deps.metadata.list(keyFor({ kind: 'tags', namespace }));
  }

  async #tagLinks(namespace: string, names: readonly string[]): Promise<TagLink[]> {
    const links = await mapBounded(names, CONCURRENCY, async (name) => {
      const link = await readLink(this.deps.metadata, keyFor({ kind: 'tagLink', namespace, tag: name }));
      return link === undefined ? undefined : { name, link };
    });
    return links.filter((entry): entry is TagLink => entry !== undefined);
  }

  async #pulledAt(namespace: string, digest: DigestParts): Promise<string | null> {
    try {
      const value = (await this.deps.metadata.get(keyFor({ kind: 'pulledAt', namespace, digest }))).toString(
        'utf8',
      );
      return Number.isNaN(Date.parse(value)) ? null : value;
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  async #revision(namespace: string, digest: DigestParts): Promise<LinkRecord | undefined> {
    return readLink(this.deps.metadata, keyFor({ kind: 'revisionLink', namespace, digest }));
  }

  /** A summary, or one made of the revision link alone when the bytes cannot be read. */
  async #summary(digest: DigestParts, revision: LinkRecord | undefined): Promise<ManifestSummary> {
    const summary = await this.#summaries.get(digest, revision?.mediaType);
    return (
      summary ?? {
        mediaType: revision?.mediaType ?? 'application/octet-stream',
        artifactType: null,
        size: revision?.size ?? 0,
        platforms: [],
        children: [],
        subject: null,
      }
    );
  }

  /**
   * Tags with what each names, sorted by name or push time, in either order, after the tag named
   * `last` in that order, at most `limit`. Sorting by push time reads every tag's link.
   */
  async tags(
    namespace: string,
    options: { limit: number; last?: string | undefined; sort: TagSort; order: SortOrder },
  ): Promise<Paged<TagDetail>> {
    const names = await this.#tagNames(namespace);
    await this.#assertExists(namespace, names);
    const { limit, last, sort, order } = options;
    const sign = order === 'asc' ? 1 : -1;
    let page: TagLink[];
    let more: boolean;
    if (sort === 'name') {
      const ordered = order === 'asc' ? names : [...names].reverse();
      const after =
        last === undefined ? ordered : ordered.filter((name) => sign * byCodePoint(name, last) > 0);
      more = after.length > limit;
      page = await this.#tagLinks(namespace, after.slice(0, limit));
    } else {
      const time = (entry: TagLink) => Date.parse(entry.link.createdAt ?? '') || 0;
      const compare = (a: TagLink, b: TagLink) => sign * (time(a) - time(b) || byCodePoint(a.name, b.name));
      const all = (await this.#tagLinks(namespace, names)).sort(compare);
      const marker = last === undefined ? undefined : all.find((entry) => entry.name === last);
      // A `last` deleted since the previous page ends the listing rather than repeating it.
      const after =
        last === undefined
          ? all
          : marker === undefined
            ? []
            : all.filter((entry) => compare(entry, marker) > 0);
      more = after.length > limit;
      page = after.slice(0, limit);
    }
    const items = await mapBounded(page, CONCURRENCY, async ({ name, link }) => {
      // A summary known by digest needs no revision link (one store read less per tag); the link
      // is read only when the manifest's bytes do not tell its media type.
      const [known, lastPulledAt] = await Promise.all([
        this.#summaries.get(link.digest),
        this.#pulledAt(namespace, link.digest),
      ]);
      const summary =
        known ?? (await this.#summary(link.digest, await this.#revision(namespace, link.digest)));
      return {
        name,
        digest: formatDigest(link.digest),
        mediaType: summary.mediaType,
        artifactType: summary.artifactType,
        size: summary.size,
        platforms: summary.platforms,
        pushedAt: link.createdAt ?? null,
        lastPulledAt,
      };
    });
    return { items, more, total: names.length };
  }

  async #revisionDigests(namespace: string): Promise<DigestParts[]> {
    const lists = await Promise.all(
      ALGORITHMS.map(async (algorithm) =>
        (await this.deps.metadata.list(keyFor({ kind: 'revisionLinks', namespace, algorithm }))).map(
          (hex) => ({ algorithm, hex }),
        ),
      ),
    );
    return lists.flat().sort((a, b) => byCodePoint(formatDigest(a), formatDigest(b)));
  }

  /** Tags by the digest they point at, and each revision's parents: what a revision view needs. */
  async #relations(namespace: string, digests: readonly DigestParts[]): Promise<Relations> {
    const tagsOf = new Map<string, string[]>();
    for (const { name, link } of await this.#tagLinks(namespace, await this.#tagNames(namespace))) {
      const key = formatDigest(link.digest);
      tagsOf.set(key, [...(tagsOf.get(key) ?? []), name]);
    }
    const parentsOf = new Map<string, string[]>();
    await mapBounded(digests, CONCURRENCY, async (digest) => {
      const revision = await this.#revision(namespace, digest);
      if (revision === undefined) return;
      const summary = await this.#summary(digest, revision);
      for (const child of summary.children) {
        parentsOf.set(child, [...(parentsOf.get(child) ?? []), formatDigest(digest)]);
      }
    });
    return { tagsOf, parentsOf };
  }

  async #revisionDetail(
    namespace: string,
    digest: DigestParts,
    relations: Relations,
  ): Promise<RevisionDetail | undefined> {
    const revision = await this.#revision(namespace, digest);
    if (revision === undefined) return undefined;
    const key = formatDigest(digest);
    const [summary, lastPulledAt] = await Promise.all([
      this.#summary(digest, revision),
      this.#pulledAt(namespace, digest),
    ]);
    return {
      digest: key,
      mediaType: revision.mediaType ?? summary.mediaType,
      artifactType: summary.artifactType,
      size: summary.size,
      tags: (relations.tagsOf.get(key) ?? []).sort(byCodePoint),
      parents: (relations.parentsOf.get(key) ?? []).sort(byCodePoint),
      subject: summary.subject,
      pushedAt: revision.createdAt ?? null,
      lastPulledAt,
    };
  }

  /** Manifests stored in the namespace, sorted by digest, after the digest `last`, at most `limit`. */
  async revisions(
    namespace: string,
    options: { limit: number; last?: string | undefined },
  ): Promise<Paged<RevisionDetail>> {
    const digests = await this.#revisionDigests(namespace);
    if (digests.length === 0) await this.#assertExists(namespace, await this.#tagNames(namespace));
    const last = options.last;
    const after = last === undefined ? digests : digests.filter((digest) => formatDigest(digest) > last);
    const relations = await this.#relations(namespace, digests);
    const details = await mapBounded(after.slice(0, options.limit), CONCURRENCY, (digest) =>
      this.#revisionDetail(namespace, digest, relations),
    );
    return {
      items: details.filter((detail): detail is RevisionDetail => detail !== undefined),
      more: after.length > options.limit,
      total: digests.length,
    };
  }

  /** One manifest of the namespace in detail; MANIFEST_UNKNOWN when the namespace does not hold it. */
  async manifest(namespace: string, digest: DigestParts): Promise<ManifestDetail> {
    const stored = await this.deps.manifests.read(namespace, { kind: 'digest', digest });
    const relations = await this.#relations(namespace, await this.#revisionDigests(namespace));
    const detail = await this.#revisionDetail(namespace, digest, relations);
    if (detail === undefined) throw new OciError('MANIFEST_UNKNOWN', { digest: formatDigest(digest) });
    const parsed = parseManifest(stored.body, stored.mediaType);
    const referrers = await this.deps.manifests.referrers(namespace, digest, undefined);
    return {
      ...detail,
      annotations: parsed.annotations ?? {},
      config: parsed.config ?? null,
      layers: parsed.layers,
      manifests: parsed.manifests,
      subjectDescriptor: parsed.subject ?? null,
      referrers: referrers.map((referrer) => ({
        digest: referrer.digest,
        mediaType: referrer.mediaType,
        artifactType: referrer.artifactType ?? null,
        size: referrer.size,
        annotations: referrer.annotations ?? {},
      })),
    };
  }

  /** Upload sessions of the namespace, sorted by id, after `last`, at most `limit`. */
  async uploads(
    namespace: string,
    options: { limit: number; last?: string | undefined },
  ): Promise<Paged<UploadDetail>> {
    const ids = await this.deps.metadata.list(keyFor({ kind: 'uploads', namespace }));
    if (ids.length === 0 && (await this.deps.metadata.list(namespace)).length === 0) {
      throw new OciError('NAME_UNKNOWN', { namespace });
    }
    const last = options.last;
    const after = last === undefined ? ids : ids.filter((id) => id > last);
    const items = await mapBounded(after.slice(0, options.limit), CONCURRENCY, async (id) => {
      const [size, startedAt] = await Promise.all([
        this.deps.blobs.uploadSize(namespace, id).catch((error: unknown) => {
          if (error instanceof NotFoundError) return undefined;
          throw error;
        }),
        this.deps.metadata
          .get(keyFor({ kind: 'uploadStartedAt', namespace, id }))
          .then((data) => data.toString('utf8'))
          .catch((error: unknown) => {
            if (error instanceof NotFoundError) return null;
            throw error;
          }),
      ]);
      return size === undefined ? undefined : { id, size, startedAt };
    });
    return {
      items: items.filter((item): item is UploadDetail => item !== undefined),
      more: after.length > options.limit,
      total: ids.length,
    };
  }
}
