import { type Config, repositoryKeyFor, type UpstreamConfig } from '@angos/config';
import type { Logger } from '@angos/observability';
import { UpstreamClient } from '../client.js';
import { isUpstreamError, type UpstreamError } from '../errors.js';
import type { UpstreamTimeouts } from '../transport.js';
import type { CacheMetrics } from './metrics.js';

/** The `[repository."<key>"]` a namespace lies under, when that repository has upstreams. */
export function cacheRepositoryOf(config: Config, namespace: string): string | undefined {
  const key = repositoryKeyFor(config, namespace);
  if (key === undefined) return undefined;
  return (config.repository[key]?.upstream.length ?? 0) > 0 ? key : undefined;
}

/**
 * The outcome of asking a repository's upstreams in order: the first answer, or why none came.
 * `not-found` only when every upstream answered 404; any other failure makes it `failed`, since
 * the content may well exist behind the upstream that could not answer.
 */
export type Asked<T> =
  | { readonly kind: 'answer'; readonly value: T; readonly upstream: UpstreamClient }
  | { readonly kind: 'not-found' }
  | { readonly kind: 'failed'; readonly errors: readonly UpstreamError[] };

/**
 * One UpstreamClient per configured upstream, kept while its configuration is unchanged (token
 * cache and connections survive), rebuilt after a hot reload changes it.
 */
export class UpstreamPool {
  readonly #clients = new Map<string, { readonly fingerprint: string; readonly client: UpstreamClient }>();

  constructor(
    private readonly deps: {
      readonly config: () => Config;
      readonly logger: Logger;
      readonly metrics: CacheMetrics;
      readonly timeouts?: Partial<UpstreamTimeouts> | undefined;
    },
  ) {}

  /** The clients of the repository's upstreams, in configured order. */
  clients(repository: string): UpstreamClient[] {
    const config = this.deps.config();
    const upstreams = config.repository[repository]?.upstream ?? [];
    return upstreams.map((upstream, index) =>
      this.#client(repository, index, upstream, config.global.max_manifest_size),
    );
  }

  /**
   * Runs `call` against each upstream of `repository` in order until one answers. Failures are
   * logged and counted (`angos_upstream_requests_total{outcome}`); a digest mismatch is logged as
   * an error, since the upstream served bad bytes.
   */
  async ask<T>(
    repository: string,
    what: string,
    call: (client: UpstreamClient) => Promise<T>,
  ): Promise<Asked<T>> {
    const errors: UpstreamError[] = [];
    let allNotFound = true;
    for (const client of this.clients(repository)) {
      try {
        const value = await call(client);
        this.deps.metrics.upstreamRequests.inc({ repository, outcome: 'ok' });
        return { kind: 'answer', value, upstream: client };
      } catch (error) {
        if (!isUpstreamError(error)) throw error;
        this.record(repository, what, error);
        if (error.kind !== 'not-found') allNotFound = false;
        errors.push(error);
      }
    }
    return allNotFound ? { kind: 'not-found' } : { kind: 'failed', errors };
  }

  /** Counts and logs one failed upstream call. */
  record(repository: string, what: string, error: UpstreamError): void {
    this.deps.metrics.upstreamRequests.inc({ repository, outcome: error.kind });
    if (error.kind === 'not-found') return;
    const fields = { repository, upstream: error.upstream, kind: error.kind, error: error.message };
    if (error.kind === 'digest-mismatch')
      this.deps.logger.error(`upstream served bad bytes: ${what}`, fields);
    else this.deps.logger.warn(`upstream failed: ${what}`, fields);
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  #client(repository: string, index: number, upstream: UpstreamConfig, maxManifestBytes: number) {
    const key = `${repository}\n${index}`;
    const fingerprint = JSON.stringify([upstream, maxManifestBytes]);
    const known = this.#clients.get(key);
    if (known?.fingerprint === fingerprint) return known.client;
    known?.client.close();
    const client = new UpstreamClient({
      repository,
      config: upstream,
      maxManifestBytes,
      ...(this.deps.timeouts === undefined ? {} : { timeouts: this.deps.timeouts }),
    });
    this.#clients.set(key, { fingerprint, client });
    return client;
  }
}

/** The `Warning` header value of an answer served from the cache while every upstream failed. */
export function staleWarning(errors: readonly UpstreamError[]): string {
  const reason = errors.map((error) => error.kind).join(', ') || 'unavailable';
  return `110 angos "Response is stale: upstream ${reason}"`;
}
