import { ALGORITHMS } from '@angos/oci';
import { keyFor, type MetadataStore } from '@angos/storage';
import { exists } from './links.js';

/**
 * Every namespace that holds a manifest, sorted, after `last`, at most `limit`. The tree is walked
 * in that order and the walk stops once the page (and one more, for `more`) is found, skipping
 * whole what sorts before `last`: a page costs the directories it passes, not the whole tree.
 */
export async function listNamespaces(
  metadata: MetadataStore,
  options: { limit?: number | undefined; last?: string | undefined },
): Promise<{ namespaces: string[]; more: boolean }> {
  const { limit, last } = options;
  const walk: Walk = { metadata, last, found: [], wanted: limit === undefined ? Infinity : limit + 1 };
  await walkInOrder(walk, '', await metadata.list(''));
  const namespaces = limit === undefined ? walk.found : walk.found.slice(0, limit);
  return { namespaces, more: walk.found.length > namespaces.length };
}

/** How many namespace checks a directory's walk runs ahead of itself (checksAhead). */
const CHECKS_AHEAD = 16;

interface Walk {
  readonly metadata: MetadataStore;
  readonly last: string | undefined;
  /** Namespaces found so far, in order. */
  readonly found: string[];
  /** The walk stops once it has found this many. */
  readonly wanted: number;
}

/**
 * The namespaces at and below the children of `directory` (whose listing is `children`), in code
 * point order of their paths. A child `c` is itself at `c` and everything below it at `c/…`, and
 * siblings that extend its name with a character below `/` (`c-d`, `c.d`) sort between the two:
 * so a child's own check and its subtree are two steps, ordered by `c` and `c/`. Children not
 * starting with `_` or `.` are namespace components (`team` → `team/app`); `_manifests` is where a
 * namespace keeps its manifests.
 */
async function walkInOrder(walk: Walk, directory: string, children: readonly string[]): Promise<void> {
  const pathOf = (name: string) => (directory === '' ? name : `${directory}/${name}`);
  const steps: Array<{ readonly key: string; readonly name: string; readonly below: boolean }> = [];
  for (const name of children) {
    if (name.startsWith('_') || name.startsWith('.')) continue;
    steps.push({ key: name, name, below: false }, { key: `${name}/`, name, below: true });
  }
  steps.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // A child's listing serves both of its steps.
  const listings = new Map<string, Promise<string[]>>();
  const listingOf = (path: string) => {
    let listing = listings.get(path);
    if (listing === undefined) {
      listing = walk.metadata.list(path);
      listings.set(path, listing);
    }
    return listing;
  };
  const { last } = walk;
  const checks = checksAhead(
    walk,
    steps
      .filter((step) => !step.below && (last === undefined || pathOf(step.name) > last))
      .map((step) => pathOf(step.name)),
    async (path) =>
      (await listingOf(path)).includes('_manifests') && (await holdsManifest(walk.metadata, path)),
  );
  for (const step of steps) {
    if (walk.found.length >= walk.wanted) return;
    const path = pathOf(step.name);
    if (!step.below) {
      if (last !== undefined && path <= last) continue;
      if (await checks.next(path)) walk.found.push(path);
      continue;
    }
    // Everything below sorts as `path/…`: all of it is at or before a `last` past `path/` that does
    // not itself lie below `path`.
    const subtree = `${path}/`;
    if (last !== undefined && last > subtree && !last.startsWith(subtree)) continue;
    await walkInOrder(walk, path, await listingOf(path));
  }
}

/**
 * Namespace checks one directory's walk takes in order (`paths`), each started before its turn:
 * up to CHECKS_AHEAD at once, and never more than the page still wants, so that a page of a
 * thousand on S3 waits for a few dozen round trips instead of three thousand one after another,
 * and a short page reads past its end at most as many names as it still wanted when it looked
 * ahead (a subtree in between may fill the page first).
 */
function checksAhead(walk: Walk, paths: readonly string[], check: (path: string) => Promise<boolean>) {
  const positions = new Map(paths.map((path, position) => [path, position]));
  const started = new Map<string, Promise<boolean>>();
  let nextToStart = 0;
  return {
    next(path: string): Promise<boolean> {
      const position = positions.get(path) ?? paths.length;
      const ahead = Math.min(CHECKS_AHEAD, walk.wanted - walk.found.length);
      while (nextToStart < paths.length && nextToStart < position + ahead) {
        const upcoming = paths[nextToStart++]!;
        const result = check(upcoming);
        // One the walk stops before is never awaited: its failure must not go unhandled.
        result.catch(() => undefined);
        started.set(upcoming, result);
      }
      const result = started.get(path) ?? check(path);
      started.delete(path);
      return result;
    },
  };
}

/**
 * Whether the namespace holds at least one manifest: what makes it exist for `_catalog` and
 * `tags/list`, as in distribution. Layers, upload sessions, or a pull time left behind by a
 * deleted manifest do not count, so the revision's link itself is checked, not its directory.
 */
export async function holdsManifest(metadata: MetadataStore, namespace: string): Promise<boolean> {
  for (const algorithm of ALGORITHMS) {
    for (const hex of await metadata.list(keyFor({ kind: 'revisionLinks', namespace, algorithm }))) {
      const digest = { algorithm, hex };
      if (await exists(metadata, keyFor({ kind: 'revisionLink', namespace, digest }))) return true;
    }
  }
  return false;
}
