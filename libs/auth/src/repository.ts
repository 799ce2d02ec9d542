import { type Config, repositoryKeyFor } from '@angos/config';

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
