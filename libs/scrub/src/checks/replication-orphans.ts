import type { Config } from '@angos/config';
import { findDownstream, REPLICATION_QUEUE } from '@angos/replication';
import type { ScrubCheck } from '../types.js';
import { jobOrphansCheck } from './job-orphans.js';

/** What `--replication-orphans` decides with: the configuration's repositories and downstreams. */
export interface ReplicationOrphansSettings {
  readonly config: Config;
}

/**
 * `--replication-orphans`: deletes the jobs of the `replication` queue, pending and
 * dead-lettered, whose downstream no longer exists: no repository governs their namespace any
 * more, or it has no downstream of that name (removed or renamed). Such a job only dead-letters
 * (loudly) when it runs.
 */
export function replicationOrphansCheck(settings: ReplicationOrphansSettings): ScrubCheck {
  return jobOrphansCheck({
    check: 'replication-orphans',
    queue: REPLICATION_QUEUE,
    reason: 'its downstream or repository is no longer configured',
    orphaned: ({ namespace, downstream }) =>
      typeof namespace === 'string' &&
      typeof downstream === 'string' &&
      findDownstream(settings.config, namespace, downstream) === undefined,
  });
}
