import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import { type DigestParts, formatDigest, parseDigest } from '@angos/oci';
import { type Algorithm, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';
import { blobLockKey } from './blob-locks.js';

/**
 * Why a namespace holds on to a blob:
 * - `layer`: a grant: the namespace uploaded or mounted it (mirrored by its `_layers` link);
 * - `manifest`: the blob is a manifest stored in the namespace;
 * - `ref:<digest>`: a manifest of the namespace references it (config, layer or child manifest).
 */
export type BlobReference = 'layer' | 'manifest' | `ref:${string}`;

export function manifestRef(manifest: DigestParts): BlobReference {
  return `ref:${formatDigest(manifest)}`;
}

/**
 * One blob's index entry. Stored as JSON at `_blob_index/<alg>/<hex>`:
 *
 *     { "<namespace>": ["layer", "ref:sha256:…"],   // the holders, as always
 *       "_orphaned": { "<namespace>": <ms> },        // since when that namespace holds `layer` alone
 *       "_revoked": { "<namespace>": <ms> },         // when garbage collection revoked its grant
 *       "_empty": <ms>,                              // since when no namespace holds the blob
 *       "_claim": "<token>" }                        // a garbage collection pass is deleting the bytes
 *
 * Namespace components start with [a-z0-9], so no namespace can start with `_`. Entries written
 * before these marks existed (holders only, or the old `{"_reclaiming": []}` claim) still parse:
 * a missing mark counts as "since now" (garbage collection writes it on its next pass), and the
 * old claim is a claim with no token, taken over like any other (by holding the digest lock).
 */
export interface IndexEntry {
  readonly holders: Readonly<Record<string, readonly BlobReference[]>>;
  readonly orphanedSince: Readonly<Record<string, number>>;
  /**
   * When garbage collection revoked a namespace's grant. A push that found the blob readable
   * shortly before (a HEAD, then the manifest PUT) must be refused rather than acknowledged
   * over a blob that is gone; kept for a grace period (see `add`'s `refuseIfRevokedSince`).
   */
  readonly revokedAt: Readonly<Record<string, number>>;
  readonly emptySince?: number | undefined;
  readonly claim?: string | undefined;
}

/** The claim the previous versions wrote (`{"_reclaiming": []}`); it names no token. */
const LEGACY_CLAIM = '_reclaiming';

const EMPTY: IndexEntry = { holders: {}, orphanedSince: {}, revokedAt: {} };

/** What an update makes of an entry: a new entry, or `unchanged` to write nothing. */
export type Change = (entry: IndexEntry) => IndexEntry | 'unchanged';

export interface UpdateOptions {
  /** The signal of the lock the caller holds: checked before every write. */
  readonly signal?: AbortSignal | undefined;
  /** The caller holds the digest lock `blob:<digest>` (no re-acquisition; proof over claims). */
  readonly digestLockHeld?: boolean | undefined;
  /** The reclaim token of the caller: its own claim is not someone else's. */
  readonly claimToken?: string | undefined;
  /** The clock of the marks (garbage collection passes its own). */
  readonly now?: (() => number) | undefined;
  /** Write nothing over a claim that is not the caller's (instead of taking it over). */
  readonly keepClaims?: boolean | undefined;
}

/** The outcome of adding references. */
export type AddResult = 'added' | 'present' | 'refused';

/** A hold of `layer` alone: a grant that no reference of the namespace uses. */
export function isOrphanHold(held: readonly BlobReference[]): boolean {
  return held.length === 1 && held[0] === 'layer';
}

/** True when the namespace may rely on the bytes: it holds a grant or the blob is one of its manifests. */
function holdsGrant(held: readonly BlobReference[] | undefined): boolean {
  return held !== undefined && (held.includes('layer') || held.includes('manifest'));
}

/**
 * The reverse map from a blob to the namespaces that reference it (see `IndexEntry`), and the
 * marks garbage collection reclaims by (gc.ts). Request paths only add and remove references
 * here; they never delete bytes.
 *
 * Every change is one atomic read-modify-write: compare-and-swap when the metadata store has
 * `conditional` (S3, memory), otherwise under the digest lock `blob:<digest>`, held only for that
 * read-modify-write. Both read fresh. A claim (a reclaim in progress) is taken over only by
 * proof: an update that finds one acquires the digest lock itself, which it gets only once the
 * reclaimer has released it or lost it (and a reclaimer that lost it stops before its next write).
 */
export class BlobIndex {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly locks: LockManager,
    private readonly logger: Logger,
  ) {}

  /** The holders of a blob ({} when none, or while it is being reclaimed). */
  async references(digest: DigestParts): Promise<Record<string, readonly BlobReference[]>> {
    const entry = await this.read(digest);
    return entry?.claim === undefined ? { ...(entry?.holders ?? {}) } : {};
  }

  /** The entry as stored now, past any cache; undefined when there is none. */
  async read(digest: DigestParts): Promise<IndexEntry | undefined> {
    const path = keyFor({ kind: 'blobIndex', digest });
    try {
      const data = this.metadata.getUncached
        ? await this.metadata.getUncached(path)
        : await this.metadata.get(path);
      return parseEntry(data);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * Adds references for `namespace`. With `requireGrantOf`, only if that namespace holds a grant
   * (`layer` or `manifest`) in the entry being written over, else nothing is written: `refused`.
   * With `refuseIfRevokedSince`, also `refused` when the namespace holds no grant and garbage
   * collection revoked it at or after that time (the blob was readable to it not long ago).
   * Adding `layer` (re)starts the namespace's orphan mark when it holds nothing else.
   */
  async add(
    digest: DigestParts,
    namespace: string,
    references: readonly BlobReference[],
    options: UpdateOptions & {
      readonly requireGrantOf?: string | undefined;
      readonly refuseIfRevokedSince?: number | undefined;
    } = {},
  ): Promise<AddResult> {
    let result: AddResult = 'present';
    await this.update(
      digest,
      (entry) => {
        result = 'present';
        if (options.requireGrantOf !== undefined && !holdsGrant(entry.holders[options.requireGrantOf])) {
          result = 'refused';
          return 'unchanged';
        }
        const revokedAt = entry.revokedAt[namespace];
        if (
          options.refuseIfRevokedSince !== undefined &&
          revokedAt !== undefined &&
          revokedAt >= options.refuseIfRevokedSince &&
          !holdsGrant(entry.holders[namespace])
        ) {
          result = 'refused';
          return 'unchanged';
        }
        const held = new Set(entry.holders[namespace] ?? []);
        const before = held.size;
        for (const reference of references) held.add(reference);
        const grants = references.includes('layer');
        if (held.size === before && !grants) return 'unchanged';
        if (held.size !== before) result = 'added';
        const next = [...held].sort();
        const orphanedSince = { ...entry.orphanedSince };
        // A fresh grant (upload, mount) that no manifest uses yet is an orphan from now on.
        if (grants && isOrphanHold(next)) orphanedSince[namespace] = (options.now ?? Date.now)();
        return { ...entry, holders: { ...entry.holders, [namespace]: next }, orphanedSince };
      },
      options,
    );
    return result;
  }

  /** Drops references. Returns what the namespace still holds afterwards. Never deletes bytes. */
  async remove(
    digest: DigestParts,
    namespace: string,
    references: readonly BlobReference[] | 'all',
    options: UpdateOptions = {},
  ): Promise<readonly BlobReference[]> {
    let remaining: readonly BlobReference[] = [];
    await this.update(
      digest,
      (entry) => {
        const held = entry.holders[namespace];
        remaining = [];
        if (!held) return 'unchanged';
        remaining = references === 'all' ? [] : held.filter((reference) => !references.includes(reference));
        if (remaining.length === held.length) return 'unchanged';
        return withHolder(entry, namespace, remaining);
      },
      options,
    );
    return remaining;
  }

  /**
   * Applies `change` to the current entry and saves the result with its marks settled (see
   * `settle`), atomically: compare-and-swap, or under the digest lock. Returns the entry as
   * written (or as found when nothing changed); undefined when there is none.
   */
  async update(
    digest: DigestParts,
    change: Change,
    options: UpdateOptions = {},
  ): Promise<IndexEntry | undefined> {
    const cas = this.metadata.conditional;
    if (!cas) {
      if (options.digestLockHeld) return this.#updateLocked(digest, change, options);
      return this.locks.withLocks(
        [blobLockKey(digest)],
        (signal) => this.#updateLocked(digest, change, { ...options, signal: both(signal, options.signal) }),
        { signal: options.signal },
      );
    }
    const path = keyFor({ kind: 'blobIndex', digest });
    for (;;) {
      const current = await cas.getVersioned(path);
      const found = current ? parseEntry(current.data) : undefined;
      const planned = plan(found, change, options);
      if (planned === undefined) return found;
      if (found?.claim !== undefined && found.claim !== options.claimToken && !options.digestLockHeld) {
        // A reclaim stands: take it over only with the digest lock in hand (proof that its holder
        // released it or lost it), then start again from what is there by then.
        return this.locks.withLocks(
          [blobLockKey(digest)],
          (signal) =>
            this.update(digest, change, {
              ...options,
              digestLockHeld: true,
              signal: both(signal, options.signal),
            }),
          { signal: options.signal },
        );
      }
      options.signal?.throwIfAborted();
      if (await cas.putIfVersion(path, serialize(planned), current?.version)) return planned;
      this.logger.debug('blob index changed concurrently, retrying', { digest: formatDigest(digest) });
    }
  }

  /** Without compare-and-swap: the digest lock is held, so a plain read and write is atomic. */
  async #updateLocked(
    digest: DigestParts,
    change: Change,
    options: UpdateOptions,
  ): Promise<IndexEntry | undefined> {
    const found = await this.read(digest);
    const planned = plan(found, change, options);
    if (planned === undefined) return found;
    options.signal?.throwIfAborted();
    await this.metadata.put(keyFor({ kind: 'blobIndex', digest }), serialize(planned));
    return planned;
  }

  /**
   * Gives bytes that have no entry at all (older stores, crashes) an empty entry marked `since`,
   * so that they are reclaimed one grace period later. Writes nothing when an entry exists.
   */
  async adoptBytes(digest: DigestParts, since: number): Promise<boolean> {
    const path = keyFor({ kind: 'blobIndex', digest });
    const data = serialize({ ...EMPTY, emptySince: since });
    const cas = this.metadata.conditional;
    if (cas) return cas.putIfVersion(path, data, undefined);
    return this.locks.withLocks([blobLockKey(digest)], async (signal) => {
      if ((await this.read(digest)) !== undefined) return false;
      signal.throwIfAborted();
      await this.metadata.put(path, data);
      return true;
    });
  }

  /**
   * The last step of a reclaim: deletes the entry if it still carries the claim `token`. The caller
   * holds the digest lock (`signal`); on stores that cannot delete conditionally the fresh re-read
   * under that lock is the check.
   */
  async deleteClaimed(digest: DigestParts, token: string, signal: AbortSignal): Promise<boolean> {
    const path = keyFor({ kind: 'blobIndex', digest });
    const cas = this.metadata.conditional;
    if (cas?.deleteIfVersion) {
      const current = await cas.getVersioned(path);
      if (current === undefined || parseEntry(current.data).claim !== token) return false;
      signal.throwIfAborted();
      return cas.deleteIfVersion(path, current.version);
    }
    if ((await this.read(digest))?.claim !== token) return false;
    signal.throwIfAborted();
    return this.metadata.delete(path);
  }

  /** Every digest that has an entry (either layout: `<alg>/<hex>` or fanned out `<alg>/<xx>/<hex>`). */
  async *digests(): AsyncIterable<DigestParts> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const dir = keyFor({ kind: 'blobIndexes', algorithm });
      for (const name of await this.metadata.list(dir)) {
        if (name.length === 2) {
          for (const hex of await this.metadata.list(`${dir}/${name}`)) {
            const digest = digestFrom(algorithm, hex);
            if (digest) yield digest;
          }
        } else {
          const digest = digestFrom(algorithm, name);
          if (digest) yield digest;
        }
      }
    }
  }
}

