import type { Config } from '@angos/config';
import { lockBackend } from '@angos/config';
import { buildGateway } from '@angos/gateway';
import { type Handler, healthHandler } from '@angos/http';
import { type LockManager, MemoryLockManager } from '@angos/lock';
import type { Logger, Metrics } from '@angos/observability';
import { createRegistry, type Registry } from '@angos/registry';
import { buildRegistryApi } from '@angos/registry-api';
import { type BackendOptions, createStores, type StoresOptions } from '@angos/storage';

/**
 * Builds the application of each command from the configuration. No I/O beyond what the libraries
 * do when constructed, no listening: tests build these in-process.
 */

export interface AppDeps {
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** False while the process drains before exiting, so /readyz turns traffic away first. */
  readonly accepting: () => boolean;
}

export interface App {
  readonly handler: Handler;
}

/** The fs backend of a store section; other backends are refused earlier (unsupportedFeatures). */
function backendOf(section: string, store: Config['blob_store'] | Config['metadata_store']): BackendOptions {
  if (store.fs !== undefined) {
    return { kind: 'fs', rootDir: store.fs.root_dir, syncToDisk: store.fs.sync_to_disk };
  }
  throw new Error(`${section}: backend not supported yet`);
}

export function storesOptions(config: Config): StoresOptions {
  return {
    blob: backendOf('blob_store', config.blob_store),
    metadata: backendOf('metadata_store', config.metadata_store),
  };
}

/** Lock backends by the name the configuration gives them (memory only, for now). */
const LOCK_BACKENDS: Readonly<Record<string, () => LockManager>> = {
  memory: () => new MemoryLockManager(),
};

export function createLocks(config: Config): LockManager {
  const store = config.metadata_store;
  const backend = lockBackend(store.fs !== undefined ? store.fs.lock_strategy : store.s3.lock_strategy);
  const create = LOCK_BACKENDS[backend];
  if (create === undefined) throw new Error(`lock strategy ${backend}: not supported yet`);
  return create();
}

function createRegistryFromConfig(deps: AppDeps): Registry {
  const initial = deps.config();
  const { blobs, metadata } = createStores(storesOptions(initial));
  return createRegistry({
    blobs,
    metadata,
    locks: createLocks(initial),
    config: deps.config,
    logger: deps.logger,
  });
}

function readiness(deps: AppDeps, registry?: Registry): () => Promise<boolean> {
  return async () => deps.accepting() && (registry === undefined || (await registry.ready()));
}

/** `angos server`: gateway and registry-api in one process, no hop between them. */
export function composeServer(deps: AppDeps): App {
  const registry = createRegistryFromConfig(deps);
  const api = buildRegistryApi({
    registry,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'in-process' },
  });
  const handler = buildGateway({
    config: deps.config,
    logger: deps.logger.child('gateway'),
    metrics: deps.metrics,
    upstream: { kind: 'in-process', handler: api },
    ready: readiness(deps, registry),
  });
  return { handler };
}

/** `angos registry-api`: the OCI API, accepting only requests the gateway vouches for. */
export function composeRegistryApi(deps: AppDeps, internalToken: string): App {
  const registry = createRegistryFromConfig(deps);
  const api = buildRegistryApi({
    registry,
    config: deps.config,
    logger: deps.logger,
    trust: { kind: 'internal-token', token: internalToken },
  });
  return {
    handler: healthHandler(api, {
      metrics: deps.metrics,
      logger: deps.logger,
      ready: readiness(deps, registry),
    }),
  };
}

/** `angos gateway`: the public edge, forwarding over HTTP to registry-api. */
export function composeGateway(deps: AppDeps, upstream: { url: string; internalToken: string }): App {
  const handler = buildGateway({
    config: deps.config,
    logger: deps.logger.child('gateway'),
    metrics: deps.metrics,
    upstream: { kind: 'http', ...upstream },
    ready: readiness(deps),
  });
  return { handler };
}
