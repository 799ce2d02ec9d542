export {
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
export { type RetentionSettings, retentionCheck } from './checks/retention.js';
export { Progress, type ProgressOutput } from './progress.js';
export { quarantine } from './repairs.js';
export * from './retention/index.js';
export { logSummary, QUARANTINE, REMOVE_CORRUPT_BLOB, type RunScrubOptions, runScrub } from './runner.js';
export { checksFor, type ScrubSelection } from './selection.js';
export type {
  FsRoots,
  PlannedAction,
  ScrubAction,
  ScrubCheck,
  ScrubContext,
  ScrubOptions,
  ScrubSummary,
} from './types.js';
