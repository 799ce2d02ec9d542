import type { Server } from 'node:http';
import { checkAuthConfig, GLOBAL_ACCESS_POLICY_KEY, refusesEveryRequest } from '@angos/auth';
import {
  type Config,
  ConfigError,
  type ConfigIssue,
  type ConfigWarning,
  hasPullThroughRepositories,
  loadConfig,
  watchConfig,
} from '@angos/config';
import {
  createHttpServer,
  type Handler,
  INTERNAL_MAX_HEADER_SIZE,
  MAX_HEADER_SIZE,
  type RequestLimits,
  withObservability,
} from '@angos/http';
import {
  createLogger,
  createMetrics,
  type Logger,
  type MetricPeers,
  type Metrics,
} from '@angos/observability';
import { checkRetentionConfig, retentionWarnings } from '@angos/scrub';
import { checkUpstreamConfig } from '@angos/upstream';
import {
  type App,
  type AppDeps,
  composeGateway,
  composePullThroughCache,
  composeRegistryApi,
  composeServer,
} from './compose.js';
import { drain } from './drain.js';
import { type ListenAddress, listenOn, parseListen } from './listen.js';
import { createLiveConfig, type LiveConfig } from './live-config.js';
import type { ServingThread } from './thread-data.js';
import { startServiceThreads } from './thread-runner.js';
import {
  createTlsServer,
  readTlsMaterial,
  TlsMaterialError,
  type TlsReloader,
  watchTlsFiles,
} from './tls.js';
import { startTracingFor } from './tracing.js';
import { defaultWorkerCount } from './workers.js';

export type ServiceKind = 'server' | 'registry-api' | 'gateway' | 'pull-through-cache';

/**
 * The port of `angos pull-through-cache` by default: next to the split deployment's 8000 (gateway),
 * 8001 (registry-api) and the worker's 8002. The other services default to `[server] port`.
 */
export const PULL_THROUGH_CACHE_PORT = 8003;

/** The services behind the gateway: they trust its signature, never speak TLS, and authorize nothing. */
function isBehindGateway(kind: ServiceKind): boolean {
  return kind === 'registry-api' || kind === 'pull-through-cache';
}

export interface StartServiceOptions {
  readonly kind: ServiceKind;
  readonly configPath: string;
  /** `HOST:PORT`; default `[server] bind_address` and `port`. */
  readonly listen?: string | ListenAddress | undefined;
  /** `--workers`; default `[server] workers`, else one per CPU the process may use. */
  readonly workers?: number | undefined;
  /** Default: a logger on stderr filtered by RUST_LOG. */
  readonly logger?: Logger | undefined;
  /** Set when this runs as one serving thread of several (serving-thread.ts). */
  readonly thread?: ServingThread | undefined;
  /** With several serving threads, the module each runs: the CLI's own unless a test wraps it. */
  readonly threadEntry?: URL | undefined;
}

export interface RunningService {
  readonly address: { host: string; port: number };
  /**
   * Stops accepting connections, lets in-flight requests finish (bounded by
   * `server.query_timeout_grace_period`), stops watching the configuration. Idempotent. Logs how
   * many requests it waits for, with the signal that asked for it if any.
   */
  close(signal?: NodeJS.Signals): Promise<void>;
}

/** Options a split service reads once at startup from `[services]`. */
const SPLIT_SETTINGS = [
  'services.registry_api_url',
  'services.pull_through_cache_url',
  'services.internal_token',
] as const;

/**
 * The split gateway sends the namespaces of repositories with upstreams to the pull-through cache
 * service: without its address they would reach registry-api, which would take pushes into them.
 */
function pullThroughRouteMissing(config: Config, kind: ServiceKind, routed: Config): ConfigIssue[] {
  if (kind !== 'gateway' || routed.services.pull_through_cache_url !== undefined) return [];
  if (!hasPullThroughRepositories(config)) return [];
  return [
    {
      path: 'services.pull_through_cache_url',
      message: 'required for gateway when a repository has an upstream',
    },
  ];
}

function required(config: Config, kind: ServiceKind): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (kind === 'gateway' && config.services.registry_api_url === undefined) {
    issues.push({ path: 'services.registry_api_url', message: 'required for gateway' });
  }
  issues.push(...pullThroughRouteMissing(config, kind, config));
  if (kind !== 'server' && config.services.internal_token === undefined) {
    issues.push({ path: 'services.internal_token', message: `required for ${kind}` });
  }
  return issues;
}

/**
 * The CEL rules and files that must load for the configuration to be usable: access policy and
 * retention rules that compile and type-check, readable webhook and upstream TLS files. Each issue
 * names its key.
 */
function checkLoadable(config: Config): ConfigIssue[] {
  return [...checkAuthConfig(config), ...checkRetentionConfig(config), ...checkUpstreamConfig(config)];
}

