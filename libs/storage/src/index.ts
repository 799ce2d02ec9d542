export {
  type BackendOptions,
  createBlobStore,
  createMetadataStore,
  createStores,
  type FsBackendOptions,
  type MemoryBackendOptions,
  type Stores,
  type StoresOptions,
} from './factory.js';
export { FsBlobStore, FsMetadataStore, type FsStoreOptions } from './fs/index.js';
export { isValidKey } from './key-rules.js';
export * from './keys.js';
export { MemoryBlobStore, MemoryMetadataStore } from './memory/index.js';
export * from './types.js';
export { withBlobKeyValidation, withMetadataKeyValidation } from './validating.js';
