import { createAuth } from '@angos/auth';
import type { Config } from '@angos/config';
import { isPullThroughNamespace } from '@angos/config';
import { createEventDispatcher } from '@angos/events';
import { buildGateway } from '@angos/gateway';
import { type Handler, healthHandler } from '@angos/http';
import type { Logger, Metrics } from '@angos/observability';
import { buildPullThroughCache } from '@angos/pull-through-cache';
import type { Registry } from '@angos/registry';
import { buildRegistryApi } from '@angos/registry-api';
import { createReplicationEvents } from '@angos/replication';
import type { PullThroughCache } from '@angos/upstream';
import { startBackgroundGc } from './background-gc.js';
import { holdInstanceLock, openRegistry, type StorageFromConfig } from './open-storage.js';
import { type HandoffServer, startHandoffServer } from './scrub-handoff.js';
import { type ServerJobs, startServerJobs } from './server-jobs.js';
import type { ServingThread } from './thread-data.js';
import { buildInfo } from './version.js';

/**
 * Builds the application of each command from the configuration. No listening, and no I/O beyond
 * opening the storage (an S3 backend is checked: bucket and credentials): tests build these
 * in-process.
 */

export interface AppDeps {
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** False while the process drains before exiting, so /readyz turns traffic away first. */
  readonly accepting: () => boolean;
  /** Set in one serving thread of several (`[server] workers`): what it shares with the others. */
  readonly thread?: ServingThread | undefined;
}

export interface App {
  readonly handler: Handler;
  /**
   * Stops the background work that takes time to wind down (the in-process job drain), waiting up
   * to `graceMs` for it; runs while requests drain, before `close`.
   */
  readonly quiesce?: (graceMs: number) => Promise<void>;
  /** Releases what the application holds open (connections to Redis, webhooks), after draining. */
  readonly close?: () => Promise<void>;
}

/**
 * The registry of a serving process, with garbage collection and the job queue running beside
 * the requests (never inside them); both stop before the storage closes.
 */
async function createRegistryFromConfig(
  deps: AppDeps,
  command: 'server' | 'registry-api' | 'pull-through-cache',
): Promise<{ registry: Registry; storage: StorageFromConfig; jobs: ServerJobs; cache: PullThroughCache }> {
  const { thread } = deps;
  // Before anything is opened: a second process on the directory stops with nothing to undo. A
  // serving thread's main thread holds it for all of them (thread-runner.ts).
  const instance =
    thread === undefined ? await holdInstanceLock(deps.config(), command, deps.logger) : undefined;
  let opened: Awaited<ReturnType<typeof openRegistry>>;
  try {
    opened = await openRegistry(deps, {
      locks: thread?.locks,
      linkCacheVersions: thread?.linkCacheVersions,
    });
  } catch (error) {
    await instance?.release();
    throw error;
  }
  const { registry, storage, locks } = opened;
  let jobs: ServerJobs;
  let handoff: HandoffServer | undefined;
  // One thread of several runs what the service runs once (ServingThread.leader).
  const leader = thread === undefined || thread.leader;
  try {
    jobs = await startServerJobs({
      ...deps,
      registry,
      metadata: storage.metadata,
      locks,
      drain: leader,
      enqueued: thread?.enqueued,
    });
    // The only writer of the directory takes the repairing scrubs started beside it (scrub-handoff.ts):
    // the process holding the instance lock, or the leader of the threads whose main thread holds it.
    const root = deps.config().metadata_store.fs?.root_dir;
    const holdsDirectory =
      thread === undefined ? instance !== undefined : thread.leader && thread.locks !== undefined;
    if (holdsDirectory && root !== undefined) {
      handoff = await startHandoffServer({
        root,
        config: deps.config,
        stores: { registry, blobs: storage.blobs, metadata: storage.metadata, locks },
        logger: deps.logger,
        command: `angos ${command}`,
      }).catch(async (error: unknown) => {
        await jobs.stop(0);
        await jobs.cache.close();
        throw error;
      });
    }
  } catch (error) {
    await storage.close();
    await instance?.release();
    throw error;
  }
  const gc = leader ? startBackgroundGc(registry, deps.config, deps.logger.child('angos::gc')) : undefined;
  return {
    registry,
    jobs,
    cache: jobs.cache,
    storage: {
      ...storage,
      async close() {
        // First: a handed-off scrub stops (its client is told) before the storage it uses closes.
        await handoff?.close();
        await gc?.stop();
        await jobs.stop(0); // after quiesce: returns at once; otherwise cancels what still runs
        await jobs.cache.close();
        await storage.close();
        // Last: deferred writes (pull times) are on disk before another process may start.
        await instance?.release();
      },
    },
  };
}

function readiness(deps: AppDeps, registry?: Registry): () => Promise<boolean> {
  return async () => deps.accepting() && (registry === undefined || (await registry.ready()));
}

/**
 * `angos server`: gateway, registry-api and the pull-through cache in one process, no hop between
 * them. The gateway sends the namespaces of repositories with upstreams to the cache.
 */
