import { boolean, integer, regexList, size, string, stringList } from '../scalars.js';
import { defaulted, optional, table, withDefault } from '../schema.js';
import { sizeOf } from '../size.js';
import type { GlobalConfig, JobQueueConfig } from '../types.js';
import { accessPolicySchema, retentionPolicySchema } from './policy.js';

/** `[global.job_queue]`: present means `angos worker` processes drain the durable queue. */
export const jobQueueSchema = table<JobQueueConfig>({
  // Sub-5 s refreshes cause LIST storms on S3.
  pending_refresh_interval_secs: withDefault(integer('u64', { min: 5 }), 15),
  pending_ready_horizon_secs: withDefault(integer('u64'), 600),
});

/** `[global]`. */
export const globalSchema = table<GlobalConfig>(
  {
    max_concurrent_requests: withDefault(integer('usize', { min: 1 }), 64),
    max_concurrent_cache_jobs: withDefault(integer('usize', { min: 1 }), 4),
    max_concurrent_replication_jobs: withDefault(integer('usize', { nonZero: true }), 4),
    max_manifest_size: withDefault(size({ nonZero: true }), sizeOf('5MiB')),
    max_blob_size: withDefault(size({ nonZero: true }), sizeOf('100GiB')),
    update_pull_time: withDefault(boolean(), false),
    enable_redirect: optional(boolean()),
    enable_blob_redirect: withDefault(boolean(), (s) => (s.enable_redirect as boolean | undefined) ?? true),
    enable_manifest_redirect: withDefault(
      boolean(),
      (s) => (s.enable_redirect as boolean | undefined) ?? true,
    ),
    immutable_tags: withDefault(boolean(), false),
    immutable_tags_exclusions: withDefault(regexList(), () => []),
    allow_missing_manifest_references: withDefault(boolean(), true),
    authorization_webhook: optional(string()),
    event_webhooks: withDefault(stringList(), () => []),
    job_queue: optional(jobQueueSchema),
    access_policy: defaulted(accessPolicySchema),
    retention_policy: defaulted(retentionPolicySchema),
  },
  {
    check(global, at) {
      if (global.enable_redirect !== undefined) {
        at.warn('enable_redirect', 'deprecated; use enable_blob_redirect and enable_manifest_redirect');
      }
    },
  },
);
