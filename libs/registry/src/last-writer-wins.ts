import { type DigestParts, formatDigest, OciError } from '@angos/oci';
import { type LinkRecord, linkCreatedAtMs } from './links.js';

/**
 * Last-writer-wins between replicated writes of one tag. A replicated push or delete carries the
 * time its author wrote the tag (`X-Angos-Source-Timestamp`, carried unchanged across hops); the
 * tag link records the time of the write it holds (`created_at`). The later time wins; on equal
 * times the larger digest (by code point of `sha256:<hex>`) does, so every peer decides alike.
 * A deleted tag keeps the time of its delete in a tombstone (tombstones.ts): a replicated push
 * finding no tag competes with that delete, and a delete wins on equal times, as it does against
 * a tag link (`assertTagDeletable`).
 */

/** What a replicated write of a tag does to it. */
export type TagDecision = 'write' | 'unchanged';

/**
 * The decision for a replicated push of `digest` at `atMs` over the tag's `current` link; throws
 * REPLICATION_SUPERSEDED when the tag holds a later write. The same digest at the same time is a
 * replay (a redelivered job, or the echo of a write relayed back to its origin): `unchanged`.
 * Without a tag, `deletedAtMs` (its tombstone) decides: a delete at or after `atMs` supersedes it.
 */
export function decideTagPush(
  tag: string,
  current: LinkRecord | undefined,
  digest: DigestParts,
  atMs: number,
  deletedAtMs?: number,
): TagDecision {
  if (current === undefined) {
    if (deletedAtMs !== undefined && deletedAtMs >= atMs) throw supersededByDelete(tag, deletedAtMs);
    return 'write';
  }
  const localMs = linkCreatedAtMs(current);
  if (localMs < atMs) return 'write';
  const local = formatDigest(current.digest);
  const incoming = formatDigest(digest);
  if (localMs === atMs) {
    if (local === incoming) return 'unchanged';
    if (incoming > local) return 'write';
  }
  throw superseded(tag, current);
}

/** Throws REPLICATION_SUPERSEDED when a replicated delete at `atMs` is older than the tag's write. */
export function assertTagDeletable(tag: string, current: LinkRecord, atMs: number): void {
  if (linkCreatedAtMs(current) > atMs) throw superseded(tag, current);
}

/**
 * Whether a replicated delete at `atMs` of a tag that does not exist here moves its tombstone
 * (`deletedAtMs`, undefined without one): only a later delete does, so a replayed or older one
 * changes nothing.
 */
export function advancesTombstone(deletedAtMs: number | undefined, atMs: number): boolean {
  return deletedAtMs === undefined || atMs > deletedAtMs;
}

/** A source time as it is applied: one in the future is clamped to now. */
export function clampSourceTime(atMs: number, nowMs: number = Date.now()): number {
  return Math.min(atMs, nowMs);
}

function superseded(tag: string, current: LinkRecord): OciError {
  return new OciError('REPLICATION_SUPERSEDED', {
    tag,
    digest: formatDigest(current.digest),
    ...(current.createdAt === undefined ? {} : { created_at: current.createdAt }),
  });
}

function supersededByDelete(tag: string, deletedAtMs: number): OciError {
  return new OciError('REPLICATION_SUPERSEDED', { tag, deleted_at: new Date(deletedAtMs).toISOString() });
}

/** RFC 3339 with a time zone: what senders write (`2026-01-01T00:00:00.000Z`). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * A source timestamp header value in ms since the epoch; undefined when it is not an RFC 3339
 * time (a malformed timestamp means no last-writer-wins: the write is an ordinary one).
 */
export function parseSourceTimestamp(value: string): number | undefined {
  if (!RFC3339.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
