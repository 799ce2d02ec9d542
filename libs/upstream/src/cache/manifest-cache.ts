import type { Config } from '@angos/config';
import type { Logger } from '@angos/observability';
import {
  type Descriptor,
  type DigestParts,
  formatDigest,
  negotiateManifest,
  OciError,
  parseManifest,
  parseReference,
  type Reference,
} from '@angos/oci';
import { type ManifestInfo, type Registry, type StoredManifest, settingsFor } from '@angos/registry';
import type { UpstreamClient, UpstreamManifest } from '../client.js';
import { isUpstreamError } from '../errors.js';
import { unavailable } from './blob-filler.js';
import type { CacheMetrics } from './metrics.js';
import type { ManifestAnswer, ManifestRequest } from './types.js';
import { staleWarning, type UpstreamPool } from './upstreams.js';

/** Index nesting followed when an index is cached with its children. */
const MAX_INDEX_DEPTH = 4;
/** Children of an index fetched at once. */
const CHILD_FETCH_CONCURRENCY = 4;

export interface ManifestCacheDeps {
  readonly registry: Registry;
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: CacheMetrics;
  readonly upstreams: UpstreamPool;
  readonly now?: (() => number) | undefined;
}

/**
 * Manifests of cache namespaces. A digest is immutable: once stored it is served from storage and
 * the upstream is never asked again. A tag is checked upstream with a HEAD at most once per
 * `upstream_tag_check_interval_secs` (never when `immutable_tags` covers it); when every upstream
 * fails the cached tag is served, with a `Warning`, within `upstream_stale_tag_window_secs`.
 */
export class ManifestCache {
  /** When each tag (namespace + tag) was last confirmed by an upstream, or first served here. */
  readonly #confirmedAt = new Map<string, number>();
  /** Fetches in progress, by what they fetch: concurrent misses share one. */
  readonly #inFlight = new Map<string, Promise<unknown>>();
  readonly #now: () => number;

  constructor(private readonly deps: ManifestCacheDeps) {
    this.#now = deps.now ?? Date.now;
  }

