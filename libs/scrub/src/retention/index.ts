export { type RemovalOutcome, removeManifest } from './apply.js';
export {
  type CompiledRetentionPolicies,
  type CompiledRetentionPolicy,
  checkRetentionConfig,
  compileRetentionPolicies,
  compileRetentionPolicy,
  RetentionCompileError,
  retentionPoliciesFor,
  retentionWarnings,
} from './compile.js';
export {
  decideRetention,
  type ImageFacts,
  type RemovedManifest,
  type RetentionDecision,
  type RetentionInput,
  type TagFacts,
} from './decide.js';
export { IMAGE_SCHEMA, retentionEnvironment } from './environment.js';
export { collectImageFacts, type FactsStores } from './facts.js';
export { planRetention, type RetentionPlan, type RetentionPlanOptions } from './plan.js';
