import type { Config, RepositoryConfig } from './types.js';

/**
 * The `[repository."<key>"]` entry that governs a namespace: the key itself or a path prefix of it
 * at a `/` (`team` governs `team` and `team/app`, not `team-evil`). Keys never overlap (the loader
 * refuses it), so walking the namespace's own prefixes, shortest first, finds at most one. The one
 * reading of "which repository's settings apply here" for authorization, the registry core,
 * retention, scrub and the pull-through cache.
 */
export function repositoryKeyFor(config: Pick<Config, 'repository'>, namespace: string): string | undefined {
  const repositories = config.repository;
  let end = namespace.indexOf('/');
  for (;;) {
    const prefix = end === -1 ? namespace : namespace.slice(0, end);
    if (Object.hasOwn(repositories, prefix)) return prefix;
    if (end === -1) return undefined;
    end = namespace.indexOf('/', end + 1);
  }
}

/** The repository table that governs `namespace` (repositoryKeyFor), if any. */
export function repositoryFor(
  config: Pick<Config, 'repository'>,
  namespace: string,
): RepositoryConfig | undefined {
  const key = repositoryKeyFor(config, namespace);
  return key === undefined ? undefined : config.repository[key];
}
