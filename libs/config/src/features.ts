import { formatKeyPath, type KeyPath } from './key-path.js';
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

const NOT_YET_SUPPORTED: readonly FeatureRow[] = [
  { feature: 'ui', enabledAt: (c) => when(c.ui.enabled, ['ui']) },
];

/** The features (rows above) this build does not implement yet, for documentation and tests. */
export const UNSUPPORTED_FEATURES: readonly string[] = NOT_YET_SUPPORTED.map((row) => row.feature);

/** The keys of not-yet-built features that `config` turns on, in table order. */
export function unsupportedFeatures(config: Config): string[] {
  return NOT_YET_SUPPORTED.flatMap((row) => row.enabledAt(config).map(formatKeyPath));
}
