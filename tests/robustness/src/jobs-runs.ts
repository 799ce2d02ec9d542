/**
 * The verdict on a job chaos run, from the run logs of every worker process and the time each
 * killed process was sent SIGKILL. Pure, so that its rules are tested on their own.
 */

/** One line of a run log: a run started (holding its lock), ended, or stopped on its signal. */
export interface RunRecord {
  readonly type: 'start' | 'end' | 'abort';
  /** `<pid>.<n>`: one run of one handler call. */
  readonly run: string;
  readonly id: string;
  readonly lockKey: string;
  readonly pid: number;
  /** ms since the epoch. */
  readonly at: number;
}

export interface RunsVerdict {
  readonly runs: number;
  /** Runs of a job whose earlier run's holder was killed (before or after its handler ended). */
  readonly rerunsAfterKill: number;
  /**
   * Runs whose signal fired (their lock stopped protecting them): they wrote nothing, and the job
   * ran again. A later run of the lock key may have started before the signal fired (the lease
   * lapsed before the holder's next renewal learned it): that is the lock's documented bound.
   */
  readonly cutOff: number;
  /** Kills that hit a process while one of its runs was in its handler. */
  readonly interruptingKills: number;
  /** Jobs that never completed, and log lines that make no sense. */
  readonly lost: string[];
  /**
   * Runs of jobs never reported enqueued: must be none, unless the store was away (an enqueue
   * that failed half-way and was tried again leaves a job of its own).
   */
  readonly unknownRuns: string[];
  /** Two runs of a lock key at once while the earlier holder lived and was not cut off: must be none. */
  readonly concurrent: string[];
  /**
   * A job run again after a run that ended, on a worker that lived: must be none, unless the store
   * was away (an RGW restart), when a run that ended may fail to record it and is taken over.
   */
  readonly rerunsWhileHolderLived: string[];
}

interface Run {
  readonly run: string;
  readonly id: string;
  readonly lockKey: string;
  readonly pid: number;
  readonly start: number;
  end?: number;
  abort?: number;
}

/**
 * The rules:
 * - every enqueued job has a run that ended;
 * - a run of a lock key starts only once every earlier run of that key is over: it ended, was
 *   cut off (aborted), or its process was killed, before the later one started;
 * - a job runs again only after its previous run's holder was killed, or the run was cut off.
 */
export function verifyRuns(
  records: readonly RunRecord[],
  enqueued: ReadonlySet<string>,
  killedAt: ReadonlyMap<number, number>,
): RunsVerdict {
  const lost: string[] = [];
  const unknownRuns: string[] = [];
  const concurrent: string[] = [];
  const rerunsWhileHolderLived: string[] = [];
  const runs = new Map<string, Run>();
  for (const record of records) {
    if (record.type === 'start') {
      runs.set(record.run, { ...record, start: record.at });
      continue;
    }
    const run = runs.get(record.run);
    if (run === undefined) {
      lost.push(`${record.type} of run ${record.run} (job ${record.id}) without a start`);
      continue;
    }
    run[record.type] = record.at;
  }
  const all = [...runs.values()].sort((a, b) => a.start - b.start);
  for (const run of all) {
    if (!enqueued.has(run.id))
      unknownRuns.push(`run ${run.run} of job ${run.id}, which was never reported enqueued`);
  }

  // When a run was certainly over: its end or abort, else the kill of its process.
  const over = (run: Run): number =>
    run.end ?? run.abort ?? killedAt.get(run.pid) ?? Number.POSITIVE_INFINITY;
  const describe = (run: Run) =>
    `run ${run.run} of job ${run.id} (${run.lockKey}, pid ${run.pid}) from ${run.start} to ${
      run.end !== undefined
        ? `end ${run.end}`
        : run.abort !== undefined
          ? `abort ${run.abort}`
          : `kill ${killedAt.get(run.pid) ?? 'never'}`
    }`;

  const byLockKey = groupBy(all, (run) => run.lockKey);
  let cutOff = 0;
  for (const [lockKey, keyRuns] of byLockKey) {
    for (let i = 1; i < keyRuns.length; i++) {
      const later = keyRuns[i] as Run;
      for (const earlier of keyRuns.slice(0, i)) {
        if (over(earlier) <= later.start) continue;
        // Overlapping a run that was cut off is the lease's bound, not a breach: it wrote nothing.
        if (earlier.end === undefined && earlier.abort !== undefined) continue;
        concurrent.push(
          `two runs of lock key ${lockKey} at once: ${describe(earlier)} and ${describe(later)}`,
        );
      }
    }
  }
  for (const run of all) if (run.abort !== undefined) cutOff++;

  let rerunsAfterKill = 0;
  for (const [id, jobRuns] of groupBy(all, (run) => run.id)) {
    for (let i = 1; i < jobRuns.length; i++) {
      const previous = jobRuns[i - 1] as Run;
      const later = jobRuns[i] as Run;
      const kill = killedAt.get(previous.pid);
      if (kill !== undefined && kill <= later.start) rerunsAfterKill++;
      else if (previous.abort === undefined)
        rerunsWhileHolderLived.push(
          `job ${id} ran again though its holder lived and was not cut off: ${describe(previous)}, then ${describe(later)}`,
        );
    }
  }
  const ended = new Set(all.filter((run) => run.end !== undefined).map((run) => run.id));
  for (const id of enqueued) if (!ended.has(id)) lost.push(`job ${id} never completed`);

  let interruptingKills = 0;
  for (const [pid, at] of killedAt) {
    if (
      all.some(
        (run) => run.pid === pid && run.start <= at && run.end === undefined && run.abort === undefined,
      )
    )
      interruptingKills++;
  }
  return {
    runs: all.length,
    rerunsAfterKill,
    cutOff,
    interruptingKills,
    lost,
    unknownRuns,
    concurrent,
    rerunsWhileHolderLived,
  };
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
}
