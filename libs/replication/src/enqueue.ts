import type { Config } from '@angos/config';
import type { Enqueue } from '@angos/jobs';
import type { Logger } from '@angos/observability';
import { eventDownstreams } from './downstreams.js';
import {
  REPLICATION_JOB_KIND,
  REPLICATION_QUEUE,
  type ReplicationPayload,
  replicationLockKey,
} from './payload.js';

/** A write that changed something here, as registry-api saw it once it was durable. */
export interface LocalChange {
  readonly namespace: string;
  readonly change: 'push' | 'delete';
  /** The tags it set or deleted; empty for a push by digest without tags or a delete by digest. */
  readonly tags: readonly string[];
  /** The manifest, for a change by digest (replicated by digest when `tags` is empty). */
  readonly digest?: string | undefined;
  /**
   * The author's time when the write was itself replicated here (honoured source timestamp);
   * absent for a client's write, which is dated now.
   */
  readonly sourceTimestamp?: string | undefined;
}

/** Enqueues the replication of local changes to the downstreams that take them live. */
export interface ReplicationEvents {
  /**
   * One job per downstream (event modes, `namespace_filter` matched) and per tag, or per digest.
   * Resolves with the number of jobs enqueued or joined; rejects when an enqueue fails (the
   * change is durable but not queued: the caller reports it).
   */
  changed(change: LocalChange): Promise<number>;
}

export function createReplicationEvents(deps: {
  readonly config: () => Config;
  readonly enqueue: Enqueue;
  readonly logger: Logger;
}): ReplicationEvents {
  return {
    async changed(change) {
      const downstreams = eventDownstreams(deps.config(), change.namespace);
      if (downstreams.length === 0) return 0;
      const sourceTimestamp = change.sourceTimestamp ?? new Date().toISOString();
      const targets: Array<{ tag: string } | { digest: string }> =
        change.tags.length > 0
          ? change.tags.map((tag) => ({ tag }))
          : change.digest === undefined
            ? []
            : [{ digest: change.digest }];
      const payloads: ReplicationPayload[] = downstreams.flatMap(({ downstream }) =>
        targets.map((target) => ({
          namespace: change.namespace,
          downstream: downstream.name,
          change: change.change,
          sourceTimestamp,
          ...target,
        })),
      );
      await Promise.all(
        payloads.map((payload) =>
          deps.enqueue(REPLICATION_QUEUE, REPLICATION_JOB_KIND, replicationLockKey(payload), payload),
        ),
      );
      deps.logger.debug('replication enqueued', {
        namespace: change.namespace,
        change: change.change,
        jobs: payloads.length,
      });
      return payloads.length;
    },
  };
}