function digestFrom(algorithm: Algorithm, hex: string): DigestParts | undefined {
  try {
    return parseDigest(`${algorithm}:${hex}`);
  } catch {
    return undefined; // not an entry (stray file)
  }
}

/** `entry` with `namespace` holding `held` (removed when empty). */
export function withHolder(entry: IndexEntry, namespace: string, held: readonly BlobReference[]): IndexEntry {
  const holders = { ...entry.holders };
  if (held.length > 0) holders[namespace] = held;
  else delete holders[namespace];
  return { ...entry, holders };
}

/** Both signals as one (either aborting aborts it). */
function both(lock: AbortSignal, caller: AbortSignal | undefined): AbortSignal {
  return caller === undefined ? lock : AbortSignal.any([lock, caller]);
}

/**
 * What to write over `found` (undefined: nothing). A claim that is not the caller's is dropped
 * from what the change sees: the caller writes over it only once it holds the digest lock.
 */
function plan(found: IndexEntry | undefined, change: Change, options: UpdateOptions): IndexEntry | undefined {
  const foreignClaim = found?.claim !== undefined && found.claim !== options.claimToken;
  if (foreignClaim && options.keepClaims) return undefined;
  const base = found === undefined ? EMPTY : foreignClaim ? { ...found, claim: undefined } : found;
  const next = change(base);
  if (next === 'unchanged') return undefined;
  const settled = settle(next, (options.now ?? Date.now)());
  if (found !== undefined && serialize(settled) === serialize(found)) return undefined;
  return settled;
}

