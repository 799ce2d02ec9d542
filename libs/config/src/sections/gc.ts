import { integer } from '../scalars.js';
import { table, withDefault } from '../schema.js';
import type { GcConfig } from '../types.js';

/** An hour: far longer than any push takes between checking a blob and committing its manifest. */
const DEFAULT_GRACE_PERIOD_SECS = 3600;
const DEFAULT_INTERVAL_SECS = 3600;

/**
 * `[gc]` (project-specific, not in the configuration reference): online garbage collection.
 * Deletes never reclaim anything inside a request; a background pass reclaims a grant or a blob
 * only after it has had no reference for `grace_period_secs`.
 */
export const gcSchema = table<GcConfig>({
  grace_period_secs: withDefault(integer('u64'), DEFAULT_GRACE_PERIOD_SECS),
  interval_secs: withDefault(integer('u64'), DEFAULT_INTERVAL_SECS),
});
