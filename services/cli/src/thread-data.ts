import type { MessagePort } from 'node:worker_threads';
import type { InFlightCounter, NonceMemory } from '@angos/http';
import type { LockManager } from '@angos/lock';
import type { MetricPeers, Metrics } from '@angos/observability';
import type { LinkCacheVersions } from '@angos/storage';
import type { ListenAddress } from './listen.js';
import type { ServiceKind } from './service.js';

/**
 * What the main thread hands each serving thread of a service started with `[server] workers`
 * above 1 (thread-runner.ts starts them, serving-thread.ts runs one): where to listen, and the
 * memory and channels the threads share.
 */
export interface ServingThreadData {
  /** Tells the CLI's entry module (main.ts) that it runs as a serving thread. */
  readonly role: typeof SERVING_THREAD_ROLE;
  readonly kind: ServiceKind;
  readonly configPath: string;
  readonly listen: ListenAddress;
  /** 0 is the leader: the one thread that runs background work (see ServingThread.leader). */
  readonly index: number;
  readonly count: number;
  /** Names this service's BroadcastChannels apart from any other in the process (tests run several). */
  readonly channelPrefix: string;
  /** The thread's line to the main thread's lock table; absent without the `"memory"` lock strategy. */
  readonly lockPort: MessagePort | undefined;
  /** LinkCacheVersions' table. */
  readonly linkCacheVersions: SharedArrayBuffer;
  /** The requests in flight, against `global.max_concurrent_requests` (@angos/http). */
  readonly inFlight: SharedArrayBuffer;
  /** The nonces the gateway's signed requests used (@angos/http SharedReplayGuard). */
  readonly nonces: SharedArrayBuffer;
}

export const SERVING_THREAD_ROLE = 'angos-serving-thread';

/** Whether a thread's workerData makes it a serving thread (main.ts asks before starting the CLI). */
export function isServingThreadData(data: unknown): data is ServingThreadData {
  return (
    typeof data === 'object' && data !== null && (data as { role?: unknown }).role === SERVING_THREAD_ROLE
  );
}

/** Messages from a serving thread to the main thread. */
export type ThreadReport =
  | { readonly op: 'listening'; readonly address: { host: string; port: number } }
  | { readonly op: 'failed'; readonly lines: readonly string[] }
  | { readonly op: 'draining'; readonly graceSecs: number };

/** Messages from the main thread to a serving thread. */
export type ThreadCommand = { readonly op: 'close'; readonly signal: NodeJS.Signals | undefined };

/**
 * A serving thread's view of what it shares with the others (built from ServingThreadData by
 * serving-thread.ts), as the service's composition uses it.
 */
export interface ServingThread {
  readonly index: number;
  /**
   * The first thread runs what a service runs once, not once per thread: background garbage
   * collection, the in-process job drain and the queue gauges, the scrub hand-off socket, and
   * Node's process metrics. The others serve requests only.
   */
  readonly leader: boolean;
  /** The main thread's lock table (`"memory"` lock strategy); undefined: the configured manager. */
  readonly locks: LockManager | undefined;
  readonly linkCacheVersions: LinkCacheVersions;
  readonly inFlight: InFlightCounter;
  readonly replays: NonceMemory;
  /** Answers the other threads' `/metrics` with `metrics`; returns theirs, for this thread's. */
  shareMetrics(metrics: Metrics): MetricPeers;
  /** Jobs enqueued on another thread reach the leader's drain at once, not at its next poll. */
  readonly enqueued: {
    announce(queue: string): void;
    listen(listener: (queue: string) => void): void;
  };
  /**
   * Tells the main thread that this thread has begun to drain, within `graceSecs`: the grace
   * period in force now, which a reload may have changed since the main thread read it. The main
   * thread stops a thread that has not ended by then (and a margin).
   */
  draining(graceSecs: number): void;
  /** Closes the channels to the other threads. */
  close(): void;
}
