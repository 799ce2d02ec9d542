import { BroadcastChannel, parentPort } from 'node:worker_threads';
import { SharedReplayGuard, sharedInFlightCounter } from '@angos/http';
import { IpcLockManager, messagePortChannel } from '@angos/lock';
import { createLogger, type MetricPeers, type MetricSnapshot, type Metrics } from '@angos/observability';
import { LinkCacheVersions } from '@angos/storage';
import { failureLines } from './errors.js';
import { startService } from './service.js';
import type { ServingThread, ServingThreadData, ThreadCommand, ThreadReport } from './thread-data.js';

/**
 * One serving thread of a service with `[server] workers` above 1: it runs the service as one
 * process would (startService), on the port every thread shares, over what the main thread shares
 * with it (thread-runner.ts), and drains when the main thread says so.
 */

/** How long `/metrics` waits for the other threads' figures; a thread being restarted is left out. */
const METRICS_ANSWER_TIMEOUT_MS = 1000;

type MetricsMessage =
  | { readonly op: 'ask'; readonly id: string }
  | { readonly op: 'answer'; readonly id: string; readonly snapshot: MetricSnapshot };

/**
 * This thread's side of `/metrics` over `channel`: it answers the other threads' asks with its
 * snapshot, and asks them for theirs (waiting at most METRICS_ANSWER_TIMEOUT_MS).
 */
function metricPeersOver(channel: BroadcastChannel, metrics: Metrics, data: ServingThreadData): MetricPeers {
  const waiting = new Map<string, (snapshot: MetricSnapshot) => void>();
  let nextAsk = 0;
  channel.onmessage = (event) => {
    const message = (event as { data: MetricsMessage }).data;
    if (message.op === 'answer') {
      waiting.get(message.id)?.(message.snapshot);
      return;
    }
    void metrics.snapshot().then((snapshot) => {
      channel.postMessage({ op: 'answer', id: message.id, snapshot } satisfies MetricsMessage);
    });
  };
  return {
    snapshots() {
      const id = `${data.index}:${nextAsk++}`;
      const answers: MetricSnapshot[] = [];
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiting.delete(id);
          resolve(answers);
        };
        const timer = setTimeout(done, METRICS_ANSWER_TIMEOUT_MS);
        waiting.set(id, (snapshot) => {
          answers.push(snapshot);
          if (answers.length === data.count - 1) done();
        });
        channel.postMessage({ op: 'ask', id } satisfies MetricsMessage);
      });
    },
  };
}

/** The shared memory and channels of `data`, as the service's composition uses them. */
export function joinServingThread(data: ServingThreadData): ServingThread {
  const channels: BroadcastChannel[] = [];
  const channel = (name: string) => {
    const opened = new BroadcastChannel(`${data.channelPrefix}:${name}`);
    // A listening channel keeps the thread alive; the thread ends when its service closes.
    opened.unref();
    channels.push(opened);
    return opened;
  };
  const locks =
    data.lockPort === undefined ? undefined : new IpcLockManager(messagePortChannel(data.lockPort));
  let jobs: BroadcastChannel | undefined;
  return {
    index: data.index,
    leader: data.index === 0,
    locks,
    linkCacheVersions: new LinkCacheVersions(data.linkCacheVersions),
    inFlight: sharedInFlightCounter(data.inFlight),
    replays: new SharedReplayGuard(data.nonces),
    shareMetrics: (metrics) => metricPeersOver(channel('metrics'), metrics, data),
    enqueued: {
      announce: (queue) => {
        jobs ??= channel('jobs');
        jobs.postMessage(queue);
      },
      listen(listener) {
        channel('jobs').onmessage = (event) => listener((event as { data: string }).data);
      },
    },
    draining: (graceSecs) => report({ op: 'draining', graceSecs }),
    close() {
      // The lock manager closes with the storage it guards.
      for (const opened of channels) opened.close();
    },
  };
}

const report = (message: ThreadReport) => parentPort?.postMessage(message);

/** Runs this thread's service until the main thread asks it to drain; then the thread ends. */
export async function runServingThread(data: ServingThreadData): Promise<void> {
  const thread = joinServingThread(data);
  const logger = createLogger({ filter: process.env['RUST_LOG'] });
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService({
      kind: data.kind,
      configPath: data.configPath,
      listen: data.listen,
      logger,
      thread,
    });
  } catch (error) {
    report({ op: 'failed', lines: failureLines(error) });
    // Its line to the lock table would keep the thread alive: it ends here.
    process.exit(1);
  }
  report({ op: 'listening', address: service.address });
  parentPort?.on('message', (command: ThreadCommand) => {
    if (command.op !== 'close') return;
    void service.close(command.signal).finally(() => {
      thread.close();
      // Whatever a library left open (a keep-alive agent, a timer) must not hold the thread.
      process.exit(0);
    });
  });
}
