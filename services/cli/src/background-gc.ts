import type { Config } from '@angos/config';
import type { Logger } from '@angos/observability';
import type { GcReport, Registry } from '@angos/registry';

export interface BackgroundGc {
  /** Stops scheduling passes and cancels a running one (it stops before its next write). */
  stop(): Promise<void>;
}

/**
 * Runs a garbage-collection pass every `[gc] interval_secs` in this process (`angos server`,
 * `angos registry-api`). Both settings are re-read before each pass, so a hot reload applies from
 * the next one; `interval_secs = 0` pauses the passes (checked again a minute later). The first
 * pass waits one interval: a restart loop never turns into a collection loop. Passes never
 * overlap, and a failed pass is logged and retried at the next interval.
 */
export function startBackgroundGc(
  registry: Pick<Registry, 'collectGarbage'>,
  config: () => Config,
  logger: Logger,
): BackgroundGc {
  const stopping = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const schedule = () => {
    if (stopping.signal.aborted) return;
    const intervalSecs = config().gc.interval_secs;
    timer = setTimeout(tick, (intervalSecs > 0 ? intervalSecs : PAUSED_RECHECK_SECS) * 1000);
    timer.unref();
  };
  const tick = () => {
    if (config().gc.interval_secs === 0) return schedule();
    running = runPass(registry, config().gc.grace_period_secs, stopping.signal, logger).finally(() => {
      running = undefined;
      schedule();
    });
  };
  schedule();

  return {
    async stop() {
      stopping.abort(new Error('shutting down'));
      clearTimeout(timer);
      await running;
    },
  };
}

/** How often a paused collector (`interval_secs = 0`) looks at the configuration again. */
const PAUSED_RECHECK_SECS = 60;

async function runPass(
  registry: Pick<Registry, 'collectGarbage'>,
  gracePeriodSecs: number,
  signal: AbortSignal,
  logger: Logger,
): Promise<void> {
  const started = Date.now();
  try {
    const report: GcReport = await registry.collectGarbage({ gracePeriodMs: gracePeriodSecs * 1000, signal });
    logger.info('garbage collection pass done', { ...report, duration_ms: Date.now() - started });
  } catch (error) {
    if (signal.aborted) return;
    logger.error('garbage collection pass failed', { error: String(error) });
  }
}
