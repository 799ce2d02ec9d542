import { instrumentedEnqueue, JobQueue, type JobQueueOptions } from '@angos/jobs';
import type { Metrics } from '@angos/observability';

/**
 * The job queue of a serving process. The pull-through cache is handed a `JobQueue` and enqueues
 * its fills on it directly; through this one, every enqueue of the process (the cache's and the
 * services' own) is counted in `angos_job_queue_enqueued_total` and announced to the process's own
 * drain, which looks at the queue at once instead of at its next poll.
 */
export class ServedJobQueue extends JobQueue {
  readonly #counted: JobQueue['enqueue'];
  #onEnqueued: (queue: string) => void = () => {};

  constructor(options: JobQueueOptions, metrics: Metrics) {
    super(options);
    // Handed the plain `enqueue`, not this override, so each enqueue is counted once.
    this.#counted = instrumentedEnqueue(
      { enqueue: (...args: Parameters<JobQueue['enqueue']>) => super.enqueue(...args) },
      metrics,
    );
  }

  /** Who hears of each enqueue (the drain, once it is started). */
  onEnqueued(listener: (queue: string) => void): void {
    this.#onEnqueued = listener;
  }

  override async enqueue(...args: Parameters<JobQueue['enqueue']>): ReturnType<JobQueue['enqueue']> {
    const result = await this.#counted(...args);
    this.#onEnqueued(args[0]);
    return result;
  }
}
