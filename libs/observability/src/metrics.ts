import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';

export interface MetricDefinition<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
}

export interface HistogramDefinition<L extends string> extends MetricDefinition<L> {
  readonly buckets?: readonly number[];
}

/** The request metrics every HTTP service records (see @angos/http withObservability). */
export interface HttpMetrics {
  readonly requestsTotal: Counter<'method' | 'route' | 'status'>;
  /** `http_request_duration_ms`: milliseconds, as the metrics reference names it. */
  readonly requestDuration: Histogram<'method' | 'route'>;
  /** `http_requests_in_flight`: one gauge for the process, no labels (the reference's). */
  readonly requestsInFlight: Gauge<string>;
  /** Requests the server's limits refused or cut off (see @angos/http withRequestLimits). */
  readonly requestsRefused: Counter<'reason'>;
}

/**
 * One process's metrics, in a registry of its own (never prom-client's global one, so tests and
 * in-process compositions do not collide). Libraries add their metrics through `counter()`,
 * `histogram()` and `gauge()`: asking twice for the same name returns the same metric, so a module
 * instantiated more than once (one lock per store, say) shares its series.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly http: HttpMetrics;
  counter<L extends string>(definition: MetricDefinition<L>): Counter<L>;
  histogram<L extends string>(definition: HistogramDefinition<L>): Histogram<L>;
  gauge<L extends string>(definition: MetricDefinition<L>): Gauge<L>;
  /** The Prometheus text exposition of every metric, for `/metrics`. */
  render(): Promise<{ contentType: string; body: string }>;
  /** This registry's metrics as data, for a peer's aggregated render (MetricPeers). */
  snapshot(): Promise<MetricSnapshot>;
}

/** The metrics of one registry as data (prom-client's JSON form), as they cross threads. */
export type MetricSnapshot = readonly MetricObjectWithValues<MetricValue<string>>[];

/**
 * The other registries of one service (its other serving threads): `/metrics` answers their sum
 * with this one's, so counters and histograms are the service's totals whichever thread answers.
 */
export interface MetricPeers {
  snapshots(): Promise<readonly MetricSnapshot[]>;
}

export interface MetricsOptions {
  /** Node's process and runtime metrics (`process_*`, `nodejs_*`); default on. */
  readonly defaultMetrics?: boolean;
  readonly peers?: MetricPeers | undefined;
}

/** Milliseconds; from sub-millisecond manifest hits to multi-minute blob transfers. */
export const HTTP_DURATION_BUCKETS = [
  1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000,
] as const;

type MetricClass = typeof Counter | typeof Gauge | typeof Histogram;

function existing<M>(registry: Registry, name: string, kind: MetricClass): M | undefined {
  const found: Metric | undefined = registry.getSingleMetric(name);
  if (found === undefined) return undefined;
  if (!(found instanceof kind)) {
    throw new Error(`metric ${name} is already registered with a different type`);
  }
  return found as M;
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const counter = <L extends string>(definition: MetricDefinition<L>): Counter<L> =>
    existing<Counter<L>>(registry, definition.name, Counter) ??
    new Counter<L>({
      name: definition.name,
      help: definition.help,
      labelNames: definition.labelNames ?? [],
      registers: [registry],
    });

  const gauge = <L extends string>(definition: MetricDefinition<L>): Gauge<L> =>
    existing<Gauge<L>>(registry, definition.name, Gauge) ??
    new Gauge<L>({
      name: definition.name,
      help: definition.help,
      labelNames: definition.labelNames ?? [],
      registers: [registry],
    });

  const histogram = <L extends string>(definition: HistogramDefinition<L>): Histogram<L> =>
    existing<Histogram<L>>(registry, definition.name, Histogram) ??
    new Histogram<L>({
      name: definition.name,
      help: definition.help,
      labelNames: definition.labelNames ?? [],
      ...(definition.buckets === undefined ? {} : { buckets: [...definition.buckets] }),
      registers: [registry],
    });

  const http: HttpMetrics = {
    requestsTotal: counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route action and status code',
      labelNames: ['method', 'route', 'status'],
    }),
    requestDuration: histogram({
      name: 'http_request_duration_ms',
      help: 'Time from request received to response finished in milliseconds, by method and route action',
      labelNames: ['method', 'route'],
      buckets: HTTP_DURATION_BUCKETS,
    }),
    requestsInFlight: gauge({
      name: 'http_requests_in_flight',
      help: 'HTTP requests currently being handled',
    }),
    requestsRefused: counter({
      name: 'http_requests_refused_total',
      help: 'HTTP requests refused or cut off by the request limits, by reason',
      labelNames: ['reason'],
    }),
  };

  return {
    registry,
    http,
    counter,
    histogram,
    gauge,
    async render() {
      if (options.peers === undefined)
        return { contentType: registry.contentType, body: await registry.metrics() };
      const own = await registry.getMetricsAsJSON();
      const others = await options.peers.snapshots();
      const merged = AggregatorRegistry.aggregate([own, ...others] as MetricObjectWithValues<
        MetricValue<string>
      >[][]);
      return { contentType: registry.contentType, body: await merged.metrics() };
    },
    async snapshot() {
      return (await registry.getMetricsAsJSON()) as MetricSnapshot;
    },
  };
}
