import type { Config } from '@angos/config';
import type { JobRunner } from '@angos/jobs';
import type { Logger } from '@angos/observability';

/** The runner built for one configuration, and what it alone holds open. */
export interface DrainGeneration {
  readonly runner: JobRunner;
  /** Releases what this generation opened (its storage and locks), once its jobs are over. */
  readonly close?: (() => Promise<void>) | undefined;
}

export interface JobDrainOptions {
  /** The configuration now; compared by identity (a reload installs a new object). */
  readonly config: () => Config;
  /**
   * Builds the runner of a configuration (not started); undefined when that configuration has
   * nothing drained here. A throw at startup fails the start; on a reload it is logged and the
   * previous runner keeps claiming.
   */
  open(config: Config): Promise<DrainGeneration | undefined>;
  readonly logger: Logger;
  /** How often the configuration is looked at (default 1 s): a reload applies within that. */
  readonly checkIntervalMs?: number | undefined;
}

export interface JobDrain {
  /** Jobs in flight, those of runners retired by a reload included. */
  readonly inFlight: number;
  /** True while a runner claims jobs. */
  readonly claiming: boolean;
  /** Has the current runner look at `queue` now (a job was just enqueued in this process). */
  poke(queue: string): void;
  /**
   * Stops claiming, waits for the jobs in flight up to `graceMs`, then cancels them (their locks
   * are released, or lapse, and other workers retry them), and closes what the runners held.
   * Idempotent: later calls wait for the first.
   */
  stop(graceMs: number): Promise<void>;
}

/**
 * A runner retired by a reload finishes its jobs, however long they take: the longest wait
 * setTimeout allows (~24.8 days; a stop of the whole drain cuts it to the stop grace).
 */
const UNBOUNDED_MS = 2 ** 31 - 1;

/**
 * Drains the job queues with the runner of the current configuration. A reload (a new
 * configuration object) builds a new runner for the next claims; the previous one stops
 * claiming and its jobs finish on the components they started with, after which what it held is
 * closed.
 */
export async function startJobDrain(options: JobDrainOptions): Promise<JobDrain> {
  const { logger } = options;
  let seen = options.config();
  let current = await options.open(seen);
  current?.runner.start();
  const retired = new Set<DrainGeneration>();
  const closed = new WeakMap<DrainGeneration, Promise<void>>();
  let switching: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  const close = (generation: DrainGeneration) => {
    let done = closed.get(generation);
    if (done === undefined) {
      done = (async () => {
        try {
          await generation.close?.();
        } catch (error) {
          logger.warn('closing a retired job runner failed', { error: String(error) });
        }
      })();
      closed.set(generation, done);
    }
    return done;
  };

  const retire = (generation: DrainGeneration | undefined) => {
    if (generation === undefined) return;
    retired.add(generation);
    void generation.runner
      .stop(UNBOUNDED_MS)
      .then(() => close(generation))
      .finally(() => retired.delete(generation));
  };

  const reload = async (config: Config) => {
    let next: DrainGeneration | undefined;
    try {
      next = await options.open(config);
    } catch (error) {
      logger.error('job runner not reloaded; the previous one keeps running', { error: String(error) });
      return;
    }
    if (stopping !== undefined) {
      if (next !== undefined) await close(next);
      return;
    }
    retire(current);
    current = next;
    current?.runner.start();
    logger.info('job runner reloaded: new claims use the new configuration', {
      retired_in_flight: [...retired].reduce((sum, generation) => sum + generation.runner.inFlight, 0),
    });
  };

  const timer = setInterval(() => {
    if (switching !== undefined || stopping !== undefined) return;
    const config = options.config();
    if (config === seen) return;
    seen = config;
    switching = reload(config).finally(() => {
      switching = undefined;
    });
  }, options.checkIntervalMs ?? 1000);
  timer.unref();

  return {
    get inFlight() {
      const generations = current === undefined ? [...retired] : [current, ...retired];
      return generations.reduce((sum, generation) => sum + generation.runner.inFlight, 0);
    },
    get claiming() {
      return current !== undefined && stopping === undefined;
    },
    poke(queue) {
      if (stopping === undefined) current?.runner.poke(queue);
    },
    stop(graceMs) {
      stopping ??= (async () => {
        clearInterval(timer);
        await switching;
        const generations = current === undefined ? [...retired] : [current, ...retired];
        await Promise.all(
          generations.map(async (generation) => {
            await generation.runner.stop(graceMs);
            await close(generation);
          }),
        );
      })();
      return stopping;
    },
  };
}
