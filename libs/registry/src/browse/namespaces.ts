import { ALGORITHMS } from '@angos/oci';
import { keyFor, type MetadataStore } from '@angos/storage';
import { byCodePoint, mapBounded } from './bounded.js';

/** Whether the caller may see a namespace (the extension API asks its policy). */
export type Readable = (namespace: string) => Promise<boolean>;

/** A child of a namespace prefix, as `_namespaces` shows it. */
export interface NamespaceEntry {
  readonly path: string;
  readonly name: string;
  /** It holds tags or revisions itself (and the caller may read it). */
  readonly isNamespace: boolean;
  readonly hasChildren: boolean;
  /** Null for a pure prefix (or one the caller may not read, shown only for what lies below it). */
  readonly tags: number | null;
  readonly manifests: number | null;
  readonly uploads: number | null;
}

export interface EntryPage {
  readonly entries: NamespaceEntry[];
  /** Another page follows (the caller may read something after the last entry). */
  readonly more: boolean;
}

/** Store reads in flight for one page. */
const CONCURRENCY = 16;
/** Names asked of the store per listing call while filling a page. */
const SCAN_BATCH = 200;
/**
 * How long a walk of every namespace (search, repository counts) is served before it is redone: on
 * S3 a walk is one listing per namespace, so a UI searching all day costs one walk a minute.
 */
const INDEX_TTL_MS = 60_000;

/** Directory names below a namespace that are its own data, not nested namespaces. */
function isComponent(name: string): boolean {
  return !name.startsWith('_') && !name.startsWith('.');
}

/** What one namespace directory holds: its own data, and whether namespaces nest below it. */
interface DirectoryFacts {
  /** The first names below it (all of them when `complete`). */
  readonly names: readonly string[];
  readonly complete: boolean;
  readonly hasManifests: boolean;
  readonly hasUploads: boolean;
  readonly owns: boolean;
  readonly hasChildren: boolean;
}

function factsOf(names: readonly string[], complete = true): DirectoryFacts {
  const hasManifests = names.includes('_manifests');
  const hasUploads = names.includes('_uploads');
  return {
    names,
    complete,
    hasManifests,
    hasUploads,
    owns: hasManifests || hasUploads,
    hasChildren: names.some(isComponent),
  };
}

/** Names read first of a directory: its own `_` entries and a first child fit in most. */
const FACTS_PAGE = 8;

/**
 * The facts of a directory from the first names of its listing when they settle them, else from
 * all of it. Names sort `0-9` < `_layers` < `_manifests` < `_uploads` < `a-z`, so a first page that
 * ends past `_uploads` has shown both of the namespace's own directories and a child. On S3 a short
 * page is a cheap request even where thousands of keys lie below (a prefix of many namespaces).
 */
async function directoryFacts(metadata: MetadataStore, path: string): Promise<DirectoryFacts> {
  const first = await metadata.listPage(path, { limit: FACTS_PAGE });
  if (first.length < FACTS_PAGE) return factsOf(first);
  if (first.at(-1)! > '_uploads') return factsOf(first, false);
  return factsOf(await metadata.list(path));
}

const NONE: readonly string[] = [];

/**
 * Counts of a namespace's tags, revisions and upload sessions: one listing each, skipped for the
 * directories its own listing shows absent (on S3 every listing is a request).
 */
async function countsOf(metadata: MetadataStore, namespace: string, facts: DirectoryFacts) {
  const listIf = (present: boolean, path: string) => (present ? metadata.list(path) : Promise.resolve(NONE));
  const [tags, uploads, ...revisions] = await Promise.all([
    listIf(facts.hasManifests, keyFor({ kind: 'tags', namespace })),
    listIf(facts.hasUploads, keyFor({ kind: 'uploads', namespace })),
    ...ALGORITHMS.map((algorithm) =>
      listIf(facts.hasManifests, keyFor({ kind: 'revisionLinks', namespace, algorithm })),
    ),
  ]);
  const manifests = revisions.reduce((sum, names) => sum + names.length, 0);
  return { tags: tags.length, manifests, uploads: uploads.length };
}

/** The index of the first path in `sorted` that is not below `prefix` in order (binary search). */
function lowerBound(sorted: readonly string[], value: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < value) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The namespaces of a store, read by walking its directory tree (one listing per directory), kept
 * for a minute: search and the repository counts need every namespace, and a walk of 10,000
 * namespaces on S3 is 10,000 listings. A walk older than the TTL is served while the next one runs.
 */
export class NamespaceIndex {
  #paths: readonly string[] | undefined;
  #takenAt = 0;
  #walking: Promise<readonly string[]> | undefined;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** Every namespace that holds tags, revisions or uploads, sorted. */
  async all(): Promise<readonly string[]> {
    const fresh = this.#paths !== undefined && this.now() - this.#takenAt < INDEX_TTL_MS;
    if (fresh) return this.#paths!;
    const walk = this.#refresh();
    if (this.#paths !== undefined) {
      walk.catch(() => {}); // served stale meanwhile; the next request retries
      return this.#paths;
    }
    return walk;
  }

  /** The last walk when it is younger than the TTL (no walk is started); undefined otherwise. */
  fresh(): readonly string[] | undefined {
    return this.#paths !== undefined && this.now() - this.#takenAt < INDEX_TTL_MS ? this.#paths : undefined;
  }