/**
 * The marks of an entry made consistent with its holders: a namespace
 * that holds `layer` alone is orphaned (since `now` unless already marked), no other is; an
 * entry with no holders is empty (since `now` unless already marked), any holder clears it.
 */
export function settle(entry: IndexEntry, now: number): IndexEntry {
  const orphanedSince: Record<string, number> = {};
  for (const [namespace, held] of Object.entries(entry.holders)) {
    if (isOrphanHold(held)) orphanedSince[namespace] = entry.orphanedSince[namespace] ?? now;
  }
  // A revocation matters only while the namespace has no grant again.
  const revokedAt: Record<string, number> = {};
  for (const [namespace, at] of Object.entries(entry.revokedAt)) {
    if (!holdsGrant(entry.holders[namespace])) revokedAt[namespace] = at;
  }
  const empty = Object.keys(entry.holders).length === 0;
  return {
    holders: entry.holders,
    orphanedSince,
    revokedAt,
    emptySince: empty ? (entry.emptySince ?? now) : undefined,
    claim: entry.claim,
  };
}

export function parseEntry(data: Buffer): IndexEntry {
  const json = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
  const holders: Record<string, BlobReference[]> = {};
  let orphanedSince: Record<string, number> = {};
  let revokedAt: Record<string, number> = {};
  let emptySince: number | undefined;
  let claim: string | undefined;
  for (const [key, value] of Object.entries(json)) {
    if (key === '_orphaned') orphanedSince = { ...(value as Record<string, number>) };
    else if (key === '_revoked') revokedAt = { ...(value as Record<string, number>) };
    else if (key === '_empty') emptySince = value as number;
    else if (key === '_claim') claim = value as string;
    else if (key === LEGACY_CLAIM) claim = LEGACY_CLAIM;
    else if (!key.startsWith('_')) holders[key] = value as BlobReference[];
  }
  return { holders, orphanedSince, revokedAt, emptySince, claim };
}

/** The stored form: keys sorted, so equal entries serialize equally. */
export function serialize(entry: IndexEntry): string {
  const json: Record<string, unknown> = {};
  for (const namespace of Object.keys(entry.holders).sort()) json[namespace] = entry.holders[namespace];
  for (const [key, marks] of [
    ['_orphaned', entry.orphanedSince],
    ['_revoked', entry.revokedAt],
  ] as const) {
    const namespaces = Object.keys(marks).sort();
    if (namespaces.length > 0) json[key] = Object.fromEntries(namespaces.map((ns) => [ns, marks[ns]]));
  }
  if (entry.emptySince !== undefined) json['_empty'] = entry.emptySince;
  if (entry.claim !== undefined) json['_claim'] = entry.claim;
  return JSON.stringify(json);
}
