import { inTrace, type Metrics, recordFailure, type Span, tracer } from '@angos/observability';
import { LockLostError, LockTimeoutError } from './errors.js';
import type { LockManager, LockObserver, LockOptions, LockWork } from './types.js';

/** Milliseconds; from an uncontended Redis SET to minutes of waiting on a stale S3 lock. */
export const LOCK_ACQUISITION_BUCKETS = [
  1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
];

/** The lock metrics of the configuration reference, with its names, types, labels and values. */
function lockMetrics(metrics: Metrics) {
  return {
    acquisitionDuration: metrics.histogram({
      name: 'lock_acquisition_duration_ms',
      help: 'Lock acquisition duration in milliseconds',
      labelNames: ['backend'],
      buckets: LOCK_ACQUISITION_BUCKETS,
    }),
    acquisitions: metrics.counter({
      name: 'lock_acquisitions_total',
      help: 'Total lock acquisition attempts',
      labelNames: ['backend', 'result'],
    }),
    retries: metrics.counter({
      name: 'lock_retries_total',
      help: 'Total lock acquisition retries',
      labelNames: ['backend'],
    }),
    invalidations: metrics.counter({
      name: 'lock_invalidations_total',
      help: 'Total lock invalidations',
      labelNames: ['backend', 'reason'],
    }),
    recoveries: metrics.counter({
      name: 'lock_recoveries_total',
      help: 'Total stale lock recovery attempts',
      labelNames: ['backend', 'result'],
    }),
  };
}

/**
 * Wraps any lock manager once with the lock metrics (STYLE.md #3): acquisition time and result
 * as `withLocks` sees them, invalidations from the reason the work's signal aborts with, and the
 * backend's retries and stale-lock recoveries through its observer. An acquisition the caller
 * cancelled is neither a success nor a failure of the lock, and is not counted.
 */
export function instrumentLocks(inner: LockManager, metrics: Metrics): LockManager {
  const m = lockMetrics(metrics);
  const backend = inner.backend;
  const observer: LockObserver = {
    retried: () => m.retries.inc({ backend }),
    recovered: (result) => m.recoveries.inc({ backend, result }),
  };
  inner.observe(observer);

  return {
    backend,
    observe: (other) => inner.observe(other),
    close: () => inner.close(),
    withLocks<T>(keys: readonly string[], work: LockWork<T>, options?: LockOptions): Promise<T> {
      if (!inTrace()) return measured(keys, work, options);
      // One span from asking to releasing: the work's own spans (storage) nest inside it, and
      // `angos.lock.wait_ms` says how much of it was spent waiting.
      const attributes = { 'angos.lock.backend': backend, 'angos.lock.keys': [...keys] };
      return tracer().startActiveSpan('lock', { attributes }, async (span: Span) => {
        const started = performance.now();
        let acquired = false;
        const timed: LockWork<T> = (signal) => {
          acquired = true;
          span.setAttribute('angos.lock.wait_ms', Math.round((performance.now() - started) * 1000) / 1000);
          return work(signal);
        };
        try {
          return await measured(keys, timed, options);
        } catch (error) {
          // The lock failed (not acquired, or lost while held); the work's own errors are its spans'.
          if (!acquired || error instanceof LockLostError) recordFailure(span, error);
          throw error;
        } finally {
          span.end();
        }
      });
    },
  };

  async function measured<T>(keys: readonly string[], work: LockWork<T>, options?: LockOptions): Promise<T> {
    const started = performance.now();
    let acquired = false;
    const instrumented: LockWork<T> = (signal) => {
      acquired = true;
      m.acquisitionDuration.observe({ backend }, performance.now() - started);
      m.acquisitions.inc({ backend, result: 'success' });
      signal.addEventListener(
        'abort',
        () => {
          if (signal.reason instanceof LockLostError) {
            m.invalidations.inc({ backend, reason: signal.reason.reason });
          }
        },
        { once: true },
      );
      return work(signal);
    };
    try {
      return await inner.withLocks(keys, instrumented, options);
    } catch (error) {
      if (!acquired && !options?.signal?.aborted) {
        const lost = error instanceof LockLostError;
        if (lost) m.invalidations.inc({ backend, reason: error.reason });
        m.acquisitionDuration.observe({ backend }, performance.now() - started);
        m.acquisitions.inc({ backend, result: error instanceof LockTimeoutError ? 'timeout' : 'error' });
      }
      throw error;
    }
  }
}
