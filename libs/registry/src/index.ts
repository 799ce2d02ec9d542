export { BlobIndex, type BlobReference, manifestRef } from './blob-index.js';
export { blobLockKey, grantLockKey } from './blob-locks.js';
export type { Blobs } from './blobs.js';
export type {
  Browser,
  EntryPage,
  ManifestDetail,
  NamespaceEntry,
  Paged,
  PlatformView,
  Readable,
  ReferrerView,
  RevisionDetail,
  SortOrder,
  TagDetail,
  TagSort,
  UploadDetail,
} from './browse/browser.js';
export type { GcOptions, GcReport } from './gc.js';
export { clampSourceTime, decideTagPush, parseSourceTimestamp } from './last-writer-wins.js';
export { decodeLink, encodeLink, type LinkRecord, linkCreatedAtMs, readLink } from './links.js';
export {
  type DeleteOutcome,
  MANIFEST_READ_LIMIT,
  type ManifestInfo,
  type Manifests,
  manifestLockKey,
  type PushedManifest,
  type ReplicatedWrite,
  referrerDescriptor,
  type StoredManifest,
  tagLockKey,
} from './manifests.js';
export { readWhole } from './read-whole.js';
export { createRegistry, type Registry, type RegistryDeps } from './registry.js';
export { type NamespaceSettings, settingsFor } from './settings.js';
export {
  decodeTombstone,
  readTombstone,
  TOMBSTONE_RETENTION_MS,
} from './tombstones.js';
export { type ChunkHeaders, type Uploads, uploadLockKey } from './uploads.js';
