import {
  type Attributes,
  type Context,
  context,
  type DiagLogger,
  DiagLogLevel,
  diag,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from './logger.js';

/**
 * Tracing, in two halves. Libraries use `@opentelemetry/api` only (through the helpers below):
 * with no SDK registered its calls are no-ops, and `tracingActive()` lets a hot path skip even
 * those. The SDK (tracer provider, sampler, OTLP exporter, AsyncLocalStorage context manager, W3C
 * propagator) is loaded and registered by `startTracing`, which the CLI calls for each service when
 * `[observability.tracing]` is configured; it is imported only then, so a process without tracing
 * never loads it.
 */

/** The tracer every library records under. */
export const TRACER_NAME = 'angos';

let active = false;

/** Whether an SDK is registered in this process: without one, every span is a no-op. */
export function tracingActive(): boolean {
  return active;
}

/**
 * Whether a span is active here (a traced request or job runs): the spans of the layers below
 * (storage, locks) are recorded only then, so background polling does not start a trace per poll.
 */
export function inTrace(): boolean {
  return active && trace.getSpan(context.active()) !== undefined;
}

/** The tracer of the libraries (the API's no-op one until `startTracing` registers the SDK). */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** What `startTracing` needs: the configuration's table, and the service it traces. */
export interface TracingOptions {
  /** `observability.tracing.endpoint`: an OTLP/HTTP base URL, or the full `…/v1/traces` URL. */
  readonly endpoint: string;
  /** `observability.tracing.sampling_rate`: share of new traces kept, 0.0–1.0. */
  readonly samplingRate: number;
  /** `service.name` unless OTEL_SERVICE_NAME says otherwise (`angos-gateway`…). */
  readonly serviceName: string;
  readonly serviceVersion?: string | undefined;
  /** Where export failures are reported (the OpenTelemetry diagnostic log, warnings and up). */
  readonly logger: Logger;
  /** Environment to read `OTEL_*` from; `process.env` by default (tests pass their own). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** How long `shutdown` waits for the last export; SHUTDOWN_EXPORT_MS by default. */
  readonly shutdownTimeoutMs?: number | undefined;
}

export interface TracingHandle {
  /** Exports what is buffered and stops the SDK (bounded by the exporter's timeout). */
  shutdown(): Promise<void>;
  /** Exports what is buffered now (tests). */
  forceFlush(): Promise<void>;
}

/** How long a stopping process waits for its last spans to be exported. */
const SHUTDOWN_EXPORT_MS = 5000;

function withinMs<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const NOTHING_TO_STOP: TracingHandle = { shutdown: async () => {}, forceFlush: async () => {} };

/** `http://collector:4318` → `http://collector:4318/v1/traces`; a URL with a path is used as given. */
export function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/v1/traces';
  return url.toString();
}

/** The batch span processor's `OTEL_BSP_*` settings (the SDK no longer reads them itself). */
function batchOptions(env: NodeJS.ProcessEnv) {
  const positive = (name: string): number | undefined => {
    const value = Number(env[name]);
    return Number.isFinite(value) && value > 0 ? value : undefined;
  };
  const options: Record<string, number> = {};
  const pairs = [
    ['scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY'],
    ['exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT'],
    ['maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE'],
    ['maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'],
  ] as const;
  for (const [option, name] of pairs) {
    const value = positive(name);
    if (value !== undefined) options[option] = value;
  }
  return options;
}

/** OpenTelemetry's own diagnostics (an export that failed) as our log records. */
function diagnostics(logger: Logger): DiagLogger {
  // Outside any span: an export that fails started in the context of the span that filled the
  // batch, and its line is not that request's.
  const log =
    (level: 'error' | 'warn' | 'debug') =>
    (message: string, ...args: unknown[]) =>
      context.with(ROOT_CONTEXT, () =>
        logger[level]('opentelemetry diagnostic', { detail: message, ...(args.length > 0 ? { args } : {}) }),
      );
  return {
    error: log('error'),
    warn: log('warn'),
    info: log('debug'),
    debug: log('debug'),
    verbose: log('debug'),
  };
}

/**
 * Registers the SDK for this process: spans sampled by a parent-based ratio sampler at
 * `samplingRate` (a request arriving with a sampled `traceparent` is kept, an unsampled one is
 * not), batched, and exported as OTLP/HTTP protobuf to `endpoint`. One SDK per process: a second
 * call (services composed in one test process) leaves the first in place and returns a handle that
 * stops nothing. `OTEL_SDK_DISABLED=true` starts nothing.
 */
