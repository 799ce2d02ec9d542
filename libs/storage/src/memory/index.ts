export { MemoryBlobStore } from './blob-store.js';
export { MemoryMetadataStore } from './metadata-store.js';
