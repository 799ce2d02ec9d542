import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import type { Registry } from '@angos/registry';
import type { BlobStore, MetadataStore } from '@angos/storage';

/**
 * One repair a check found. A check plans the same actions whether or not the run is a dry run;
 * only the runner decides whether `apply` is called. `apply` re-checks the fault under the locks
 * a request path takes for the same state, so a push or delete racing it wins cleanly: the
 * repair then does nothing.
 */
export interface ScrubAction {
  /** The check that planned it (`tags`, `manifests`…). */
  readonly check: string;
  /** What it does: `delete-tag`, `delete-revision`, `backfill-media-type`, `quarantine`… */
  readonly action: string;
  /** The storage key it repairs. */
  readonly key: string;
  /** Why, for the log line. */
  readonly reason: string;
  apply(): Promise<void>;
}

/** The scrub options that carry values (durations in milliseconds). */
export interface ScrubOptions {
  /** `--uploads <duration>`: sessions (and fs temp files) older than this are removed. */
  readonly uploadsOlderThanMs?: number | undefined;
  /** `--orphan-grants <duration>`: grants orphaned for longer than this are revoked. */
  readonly orphanGrantsOlderThanMs?: number | undefined;
}

/** What every check reads and repairs through. */
export interface ScrubContext {
  readonly metadata: MetadataStore;
  readonly blobs: BlobStore;
  /** The registry core over the same stores and locks. */
  readonly registry: Registry;
  /** The registry's locks: every repair of state a request also changes takes the same keys. */
  readonly locks: LockManager;
  readonly logger: Logger;
  /** The clock, milliseconds since the epoch. */
  readonly now: () => number;
  readonly options: ScrubOptions;
  /**
   * Root directories of the stores on the filesystem (none on S3 and memory): where the fs driver
   * leaves `.tmp-*` files that no listing shows, and where an upload session's age can be read
   * from its data file when its start time is missing.
   */
  readonly fsRoots: FsRoots;
  /** Counts keys a check looked at (progress and summary); the runner supplies it. */
  walked(count?: number): void;
}

export interface FsRoots {
  readonly metadata?: string | undefined;
  readonly blobs?: string | undefined;
}

/** One check of `angos scrub` (one flag). */
export interface ScrubCheck {
  /** The flag's name, without dashes. */
  readonly name: string;
  /** The repairs this check finds, lazily: the runner applies each before asking for the next. */
  plan(ctx: ScrubContext): AsyncIterable<ScrubAction>;
}

/** What a run did (a dry run: would have done). */
export interface ScrubSummary {
  keysWalked: number;
  /** Actions planned (dry run) or applied successfully, quarantines excluded. */
  repairs: number;
  /** Keys moved to the lost-and-found prefix. */
  quarantined: number;
  /** Corrupt blobs removed (the `--blobs` re-hash; counted by the caller that runs it). */
  corruptRemoved: number;
  /** Actions or checks that failed (logged; the run went on). */
  failures: number;
}

/** A logged repair: what a dry run reports and a real run then does. */
export interface PlannedAction {
  readonly check: string;
  readonly action: string;
  readonly key: string;
  readonly reason: string;
}
