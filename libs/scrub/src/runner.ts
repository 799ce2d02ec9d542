import type { Logger } from '@angos/observability';
import { Progress, type ProgressOutput } from './progress.js';
import type { PlannedAction, ScrubAction, ScrubCheck, ScrubContext, ScrubSummary } from './types.js';

export interface RunScrubOptions {
  /** Plan and log every action, apply none. */
  readonly dryRun: boolean;
  /** A terminal to draw progress on (stderr); nothing is drawn when it is not a TTY. */
  readonly progress?: ProgressOutput | undefined;
  /** Hears every action planned, in order (tests compare a dry run with the real run). */
  readonly onAction?: ((action: PlannedAction) => void) | undefined;
  /** Log the summary line at the end (default); false when the caller adds to it and logs it. */
  readonly summaryLine?: boolean | undefined;
  /**
   * Stops the run between keys and between actions, as a killed scrub stops (never inside an
   * action's apply); the run rejects with the signal's reason. A later run finishes the job.
   */
  readonly signal?: AbortSignal | undefined;
}

/** The action that moves an unknown key to the lost-and-found prefix. */
export const QUARANTINE = 'quarantine';
/** The action of `--blobs` that removes bytes not matching their digest (counted as corrupt removed). */
export const REMOVE_CORRUPT_BLOB = 'remove-corrupt-blob';

/**
 * Runs the checks one after another, in the order given. Each action is logged (`would …` in a
 * dry run) and, unless dry, applied before the next is planned; a failing action is logged and
 * counted and the run goes on. An action already planned in this run by an earlier check (the
 * same action on the same key: `-m`, `-l` and `-M` all remove revisions without bytes) is not
 * planned again, so a dry run lists exactly what a real run then does. The identities remembered
 * for that are the run's actions, so its memory grows with the faults found, never with the size
 * of a healthy store (bench/src/scrub-bench.ts).
 */
export async function runScrub(
  checks: readonly ScrubCheck[],
  context: Omit<ScrubContext, 'walked'>,
  options: RunScrubOptions,
): Promise<ScrubSummary> {
  const progress = new Progress(options.progress, context.now);
  const signal = options.signal;
  const walked = (count = 1) => {
    signal?.throwIfAborted();
    progress.add(count);
  };
  const ctx: ScrubContext = { ...context, walked };
  const summary: ScrubSummary = { keysWalked: 0, repairs: 0, quarantined: 0, corruptRemoved: 0, failures: 0 };
  const planned = new Set<string>();
  const logger = context.logger;
  for (const check of checks) {
    signal?.throwIfAborted();
    progress.phase(check.name);
    try {
      for await (const action of check.plan(ctx)) {
        signal?.throwIfAborted();
        const identity = `${action.action}\u0000${action.key}`;
        if (planned.has(identity)) continue;
        planned.add(identity);
        options.onAction?.(describe(action));
        progress.clear();
        if (await perform(action, options.dryRun, ctx)) {
          if (action.action === QUARANTINE) summary.quarantined++;
          else if (action.action === REMOVE_CORRUPT_BLOB) summary.corruptRemoved++;
          else summary.repairs++;
        } else {
          summary.failures++;
        }
      }
    } catch (error) {
      progress.clear();
      if (signal?.aborted) throw error;
      summary.failures++;
      logger.error('scrub check failed', { check: check.name, error: String(error) });
    }
  }
  progress.clear();
  summary.keysWalked = progress.walked;
  if (options.summaryLine ?? true) logSummary(logger, summary, options.dryRun);
  return summary;
}

/** The summary line of a run: keys walked, repairs, quarantined, corrupt removed, failures. */
export function logSummary(logger: Logger, summary: ScrubSummary, dryRun: boolean): void {
  logger.info('scrub finished', {
    keys_walked: summary.keysWalked,
    repairs: summary.repairs,
    quarantined: summary.quarantined,
    corrupt_removed: summary.corruptRemoved,
    failures: summary.failures,
    dry_run: dryRun,
  });
}

/** Logs the action and applies it unless dry; false when it failed. */
async function perform(action: ScrubAction, dryRun: boolean, ctx: ScrubContext): Promise<boolean> {
  const fields = { ...describe(action) };
  if (dryRun) {
    ctx.logger.info('would repair', fields);
    return true;
  }
  try {
    await action.apply();
  } catch (error) {
    ctx.logger.error('repair failed', { ...fields, error: String(error) });
    return false;
  }
  ctx.logger.info('repaired', fields);
  return true;
}

function describe(action: ScrubAction): PlannedAction {
  return { check: action.check, action: action.action, key: action.key, reason: action.reason };
}