  #refresh(): Promise<readonly string[]> {
    if (this.#walking === undefined) {
      const started = this.now();
      this.#walking = this.#walk()
        .then((paths) => {
          this.#paths = paths;
          this.#takenAt = started;
          return paths;
        })
        .finally(() => {
          this.#walking = undefined;
        });
    }
    return this.#walking;
  }

  async #walk(): Promise<string[]> {
    const found: string[] = [];
    let level = (await this.metadata.list('')).filter(isComponent);
    while (level.length > 0) {
      const next: string[] = [];
      await mapBounded(level, CONCURRENCY, async (path) => {
        const names = await this.metadata.list(path);
        if (factsOf(names).owns) found.push(path);
        for (const name of names) if (isComponent(name)) next.push(`${path}/${name}`);
      });
      level = next;
    }
    return found.sort(byCodePoint);
  }
}

export class NamespaceBrowser {
  readonly index: NamespaceIndex;

  constructor(private readonly metadata: MetadataStore) {
    this.index = new NamespaceIndex(metadata);
  }

  /**
   * The direct children of `parent` ('' for the root), sorted by name, after the entry whose path
   * is `last`, at most `limit`. A child is shown when the caller may read it, or anything below it
   * (then as a prefix, without counts). Reads the store per page, not the whole tree: one listing of
   * the parent per `SCAN_BATCH` names, and a few listings per child.
   */
  async children(
    parent: string,
    options: { limit: number; last?: string | undefined; readable: Readable },
  ): Promise<EntryPage> {
    const { limit, readable } = options;
    let after =
      options.last === undefined ? undefined : options.last.slice(options.last.lastIndexOf('/') + 1);
    const entries: NamespaceEntry[] = [];
    // One more than asked, to know whether a next page exists.
    while (entries.length <= limit) {
      const names = await this.metadata.listPage(parent, { after, limit: SCAN_BATCH });
      const candidates = names.filter(isComponent);
      // Entries of a batch are computed in parallel, a window at a time, so a page stops early.
      let start = 0;
      while (start < candidates.length && entries.length <= limit) {
        const size = Math.max(limit + 1 - entries.length, CONCURRENCY);
        const window = candidates.slice(start, start + size);
        start += size;
        const computed = await mapBounded(window, CONCURRENCY, (name) =>
          this.#entry(parent === '' ? name : `${parent}/${name}`, name, readable),
        );
        for (const entry of computed) if (entry !== undefined && entries.length <= limit) entries.push(entry);
      }
      if (names.length < SCAN_BATCH) break;
      after = names.at(-1);
    }
    return { entries: entries.slice(0, limit), more: entries.length > limit };
  }

  /**
   * Namespaces whose path contains `query` (case-insensitive) that the caller may read, sorted,
   * after `last`, at most `limit`.
   */
  async search(
    query: string,
    options: { limit: number; last?: string | undefined; readable: Readable },
  ): Promise<EntryPage> {
    const needle = query.toLowerCase();
    const last = options.last;
    const matches = (await this.index.all()).filter(
      (path) => path.includes(needle) && (last === undefined || path > last),
    );
    // The policy first (no store read), then the store for the page's entries only.
    const visible: string[] = [];
    for (const path of matches) {
      if (visible.length > options.limit) break;
      if (await options.readable(path)) visible.push(path);
    }
    const computed = await mapBounded(visible, CONCURRENCY, (path) =>
      this.#entry(path, path.slice(path.lastIndexOf('/') + 1), async () => true, false),
    );
    const entries = computed.filter((entry): entry is NamespaceEntry => entry !== undefined);
    return { entries: entries.slice(0, options.limit), more: entries.length > options.limit };
  }

  /** The entry of one directory, or undefined when the caller may see nothing of it. */
  async #entry(
    path: string,
    name: string,
    readable: Readable,
    prefixes = true,
  ): Promise<NamespaceEntry | undefined> {
    const facts = await directoryFacts(this.metadata, path);
    if (facts.owns && (await readable(path))) {
      const counts = await countsOf(this.metadata, path, facts);
      return {
        path,
        name,
        isNamespace: counts.tags > 0 || counts.manifests > 0,
        hasChildren: facts.hasChildren,
        ...counts,
      };
    }
    if (!prefixes || !facts.hasChildren || !(await this.#readableBelow(path, facts, readable)))
      return undefined;
    return { path, name, isNamespace: false, hasChildren: true, tags: null, manifests: null, uploads: null };
  }

  /**
   * Whether the caller may read some namespace below `prefix` (whose facts are `facts`). From the
   * last walk of every namespace when it is fresh (no store read: the policy alone), otherwise
   * depth first through the store, stopping at the first.
   */
  async #readableBelow(prefix: string, facts: DirectoryFacts, readable: Readable): Promise<boolean> {
    const walked = this.index.fresh();
    if (walked !== undefined) {
      const below = `${prefix}/`;
      for (let i = lowerBound(walked, below); i < walked.length && walked[i]!.startsWith(below); i++) {
        if (await readable(walked[i]!)) return true;
      }
      return false;
    }
    const seen = await this.#readableAmong(prefix, facts.names, readable);
    if (seen || facts.complete) return seen;
    const last = facts.names.at(-1)!;
    const rest = (await this.metadata.list(prefix)).filter((name) => name > last);
    return this.#readableAmong(prefix, rest, readable);
  }

  /** Whether the caller may read a namespace at or below one of `names` under `prefix`, depth first. */
  async #readableAmong(prefix: string, names: readonly string[], readable: Readable): Promise<boolean> {
    for (const name of names.filter(isComponent)) {
      const path = `${prefix}/${name}`;
      const facts = await directoryFacts(this.metadata, path);
      if (facts.owns && (await readable(path))) return true;
      if (facts.hasChildren && (await this.#readableBelow(path, facts, readable))) return true;
    }
    return false;
  }
}
