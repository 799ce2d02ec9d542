import type { Writable } from 'node:stream';
import type { JobHandler } from '@angos/jobs';
import {
  type ByteRange,
  type Descriptor,
  type DigestParts,
  formatDigest,
  OciError,
  parseDigest,
  parseLookupReference,
  parseRangeHeader,
} from '@angos/oci';
import { BlobFiller, unavailable } from './blob-filler.js';
import { ManifestCache } from './manifest-cache.js';
import { type CacheMetrics, cacheMetrics } from './metrics.js';
import type {
  BlobAnswer,
  BlobBytes,
  BlobRequest,
  ManifestAnswer,
  ManifestRequest,
  PullThroughCacheDeps,
  ReferrersAnswer,
  TagListAnswer,
} from './types.js';
import { cacheRepositoryOf, staleWarning, UpstreamPool } from './upstreams.js';

/**
 * The pull-through cache: reads of namespaces under a repository with upstreams. Hits come from
 * storage through the registry core; misses from the repository's upstreams in order, stored
 * (verified) through the core as they are served.
 */
export class PullThroughCache {
  readonly #metrics: CacheMetrics;
  readonly #upstreams: UpstreamPool;
  readonly #blobs: BlobFiller;
  readonly #manifests: ManifestCache;

  constructor(private readonly deps: PullThroughCacheDeps) {
    const logger = deps.logger.child('angos::pull_through_cache');
    this.#metrics = cacheMetrics(deps.metrics);
    this.#upstreams = new UpstreamPool({
      config: deps.config,
      logger,
      metrics: this.#metrics,
      timeouts: deps.upstreamTimeouts,
    });
    const shared = { ...deps, logger, metrics: this.#metrics, upstreams: this.#upstreams };
    this.#blobs = new BlobFiller(shared);
    this.#manifests = new ManifestCache(shared);
  }

  /** True when `namespace` lies under a repository that has upstreams (config read each call). */
  handles(namespace: string): boolean {
    return cacheRepositoryOf(this.deps.config(), namespace) !== undefined;
  }

  /** The job handlers of the `cache` queue (for the drain and the workers). */
  // biome-ignore lint/suspicious/noExplicitAny: a registry of handlers of different payload types
  jobHandlers(): JobHandler<any>[] {
    return [this.#blobs.handler()];
  }

  /** GET/HEAD of a manifest by tag or digest, negotiated against `Accept` as registry-api does. */
  async manifest(namespace: string, reference: string, request: ManifestRequest): Promise<ManifestAnswer> {
    return this.#manifests.get(
      this.#repository(namespace),
      namespace,
      parseLookupReference(reference),
      request,
    );
  }

  /**
   * GET/HEAD of a blob, with a single `Range`. A hit is read from storage; a miss joins (or starts)
   * the blob's fill and streams from it as the bytes arrive. A HEAD of a miss asks the upstreams
   * for the size and fetches nothing.
   */
  async blob(namespace: string, digestText: string, request: BlobRequest): Promise<BlobAnswer> {
    const repository = this.#repository(namespace);
    const digest = parseDigest(digestText);
    const text = formatDigest(digest);
    const stat = await this.#stat(namespace, digest);
    if (stat !== undefined) {
      this.#metrics.hits.inc({ kind: 'blob' });
      return this.#storedAnswer(namespace, text, stat.size, request);
    }
    this.#metrics.misses.inc({ kind: 'blob' });
    if (request.method === 'HEAD') {
      const asked = await this.#upstreams.ask(repository, `blob ${namespace}@${text}`, (client) =>
        client.headBlob(namespace, text),
      );
      if (asked.kind === 'failed') throw unavailable(asked.errors);
      if (asked.kind === 'not-found' || asked.value === undefined)
        throw new OciError('BLOB_UNKNOWN', { digest: text });
      const range = rangeOf(request.range, asked.value.size);
      return { digest: text, size: asked.value.size, range };
    }
    const fill = this.#blobs.join(namespace, digest);
    if ((await fill.started) === 'stored') {
      const { size } = await this.deps.registry.blobs.stat(namespace, digest);
      return this.#storedAnswer(namespace, text, size, request);
    }
    let size = fill.size;
    if (size === undefined && request.range !== undefined) {
      // A range of a blob of unknown length can only be checked once it is whole.
      await fill.done;
      size = (await this.deps.registry.blobs.stat(namespace, digest)).size;
      return this.#storedAnswer(namespace, text, size, request);
    }
    const range = size === undefined ? undefined : rangeOf(request.range, size);
    return { digest: text, size, range, bytes: followerBytes(fill.follow(range)) };
  }

  /** The tag list: the cached tags, merged with the first upstream's that answers. */
  async tags(
    namespace: string,
    page: { limit?: number | undefined; last?: string | undefined },
  ): Promise<TagListAnswer> {
    const repository = this.#repository(namespace);
    let local: string[] = [];
    let localKnown = true;
    try {
      local = (await this.deps.registry.manifests.listTags(namespace, {})).tags;
    } catch (error) {
      if (!(error instanceof OciError && error.kind === 'NAME_UNKNOWN')) throw error;
      localKnown = false;
    }
    const asked = await this.#upstreams.ask(repository, `tag list of ${namespace}`, (client) =>
      client.listTags(namespace),
    );
    if (asked.kind === 'not-found' && !localKnown) throw new OciError('NAME_UNKNOWN', { namespace });
    if (asked.kind === 'failed' && !localKnown) throw unavailable(asked.errors);
    const all = [...new Set([...local, ...(asked.kind === 'answer' ? asked.value : [])])].sort(byCodePoint);
    const after = page.last === undefined ? all : all.filter((tag) => tag > page.last!);
    const limit = page.limit ?? after.length;
    return {
      tags: after.slice(0, limit),
      more: after.length > limit,
      ...(asked.kind === 'failed' ? { warning: this.#stale('tags', asked.errors) } : {}),
    };
  }

  /** The referrers of a manifest: the cached ones, merged with the first upstream's that answers. */
  async referrers(
    namespace: string,
    digestText: string,
    artifactType: string | undefined,
  ): Promise<ReferrersAnswer> {
    const repository = this.#repository(namespace);
    const subject = parseDigest(digestText);
    const local = await this.deps.registry.manifests.referrers(namespace, subject, artifactType);
    const asked = await this.#upstreams.ask(repository, `referrers of ${namespace}@${digestText}`, (client) =>
      client.referrers(namespace, formatDigest(subject), artifactType === undefined ? {} : { artifactType }),
    );
    const merged = new Map<string, Descriptor>();
    for (const descriptor of local) merged.set(descriptor.digest, descriptor);
    if (asked.kind === 'answer') {
      for (const descriptor of asked.value.manifests) {
        if (!merged.has(descriptor.digest)) merged.set(descriptor.digest, descriptor);
      }
    }
    return {
      manifests: [...merged.values()],
      ...(asked.kind === 'failed' ? { warning: this.#stale('referrers', asked.errors) } : {}),
    };
  }

  async close(): Promise<void> {
    this.#upstreams.close();
  }

  #repository(namespace: string): string {
    const repository = cacheRepositoryOf(this.deps.config(), namespace);
    if (repository === undefined) throw new OciError('NAME_UNKNOWN', { namespace });
    return repository;
  }

  #stale(kind: string, errors: Parameters<typeof staleWarning>[0]): string {
    this.#metrics.staleServed.inc({ kind });
    return staleWarning(errors);
  }

  async #stat(namespace: string, digest: DigestParts): Promise<{ size: number } | undefined> {
    try {
      return await this.deps.registry.blobs.stat(namespace, digest);
    } catch (error) {
      if (error instanceof OciError && error.kind === 'BLOB_UNKNOWN') return undefined;
      throw error;
    }
  }

  async #storedAnswer(
    namespace: string,
    digest: string,
    size: number,
    request: BlobRequest,
  ): Promise<BlobAnswer> {
    const range = rangeOf(request.range, size);
    if (request.method === 'HEAD') return { digest, size, range };
    const blobs = this.deps.registry.blobs;
    if (this.deps.config().global.enable_blob_redirect && blobs.redirects) {
      const redirect = await blobs.downloadUrl(parseDigest(digest));
      if (redirect !== undefined) return { digest, size, range, redirect };
    }
    const copy = await this.deps.registry.blobs.open(namespace, parseDigest(digest), range, size);
    return { digest, size, range, bytes: copy };
  }
}

/** The single range a `Range` header asks for; RANGE_NOT_SATISFIABLE beyond the blob. */
function rangeOf(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const range = parseRangeHeader(header, size);
  if (range === 'unsatisfiable') throw new OciError('RANGE_NOT_SATISFIABLE', { size });
  return range;
}

/** A fill's follower as the answer's bytes. */
function followerBytes(follower: BlobBytes): BlobBytes {
  return {
    copyTo: (destination: Writable) => {
      // An HTTP response sends its headers with the first bytes, and a client that joined after
      // the fill's first bytes passed gets none before the commit: it would wait that long (a
      // multi-GiB layer from a slow upstream: past its own timeout) to learn the blob is coming.
      (destination as Writable & { flushHeaders?: () => void }).flushHeaders?.();
      return follower.copyTo(destination);
    },
    close: () => follower.close(),
  };
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
