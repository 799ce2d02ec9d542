import {
  blobsCheck,
  type CacheOrphansSettings,
  cacheOrphansCheck,
  linksCheck,
  manifestsCheck,
  mediaTypesCheck,
  type OrphanNamespacesSettings,
  orphanGrantsCheck,
  orphanNamespacesCheck,
  type ReplicateSettings,
  type ReplicationOrphansSettings,
  reconcileBlobIndexCheck,
  referrersCheck,
  replicateCheck,
  replicationOrphansCheck,
  tagsCheck,
  tempFilesCheck,
  uploadsCheck,
} from './checks/index.js';
import { type RetentionSettings, retentionCheck } from './checks/retention.js';
import type { ScrubCheck } from './types.js';

/** The checks of one `angos scrub` run, as its flags ask for them. */
export interface ScrubSelection {
  /** `--orphan-namespaces`: the configuration whose repositories own the namespaces kept. */
  readonly orphanNamespaces?: OrphanNamespacesSettings | undefined;
  readonly tags?: boolean | undefined;
  readonly manifests?: boolean | undefined;
  readonly links?: boolean | undefined;
  readonly mediaTypes?: boolean | undefined;
  readonly referrers?: boolean | undefined;
  /** `--uploads <duration>`: upload sessions and fs temp files. */
  readonly uploads?: boolean | undefined;
  /** `--retention`: the retention rules of the configuration, compiled. */
  readonly retention?: RetentionSettings | undefined;
  readonly reconcileBlobIndex?: boolean | undefined;
  /** `--orphan-grants <duration>` (the duration is `ScrubOptions.orphanGrantsOlderThanMs`). */
  readonly orphanGrants?: boolean | undefined;
  /** `--blobs`: re-hash, un-indexed bytes and stale grants (the garbage-collection pass follows). */
  readonly blobs?: boolean | undefined;
  /** `--cache-orphans`: the configuration whose pull-through repositories keep their cache jobs. */
  readonly cacheOrphans?: CacheOrphansSettings | undefined;
  /** `--replication-orphans`: the configuration whose downstreams keep their replication jobs. */
  readonly replicationOrphans?: ReplicationOrphansSettings | undefined;
  /** `--replicate`: the downstreams reconciled, and where the jobs go. */
  readonly replicate?: ReplicateSettings | undefined;
}

/**
 * The checks selected, in the one order every run uses: orphan namespaces first (the other checks
 * then do not plan repairs in namespaces about to go), tags before the revisions they point at,
 * revisions before the referrer links of theirs, so that no check's repair turns up work for an
 * earlier one, and a dry run plans exactly what a real run then does. The blob-index checks come
 * last, once the links they reason on are sound: the index rebuilt from the manifests before
 * grants are judged orphans, and `--blobs` just before the garbage-collection pass.
 */
export function checksFor(selection: ScrubSelection): ScrubCheck[] {
  const { orphanNamespaces, retention, cacheOrphans, replicationOrphans, replicate } = selection;
  const ordered: Array<[boolean | undefined, ScrubCheck[]]> = [
    [orphanNamespaces !== undefined, orphanNamespaces ? [orphanNamespacesCheck(orphanNamespaces)] : []],
    [selection.tags, [tagsCheck]],
    [selection.manifests, [manifestsCheck]],
    [selection.links, [linksCheck]],
    [selection.mediaTypes, [mediaTypesCheck]],
    [selection.referrers, [referrersCheck]],
    [selection.uploads, [uploadsCheck, tempFilesCheck]],
    // After the repairs, so that it decides on sound links; before the garbage-collection pass.
    [retention !== undefined, retention ? [retentionCheck(retention)] : []],
    [selection.reconcileBlobIndex, [reconcileBlobIndexCheck]],
    [selection.orphanGrants, [orphanGrantsCheck]],
    [selection.blobs, [blobsCheck]],
    // The job queue only: independent of the storage checks above.
    [cacheOrphans !== undefined, cacheOrphans ? [cacheOrphansCheck(cacheOrphans)] : []],
    // Orphan jobs go before reconciliation adds jobs (which are never orphans).
    [
      replicationOrphans !== undefined,
      replicationOrphans ? [replicationOrphansCheck(replicationOrphans)] : [],
    ],
    // Last: it reads the tags the checks above have repaired, and writes only jobs.
    [replicate !== undefined, replicate ? [replicateCheck(replicate)] : []],
  ];
  return ordered.flatMap(([selected, checks]) => (selected ? checks : []));
}