  async get(
    repository: string,
    namespace: string,
    reference: Reference,
    request: ManifestRequest,
  ): Promise<ManifestAnswer> {
    let warning: string | undefined;
    if (reference.kind === 'digest') await this.#ensureDigest(repository, namespace, reference.digest);
    else
      warning = await this.#once(`tag\n${namespace}\n${reference.tag}`, () =>
        this.#refreshTag(repository, namespace, reference.tag),
      );
    const stored = await this.deps.registry.manifests.get(namespace, reference);
    const served = await this.#negotiate(namespace, reference, stored, request.accept);
    return {
      digest: formatDigest(served.digest),
      mediaType: served.mediaType,
      body: served.body,
      ...(warning === undefined ? {} : { warning }),
    };
  }

  /** A manifest by digest: from storage, or fetched (with its children) and stored. */
  async #ensureDigest(repository: string, namespace: string, digest: DigestParts): Promise<void> {
    if (await this.#resolve(namespace, { kind: 'digest', digest })) {
      this.deps.metrics.hits.inc({ kind: 'manifest' });
      return;
    }
    this.deps.metrics.misses.inc({ kind: 'manifest' });
    const text = formatDigest(digest);
    await this.#once(`digest\n${namespace}\n${text}`, async () => {
      const manifest = await this.#fetch(repository, namespace, text, undefined);
      await this.#store(repository, namespace, { kind: 'digest', digest }, manifest, 0);
    });
  }

  /**
   * Brings a tag up to date as its check interval allows; returns the `Warning` when the cached
   * tag is served because every upstream failed.
   */
  async #refreshTag(repository: string, namespace: string, tag: string): Promise<string | undefined> {
    const key = `${namespace}\n${tag}`;
    const config = this.deps.config();
    const local = await this.#resolve(namespace, { kind: 'tag', tag });
    if (local !== undefined) {
      const now = this.#now();
      const intervalMs = (config.repository[repository]?.upstream_tag_check_interval_secs ?? 60) * 1000;
      const confirmed = this.#confirmedAt.get(key);
      if (
        settingsFor(config, namespace).isImmutableTag(tag) ||
        (confirmed !== undefined && now - confirmed < intervalMs)
      ) {
        this.deps.metrics.hits.inc({ kind: 'manifest' });
        return undefined;
      }
      // HEAD only: registries with rate limits (Docker Hub) count GETs of manifests.
      const asked = await this.deps.upstreams.ask(repository, `manifest ${namespace}:${tag}`, (client) =>
        client.headManifest(namespace, tag),
      );
      if (asked.kind === 'answer' && asked.value !== undefined) {
        this.#confirmedAt.set(key, this.#now());
        if (asked.value.digest === formatDigest(local.digest)) {
          this.deps.metrics.hits.inc({ kind: 'manifest' });
          return undefined;
        }
        this.deps.metrics.misses.inc({ kind: 'manifest' });
        const manifest = await this.#fetch(repository, namespace, asked.value.digest, asked.upstream);
        await this.#store(repository, namespace, { kind: 'tag', tag }, manifest, 0);
        return undefined;
      }
      // Every upstream failed, or none has the tag any more: the cached one is served, flagged.
      const errors = asked.kind === 'failed' ? asked.errors : [];
      const since = confirmed ?? this.#firstSeen(key, now);
      const windowSecs = config.repository[repository]?.upstream_stale_tag_window_secs;
      if (asked.kind === 'failed' && windowSecs !== undefined && now - since > windowSecs * 1000) {
        throw unavailable(errors);
      }
      this.deps.metrics.staleServed.inc({ kind: 'manifest' });
      this.deps.logger.warn('cached tag served without an upstream check', {
        namespace,
        tag,
        reason: asked.kind === 'failed' ? errors.map((e) => e.kind).join(', ') : 'upstream has no such tag',
      });
      return asked.kind === 'failed'
        ? staleWarning(errors)
        : '110 angos "Response is stale: the upstream no longer has this tag"';
    }
    this.deps.metrics.misses.inc({ kind: 'manifest' });
    const manifest = await this.#fetch(repository, namespace, tag, undefined);
    await this.#store(repository, namespace, { kind: 'tag', tag }, manifest, 0);
    this.#confirmedAt.set(key, this.#now());
    return undefined;
  }

  /** A tag served from the cache without a confirmation in this process counts from its first use here. */
  #firstSeen(key: string, now: number): number {
    const seen = this.#confirmedAt.get(key);
    if (seen !== undefined) return seen;
    this.#confirmedAt.set(key, now);
    return now;
  }

  /** GET of a manifest from the upstreams, `preferred` first (the one that named its digest). */
  async #fetch(
    repository: string,
    namespace: string,
    reference: string,
    preferred: UpstreamClient | undefined,
  ): Promise<UpstreamManifest> {
    const what = `manifest ${namespace}:${reference}`;
    if (preferred !== undefined) {
      try {
        const manifest = await preferred.getManifest(namespace, reference);
        this.deps.metrics.upstreamRequests.inc({ repository, outcome: 'ok' });
        return manifest;
      } catch (error) {
        if (!isUpstreamError(error)) throw error;
        this.deps.upstreams.record(repository, what, error);
      }
    }
    const asked = await this.deps.upstreams.ask(repository, what, (client) =>
      client.getManifest(namespace, reference),
    );
    if (asked.kind === 'not-found') throw new OciError('MANIFEST_UNKNOWN', { reference });
    if (asked.kind === 'failed') throw unavailable(asked.errors);
    return asked.value;
  }

  /**
   * Stores a verified manifest. An index's children are fetched and stored first, so the index
   * pulls by digest whole; blobs are not fetched: a pull asks for those of its platform only.
   */
  async #store(
    repository: string,
    namespace: string,
    reference: Reference,
    manifest: UpstreamManifest,
    depth: number,
  ): Promise<void> {
    let parsed: ReturnType<typeof parseManifest>;
    try {
      parsed = parseManifest(manifest.bytes, manifest.mediaType);
    } catch (error) {
      this.deps.logger.error('upstream served a manifest that does not parse', {
        namespace,
        digest: manifest.digest,
        error: String(error),
      });
      throw new OciError('UNAVAILABLE', { reason: 'the upstream manifest does not parse' });
    }
    if (parsed.kind === 'index' && depth < MAX_INDEX_DEPTH) {
      await forEachLimited(parsed.manifests, CHILD_FETCH_CONCURRENCY, (child: Descriptor) =>
        this.#storeChild(repository, namespace, child, depth + 1),
      );
    }
    await this.deps.registry.manifests.put(namespace, reference, manifest.bytes, manifest.mediaType, [], {
      allowMissingReferences: true,
    });
    this.deps.logger.info('manifest cached', {
      namespace,
      reference: reference.kind === 'tag' ? reference.tag : manifest.digest,
      digest: manifest.digest,
    });
  }

  async #storeChild(repository: string, namespace: string, child: Descriptor, depth: number): Promise<void> {
    const reference = parseReference(child.digest);
    if (reference.kind !== 'digest') return;
    if (await this.#resolve(namespace, reference)) return;
    await this.#once(`digest\n${namespace}\n${child.digest}`, async () => {
      const manifest = await this.#fetch(repository, namespace, child.digest, undefined);
      await this.#store(repository, namespace, reference, manifest, depth);
    });
  }

  async #resolve(namespace: string, reference: Reference): Promise<ManifestInfo | undefined> {
    try {
      return await this.deps.registry.manifests.resolve(namespace, reference);
    } catch (error) {
      if (error instanceof OciError && error.kind === 'MANIFEST_UNKNOWN') return undefined;
      throw error;
    }
  }

  /** Runs `work` once for concurrent callers of the same key. */
  async #once<T>(key: string, work: () => Promise<T>): Promise<T> {
    const running = this.#inFlight.get(key);
    if (running !== undefined) return running as Promise<T>;
    const started = work().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, started);
    return started;
  }

  /** What the client accepts of `manifest`, as registry-api serves it (libs/oci negotiateManifest). */
  async #negotiate(
    namespace: string,
    reference: Reference,
    manifest: StoredManifest,
    accept: string | string[] | undefined,
  ): Promise<StoredManifest> {
    const choice = negotiateManifest(accept, manifest, reference.kind === 'tag');
    if (choice.kind === 'stored') return manifest;
    return this.deps.registry.manifests.get(namespace, parseReference(choice.digest));
  }
}

/** Runs `work` over `items`, at most `limit` at once; rejects with the first failure. */
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}
