import { randomUUID } from 'node:crypto';
import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import { type DigestParts, formatDigest, parseDigest } from '@angos/oci';
import { type BlobStore, keyFor, type MetadataStore } from '@angos/storage';
import {
  type BlobIndex,
  type BlobReference,
  type IndexEntry,
  isOrphanHold,
  withHolder,
} from './blob-index.js';
import type { BlobLocks } from './blob-locks.js';
import type { BlobSizes } from './blob-sizes.js';
import { BoundedSet } from './bounded-set.js';
import type { Grants } from './grants.js';
import { readLink } from './links.js';
import { manifestLockKey } from './manifests.js';

export interface GcOptions {
  /** How long a grant must have been an orphan, or an entry empty, before it is reclaimed. */
  readonly gracePeriodMs: number;
  /** Decide and count, write nothing. */
  readonly dryRun?: boolean | undefined;
  /** Stops the pass between steps (the step in progress finishes or stops before its next write). */
  readonly signal?: AbortSignal | undefined;
  /** The clock (milliseconds since the epoch); Date.now by default. */
  readonly now?: (() => number) | undefined;
}

/** What one pass did (a dry run: would have done). */
export interface GcReport {
  /** Index entries examined. */
  entriesScanned: number;
  /** Orphan grants revoked (index `layer` and `_layers` link). */
  grantsRevoked: number;
  /** Blobs whose bytes were deleted. */
  blobsDeleted: number;
  /** `manifest` / `ref:` references pruned because their manifest is no longer in the namespace. */
  refsPruned: number;
  /** Entries or blobs whose step failed (logged; the next pass tries again). */
  errors: number;
}

/**
 * How many present revisions a pass remembers: about 10 MiB of keys. A store with more manifests
 * is still collected in one pass, reading some revision links twice.
 */
const REVISIONS_REMEMBERED = 65_536;

interface Pass {
  readonly gracePeriodMs: number;
  readonly dryRun: boolean;
  readonly signal: AbortSignal | undefined;
  readonly now: () => number;
  readonly report: GcReport;
  /**
   * Revisions seen present in this pass (`<namespace>@<digest>`): a manifest's blobs share one
   * read. The most recent ones only, so that a pass over any number of manifests holds bounded
   * memory (a forgotten one is read again).
   */
  readonly revisions: BoundedSet<string>;
}

/**
 * Garbage collection: the only code that revokes grants nobody asked to
 * delete and deletes blob bytes. Request paths only add and remove references and record since
 * when a grant has been an orphan and an entry empty; a pass reclaims what has stayed so for at
 * least the grace period, re-checking each decision atomically where it writes:
 *
 * 1. references whose manifest is no longer a revision of the namespace (crash leftovers, refused
 *    pushes) are pruned, under the manifest's lock, so never those of a push or delete in flight;
 * 2. grants orphaned for at least the grace period are revoked: index first, then the link under
 *    the grant lock if the index still does not grant it;
 * 3. entries empty for at least the grace period are reclaimed under the digest lock: claim,
 *    bytes, entry, checking the lock's signal before each write;
 * 4. bytes with no entry at all get an empty entry, reclaimed one grace period later.
 */
export class GarbageCollector {
  constructor(
    private readonly deps: {
      metadata: MetadataStore;
      blobs: BlobStore;
      locks: LockManager;
      blobLocks: BlobLocks;
      index: BlobIndex;
      grants: Grants;
      blobSizes: BlobSizes;
      logger: Logger;
    },
  ) {}

  async collect(options: GcOptions): Promise<GcReport> {
    const started = Date.now();
    const pass: Pass = {
      gracePeriodMs: options.gracePeriodMs,
      dryRun: options.dryRun ?? false,
      signal: options.signal,
      now: options.now ?? Date.now,
      report: { entriesScanned: 0, grantsRevoked: 0, blobsDeleted: 0, refsPruned: 0, errors: 0 },
      revisions: new BoundedSet(REVISIONS_REMEMBERED),
    };
    for await (const digest of this.deps.index.digests()) {
      pass.signal?.throwIfAborted();
      await this.#guard(pass, digest, () => this.#collectEntry(digest, pass));
    }
    for await (const digest of this.deps.blobs.listBlobs()) {
      pass.signal?.throwIfAborted();
      await this.#guard(pass, digest, () => this.#adoptBytes(digest, pass));
    }
    this.deps.logger.info('garbage collection pass finished', {
      ...pass.report,
      dryRun: pass.dryRun,
      gracePeriodSecs: Math.round(pass.gracePeriodMs / 1000),
      durationMs: Date.now() - started,
    });
    return pass.report;
  }

