export { BlobIndex, type BlobReference } from './blob-index.js';
export type { Blobs } from './blobs.js';
export type { GcOptions, GcReport } from './gc.js';
export { decodeLink, encodeLink, type LinkRecord, linkCreatedAtMs, readLink } from './links.js';
export type { DeleteOutcome, ManifestInfo, Manifests, PushedManifest, StoredManifest } from './manifests.js';
export { createRegistry, type Registry, type RegistryDeps } from './registry.js';
export { type NamespaceSettings, repositoryKeyFor, settingsFor } from './settings.js';
export type { ChunkHeaders, Uploads } from './uploads.js';
