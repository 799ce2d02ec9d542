import type { Config } from '@angos/config';
import type { LockManager } from '@angos/lock';
import type { Logger } from '@angos/observability';
import type { BlobStore, MetadataStore } from '@angos/storage';
import { BlobIndex } from './blob-index.js';
import { BlobLocks } from './blob-locks.js';
import { BlobSizes } from './blob-sizes.js';
import { Blobs } from './blobs.js';
import { Browser } from './browse/browser.js';
import { listNamespaces } from './catalog.js';
import { GarbageCollector, type GcOptions, type GcReport } from './gc.js';
import { Grants } from './grants.js';
import { Manifests } from './manifests.js';
import { settingsFor } from './settings.js';
import { Uploads } from './uploads.js';

/** The registry core: OCI semantics over the storage contracts. Knows nothing of HTTP. */
export interface Registry {
  readonly blobs: Blobs;
  readonly uploads: Uploads;
  readonly manifests: Manifests;
  /** The read-only views of the extension API (`/v2/_ext/`): namespaces, tags, revisions, uploads. */
  readonly browse: Browser;
  listNamespaces(options: {
    limit?: number;
    last?: string;
  }): Promise<{ namespaces: string[]; more: boolean }>;
  /** True when the storage answers (readiness). */
  ready(): Promise<boolean>;
  /**
   * One garbage collection pass (gc.ts): revokes grants orphaned for at least the grace period,
   * deletes the bytes of blobs nothing has held for at least the grace period, and prunes index
   * references to manifests that are gone. Safe to run while the registry serves, from any number
   * of replicas at once.
   */
  collectGarbage(options: {
    gracePeriodMs: number;
    dryRun?: boolean;
    signal?: AbortSignal;
    now?: () => number;
  }): Promise<GcReport>;
}

export interface RegistryDeps {
  blobs: BlobStore;
  metadata: MetadataStore;
  locks: LockManager;
  /** The current configuration; re-read on every operation so hot reloads apply. */
  config: () => Config;
  logger: Logger;
}

export function createRegistry(deps: RegistryDeps): Registry {
  const logger = deps.logger.child('angos::registry');
  const settings = (namespace: string) => settingsFor(deps.config(), namespace);
  const blobLocks = new BlobLocks(deps.locks);
  const index = new BlobIndex(deps.metadata, deps.locks, logger);
  const grants = new Grants(deps.metadata, blobLocks, index);
  const blobSizes = new BlobSizes(() => blobSizeTtlMs(deps.config(), deps.blobs));
  const shared = { ...deps, logger, index, grants, settings, blobLocks, blobSizes };
  const collector = new GarbageCollector({ ...shared, logger: deps.logger.child('angos::gc') });
  const manifests = new Manifests(shared);
  return {
    blobs: new Blobs(shared),
    uploads: new Uploads(shared),
    manifests,
    browse: new Browser({ metadata: deps.metadata, blobs: deps.blobs, manifests }),
    listNamespaces: (options) => listNamespaces(deps.metadata, options),
    async ready() {
      await deps.metadata.list('');
      return true;
    },
    collectGarbage: (options: GcOptions) => collector.collect(options),
  };
}

/**
 * How long a blob's size is reused (blob-sizes.ts): as long as a link read from S3 is
 * (`metadata_store.s3.link_cache_ttl`), where a stat is a round trip to the provider. Elsewhere
 * nothing is kept: a stat on fs costs about what a cache lookup does, and where S3 links are read
 * fresh (`link_cache_ttl = 0`) so are sizes.
 */
function blobSizeTtlMs(config: Config, blobs: BlobStore): number {
  if (blobs.backend !== 's3') return 0;
  return (config.metadata_store.s3?.link_cache_ttl ?? 0) * 1000;
}
