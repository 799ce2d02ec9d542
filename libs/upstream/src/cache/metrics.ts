import type { Metrics } from '@angos/observability';

type Counter = ReturnType<Metrics['counter']>;

/** The pull-through cache's metrics (documented in docs/metrics.md). */
export interface CacheMetrics {
  readonly hits: Counter;
  readonly misses: Counter;
  readonly upstreamRequests: Counter;
  readonly bytesFetched: Counter;
  readonly fillsInFlight: ReturnType<Metrics['gauge']>;
  readonly staleServed: Counter;
}

/**
 * hits/misses by `kind` (manifest, blob, tags, referrers); upstream requests by `outcome` (ok, or
 * the UpstreamError kind); `stale_served`: answered from the cache because every upstream failed.
 */
export function cacheMetrics(metrics: Metrics): CacheMetrics {
  return {
    hits: metrics.counter({
      name: 'angos_pull_through_cache_hits_total',
      help: 'Pull-through cache reads answered from storage',
      labelNames: ['kind'],
    }),
    misses: metrics.counter({
      name: 'angos_pull_through_cache_misses_total',
      help: 'Pull-through cache reads that had to ask an upstream',
      labelNames: ['kind'],
    }),
    upstreamRequests: metrics.counter({
      name: 'angos_upstream_requests_total',
      help: 'Requests to upstream registries, by outcome',
      labelNames: ['repository', 'outcome'],
    }),
    bytesFetched: metrics.counter({
      name: 'angos_upstream_bytes_fetched_total',
      help: 'Blob bytes received from upstream registries',
      labelNames: ['repository'],
    }),
    fillsInFlight: metrics.gauge({
      name: 'angos_pull_through_cache_fills_in_flight',
      help: 'Blob fills from upstreams running in this process',
    }),
    staleServed: metrics.counter({
      name: 'angos_pull_through_cache_stale_served_total',
      help: 'Reads served from the cache because every upstream failed',
      labelNames: ['kind'],
    }),
  };
}