/**
 * A missing `[services]` key, or settings that do not load (CEL rules that do not compile,
 * unreadable webhook TLS files): refuse to start.
 */
function checkRunnable(config: Config, kind: ServiceKind, source: string): void {
  const missing = [...required(config, kind), ...checkLoadable(config)];
  if (missing.length > 0) throw new ConfigError(missing, source);
}

async function compose(kind: ServiceKind, deps: AppDeps, config: Config): Promise<App> {
  switch (kind) {
    case 'server':
      return composeServer(deps);
    case 'registry-api':
      return composeRegistryApi(deps, config.services.internal_token ?? '');
    case 'pull-through-cache':
      return composePullThroughCache(deps, config.services.internal_token ?? '');
    case 'gateway':
      return composeGateway(deps, {
        registryApiUrl: config.services.registry_api_url ?? '',
        pullThroughCacheUrl: config.services.pull_through_cache_url,
        internalToken: config.services.internal_token ?? '',
      });
  }
}

export function logWarning(logger: Logger, warning: ConfigWarning): void {
  logger.warn('configuration warning', { key: warning.path, reason: warning.message });
}

/** What the loader warns about, and what a configuration that loads still gets wrong. */
function configWarnings(loaded: { config: Config; warnings: readonly ConfigWarning[] }): ConfigWarning[] {
  return [...loaded.warnings, ...retentionWarnings(loaded.config)];
}

/**
 * The services that authorize (`server`, `gateway`; registry-api trusts the gateway's decision)
 * say when the access policy refuses every request, naming the option to change: otherwise a
 * new setup answers every client 401 or 403 with nothing in the log to say why.
 */
function warnIfRefusingEverything(logger: Logger, kind: ServiceKind, config: Config): void {
  if (isBehindGateway(kind)) return;
  const reason = refusesEveryRequest(config);
  if (reason !== undefined) {
    logger.warn('access policy refuses every request', { key: GLOBAL_ACCESS_POLICY_KEY, reason });
  }
}

/**
 * The metrics of a service, or of one of its serving threads: `/metrics` then sums every thread's,
 * and only the leader collects Node's process metrics (CPU, memory and file descriptors are the
 * process's: a sum over threads would count them once per thread).
 */
function threadMetrics(thread: ServingThread | undefined): Metrics {
  if (thread === undefined) return createMetrics();
  let peers: MetricPeers | undefined;
  const metrics = createMetrics({
    defaultMetrics: thread.leader,
    peers: { snapshots: () => peers?.snapshots() ?? Promise.resolve([]) },
  });
  peers = thread.shareMetrics(metrics);
  return metrics;
}

/** Requests in flight now (the `http_requests_in_flight` gauge). */
async function requestsInFlight(metrics: Metrics): Promise<number> {
  const { values } = await metrics.http.requestsInFlight.get();
  return values.reduce((sum, { value }) => sum + value, 0);
}

/** The request limits of `config`: see RequestLimits. */
function requestLimits(config: Config): RequestLimits {
  return {
    queryTimeoutSecs: config.server.query_timeout + config.server.query_timeout_grace_period,
    maxConcurrentRequests: config.global.max_concurrent_requests,
  };
}

/** Applies valid configuration changes while running; invalid ones are logged and ignored. */
function watchForChanges(
  configPath: string,
  kind: ServiceKind,
  live: LiveConfig,
  tlsReloader: TlsReloader | undefined,
  logger: Logger,
) {
  return watchConfig(
    configPath,
    {
      onReload(next, restartKeys) {
        // `[services]` is read at startup: the routes are those of the initial configuration.
        const issues = [
          ...checkLoadable(next.config),
          ...pullThroughRouteMissing(next.config, kind, live.initial),
        ];
        if (issues.length > 0) {
          logger.error('configuration change rejected: invalid configuration', { issues });
          return;
        }
        const keys = [...restartKeys];
        for (const key of SPLIT_SETTINGS) {
          const [section, option] = key.split('.') as [
            'services',
            'registry_api_url' | 'pull_through_cache_url' | 'internal_token',
          ];
          if (kind !== 'server' && live.initial[section][option] !== next.config[section][option])
            keys.push(key);
        }
        for (const warning of configWarnings(next)) logWarning(logger, warning);
        warnIfRefusingEverything(logger, kind, next.config);
        if (keys.length > 0) logger.warn('configuration change requires restart', { keys });
        const applied = live.apply(next.config, keys);
        if (tlsReloader !== undefined && applied.server.tls !== undefined)
          tlsReloader.update(applied.server.tls);
        logger.info('configuration reloaded', { path: configPath });
      },
      onInvalid(error) {
        const issues =
          error instanceof ConfigError ? error.issues : [{ path: configPath, message: error.message }];
        logger.error('configuration change rejected: invalid configuration', { issues });
      },
    },
    { initial: live.initial },
  );
}

