import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { MessageChannel, Worker } from 'node:worker_threads';
import { type Config, lockBackend } from '@angos/config';
import { IN_FLIGHT_COUNTER_BYTES, SHARED_NONCE_MEMORY_BYTES, sharedInFlightCounter } from '@angos/http';
import { MemoryLockManager, messagePortChannel, serveLocks } from '@angos/lock';
import type { Logger } from '@angos/observability';
import { LinkCacheVersions } from '@angos/storage';
import { CliError } from './errors.js';
import type { InstanceLock } from './instance-lock.js';
import { type ListenAddress, listenOn } from './listen.js';
import { holdInstanceLock } from './open-storage.js';
import type { RunningService, ServiceKind } from './service.js';
import {
  SERVING_THREAD_ROLE,
  type ServingThreadData,
  type ThreadCommand,
  type ThreadReport,
} from './thread-data.js';

/**
 * A service with `[server] workers` above 1: this (main) thread starts that many serving threads
 * (serving-thread.ts), each running the whole service on the one port (SO_REUSEPORT: the kernel
 * spreads connections over them), and keeps what must be one per service: the instance lock of
 * the directory, the `"memory"` strategy's lock table, and the shared memory of the link cache
 * versions, the in-flight count and the gateway nonces. It starts a new thread in place of one that
 * ends, and on SIGTERM or SIGINT asks all of them to drain and waits for them. The README
 * ("Using every core") says why threads and not processes.
 */

/**
 * The entry module of a serving thread: the CLI's own (main.ts asks isServingThreadData first),
 * beside this module once built or bundled. Loaded from src/ by a test runner, the threads run the
 * built one.
 */
const THREAD_ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? '../dist/main.js' : './main.js',
  import.meta.url,
);

/** Before a thread that ended is replaced: a thread failing at once does not spin. */
const RESTART_DELAY_MS = 1000;
/** Beyond the drain's grace period, how long a thread may take to end before it is stopped. */
const EXIT_MARGIN_MS = 5000;

export interface ServiceThreadsOptions {
  readonly kind: ServiceKind;
  readonly configPath: string;
  readonly config: Config;
  readonly listen: ListenAddress;
  readonly workers: number;
  readonly logger: Logger;
  /** The module each serving thread runs: the CLI's own unless a test wraps it (to end a thread). */
  readonly threadEntry?: URL | undefined;
}

/** Whether the service writes the store itself, under the `"memory"` lock strategy. */
function usesLockTable(kind: ServiceKind, config: Config): boolean {
  if (kind === 'gateway') return false;
  const store = config.metadata_store;
  const strategy = store.fs !== undefined ? store.fs.lock_strategy : store.s3.lock_strategy;
  return lockBackend(strategy) === 'memory';
}

interface RunningThread {
  readonly worker: Worker;
  /** Resolves once the thread has ended and its locks are released. */
  readonly exited: Promise<void>;
}

/**
 * Sockets with SO_REUSEPORT share a port with any other socket of the same user that set it too,
 * such as another Angos with serving threads: a port already in use is refused as one process
 * refuses it (listen.ts), by binding it once without the option before the threads bind with it.
 */
