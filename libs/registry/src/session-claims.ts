import { randomUUID } from 'node:crypto';
import { keyFor, type MetadataStore, NotFoundError } from '@angos/storage';

/** One request's right to write an upload session: the offset it starts at, and its token. */
export interface SessionClaim {
  readonly token: string;
  readonly offset: number;
}

/**
 * Who writes an upload session. A PATCH or a PUT streams its body without holding the session's
 * lock (a body may take longer to arrive than any lock may be held: S3 `max_hold_secs`), so the
 * lock only guards the transitions, and between them this claim keeps every other request out:
 * a second writer is refused, instead of appending at the same offset on another replica.
 *
 * The claim is a metadata value (`<ns>/_uploads/<id>/writer`), taken, checked and dropped under
 * the session's lock; every write first checks the lock's signal. A request that dies without
 * dropping it (a crashed replica) leaves its session refusing writers: the client starts a new
 * session, as it does after any failed chunk, and DELETE still removes it.
 */
export class SessionClaims {
  constructor(private readonly metadata: MetadataStore) {}

  /** A fresh claim, not yet taken. */
  static create(offset: number): SessionClaim {
    return { token: randomUUID(), offset };
  }

  /** Takes `claim` for the session; false if another request holds one. Under the session's lock. */
  async take(namespace: string, id: string, claim: SessionClaim, signal: AbortSignal): Promise<boolean> {
    signal.throwIfAborted();
    return this.metadata.putIfAbsent(writerKey(namespace, id), JSON.stringify(claim));
  }

  /** Whether `claim` still holds the session (DELETE of the session drops it). */
  async holds(namespace: string, id: string, claim: SessionClaim): Promise<boolean> {
    let stored: Buffer;
    try {
      stored = await this.metadata.get(writerKey(namespace, id));
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      throw error;
    }
    return (JSON.parse(stored.toString('utf8')) as Partial<SessionClaim>).token === claim.token;
  }

  /** Drops `claim` if it still holds the session. Under the session's lock. */
  async release(namespace: string, id: string, claim: SessionClaim, signal: AbortSignal): Promise<void> {
    if (!(await this.holds(namespace, id, claim))) return;
    await this.clear(namespace, id, signal);
  }

  /** Drops whichever claim holds the session, for a session that ends. Under the session's lock. */
  async clear(namespace: string, id: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.metadata.delete(writerKey(namespace, id));
  }
}

function writerKey(namespace: string, id: string): string {
  return keyFor({ kind: 'uploadWriter', namespace, id });
}
