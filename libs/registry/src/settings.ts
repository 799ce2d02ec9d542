import { type Config, repositoryKeyFor } from '@angos/config';

/** The options of the configuration that the registry core obeys, resolved for one namespace. */
export interface NamespaceSettings {
  readonly maxManifestSize: number;
  readonly maxBlobSize: number;
  readonly allowMissingManifestReferences: boolean;
  readonly updatePullTime: boolean;
  /** `[gc] grace_period_secs` in ms: how long a push may rely on a blob it saw readable. */
  readonly gcGracePeriodMs: number;
  /** True when `tag` may not be moved to another digest once it exists. */
  isImmutableTag(tag: string): boolean;
}

// Compiled exclusion patterns, cached per config object so a hot reload recompiles once.
const compiledExclusions = new WeakMap<object, Map<string, RegExp[]>>();

function exclusionsFor(config: Config, scope: string, patterns: readonly string[]): RegExp[] {
  let perConfig = compiledExclusions.get(config);
  if (!perConfig) {
    perConfig = new Map();
    compiledExclusions.set(config, perConfig);
  }
  let compiled = perConfig.get(scope);
  if (!compiled) {
    // The config loader has already rejected invalid patterns.
    compiled = patterns.map((pattern) => new RegExp(pattern));
    perConfig.set(scope, compiled);
  }
  return compiled;
}

export function settingsFor(config: Config, namespace: string): NamespaceSettings {
  const global = config.global;
  const repositoryKey = repositoryKeyFor(config, namespace);
  const repository = repositoryKey === undefined ? undefined : config.repository[repositoryKey];
  const immutable = repository?.immutable_tags ?? global.immutable_tags;
  const exclusionPatterns = repository?.immutable_tags_exclusions ?? global.immutable_tags_exclusions;
  const exclusionScope = repository?.immutable_tags_exclusions ? `repository:${repositoryKey}` : 'global';
  return {
    maxManifestSize: global.max_manifest_size,
    maxBlobSize: global.max_blob_size,
    allowMissingManifestReferences: global.allow_missing_manifest_references,
    updatePullTime: global.update_pull_time,
    gcGracePeriodMs: config.gc.grace_period_secs * 1000,
    isImmutableTag(tag) {
      if (!immutable) return false;
      return !exclusionsFor(config, exclusionScope, exclusionPatterns).some((pattern) => pattern.test(tag));
    },
  };
}