  /** One blob's steps; a failure is counted and logged, and the pass goes on. */
  async #guard(pass: Pass, digest: DigestParts, step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      if (pass.signal?.aborted) throw pass.signal.reason;
      pass.report.errors++;
      this.deps.logger.warn('garbage collection of a blob failed', {
        digest: formatDigest(digest),
        error: String(error),
      });
    }
  }

  async #collectEntry(digest: DigestParts, pass: Pass): Promise<void> {
    const entry = await this.deps.index.read(digest);
    if (entry === undefined) return;
    pass.report.entriesScanned++;
    if (!pass.dryRun) {
      // Entries written before the marks existed get them now (their clock starts today).
      // (Nothing for an entry that went meanwhile: an update over nothing would create one.)
      await this.deps.index.update(
        digest,
        (current) =>
          Object.keys(current.holders).length === 0 && current.emptySince === undefined
            ? 'unchanged'
            : current,
        this.#updateOptions(pass),
      );
    }
    await this.#pruneUnbacked(digest, entry, pass);
    await this.#revokeOrphans(digest, pass);
    await this.#reclaim(digest, pass);
  }

  #updateOptions(pass: Pass) {
    return { now: pass.now, keepClaims: true, signal: pass.signal };
  }

  /** Step 1: `manifest` and `ref:<M>` references whose manifest is not a revision of the namespace any more. */
  async #pruneUnbacked(digest: DigestParts, entry: IndexEntry, pass: Pass): Promise<void> {
    for (const [namespace, held] of Object.entries(entry.holders)) {
      for (const reference of held) {
        if (reference === 'layer') continue;
        const manifest = reference === 'manifest' ? digest : parseDigest(reference.slice('ref:'.length));
        // A revision seen present earlier in this pass is taken as present: a delete since then
        // leaves its references for the next pass, which is all that can happen.
        const known = `${namespace}@${formatDigest(manifest)}`;
        if (pass.revisions.has(known)) continue;
        if (await this.#isRevision(namespace, manifest)) {
          pass.revisions.add(known);
          continue;
        }
        // Under the manifest's lock a push of it is either done (revision written) or not started.
        await this.deps.locks.withLocks(
          [manifestLockKey(namespace, manifest)],
          async (signal) => {
            if (await this.#isRevision(namespace, manifest)) return;
            if (pass.dryRun) {
              pass.report.refsPruned++;
              return;
            }
            if (await this.#removeReference(digest, namespace, reference, pass, signal)) {
              pass.report.refsPruned++;
              this.deps.logger.info('garbage collection pruned a reference', {
                digest: formatDigest(digest),
                namespace,
                reference,
              });
            }
          },
          { signal: pass.signal },
        );
      }
    }
  }

  async #removeReference(
    digest: DigestParts,
    namespace: string,
    reference: BlobReference,
    pass: Pass,
    signal: AbortSignal,
  ): Promise<boolean> {
    let removed = false;
    await this.deps.index.update(
      digest,
      (current) => {
        const held = current.holders[namespace];
        removed = held?.includes(reference) ?? false;
        if (!held || !removed) return 'unchanged';
        return withHolder(
          current,
          namespace,
          held.filter((other) => other !== reference),
        );
      },
      {
        ...this.#updateOptions(pass),
        signal: AbortSignal.any([signal, ...(pass.signal ? [pass.signal] : [])]),
      },
    );
    return removed;
  }

  /** Step 2: grants that have been orphans for at least the grace period. */
  async #revokeOrphans(digest: DigestParts, pass: Pass): Promise<void> {
    const entry = await this.deps.index.read(digest);
    if (entry === undefined) return;
    for (const [namespace, held] of Object.entries(entry.holders)) {
      if (!isOrphanHold(held) || !this.#oldEnough(entry.orphanedSince[namespace], pass)) continue;
      if (pass.dryRun) {
        pass.report.grantsRevoked++;
        continue;
      }
      let revoked = false;
      await this.deps.index.update(
        digest,
        (current) => {
          // Re-checked on the state written over: a push may have added a reference meanwhile.
          const still = current.holders[namespace];
          revoked =
            still !== undefined &&
            isOrphanHold(still) &&
            this.#oldEnough(current.orphanedSince[namespace], pass);
          if (!revoked) return 'unchanged';
          // Remembered for a grace period: a push that saw the blob just before must be refused.
          const revokedAt = { ...withoutExpired(current.revokedAt, pass), [namespace]: pass.now() };
          return { ...withHolder(current, namespace, []), revokedAt };
        },
        this.#updateOptions(pass),
      );
      if (!revoked) continue;
      await this.deps.grants.unlinkRevoked(namespace, digest, { signal: pass.signal });
      pass.report.grantsRevoked++;
      this.deps.logger.info('garbage collection revoked an orphan grant', {
        digest: formatDigest(digest),
        namespace,
      });
    }
  }

  /** Step 3: an entry empty for at least the grace period (or a claim left by a reclaim that stopped). */
  async #reclaim(digest: DigestParts, pass: Pass): Promise<void> {
    const entry = await this.deps.index.read(digest);
    if (entry === undefined || Object.keys(entry.holders).length > 0) return;
    if (entry.claim === undefined && !this.#oldEnough(entry.emptySince, pass)) return;
    if (pass.dryRun) {
      pass.report.blobsDeleted++;
      return;
    }
    await this.deps.blobLocks.digest(
      digest,
      async (signal) => {
        // Holding the digest lock is the proof that lets a claim left behind be taken over.
        const stale = (await this.deps.index.read(digest))?.claim !== undefined;
        const token = randomUUID();
        let claimed = false;
        await this.deps.index.update(
          digest,
          (current) => {
            claimed =
              Object.keys(current.holders).length === 0 &&
              (stale || this.#oldEnough(current.emptySince, pass));
            return claimed ? { ...current, claim: token } : 'unchanged';
          },
          { now: pass.now, signal, digestLockHeld: true, claimToken: token },
        );
        if (!claimed) return;
        signal.throwIfAborted();
        try {
          await this.deps.blobs.deleteBlob(digest);
        } finally {
          this.deps.blobSizes.forget(digest);
        }
        signal.throwIfAborted();
        await this.deps.index.deleteClaimed(digest, token, signal);
        pass.report.blobsDeleted++;
        this.deps.logger.info('garbage collection deleted a blob', { digest: formatDigest(digest) });
      },
      pass.signal,
    );
  }

  /** Step 4: bytes that no entry knows about. */
  async #adoptBytes(digest: DigestParts, pass: Pass): Promise<void> {
    if ((await this.deps.index.read(digest)) !== undefined || pass.dryRun) return;
    if (await this.deps.index.adoptBytes(digest, pass.now())) {
      this.deps.logger.info('garbage collection found bytes with no index entry', {
        digest: formatDigest(digest),
      });
    }
  }

  #oldEnough(since: number | undefined, pass: Pass): boolean {
    return since !== undefined && since <= pass.now() - pass.gracePeriodMs;
  }

  async #isRevision(namespace: string, manifest: DigestParts): Promise<boolean> {
    const link = await readLink(
      this.deps.metadata,
      keyFor({ kind: 'revisionLink', namespace, digest: manifest }),
      {
        fresh: true,
      },
    );
    return link !== undefined;
  }
}

/** Revocations older than the grace period: no push can still rely on having seen the blob. */
function withoutExpired(revokedAt: Readonly<Record<string, number>>, pass: Pass): Record<string, number> {
  const cutoff = pass.now() - pass.gracePeriodMs;
  return Object.fromEntries(Object.entries(revokedAt).filter(([, at]) => at >= cutoff));
}
