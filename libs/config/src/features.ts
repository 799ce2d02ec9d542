import { formatKeyPath, type KeyPath, quoted } from './key-path.js';
import type { Config } from './types.js';

/**
 * Features the configuration can describe but this build cannot run yet. The CLI refuses to start
 * with any of them turned on (`not supported yet: <key>`) rather than silently ignoring them.
 * One row per feature; delete the row when the feature lands.
 */
interface FeatureRow {
  /** The option as the reference names it; documentation only. */
  readonly feature: string;
  /** The keys at which `config` turns this feature on (empty when it does not). */
  readonly enabledAt: (config: Config) => KeyPath[];
}

const when = (on: boolean, path: KeyPath): KeyPath[] => (on ? [path] : []);

/** One key per named entry: `auth.identity.alice`, `event_webhook.ci`. */
const each = (entries: Readonly<Record<string, unknown>>, prefix: KeyPath): KeyPath[] =>
  Object.keys(entries).map((name) => [...prefix, name]);

/** One key per repository for which `on` holds: `repository."docker-io".upstream`. */
const perRepository =
  (option: KeyPath, on: (repository: Config['repository'][string]) => boolean) =>
  (config: Config): KeyPath[] =>
    Object.entries(config.repository)
      .filter(([, repository]) => on(repository))
      .map(([namespace]) => ['repository', quoted(namespace), ...option]);

const NOT_YET_SUPPORTED: readonly FeatureRow[] = [
  {
    feature: 'global.event_webhooks',
    enabledAt: (c) => when(c.global.event_webhooks.length > 0, ['global', 'event_webhooks']),
  },
  {
    feature: 'repository."<namespace>".event_webhooks',
    enabledAt: perRepository(['event_webhooks'], (r) => (r.event_webhooks?.length ?? 0) > 0),
  },
  { feature: 'event_webhook.<name>', enabledAt: (c) => each(c.event_webhook, ['event_webhook']) },
  {
    feature: 'observability.tracing',
    enabledAt: (c) => when(c.observability.tracing !== undefined, ['observability', 'tracing']),
  },
];

/** The features (rows above) this build does not implement yet, for documentation and tests. */
export const UNSUPPORTED_FEATURES: readonly string[] = NOT_YET_SUPPORTED.map((row) => row.feature);

/** The keys of not-yet-built features that `config` turns on, in table order. */
export function unsupportedFeatures(config: Config): string[] {
  return NOT_YET_SUPPORTED.flatMap((row) => row.enabledAt(config).map(formatKeyPath));
}
