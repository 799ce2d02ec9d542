export {
  linksCheck,
  manifestsCheck,
  mediaTypesCheck,
  referrersCheck,
  tagsCheck,
  tempFilesCheck,
  uploadsCheck,
} from './checks/index.js';
export { type RetentionSettings, retentionCheck } from './checks/retention.js';
export { Progress, type ProgressOutput } from './progress.js';
export { quarantine } from './repairs.js';
export * from './retention/index.js';
export { logSummary, QUARANTINE, type RunScrubOptions, runScrub } from './runner.js';
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
