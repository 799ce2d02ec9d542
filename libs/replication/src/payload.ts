import { isValidNamespace, isValidTag, tryParseDigest } from '@angos/oci';

/** The queue and job kind of replication (`angos worker --queue replication`). */
export const REPLICATION_QUEUE = 'replication';
export const REPLICATION_JOB_KIND = 'replication';

/**
 * One replication job: bring one tag, or one manifest by digest, of `namespace` on `downstream`
 * to what it is here now. The job replicates the local state when it runs, not the change that
 * enqueued it, so the enqueues of one target coalesce (the queue joins a pending job of the same
 * lock key) and a redelivered job costs only HEAD requests.
 */
export interface ReplicationPayload {
  readonly namespace: string;
  /** The `name` of the `[[repository."<key>".downstream]]` table. */
  readonly downstream: string;
  /** The tag replicated; absent for a manifest replicated by digest. */
  readonly tag?: string | undefined;
  /** The manifest replicated by digest (a push without tags, or a delete by digest). */
  readonly digest?: string | undefined;
  /** What happened here: a push (or tag move), or a delete. */
  readonly change: 'push' | 'delete';
  /**
   * The author's time of the change (RFC 3339): carried unchanged across hops. A delete is sent
   * with it; a push is sent with the time the tag holds when the job runs.
   */
  readonly sourceTimestamp: string;
}

/** The lock key (and coalescing key) of the jobs of one target on one downstream. */
export function replicationLockKey(payload: ReplicationPayload): string {
  const target = payload.tag !== undefined ? `tag:${payload.tag}` : `digest:${payload.digest}`;
  return `replication:${payload.downstream}:${payload.namespace}:${target}`;
}

/** Checks a stored payload; throws (the runner dead-letters the job) when it is not one. */
export function parseReplicationPayload(value: unknown): ReplicationPayload {
  if (typeof value !== 'object' || value === null) throw new Error('payload is not an object');
  const record = value as Record<string, unknown>;
  const { namespace, downstream, tag, digest, change, sourceTimestamp } = record;
  if (typeof namespace !== 'string' || !isValidNamespace(namespace)) throw new Error('invalid namespace');
  if (typeof downstream !== 'string' || downstream === '') throw new Error('invalid downstream');
  if (change !== 'push' && change !== 'delete') throw new Error('invalid change');
  if (typeof sourceTimestamp !== 'string' || Number.isNaN(Date.parse(sourceTimestamp))) {
    throw new Error('invalid sourceTimestamp');
  }
  const hasTag = typeof tag === 'string' && isValidTag(tag);
  const hasDigest = typeof digest === 'string' && tryParseDigest(digest) !== undefined;
  if (hasTag === hasDigest) throw new Error('exactly one of tag and digest is needed');
  return {
    namespace,
    downstream,
    change,
    sourceTimestamp,
    ...(hasTag ? { tag: tag as string } : { digest: digest as string }),
  };
}