/**
 * Starts one service: loads and checks the configuration, builds the application, listens, and
 * follows configuration changes. Throws CliError or ConfigError when it cannot start.
 */
export async function startService(options: StartServiceOptions): Promise<RunningService> {
  const { kind, configPath } = options;
  const logger = options.logger ?? createLogger({ filter: process.env['RUST_LOG'] });
  const listenAt = typeof options.listen === 'string' ? parseListen(options.listen) : options.listen;

  const loaded = await loadConfig(configPath);
  const { config } = loaded;
  const { thread } = options;
  // The main thread warns once for all its serving threads.
  if (thread === undefined) {
    for (const warning of configWarnings(loaded)) logWarning(logger, warning);
  }
  checkRunnable(config, kind, configPath);
  if (thread === undefined) warnIfRefusingEverything(logger, kind, config);
  const defaultAddress = {
    host: config.server.bind_address,
    port: kind === 'pull-through-cache' ? PULL_THROUGH_CACHE_PORT : config.server.port,
  };
  const workers = options.workers ?? config.server.workers ?? defaultWorkerCount();
  if (thread === undefined && workers > 1) {
    return startServiceThreads({
      kind,
      configPath,
      config,
      listen: listenAt ?? defaultAddress,
      workers,
      logger,
      threadEntry: options.threadEntry,
    });
  }

  // TLS is the public edge's (`server`, `gateway`); the services behind it only talk to the gateway.
  // Read before anything is built, so a missing certificate stops startup with nothing to undo.
  const tls = isBehindGateway(kind) ? undefined : config.server.tls;
  const tlsMaterial =
    tls === undefined
      ? undefined
      : await readTlsMaterial(tls).catch((error: unknown) => {
          throw error instanceof TlsMaterialError ? new ConfigError([...error.issues], configPath) : error;
        });

  const live = createLiveConfig(config);
  const metrics = threadMetrics(thread);
  let accepting = true;
  const tracing = await startTracingFor(config, kind, logger);
  let app: App;
  try {
    app = await compose(
      kind,
      { config: live.get, logger, metrics, accepting: () => accepting, thread },
      config,
    );
  } catch (error) {
    await tracing.shutdown();
    throw error;
  }

  const observed = withObservability(app.handler, {
    metrics,
    logger: logger.child('http'),
    service: kind,
    // The pull-through cache answers no page of the web UI: its other paths stay `unknown`.
    webUi: () => kind !== 'pull-through-cache' && live.get().ui.enabled,
  });
  // While draining, answers say so, letting keep-alive clients move to another instance.
  const handler: Handler = (req, res) => {
    if (!accepting) res.setHeader('connection', 'close');
    return observed(req, res);
  };
  // Read per request: reloaded limits apply to the next request.
  const limits = () => requestLimits(live.get());
  const plain = createHttpServer(handler, {
    limits,
    metrics,
    logger,
    inFlight: thread?.inFlight,
    // The gateway's signed context carries the caller's OIDC claims: more than a client may send.
    maxHeaderSize: isBehindGateway(kind) ? INTERNAL_MAX_HEADER_SIZE : MAX_HEADER_SIZE,
  });
  let server: Server = plain;
  let tlsReloader: TlsReloader | undefined;
  if (tls !== undefined && tlsMaterial !== undefined) {
    const tlsLogger = logger.child('tls');
    const secure = createTlsServer(plain, tlsMaterial, tlsLogger);
    tlsReloader = watchTlsFiles(secure, { tls, material: tlsMaterial }, tlsLogger);
    server = secure;
  }
  let address: { host: string; port: number };
  try {
    // The serving threads of one service share its port; the kernel spreads connections over them.
    address = await listenOn(server, listenAt ?? defaultAddress, { reusePort: thread !== undefined });
  } catch (error) {
    tlsReloader?.close();
    await app.close?.();
    await tracing.shutdown();
    throw error;
  }
  logger.info('listening', { service: kind, host: address.host, port: address.port, tls: tls !== undefined });

  const watcher = watchForChanges(configPath, kind, live, tlsReloader, logger);

  let closing: Promise<void> | undefined;
  const close = (signal?: NodeJS.Signals) => {
    closing ??= (async () => {
      accepting = false;
      watcher.close();
      tlsReloader?.close();
      const graceSecs = live.get().server.query_timeout_grace_period;
      thread?.draining(graceSecs);
      logger.info('shutting down, waiting for in-flight requests', {
        service: kind,
        signal,
        in_flight: await requestsInFlight(metrics),
        grace_period_secs: graceSecs,
      });
      // Requests and background jobs wind down together, each within the grace period.
      await Promise.all([drain(server, graceSecs * 1000, logger), app.quiesce?.(graceSecs * 1000)]);
      await app.close?.();
      // Last: the spans of the requests just drained are exported before the process exits.
      await tracing.shutdown();
      logger.info('stopped', { service: kind });
    })();
    return closing;
  };
  return { address, close };
}
