import type { Metrics } from '@angos/observability';
import { FsBlobStore, FsMetadataStore } from './fs/index.js';
import { instrumentBlobStore, instrumentMetadataStore } from './instrumented.js';
import { withLegacyBlobIndex } from './legacy-layout.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
import type { S3BlobStoreOptions, S3MetadataStoreOptions, StorageLogger } from './s3/options.js';
import type { BlobStore, MetadataStore } from './types.js';
import { withBlobKeyValidation, withMetadataKeyValidation } from './validating.js';

/** `[blob_store.fs]` / `[metadata_store.fs]`. */
export interface FsBackendOptions {
  readonly kind: 'fs';
  readonly rootDir: string;
  readonly syncToDisk: boolean;
}

/** In-process only: tests, and throwaway registries. */
export interface MemoryBackendOptions {
  readonly kind: 'memory';
}

/** `[blob_store.s3]`. */
export interface S3BlobBackendOptions extends S3BlobStoreOptions {
  readonly kind: 's3';
}

/** `[metadata_store.s3]`. */
export interface S3MetadataBackendOptions extends S3MetadataStoreOptions {
  readonly kind: 's3';
}

/** The backends that need no I/O to be built (`createStores`). */
export type BackendOptions = FsBackendOptions | MemoryBackendOptions;
export type BlobBackendOptions = BackendOptions | S3BlobBackendOptions;
export type MetadataBackendOptions = BackendOptions | S3MetadataBackendOptions;

export interface StoresOptions {
  readonly blob: BackendOptions;
  readonly metadata: BackendOptions;
}

export interface OpenStoresOptions {
  readonly blob: BlobBackendOptions;
  readonly metadata: MetadataBackendOptions;
}

export interface Stores {
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
}

export interface OpenedStores extends Stores {
  /** Writes deferred metadata and releases connections (shutdown). */
  close(): Promise<void>;
}

type BackendKind = BackendOptions['kind'];
type OptionsOf<K extends BackendKind> = Extract<BackendOptions, { kind: K }>;
type BackendMap<Store> = { readonly [K in BackendKind]: (options: OptionsOf<K>) => Store };

/** Every backend, by the `kind` the configuration names (STYLE.md #8: no side-effect registration). */
const blobBackends: BackendMap<BlobStore> = {
  fs: (options) => new FsBlobStore(options.rootDir, options),
  memory: () => new MemoryBlobStore(),
};

const metadataBackends: BackendMap<MetadataStore> = {
  // A store on disk may hold blob index entries of the flat layout (keys.ts).
  fs: (options) => withLegacyBlobIndex(new FsMetadataStore(options.rootDir, options)),
  memory: () => new MemoryMetadataStore(),
};

function build<Store, K extends BackendKind>(backends: BackendMap<Store>, options: OptionsOf<K>): Store {
  const construct = backends[options.kind as K] as (options: OptionsOf<K>) => Store;
  return construct(options);
}

/** A blob store of the configured backend, with key validation. */
export function createBlobStore(options: BackendOptions): BlobStore {
  return withBlobKeyValidation(build(blobBackends, options));
}

/** A metadata store of the configured backend, with key validation. */
export function createMetadataStore(options: BackendOptions): MetadataStore {
  return withMetadataKeyValidation(build(metadataBackends, options));
}

/**
 * Both stores, each of its own backend. The two may share an fs root directory:
 * their keys never collide, and neither deletes the other's files.
 */
export function createStores(options: StoresOptions): Stores {
  return { blobs: createBlobStore(options.blob), metadata: createMetadataStore(options.metadata) };
}

/**
 * A blob store of any backend, ready to serve: for S3 the bucket and
 * credentials have been checked (a StorageError says what is wrong).
 */
export async function openBlobStore(options: BlobBackendOptions): Promise<BlobStore> {
  if (options.kind === 's3') {
    const { openS3BlobStore } = await import('./s3/open.js');
    return withBlobKeyValidation(await openS3BlobStore(options));
  }
  return createBlobStore(options);
}

/**
 * A metadata store of any backend, ready to serve: for S3 checked, its
 * conditional writes declared or probed, link cache and pull-time batching in
 * place. `logger` hears of background writes that fail.
 */
export async function openMetadataStore(
  options: MetadataBackendOptions,
  logger?: StorageLogger,
): Promise<MetadataStore> {
  if (options.kind === 's3') {
    const { openS3MetadataStore } = await import('./s3/open.js');
    return withMetadataKeyValidation(await openS3MetadataStore(options, logger));
  }
  return createMetadataStore(options);
}

/**
 * Both stores (see openBlobStore, openMetadataStore); the first is closed again if the second
 * fails. With `metrics`, both are instrumented (storage metrics, and spans when tracing is on).
 */
export async function openStores(
  options: OpenStoresOptions,
  logger?: StorageLogger,
  metrics?: Metrics,
): Promise<OpenedStores> {
  const opened = await openBlobStore(options.blob);
  const blobs = metrics === undefined ? opened : instrumentBlobStore(opened, metrics);
  let metadata: MetadataStore;
  try {
    const store = await openMetadataStore(options.metadata, logger);
    metadata = metrics === undefined ? store : instrumentMetadataStore(store, metrics);
  } catch (error) {
    await blobs.close?.();
    throw error;
  }
  return {
    blobs,
    metadata,
    async close() {
      // Metadata first: its deferred writes are the only thing left to save.
      await metadata.close?.();
      await blobs.close?.();
    },
  };
}
