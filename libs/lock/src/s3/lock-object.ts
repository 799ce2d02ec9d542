import { hostname } from 'node:os';

/**
 * What a lock object holds. The renewal counter changes the bytes, hence the ETag, on every
 * renewal: a contender that saw an old ETag cannot take the lock over once it was renewed.
 */
export interface LockObjectBody {
  readonly token: string;
  readonly owner: string;
  readonly renewal: number;
}

const OWNER = `${hostname()}:${process.pid}`;

export function lockObjectBody(token: string, renewal: number): string {
  return JSON.stringify({ token, owner: OWNER, renewal } satisfies LockObjectBody);
}

/** The token in a lock object's body, or undefined when it is not one of ours (any version). */
export function tokenOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as Partial<LockObjectBody>;
    return typeof parsed.token === 'string' ? parsed.token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a lock object outlived its TTL, judged by the server's clocks alone: the `Date` of the
 * answer against the object's `Last-Modified`. Both have second resolution, so one second is
 * added before calling a lock stale; without a `Date` header the lock is never called stale.
 */
export function isStale(lastModified: Date, serverNow: Date | undefined, ttlMs: number): boolean {
  if (serverNow === undefined) return false;
  return serverNow.getTime() - lastModified.getTime() >= ttlMs + 1000;
}
