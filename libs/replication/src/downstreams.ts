import { type Config, type DownstreamConfig, repositoryKeyFor } from '@angos/config';

/** A downstream of the repository that governs a namespace. */
export interface DownstreamOf {
  /** The key of the `[repository."<key>"]` table. */
  readonly repository: string;
  readonly downstream: DownstreamConfig;
}

// Compiled namespace_filter patterns, per downstream table (a reload makes new tables).
const compiled = new WeakMap<DownstreamConfig, RegExp[]>();

/** `namespace_filter`: a namespace replicates to the downstream when it matches one (all when empty). */
export function matchesFilter(downstream: DownstreamConfig, namespace: string): boolean {
  if (downstream.namespace_filter.length === 0) return true;
  let patterns = compiled.get(downstream);
  if (patterns === undefined) {
    // The configuration loader has rejected invalid patterns.
    patterns = downstream.namespace_filter.map((pattern) => new RegExp(pattern));
    compiled.set(downstream, patterns);
  }
  return patterns.some((pattern) => pattern.test(namespace));
}

/** Whether the downstream's `mode` pushes live, on every local mutation. */
export function pushesOnEvents(downstream: DownstreamConfig): boolean {
  return downstream.mode === 'event+reconcile' || downstream.mode === 'event-only';
}

/** Whether the downstream's `mode` takes part in `angos scrub --replicate`. */
export function reconciles(downstream: DownstreamConfig): boolean {
  return downstream.mode === 'event+reconcile' || downstream.mode === 'reconcile-only';
}

/** The downstreams `namespace` is reconciled with: reconcile modes, filter matched. */
export function reconcileDownstreams(config: Config, namespace: string): DownstreamOf[] {
  const repository = repositoryKeyFor(config, namespace);
  if (repository === undefined) return [];
  return (config.repository[repository]?.downstream ?? [])
    .filter((downstream) => reconciles(downstream) && matchesFilter(downstream, namespace))
    .map((downstream) => ({ repository, downstream }));
}

/** The downstreams a change of `namespace` is pushed to live: event modes, filter matched. */
export function eventDownstreams(config: Config, namespace: string): DownstreamOf[] {
  const repository = repositoryKeyFor(config, namespace);
  if (repository === undefined) return [];
  return (config.repository[repository]?.downstream ?? [])
    .filter((downstream) => pushesOnEvents(downstream) && matchesFilter(downstream, namespace))
    .map((downstream) => ({ repository, downstream }));
}

/** The downstream named `name` of the repository governing `namespace`, if still configured. */
export function findDownstream(config: Config, namespace: string, name: string): DownstreamOf | undefined {
  const repository = repositoryKeyFor(config, namespace);
  if (repository === undefined) return undefined;
  const downstream = config.repository[repository]?.downstream.find((entry) => entry.name === name);
  return downstream === undefined ? undefined : { repository, downstream };
}