export async function startTracing(options: TracingOptions): Promise<TracingHandle> {
  const env = options.env ?? process.env;
  if (active || env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return NOTHING_TO_STOP;
  active = true;
  const [sdk, exporterModule, resources, conventions, hooks, core] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-proto'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/core'),
  ]);
  const logger = options.logger.child('tracing');
  diag.setLogger(diagnostics(logger), DiagLogLevel.WARN);
  // Ours first, then what the environment says (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) over it.
  const resource = resources
    .defaultResource()
    .merge(
      resources.resourceFromAttributes({
        [conventions.ATTR_SERVICE_NAME]: options.serviceName,
        ...(options.serviceVersion === undefined
          ? {}
          : { [conventions.ATTR_SERVICE_VERSION]: options.serviceVersion }),
      }),
    )
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  // Headers, timeout, compression and TLS files come from OTEL_EXPORTER_OTLP_[TRACES_]*.
  const exporter = new exporterModule.OTLPTraceExporter({ url: tracesUrl(options.endpoint) });
  const provider = new sdk.TracerProvider({
    resource,
    sampler: new sdk.ParentBasedSampler({
      root: new sdk.TraceIdRatioBasedSampler(options.samplingRate),
    }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter, ...batchOptions(env) })],
  });
  const contextManager = new hooks.AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(
    new core.CompositePropagator({
      propagators: [new core.W3CTraceContextPropagator(), new core.W3CBaggagePropagator()],
    }),
  );
  trace.setGlobalTracerProvider(provider);
  let stopped: Promise<void> | undefined;
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= (async () => {
        try {
          // What is buffered goes out, unless the collector is down: then a stopping process
          // waits a few seconds at most, and says what it dropped, rather than failing.
          await withinMs(provider.shutdown(), options.shutdownTimeoutMs ?? SHUTDOWN_EXPORT_MS);
        } catch (error) {
          logger.warn('spans not exported at shutdown', { endpoint: options.endpoint, error: String(error) });
        } finally {
          trace.disable();
          propagation.disable();
          context.disable();
          diag.disable();
          active = false;
        }
      })();
      return stopped;
    },
  };
}

/** Reads W3C headers from node:http's lower-cased header object (arrays: the first value). */
const headerGetter: TextMapGetter<Readonly<Record<string, string | string[] | undefined>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return Array.isArray(value) ? value[0] : value;
  },
};

const headerSetter: TextMapSetter<Record<string, unknown>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** The context a request's `traceparent` (and `tracestate`, `baggage`) continue, under `parent`. */
export function extractContext(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  parent: Context = context.active(),
): Context {
  return propagation.extract(parent, headers, headerGetter);
}

/** Writes the `traceparent` (and `tracestate`, `baggage`) of `from` into outgoing headers. */
export function injectContext(headers: Record<string, unknown>, from: Context = context.active()): void {
  propagation.inject(from, headers, headerSetter);
}

/** The header names the W3C propagators write, for a forwarder to drop the client's before injecting ours. */
export const TRACE_HEADERS: readonly string[] = ['traceparent', 'tracestate', 'baggage'];

/** The serialized W3C trace context of `from`, for storing (a job envelope); undefined when there is none. */
export function serializeContext(from: Context = context.active()): Record<string, string> | undefined {
  if (!active) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(from, carrier, headerSetter);
  return carrier['traceparent'] === undefined ? undefined : carrier;
}

/** A link to the span a serialized context (serializeContext) names; undefined if it names none. */
export function linkTo(carrier: Readonly<Record<string, string>> | undefined): Link | undefined {
  if (!active || carrier === undefined) return undefined;
  const linked = trace.getSpanContext(propagation.extract(context.active(), carrier, headerGetter));
  return linked !== undefined && isSpanContextValid(linked) ? { context: linked } : undefined;
}

/** The ids a log record carries: those of the active span, when it has valid ones. */
export function activeSpanIds(): SpanContext | undefined {
  if (!active) return undefined;
  const span = trace.getSpan(context.active());
  if (span === undefined) return undefined;
  const spanContext = span.spanContext();
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** Marks a span failed with `error`, the way every library does it. */
export function recordFailure(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/** What `inSpan` hands its work when tracing is off: records nothing. */
const NO_SPAN: Span = trace.wrapSpanContext({
  traceId: '00000000000000000000000000000000',
  spanId: '0000000000000000',
  traceFlags: 0,
});

/**
 * Runs `work` in a new active span named `name`, ended when its promise settles (failed with its
 * error). Without an SDK it runs `work` with a no-op span and costs one branch.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  if (!active) return work(NO_SPAN);
  return tracer().startActiveSpan(name, options, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

export type { Attributes, Context, Link, Span };
export { SpanKind, SpanStatusCode };
