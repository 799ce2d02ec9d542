import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import {
  type Descriptor,
  type DigestParts,
  digestOf,
  formatDigest,
  isValidTag,
  OciError,
  type ParsedManifest,
  parseDigest,
  parseManifest,
  type Reference,
  referencedDescriptors,
} from '@angos/oci';
import { type BlobStore, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';
import { type BlobIndex, manifestRef, withHolder } from './blob-index.js';
import { DOWNLOAD_URL_TTL_SECS } from './blobs.js';
import { ByteCache } from './byte-cache.js';
import { holdsManifest } from './catalog.js';
import type { Grants } from './grants.js';
import { advancesTombstone, assertTagDeletable, clampSourceTime, decideTagPush } from './last-writer-wins.js';
import { encodeLink, exists, linkCreatedAtMs, readLink } from './links.js';
import { readWhole } from './read-whole.js';
import type { NamespaceSettings } from './settings.js';
import { tagListingStart } from './tag-pages.js';
import { readTombstone, writeTombstone } from './tombstones.js';

export interface ManifestInfo {
  readonly digest: DigestParts;
  readonly mediaType: string;
  readonly size: number;
}

export interface StoredManifest extends ManifestInfo {
  readonly body: Buffer;
}

/** What a delete did: see `Manifests.delete`. */
export type DeleteOutcome = 'deleted' | 'pushed-since' | 'referenced';

export interface PushedManifest {
  readonly digest: DigestParts;
  readonly subject?: DigestParts;
  /**
   * False when the push changed nothing: the manifest was stored already and every tag already
   * held this write (a replicated write replayed). Replication forwards only changes, so a write
   * relayed back to the peer it came from stops there.
   */
  readonly changed: boolean;
}

/** What a replicated write carries: the time its author wrote it (`X-Angos-Source-Timestamp`). */
export interface ReplicatedWrite {
  /**
   * Ms since the epoch. Present only for a write of an identity allowed to replicate: the tag's
   * time becomes this (clamped to now), and last-writer-wins decides against the tag's own time.
   */
  readonly sourceTimestampMs?: number | undefined;
}

/**
 * The most of a stored manifest anyone reads into memory (a GET, scrub). A manifest was at most
 * `max_manifest_size` (5 MiB by default) when it was pushed; this leaves room for a limit raised
 * far above the default and lowered since. Stored bytes past it are not a manifest (a store that
 * lost or swapped a file): they are refused rather than held.
 */
export const MANIFEST_READ_LIMIT = 64 * 1024 * 1024;

/** Budget of the manifest body cache: a manifest GET then reads two links instead of three files. */
const MANIFEST_CACHE_BYTES = 32 * 1024 * 1024;

/** Manifests, tags and referrers of namespaces. */
export class Manifests {
  // Manifest bodies by digest. Content-addressed, so never stale; whether the namespace still has
  // the manifest is checked on every GET (resolve) before a cached body is served.
  readonly #bodies = new ByteCache(MANIFEST_CACHE_BYTES);

  constructor(
    private readonly deps: {
      blobs: BlobStore;
      metadata: MetadataStore;
      locks: LockManager;
      index: BlobIndex;
      grants: Grants;
      settings: (namespace: string) => NamespaceSettings;
      logger: Logger;
    },
  ) {}

  /**
   * Stores a manifest and points its tags at it. `reference` is the tag or
   * digest of the URL; `extraTags` are the `?tag=` values of a push by digest.
   * `allowMissingReferences` stores it over blobs the namespace does not hold yet whatever
   * `allow_missing_manifest_references` says: the pull-through cache stores a manifest before the
   * layers it fetches only when a client asks for them. The references are recorded all the same,
   * so the blobs it fills later are held by the manifest.
   * `sourceTimestampMs` makes it a replicated write (last-writer-wins.ts): a tag that holds a
   * later write answers REPLICATION_SUPERSEDED before anything is written.
   */
  async put(
    namespace: string,
    reference: Reference,
    body: Buffer,
    contentType: string | undefined,
    extraTags: readonly string[],
    options: { readonly allowMissingReferences?: boolean } & ReplicatedWrite = {},
  ): Promise<PushedManifest> {
    const settings = this.deps.settings(namespace);
    if (body.length > settings.maxManifestSize) {
      throw new OciError('MANIFEST_TOO_LARGE', { limit: settings.maxManifestSize });
    }
    const digest = digestOf(reference.kind === 'digest' ? reference.digest.algorithm : 'sha256', body);
    if (reference.kind === 'digest' && reference.digest.hex !== digest.hex) {
      throw new OciError('DIGEST_INVALID', {
        expected: formatDigest(reference.digest),
        actual: formatDigest(digest),
      });
    }
    const manifest = parseManifest(body, contentType);
    const tags = reference.kind === 'tag' ? [reference.tag] : [...new Set(extraTags)];
    for (const tag of tags) if (!isValidTag(tag)) throw new OciError('TAG_INVALID', { tag });

    const referenced = uniqueDigests(referencedDescriptors(manifest));
    // Blobs readable now must still be granted when the reference lands (garbage collection may
    // revoke a grant meanwhile): checked again, atomically, by the index update that adds it.
    const readable: DigestParts[] = [];
    const missing: string[] = [];
    for (const child of referenced) {
      if (await this.deps.grants.canRead(namespace, child)) readable.push(child);
      else missing.push(formatDigest(child));
    }
    const allowMissing = options.allowMissingReferences ?? settings.allowMissingManifestReferences;
    if (missing.length > 0 && !allowMissing) {
      throw new OciError('MANIFEST_BLOB_UNKNOWN', { missing });
    }
    const subject = manifest.subject ? parseDigest(manifest.subject.digest) : undefined;

    // No lock on the referenced blobs: the manifest's own lock keeps a delete of the same
    // manifest (and garbage collection's pruning of its references) out, and the tag locks keep
    // tag moves apart.
    const lockKeys = [manifestLockKey(namespace, digest), ...tags.map((tag) => tagLockKey(namespace, tag))];
    const sourceMs = options.sourceTimestampMs;
    const tagTime = sourceMs === undefined ? undefined : new Date(clampSourceTime(sourceMs)).toISOString();
    const changed = await this.deps.locks.withLocks(lockKeys, async (signal) => {
      for (const tag of tags) await this.#assertTagMayMove(namespace, tag, digest, settings);
      // Decided before anything is written: a superseded replicated push leaves no trace but the
      // blobs it uploaded (their grants; `scrub --orphan-grants` reclaims them).
      const tagsToWrite =
        tagTime === undefined ? tags : await this.#tagsWinning(namespace, tags, digest, tagTime);
      const revisionKey = keyFor({ kind: 'revisionLink', namespace, digest });
      const revisionExisted =
        (await readLink(this.deps.metadata, revisionKey, { fresh: true })) !== undefined;
      // References, then the manifest's bytes, then the revision, then tags: a crash at any point
      // leaves references without a revision (garbage collection prunes them), never a tag to nothing.
      await this.#addReferences(namespace, digest, referenced, readable, signal);
      signal.throwIfAborted();
      // The entry gets its holder before the bytes are written, so no reclaim starts under them.
      await this.deps.index.add(digest, namespace, ['manifest'], { signal });
      signal.throwIfAborted();
      await this.deps.blobs.putBlob(digest, body);
      signal.throwIfAborted();
      await this.deps.metadata.put(
        revisionKey,
        encodeLink({ digest, mediaType: manifest.mediaType, size: body.length }),
      );
      if (subject) {
        signal.throwIfAborted();
        await this.deps.metadata.put(
          keyFor({ kind: 'referrerLink', namespace, subject, referrer: digest }),
          JSON.stringify(referrerDescriptor(manifest, digest, body.length)),
        );
      }
      for (const tag of tagsToWrite) {
        signal.throwIfAborted();
        await this.deps.metadata.put(
          keyFor({ kind: 'tagLink', namespace, tag }),
          encodeLink(tagTime === undefined ? { digest } : { digest, createdAt: tagTime }),
        );
      }
      return !revisionExisted || tagsToWrite.length > 0;
    });
    this.deps.logger.debug('manifest stored', { namespace, digest: formatDigest(digest), tags, changed });
    return subject ? { digest, subject, changed } : { digest, changed };
  }

  /**
   * The tags a replicated push at `tagTime` moves (or sets again): those whose current write it
   * beats. Throws REPLICATION_SUPERSEDED when one holds a later write, or, for a tag that does not
   * exist, when its tombstone holds a delete at or after it. Under the tag locks, fresh.
   */
  async #tagsWinning(
    namespace: string,
    tags: readonly string[],
    digest: DigestParts,
    tagTime: string,
  ): Promise<string[]> {
    const atMs = Date.parse(tagTime);
    const winning: string[] = [];
    for (const tag of tags) {
      const current = await readLink(this.deps.metadata, keyFor({ kind: 'tagLink', namespace, tag }), {
        fresh: true,
      });
      const deletedAtMs =
        current === undefined ? await readTombstone(this.deps.metadata, namespace, tag) : undefined;
      if (decideTagPush(tag, current, digest, atMs, deletedAtMs) === 'write') winning.push(tag);
    }
    return winning;
  }

  /** The time of the write a tag holds (its link's `created_at`), or undefined without the tag. */
  async tagTime(namespace: string, tag: string): Promise<string | undefined> {
    const link = await readLink(this.deps.metadata, keyFor({ kind: 'tagLink', namespace, tag }));
    return link?.createdAt;
  }

  /**
   * When the tag was last deleted (its tombstone), as RFC 3339, or undefined when no delete of it
   * is recorded. Replication dates the delete it sends for a tag gone here with it.
   */
  async tagDeletedAt(namespace: string, tag: string): Promise<string | undefined> {
    const atMs = await readTombstone(this.deps.metadata, namespace, tag);
    return atMs === undefined ? undefined : new Date(atMs).toISOString();
  }

  /** What a tag or digest names in the namespace; MANIFEST_UNKNOWN otherwise. */
  async resolve(namespace: string, reference: Reference): Promise<ManifestInfo> {
    let digest: DigestParts;
    if (reference.kind === 'tag') {
      const tag = await readLink(
        this.deps.metadata,
        keyFor({ kind: 'tagLink', namespace, tag: reference.tag }),
      );
      if (!tag) throw new OciError('MANIFEST_UNKNOWN', { tag: reference.tag });
      digest = tag.digest;
    } else {
      digest = reference.digest;
    }
    const revision = await readLink(this.deps.metadata, keyFor({ kind: 'revisionLink', namespace, digest }));
    if (!revision || revision.mediaType === undefined || revision.size === undefined) {
      throw new OciError('MANIFEST_UNKNOWN', { digest: formatDigest(digest) });
    }
    return { digest, mediaType: revision.mediaType, size: revision.size };
  }

  async get(namespace: string, reference: Reference): Promise<StoredManifest> {
    const stored = await this.#load(await this.resolve(namespace, reference));
    if (this.deps.settings(namespace).updatePullTime) this.#recordPull(namespace, stored.digest);
    return stored;
  }

  /** A manifest as `get` serves it, without recording a pull: for replication's reads. */
  async read(namespace: string, reference: Reference): Promise<StoredManifest> {
    return this.#load(await this.resolve(namespace, reference));
  }

  /** The manifest's body (cached by digest), without recording a pull. */
  async #load(info: ManifestInfo): Promise<StoredManifest> {
    const key = formatDigest(info.digest);
    let body = this.#bodies.get(key);
    if (body === undefined) {
      try {
        body = await readWhole(await this.deps.blobs.readBlob(info.digest), MANIFEST_READ_LIMIT);
      } catch (error) {
        if (error instanceof NotFoundError) throw new OciError('MANIFEST_UNKNOWN', { digest: key });
        throw error;
      }
      if (body === undefined) {
        this.deps.logger.warn('stored manifest larger than any manifest; not served', {
          digest: key,
          limit: MANIFEST_READ_LIMIT,
        });
        throw new OciError('MANIFEST_UNKNOWN', { digest: key });
      }
      this.#bodies.set(key, body);
    }
    return { ...info, body };
  }

  /**
   * A time-limited URL from which the client downloads the manifest directly,
   * answered with its media type (S3 `response-content-type`); undefined when
   * the store cannot presign. Counts as a pull, like `get`.
   */
  async downloadUrl(namespace: string, info: ManifestInfo): Promise<string | undefined> {
    const presign = this.deps.blobs.presignBlob;
    if (!presign) return undefined;
    const url = await presign.call(this.deps.blobs, info.digest, {
      expiresInSecs: DOWNLOAD_URL_TTL_SECS,
      contentType: info.mediaType,
    });
    if (this.deps.settings(namespace).updatePullTime) this.#recordPull(namespace, info.digest);
    return url;
  }

  /**
   * Deletes a tag, or a manifest with every tag that points at it. Each tag deleted keeps the
   * delete's time in its tombstone (tombstones.ts): the replicated write's time, otherwise
   * `deletedAtMs` (the time the caller announces the delete with), otherwise now.
   * A replicated delete of a tag that does not exist here records its tombstone all the same (a
   * delete that arrives before the older push it supersedes must still win); it answers
   * MANIFEST_UNKNOWN only when that changed nothing (a delete at that time or later was recorded).
   * The options make a manifest delete conditional (retention's deletes, decided on facts read
   * earlier), each checked under the manifest's lock, which every push of it (and so every tag
   * moved to it) holds:
   * - `unlessPushedAfter` (ms since the epoch): nothing is deleted when the manifest was pushed
   *   after it (`pushed-since`);
   * - `unlessReferenced`: nothing is deleted while another manifest of the namespace lists it (an
   *   index pushed over an existing child, `referenced`). Checked and settled in one atomic update
   *   of its blob-index entry, which drops the manifest's own hold: an index push that lands
   *   first keeps the child, and one that lands after is refused (the child is no longer its to
   *   rely on) instead of being acknowledged over a child about to go.
   */
  async delete(
    namespace: string,
    reference: Reference,
    options: {
      unlessPushedAfter?: number;
      unlessReferenced?: boolean;
      deletedAtMs?: number | undefined;
    } & ReplicatedWrite = {},
  ): Promise<DeleteOutcome> {
    const sourceMs = options.sourceTimestampMs;
    const atMs = sourceMs === undefined ? undefined : clampSourceTime(sourceMs);
    const deletedAtMs = atMs ?? options.deletedAtMs;
    if (reference.kind === 'tag') {
      const tag = reference.tag;
      const changed = await this.deps.locks.withLocks([tagLockKey(namespace, tag)], async (signal) => {
        const key = keyFor({ kind: 'tagLink', namespace, tag });
        if (atMs === undefined) {
          // An ordinary delete needs only to know the tag exists (even a link that does not parse goes).
          if (!(await exists(this.deps.metadata, key, { fresh: true }))) return false;
        } else {
          const current = await readLink(this.deps.metadata, key, { fresh: true });
          if (current === undefined) {
            const recorded = await readTombstone(this.deps.metadata, namespace, tag);
            if (!advancesTombstone(recorded, atMs)) return false;
            signal.throwIfAborted();
            await writeTombstone(this.deps.metadata, namespace, tag, atMs);
            return true;
          }
          assertTagDeletable(tag, current, atMs);
        }
        await this.#deleteTag(namespace, tag, deletedAtMs ?? Date.now(), signal);
        return true;
      });
      if (!changed) throw new OciError('MANIFEST_UNKNOWN', { tag });
      return 'deleted';
    }
    const digest = reference.digest;
    // Read without recording a pull: a pull time written after the delete would leave a ghost namespace.
    const stored = await this.#load(await this.resolve(namespace, reference));
    const manifest = parseManifest(stored.body, stored.mediaType);
    const referenced = uniqueDigests(referencedDescriptors(manifest));
    let tags: string[] = [];
    // The manifest's lock keeps pushes of this manifest out, so no tag can move to it meanwhile;
    // each tag found pointing at it is re-checked under its own lock, past caches, before it goes.
    const lockKeys = [manifestLockKey(namespace, digest)];
    const outcome = await this.deps.locks.withLocks(lockKeys, async (signal): Promise<DeleteOutcome> => {
      const revision = keyFor({ kind: 'revisionLink', namespace, digest });
      const link = await readLink(this.deps.metadata, revision, { fresh: true });
      if (!link) throw new OciError('MANIFEST_UNKNOWN', { digest: formatDigest(digest) });
      const { unlessPushedAfter } = options;
      if (unlessPushedAfter !== undefined && linkCreatedAtMs(link) > unlessPushedAfter) return 'pushed-since';
      // A replicated delete loses to any tag of the manifest written after it; under the
      // manifest's lock no tag can move to it meanwhile, so the check stands until the delete.
      if (atMs !== undefined) await this.#assertTagsDeletable(namespace, digest, atMs);
      if (options.unlessReferenced && (await this.#dropHoldUnlessReferenced(namespace, digest, signal))) {
        return 'referenced';
      }
      tags = await this.#deleteTagsPointingAt(namespace, digest, deletedAtMs, signal);
      if (manifest.subject) {
        const subject = parseDigest(manifest.subject.digest);
        signal.throwIfAborted();
        await this.deps.metadata.delete(
          keyFor({ kind: 'referrerLink', namespace, subject, referrer: digest }),
        );
      }
      signal.throwIfAborted();
      await this.deps.metadata.delete(revision);
      signal.throwIfAborted();
      await this.deps.metadata.delete(keyFor({ kind: 'pulledAt', namespace, digest }));
      // Only references go: grants stay, and bytes are garbage collection's (one grace period
      // after the last holder), so a push that relies on a layer it was told exists keeps it.
      await this.deps.index.remove(digest, namespace, ['manifest'], { signal });
      for (const child of referenced) {
        await this.deps.index.remove(child, namespace, [manifestRef(digest)], { signal });
      }
      return 'deleted';
    });
    if (outcome !== 'deleted') {
      this.deps.logger.debug('manifest not deleted', { namespace, digest: formatDigest(digest), outcome });
      return outcome;
    }
    this.deps.logger.debug('manifest deleted', { namespace, digest: formatDigest(digest), tags });
    return 'deleted';
  }

  /**
   * Tags sorted by code point, after `last`, at most `limit`. NAME_UNKNOWN for a namespace that
   * holds no manifest. With a `limit`, one page of the listing is read, from `last` on (S3: one
   * ListObjectsV2 per 1,000 tags of the page), not the whole directory: walking a repository page
   * by page costs what its tags do, not that times the number of pages.
   */
  async listTags(
    namespace: string,
    options: { limit?: number | undefined; last?: string | undefined },
  ): Promise<{ tags: string[]; more: boolean }> {
    const directory = keyFor({ kind: 'tags', namespace });
    const { limit, last } = options;
    let tags: string[];
    let more = false;
    if (limit === undefined) {
      const all = await this.deps.metadata.list(directory);
      tags = last === undefined ? all : all.filter((tag) => tag > last);
    } else {
      // One more than the page, to know whether another follows.
      const page = await this.deps.metadata.listPage(directory, {
        after: tagListingStart(last),
        limit: limit + 1,
      });
      tags = page.slice(0, limit);
      more = page.length > limit;
    }
    if (tags.length === 0 && !more && !(await this.#holdsTagsOrManifest(namespace, directory, last))) {
      throw new OciError('NAME_UNKNOWN', { namespace });
    }
    return { tags, more };
  }

  /** Whether the namespace exists for `tags/list`: a tag anywhere in it (not only after `last`), or a manifest. */
  async #holdsTagsOrManifest(
    namespace: string,
    directory: string,
    last: string | undefined,
  ): Promise<boolean> {
    if (last !== undefined && (await this.deps.metadata.listPage(directory, { limit: 1 })).length > 0)
      return true;
    return holdsManifest(this.deps.metadata, namespace);
  }

  /** Descriptors of the namespace's manifests whose `subject` is `subject`. */
  async referrers(
    namespace: string,
    subject: DigestParts,
    artifactType: string | undefined,
  ): Promise<Descriptor[]> {
    const descriptors: Descriptor[] = [];
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const dir = keyFor({ kind: 'referrers', namespace, subject, algorithm });
      for (const hex of await this.deps.metadata.list(dir)) {
        const referrer = { algorithm, hex };
        try {
          const link = await this.deps.metadata.get(
            keyFor({ kind: 'referrerLink', namespace, subject, referrer }),
          );
          descriptors.push(JSON.parse(link.toString('utf8')) as Descriptor);
        } catch (error) {
          if (!(error instanceof NotFoundError)) throw error; // deleted meanwhile
        }
      }
    }
    return artifactType === undefined
      ? descriptors
      : descriptors.filter((descriptor) => descriptor.artifactType === artifactType);
  }

  /**
   * True when another manifest of the namespace lists `digest` (a `ref:` hold on its entry);
   * otherwise drops the namespace's `manifest` hold, in the same atomic update.
   */
  async #dropHoldUnlessReferenced(
    namespace: string,
    digest: DigestParts,
    signal: AbortSignal,
  ): Promise<boolean> {
    let referenced = false;
    await this.deps.index.update(
      digest,
      (entry) => {
        const held = entry.holders[namespace] ?? [];
        referenced = held.some((hold) => hold.startsWith('ref:'));
        if (referenced || !held.includes('manifest')) return 'unchanged';
        return withHolder(
          entry,
          namespace,
          held.filter((hold) => hold !== 'manifest'),
        );
      },
      { signal },
    );
    return referenced;
  }

  async #assertTagMayMove(
    namespace: string,
    tag: string,
    digest: DigestParts,
    settings: NamespaceSettings,
  ): Promise<void> {
    if (!settings.isImmutableTag(tag)) return;
    // Under the tag lock, past any cache: another replica may have set the tag meanwhile.
    const current = await readLink(this.deps.metadata, keyFor({ kind: 'tagLink', namespace, tag }), {
      fresh: true,
    });
    if (current && current.digest.hex !== digest.hex) {
      throw new OciError('TAG_IMMUTABLE', { tag, current: formatDigest(current.digest) });
    }
  }

  /** REPLICATION_SUPERSEDED when a tag pointing at `digest` holds a write later than `atMs`. */
  async #assertTagsDeletable(namespace: string, digest: DigestParts, atMs: number): Promise<void> {
    for (const tag of await this.deps.metadata.list(keyFor({ kind: 'tags', namespace }))) {
      const link = await readLink(this.deps.metadata, keyFor({ kind: 'tagLink', namespace, tag }), {
        fresh: true,
      });
      if (link?.digest.algorithm === digest.algorithm && link.digest.hex === digest.hex) {
        assertTagDeletable(tag, link, atMs);
      }
    }
  }

  /**
   * Deletes the tags that point at `digest`, each decided under its tag lock on a fresh read (a
   * concurrent push may move a tag away from it; none can move one to it: the caller holds the
   * manifest's lock). Returns the tags deleted.
   */
  async #deleteTagsPointingAt(
    namespace: string,
    digest: DigestParts,
    deletedAtMs: number | undefined,
    signal: AbortSignal,
  ): Promise<string[]> {
    const deleted: string[] = [];
    const pointsAtDigest = async (tag: string) => {
      const link = await readLink(this.deps.metadata, keyFor({ kind: 'tagLink', namespace, tag }), {
        fresh: true,
      });
      return link?.digest.algorithm === digest.algorithm && link.digest.hex === digest.hex;
    };
    for (const tag of await this.deps.metadata.list(keyFor({ kind: 'tags', namespace }))) {
      if (!(await pointsAtDigest(tag))) continue;
      await this.deps.locks.withLocks(
        [tagLockKey(namespace, tag)],
        async (tagSignal) => {
          if (!(await pointsAtDigest(tag))) return;
          signal.throwIfAborted();
          await this.#deleteTag(namespace, tag, deletedAtMs ?? Date.now(), tagSignal);
          deleted.push(tag);
        },
        { signal },
      );
    }
    return deleted;
  }

  /**
   * Deletes a tag link, under the tag's lock: its tombstone first, so a crash between the two
   * leaves the tag standing (the delete was not acknowledged) and never a tag gone without the
   * time of its delete. A tombstone left beside a standing tag is never read (the link's time
   * decides) and `scrub --tags` reclaims it.
   */
  async #deleteTag(namespace: string, tag: string, deletedAtMs: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await writeTombstone(this.deps.metadata, namespace, tag, deletedAtMs);
    signal.throwIfAborted();
    await this.deps.metadata.delete(keyFor({ kind: 'tagLink', namespace, tag }));
  }

  /**
   * Adds `ref:<manifest>` to each referenced blob. For the blobs that were readable when the push
   * began, the same atomic update checks that the namespace still holds their grant; for the
   * others, that garbage collection did not revoke it within the grace period. Otherwise the push
   * is refused (MANIFEST_BLOB_UNKNOWN) before anything is acknowledged, and the references it
   * added are withdrawn (best effort: garbage collection prunes leftovers).
   */
  async #addReferences(
    namespace: string,
    digest: DigestParts,
    referenced: readonly DigestParts[],
    readable: readonly DigestParts[],
    signal: AbortSignal,
  ): Promise<void> {
    const reference = manifestRef(digest);
    const added: DigestParts[] = [];
    // A blob not readable now may have been readable a moment ago (the client's HEAD): refuse
    // when garbage collection revoked it within the grace period, instead of acknowledging a
    // manifest over missing bytes.
    const refuseIfRevokedSince = Date.now() - this.deps.settings(namespace).gcGracePeriodMs;
    for (const child of referenced) {
      const requireGrantOf = readable.includes(child) ? namespace : undefined;
      signal.throwIfAborted();
      const result = await this.deps.index.add(child, namespace, [reference], {
        signal,
        requireGrantOf,
        refuseIfRevokedSince,
      });
      if (result === 'added') added.push(child);
      if (result !== 'refused') continue;
      for (const withdrawn of added) {
        await this.deps.index.remove(withdrawn, namespace, [reference], { signal }).catch((error: unknown) =>
          this.deps.logger.warn('reference of a refused push not withdrawn', {
            namespace,
            digest: formatDigest(withdrawn),
            error: String(error),
          }),
        );
      }
      throw new OciError('MANIFEST_BLOB_UNKNOWN', {
        missing: [formatDigest(child)],
        reason: 'the blob was garbage collected during the push; push it again',
      });
    }
  }

  #recordPull(namespace: string, digest: DigestParts): void {
    const key = keyFor({ kind: 'pulledAt', namespace, digest });
    const now = new Date().toISOString();
    const { metadata } = this.deps;
    // Batched by the store when it can (S3 `access_time_debounce_secs`): one write per interval, not per pull.
    if (metadata.putDeferred) {
      metadata.putDeferred(key, now);
      return;
    }
    // Best effort and off the response path: a lost pull time only delays retention.
    metadata.put(key, now).catch((error: unknown) =>
      this.deps.logger.warn('pull time not recorded', {
        namespace,
        digest: formatDigest(digest),
        error: String(error),
      }),
    );
  }
}

/** A tag of a namespace: held by pushes that move it and by deletes of it. */
export function tagLockKey(namespace: string, tag: string): string {
  return `tag:${namespace}:${tag}`;
}

/**
 * A manifest of a namespace: held by its pushes and its delete, and by garbage collection while
 * it prunes the manifest's references (so it never prunes those of a push in flight).
 */
export function manifestLockKey(namespace: string, digest: DigestParts): string {
  return `manifest:${namespace}:${formatDigest(digest)}`;
}

function uniqueDigests(descriptors: readonly Descriptor[]): DigestParts[] {
  const seen = new Map<string, DigestParts>();
  for (const descriptor of descriptors) seen.set(descriptor.digest, parseDigest(descriptor.digest));
  return [...seen.values()];
}

/** The descriptor a referrer link holds (what the referrers API lists). */
export function referrerDescriptor(manifest: ParsedManifest, digest: DigestParts, size: number): Descriptor {
  return {
    mediaType: manifest.mediaType,
    digest: formatDigest(digest),
    size,
    ...(manifest.artifactType !== undefined && { artifactType: manifest.artifactType }),
    ...(manifest.annotations !== undefined && { annotations: manifest.annotations }),
  };
}
