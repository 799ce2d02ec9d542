import { CorruptRecordError, decodeEnvelope, type ParsedPendingName } from './envelope.js';
import { paths } from './layout.js';
import type { JobQueue } from './queue.js';

/**
 * A per-group "age of the oldest pending job" gauge of one queue (the replication lag per
 * downstream), refreshed with the queue gauges.
 */
export interface PendingAgeGauge {
  readonly queue: string;
  /** The group a job counts in, from its payload (e.g. its downstream); undefined: none. */
  group(payload: unknown): string | undefined;
  /**
   * Each refresh's ages, in seconds, of the groups that have pending jobs (running ones
   * included); undefined while the gauges are not published (no `[global.job_queue]`).
   */
  publish(ages: ReadonlyMap<string, number> | undefined): void;
}

/** Records read at most per refresh, oldest job first: bounds a refresh on a deep new queue. */
export const AGE_READS_PER_REFRESH = 500;

/** Base-36 milliseconds at the start of an id (envelope.ts `newJobId`). */
function idTimeMs(id: string): number {
  return Number.parseInt(id.slice(0, 9), 36);
}

interface Known {
  readonly group: string | undefined;
  readonly createdMs: number;
}

/**
 * Ages per group from the bounded listing of the gauges (the first `GAUGE_COUNT_CAP` names of
 * `pending/`, no more) and the records of the jobs not seen at an earlier refresh: a job's group
 * and creation time never change, so each record is read once while the job is pending, at most
 * `AGE_READS_PER_REFRESH` of them per refresh (the oldest first). A deep queue seen for the first
 * time is known whole after a few refreshes; meanwhile the ages are those of the jobs read. Jobs
 * beyond the cap (the latest not-before times) are not looked at.
 */
export class PendingAgeTracker {
  readonly gauge: PendingAgeGauge;
  readonly #known = new Map<string, Known>();

  constructor(gauge: PendingAgeGauge) {
    this.gauge = gauge;
  }

  /** The ages (seconds) per group over `names`, the queue's bounded listing. */
  async refresh(queue: JobQueue, names: readonly ParsedPendingName[]): Promise<Map<string, number>> {
    const nameOf = new Map<string, string>();
    for (const { id, notBeforeMs } of names) {
      nameOf.set(id, `${String(notBeforeMs).padStart(15, '0')}-${id}`);
    }
    for (const id of this.#known.keys()) if (!nameOf.has(id)) this.#known.delete(id);
    const unknown = [...nameOf.keys()]
      .filter((id) => !this.#known.has(id))
      .sort((a, b) => idTimeMs(a) - idTimeMs(b))
      .slice(0, AGE_READS_PER_REFRESH);
    for (const id of unknown) {
      const data = await queue.read(paths.pending(this.gauge.queue, nameOf.get(id) as string));
      if (data === undefined) continue; // done since the listing
      try {
        const envelope = decodeEnvelope(data);
        this.#known.set(id, {
          group: this.gauge.group(envelope.payload),
          createdMs: Date.parse(envelope.createdAt),
        });
      } catch (error) {
        // Unreadable: the runner quarantines it when it meets it; it counts in no group.
        if (!(error instanceof CorruptRecordError)) throw error;
        this.#known.set(id, { group: undefined, createdMs: idTimeMs(id) });
      }
    }
    const oldest = new Map<string, number>();
    for (const { group, createdMs } of this.#known.values()) {
      if (group === undefined) continue;
      oldest.set(group, Math.min(oldest.get(group) ?? createdMs, createdMs));
    }
    const now = queue.now();
    return new Map([...oldest].map(([group, createdMs]) => [group, Math.max(0, (now - createdMs) / 1000)]));
  }
}
