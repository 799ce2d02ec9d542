import type { Config } from '@angos/config';

/**
 * The configuration a running process serves with. Reloads replace it whole, except for options
 * that only take effect at startup: those keep the values the process started with.
 */
export interface LiveConfig {
  /** The current configuration; read it per request, never cache it. */
  readonly get: () => Config;
  /** What the process started with (restart-only options stay at these values). */
  readonly initial: Config;
  /** Installs a reloaded configuration; `restartKeys` are dotted paths to keep from `initial`. */
  apply(next: Config, restartKeys: readonly string[]): Config;
}

type Tree = Record<string, unknown>;

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Copy of `next` in which each dotted `key` (`server.port`, `blob_store`) has its `from` value. */
export function retainKeys(from: Config, next: Config, keys: readonly string[]): Config {
  if (keys.length === 0) return next;
  const result = structuredClone(next) as unknown as Tree;
  for (const key of keys) {
    const segments = key.split('.');
    const last = segments.pop();
    if (last === undefined) continue;
    let source: unknown = from;
    let target: Tree = result;
    for (const segment of segments) {
      source = isTree(source) ? source[segment] : undefined;
      const child = target[segment];
      if (!isTree(child)) target[segment] = {};
      target = target[segment] as Tree;
    }
    const value = isTree(source) ? source[last] : undefined;
    if (value === undefined) delete target[last];
    else target[last] = structuredClone(value);
  }
  return result as unknown as Config;
}

export function createLiveConfig(initial: Config): LiveConfig {
  let current = initial;
  return {
    get: () => current,
    initial,
    apply(next, restartKeys) {
      current = retainKeys(initial, next, restartKeys);
      return current;
    },
  };
}
