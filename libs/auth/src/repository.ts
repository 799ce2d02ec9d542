import type { Config } from '@angos/config';

/**
 * The `[repository."<key>"]` entry owning a namespace: the key is a namespace prefix at a `/`
 * boundary (`team` owns `team` and `team/app`, not `team-evil`). Keys never overlap (the
 * configuration refuses it), so walking the namespace's own prefixes finds at most one.
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

/**
 * The authorization webhook in force for a namespace: the repository's `authorization_webhook`
 * when it sets one (`""` turns the global one off), else `global.authorization_webhook`.
 */
export function webhookNameFor(config: Config, namespace: string | undefined): string | undefined {
  const key = namespace === undefined ? undefined : repositoryKeyFor(config, namespace);
  const own = key === undefined ? undefined : config.repository[key]?.authorization_webhook;
  const name = own ?? config.global.authorization_webhook;
  return name === '' ? undefined : name;
}