export async function composeServer(deps: AppDeps): Promise<App> {
  const { registry, storage, jobs, cache } = await createRegistryFromConfig(deps, 'server');
  const events = createEventDispatcher({
    config: deps.config,
    enqueue: jobs.enqueue,
    logger: deps.logger,
    metrics: deps.metrics,
  });
  // One policy evaluator for the gateway and the extension API's per-namespace filtering.
  const auth = createAuth({ config: deps.config, logger: deps.logger, metrics: deps.metrics });
  const api = buildRegistryApi({
    registry,
    jobs: jobs.queue,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'in-process' },
    replication: createReplicationEvents({ config: deps.config, enqueue: jobs.enqueue, logger: deps.logger }),
    events,
    auth,
    version: buildInfo().version,
  });
  const handler = buildGateway({
    auth,
    config: deps.config,
    logger: deps.logger.child('gateway'),
    metrics: deps.metrics,
    upstream: { kind: 'in-process', handler: api },
    pullThroughCache: {
      handles: (namespace) => cache.handles(namespace),
      upstream: {
        kind: 'in-process',
        handler: buildPullThroughCache({
          cache,
          config: deps.config,
          logger: deps.logger,
          trust: { kind: 'in-process' },
          events,
        }),
      },
    },
    ready: readiness(deps, registry),
  });
  return {
    handler,
    quiesce: (graceMs) => jobs.stop(graceMs),
    async close() {
      await auth.close();
      await storage.close();
    },
  };
}

/** `angos registry-api`: the OCI API, accepting only requests the gateway vouches for. */
export async function composeRegistryApi(deps: AppDeps, internalToken: string): Promise<App> {
  const { registry, storage, jobs } = await createRegistryFromConfig(deps, 'registry-api');
  // The same policies as the gateway's, for the extension API's per-namespace filtering
  // (docs/extension-api.md): it judges the caller the gateway forwards, never authenticates.
  const auth = createAuth({ config: deps.config, logger: deps.logger, metrics: deps.metrics });
  const api = buildRegistryApi({
    registry,
    jobs: jobs.queue,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'internal-token', token: internalToken, replays: deps.thread?.replays },
    replication: createReplicationEvents({ config: deps.config, enqueue: jobs.enqueue, logger: deps.logger }),
    events: createEventDispatcher({
      config: deps.config,
      enqueue: jobs.enqueue,
      logger: deps.logger,
      metrics: deps.metrics,
    }),
    auth,
    version: buildInfo().version,
  });
  return {
    handler: healthHandler(api, {
      metrics: deps.metrics,
      logger: deps.logger,
      ready: readiness(deps, registry),
    }),
    quiesce: (graceMs) => jobs.stop(graceMs),
    async close() {
      await auth.close();
      await storage.close();
    },
  };
}

/**
 * `angos pull-through-cache`: the namespaces of repositories with upstreams, accepting only requests
 * the gateway vouches for (split deployment).
 */
export async function composePullThroughCache(deps: AppDeps, internalToken: string): Promise<App> {
  const { registry, storage, jobs, cache } = await createRegistryFromConfig(deps, 'pull-through-cache');
  const service = buildPullThroughCache({
    cache,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'internal-token', token: internalToken, replays: deps.thread?.replays },
    events: createEventDispatcher({
      config: deps.config,
      enqueue: jobs.enqueue,
      logger: deps.logger,
      metrics: deps.metrics,
    }),
  });
  return {
    handler: healthHandler(service, {
      metrics: deps.metrics,
      logger: deps.logger,
      ready: readiness(deps, registry),
    }),
    quiesce: (graceMs) => jobs.stop(graceMs),
    close: () => storage.close(),
  };
}

/** Where the split gateway forwards: registry-api, and the pull-through cache service when configured. */
export interface GatewayRoutes {
  readonly registryApiUrl: string;
  /** Absent: no repository has an upstream (startup checks that). */
  readonly pullThroughCacheUrl?: string | undefined;
  readonly internalToken: string;
}

/**
 * `angos gateway`: the public edge, forwarding over HTTP to registry-api, and the namespaces of
 * pull-through repositories to the pull-through cache service; both hops signed alike.
 */
export function composeGateway(deps: AppDeps, routes: GatewayRoutes): App {
  const auth = createAuth({ config: deps.config, logger: deps.logger, metrics: deps.metrics });
  const { internalToken, pullThroughCacheUrl } = routes;
  const handler = buildGateway({
    auth,
    config: deps.config,
    logger: deps.logger.child('gateway'),
    metrics: deps.metrics,
    upstream: { kind: 'http', url: routes.registryApiUrl, internalToken },
    pullThroughCache:
      pullThroughCacheUrl === undefined
        ? undefined
        : {
            handles: (namespace) => isPullThroughNamespace(deps.config(), namespace),
            upstream: { kind: 'http', url: pullThroughCacheUrl, internalToken },
          },
    ready: readiness(deps),
  });
  return { handler, close: () => auth.close() };
}
