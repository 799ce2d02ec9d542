import { FsBlobStore, FsMetadataStore } from './fs/index.js';
import { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
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

export type BackendOptions = FsBackendOptions | MemoryBackendOptions;

export interface StoresOptions {
  readonly blob: BackendOptions;
  readonly metadata: BackendOptions;
}

export interface Stores {
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
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
  fs: (options) => new FsMetadataStore(options.rootDir, options),
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
