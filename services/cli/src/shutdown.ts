import { constants } from 'node:os';
import type { Logger } from '@angos/observability';

/**
 * Exit status after a second signal: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM),
 * as a shell reports a process that signal ended.
 */
export function signalExitStatus(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Resolves with the first SIGTERM or SIGINT. A second one while shutting down logs and exits at
 * once with signalExitStatus: whatever is still in flight is cut.
 */
export function shutdownSignal(logger: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSecondSignal = (signal: NodeJS.Signals) => {
      const status = signalExitStatus(signal);
      logger.warn('second signal, exiting without waiting for in-flight requests', { signal, status });
      process.exit(status);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.once('SIGTERM', onSecondSignal);
      process.once('SIGINT', onSecondSignal);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
