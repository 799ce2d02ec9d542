export { FsBlobStore } from './blob-store.js';
export { FsMetadataStore, type FsStoreOptions } from './metadata-store.js';
export { FsRoot } from './root.js';