async function refuseTakenPort(address: ListenAddress): Promise<void> {
  if (address.port === 0) return;
  const probe = createServer();
  await listenOn(probe, address);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

export async function startServiceThreads(options: ServiceThreadsOptions): Promise<RunningService> {
  const { kind, configPath, config, workers, logger } = options;
  const instance: InstanceLock | undefined =
    kind === 'gateway' ? undefined : await holdInstanceLock(config, kind, logger);
  const table = usesLockTable(kind, config) ? new MemoryLockManager() : undefined;
  const shared = {
    channelPrefix: `angos:${randomUUID()}`,
    linkCacheVersions: new LinkCacheVersions().buffer,
    inFlight: new SharedArrayBuffer(IN_FLIGHT_COUNTER_BYTES),
    nonces: new SharedArrayBuffer(SHARED_NONCE_MEMORY_BYTES),
  };
  const threads = new Map<number, RunningThread>();
  let listen = options.listen;
  let closing = false;

  /** Starts thread `index`; resolves with its address once it listens, rejects if it cannot start. */
  const startThread = (index: number): Promise<{ host: string; port: number }> => {
    let lockPort: MessageChannel['port2'] | undefined;
    let detachLocks = () => {};
    if (table !== undefined) {
      const { port1, port2 } = new MessageChannel();
      detachLocks = serveLocks(table, messagePortChannel(port1));
      lockPort = port2;
    }
    const data: ServingThreadData = {
      role: SERVING_THREAD_ROLE,
      kind,
      configPath,
      listen,
      index,
      count: workers,
      lockPort,
      ...shared,
    };
    const worker = new Worker(options.threadEntry ?? THREAD_ENTRY, {
      workerData: data,
      transferList: lockPort === undefined ? [] : [lockPort],
    });
    const exited = once(worker, 'exit').then(() => detachLocks());
    threads.set(index, { worker, exited });
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (report: ThreadReport) => {
        if (report.op === 'listening') {
          started = true;
          resolve(report.address);
        } else if (report.op === 'failed') {
          reject(new CliError(report.lines));
        }
      });
      worker.on('error', (error) => {
        logger.error('serving thread failed', { worker: index, error: String(error) });
        if (!started) reject(error);
      });
      worker.on('exit', (code) => {
        if (!started) {
          reject(new CliError([`serving thread ${index} ended before it listened (exit code ${code})`]));
          return;
        }
        if (closing) return;
        logger.error('serving thread ended; starting a new one', { worker: index, code });
        restartLater(index);
      });
    });
  };

  /** Starts thread `index` again after a pause, and again after each failed start. */
  const restartLater = (index: number) => {
    setTimeout(() => {
      if (closing) return;
      startThread(index).catch((error: unknown) => {
        logger.error('restarting a serving thread failed', { worker: index, error: String(error) });
        restartLater(index);
      });
    }, RESTART_DELAY_MS).unref();
  };

  const stopAll = async (signal: NodeJS.Signals | undefined) => {
    closing = true;
    await Promise.all(
      [...threads.values()].map(async ({ worker, exited }) => {
        const asked = performance.now();
        // A thread not ended within its grace period (and a margin) is stopped: the one it
        // reports as it begins to drain, which a reload may have changed, else the initial one.
        let bound: NodeJS.Timeout | undefined;
        const boundBy = (graceSecs: number) => {
          clearTimeout(bound);
          const left = graceSecs * 1000 + EXIT_MARGIN_MS - (performance.now() - asked);
          bound = setTimeout(() => void worker.terminate(), Math.max(0, left));
        };
        const onReport = (report: ThreadReport) => {
          if (report.op === 'draining') boundBy(report.graceSecs);
        };
        boundBy(config.server.query_timeout_grace_period);
        worker.on('message', onReport);
        worker.postMessage({ op: 'close', signal } satisfies ThreadCommand);
        await exited;
        clearTimeout(bound);
        worker.off('message', onReport);
      }),
    );
    await instance?.release();
  };

  let address: { host: string; port: number };
  try {
    await refuseTakenPort(options.listen);
    // The first thread binds the port (a port 0 becomes a real one), the others join it.
    address = await startThread(0);
    listen = { host: options.listen.host, port: address.port };
    await Promise.all(Array.from({ length: workers - 1 }, (_, offset) => startThread(offset + 1)));
  } catch (error) {
    await stopAll(undefined);
    throw error;
  }
  logger.info('serving threads started', { service: kind, workers, port: address.port });

  let closed: Promise<void> | undefined;
  return {
    address,
    close(signal) {
      closed ??= (async () => {
        // Each thread logs its own requests as it drains; this line counts the service's.
        logger.info('shutting down serving threads', {
          service: kind,
          signal,
          workers: threads.size,
          in_flight: sharedInFlightCounter(shared.inFlight).current(),
          grace_period_secs: config.server.query_timeout_grace_period,
        });
        await stopAll(signal);
        logger.info('stopped', { service: kind });
      })();
      return closed;
    },
  };
}
