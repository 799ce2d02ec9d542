import { type Config, isPullThroughNamespace } from '@angos/config';
import type { ScrubCheck } from '../types.js';
import { jobOrphansCheck } from './job-orphans.js';

/** What `--cache-orphans` decides with: the configuration's repositories and their upstreams. */
export interface CacheOrphansSettings {
  readonly config: Config;
}

/**
 * `--cache-orphans`: deletes the jobs of the `cache` queue, pending and dead-lettered, whose
 * namespace no repository with an upstream governs any more: its repository was removed, or lost
 * its upstreams. Such a job would fill a namespace that is no longer a cache.
 */
export function cacheOrphansCheck(settings: CacheOrphansSettings): ScrubCheck {
  return jobOrphansCheck({
    check: 'cache-orphans',
    queue: 'cache',
    reason: 'its repository is no longer configured for pull-through',
    orphaned: ({ namespace }) =>
      typeof namespace === 'string' && !isPullThroughNamespace(settings.config, namespace),
  });
}
