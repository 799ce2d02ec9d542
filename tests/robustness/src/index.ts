export { type CrashLoopOptions, type CrashLoopReport, crashLoop } from './crashloop.js';
export { type FuzzOptions, type FuzzReport, fuzz } from './fuzz.js';
export { type AuthFuzzOptions, fuzzAuth } from './fuzz-auth.js';
export type { JobLockSpec, JobStoreSpec } from './jobs-backend.js';
export {
  everythingUnder,
  type JobsChaosOptions,
  type JobsChaosReport,
  jobsChaos,
  problems,
  summarize,
} from './jobs-chaos.js';
export { type RunRecord, type RunsVerdict, verifyRuns } from './jobs-runs.js';
export { type S3Location, s3StorageToml } from './s3-toml.js';
export { type SoakOptions, type SoakReport, type SoakSample, soak } from './soak.js';
export { type ScrubSoakOptions, type ScrubSoakReport, soakScrub } from './soak-scrub.js';
export { SCRUB_SOAK_SETUPS, type ScrubSoakSetup } from './soak-scrub-cluster.js';
export { type AcknowledgedTag, Ledger, parseScrubLog, type ScrubLogFacts } from './soak-scrub-ledger.js';
