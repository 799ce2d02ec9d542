import { isDeepStrictEqual } from 'node:util';
import type { Config, MetadataStoreConfig } from './types.js';

/**
 * Options a running process cannot change on reload (configuration reference, "Hot Reloading").
 * The caller logs these keys as needing a restart and keeps running with the old values for them.
 */
export function restartRequiredChanges(previous: Config, next: Config): string[] {
  const changed: string[] = [];
  if (previous.server.bind_address !== next.server.bind_address) changed.push('server.bind_address');
  if (previous.server.port !== next.server.port) changed.push('server.port');
  // The worker processes are started once, with the listener.
  if (previous.server.workers !== next.server.workers) changed.push('server.workers');
  // Turning TLS on or off swaps the listener; new certificate files alone are picked up live.
  if ((previous.server.tls === undefined) !== (next.server.tls === undefined)) changed.push('server.tls');

  const previousTracing = previous.observability.tracing;
  const nextTracing = next.observability.tracing;
  if ((previousTracing === undefined) !== (nextTracing === undefined)) changed.push('observability.tracing');
  else if (previousTracing && nextTracing) {
    // The SDK is set up once per process (its exporter and sampler): both take a restart.
    if (previousTracing.endpoint !== nextTracing.endpoint) changed.push('observability.tracing.endpoint');
    if (previousTracing.sampling_rate !== nextTracing.sampling_rate) {
      changed.push('observability.tracing.sampling_rate');
    }
  }

  if (backendOf(previous.blob_store) !== backendOf(next.blob_store)) changed.push('blob_store');
  if (backendOf(previous.metadata_store) !== backendOf(next.metadata_store)) changed.push('metadata_store');
  else if (!isDeepStrictEqual(lockStrategyOf(previous.metadata_store), lockStrategyOf(next.metadata_store))) {
    // The lock backend is built once at startup, including its connection and timing settings.
    changed.push(`metadata_store.${backendOf(next.metadata_store)}.lock_strategy`);
  }
  return changed;
}

function backendOf(store: { fs?: unknown; s3?: unknown }): 'fs' | 's3' {
  return store.fs !== undefined ? 'fs' : 's3';
}

function lockStrategyOf(store: MetadataStoreConfig): unknown {
  return store.fs ? store.fs.lock_strategy : store.s3.lock_strategy;
}
