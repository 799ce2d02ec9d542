import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import {
  type FileHandle,
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rmdir,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * The instance lock of a filesystem metadata store under the `"memory"` lock strategy: that
 * strategy's locks only exclude within one process, the filesystem has no compare-and-swap, and
 * the server caches listings (compose.ts), so a second process writing the same directory (another
 * `angos server` or `registry-api`, a repairing `angos scrub`) can lose a push. Each writing
 * process holds this lock for its lifetime, and a second one refuses to start.
 *
 * Node has no flock(), so the lock is a file created exclusively (link(2) of a complete temp file:
 * of any number of creators exactly one wins, and the name only ever shows a complete record). The
 * record names its holder: pid, host and the process's start marker. A holder on this host whose
 * pid is gone (ESRCH), or whose pid now belongs to a process that started at another time or boot
 * (pid reuse, a container's pid 1 after a restart), is dead: its lock is stale and taken over.
 * A holder on another host (a container recreated under a new hostname after a SIGKILL, a
 * shared filesystem) cannot be asked: the holder renews its file's mtime every few seconds, and a
 * starter that sees it unchanged for a while takes it over. Only the change is compared, never a
 * time, so the hosts' clocks do not matter; the mtime is read through a fresh open, which NFS
 * revalidates (close-to-open), not from a cached stat.
 *
 * Taking over never deletes a file that may be someone else's live lock (POSIX has no
 * compare-and-delete): the locks are numbered generations in one directory, and the holder is the
 * highest one. A starter that finds the highest generation stale creates the next one exclusively,
 * so of two starters racing on one stale lock exactly one wins; the loser then finds the winner's
 * live lock. The winner removes the generations below its own, all stale.
 *
 * The directory is a dotfile at the metadata root: no storage key starts with `.` there (key-rules),
 * the registry's catalog and every scrub walk skip it, and its temp files are the `.tmp-*` files
 * the fs driver and `scrub --uploads` already know. A serving holder also listens there for scrub
 * runs handed to it (`scrub.sock`, scrub-handoff.ts); only numbered names are generations.
 */
export const INSTANCE_LOCK_DIR = '.angos-instance-lock';

/** Who holds the lock, as its file records it. */
export interface InstanceLockHolder {
  /** What runs: `angos server`, `angos registry-api`, `angos scrub`. */
  readonly command: string;
  readonly pid: number;
  readonly hostname: string;
  /** The process's boot and start time (Linux), telling a reused pid from the holder. */
  readonly started?: string | undefined;
  /** When it took the lock (ISO 8601). */
  readonly since: string;
}

/** Another live process holds the lock of `root`. */
export class InstanceLockHeldError extends Error {
  override readonly name = 'InstanceLockHeldError';
  constructor(
    readonly root: string,
    readonly holder: InstanceLockHolder,
    /** The holder's file: the operator removes it by hand only when the holder runs on another host. */
    readonly path: string,
  ) {
    super(`${holder.command} (pid ${holder.pid} on ${holder.hostname}) holds the instance lock of ${root}`);
  }
}

export interface InstanceLock {
  /** Removes the lock's file (and its directory when empty). Idempotent. */
  release(): Promise<void>;
}

export interface InstanceLockOptions {
  /** How often the holder renews its file's mtime (default 5 s). */
  readonly heartbeatMs?: number;
  /** How long an unchanged mtime must last for a holder on another host to count as gone (default 30 s). */
  readonly staleAfterMs?: number;
  /** Called before a starter watches the heartbeat of a holder on another host. */
  readonly onWait?: (holder: InstanceLockHolder, waitMs: number) => void;
  /** Called when the holder finds its file gone: another process judged it dead and took over. */
  readonly onLost?: (path: string) => void;
}

const HEARTBEAT_MS = 5_000;
/** Six missed heartbeats: a busy or briefly paused holder is not taken for dead. */
const STALE_AFTER_MS = 30_000;
/** How many generations a starter may see taken under it before it gives up (a storm of starters). */
const MAX_ATTEMPTS = 50;
const GENERATION = /^[0-9]+$/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * This process's start marker on Linux: the boot id and field 22 of `/proc/<pid>/stat` (start time
 * in clock ticks since boot). Together they name one process for good; undefined elsewhere.
 */
function startMarker(pid: number | 'self'): string | undefined {
  try {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from the last `)`.
    const startTicks = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return startTicks === undefined ? undefined : `${bootId}:${startTicks}`;
  } catch {
    return undefined;
  }
}

/** Whether a holder on this host still runs. */
function isAliveHere(holder: InstanceLockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the pid runs, as another user.
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (holder.started === undefined) return true;
  const now = startMarker(holder.pid);
  return now === undefined || now === holder.started;
}

function parseHolder(text: string): InstanceLockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<InstanceLockHolder>;
    if (typeof value.pid !== 'number' || typeof value.hostname !== 'string') return undefined;
    return {
      command: typeof value.command === 'string' ? value.command : 'angos',
      pid: value.pid,
      hostname: value.hostname,
      started: typeof value.started === 'string' ? value.started : undefined,
      since: typeof value.since === 'string' ? value.since : '',
    };
  } catch {
    return undefined;
  }
}

const errnoOf = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** The generations in the directory, lowest first; none when it does not exist. */
async function generations(dir: string): Promise<number[]> {
  try {
    const names = await readdir(dir);
    return names
      .filter((name) => GENERATION.test(name))
      .map(Number)
      .sort((a, b) => a - b);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return [];
    throw error;
  }
}

/** The file's mtime, read through a fresh open (NFS revalidates attributes on open); undefined when gone. */
async function freshMtime(path: string): Promise<number | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return (await handle.stat()).mtimeMs;
  } finally {
    await handle.close();
  }
}

/** Watches a lock's heartbeat for `waitMs`: 'beating' as soon as its mtime changes. */
async function heartbeat(path: string, waitMs: number): Promise<'beating' | 'stopped' | 'gone'> {
  const first = await freshMtime(path);
  if (first === undefined) return 'gone';
  const deadline = Date.now() + waitMs;
  const pollMs = Math.max(10, Math.min(1000, waitMs / 10));
  while (Date.now() < deadline) {
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
    const now = await freshMtime(path);
    if (now === undefined) return 'gone';
    if (now !== first) return 'beating';
  }
  return 'stopped';
}

/**
 * The holder of one generation: 'gone' when its file was removed meanwhile (released, or taken
 * over), 'stale' when it names no live process. A record that does not parse is stale too: files
 * appear complete (link), so only a crash before the bytes reached the disk leaves one.
 */
async function holderOf(
  path: string,
  options: InstanceLockOptions,
): Promise<InstanceLockHolder | 'gone' | 'stale'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return 'gone';
    throw error;
  }
  const holder = parseHolder(text);
  if (holder === undefined) return 'stale';
  if (holder.hostname === hostname()) return isAliveHere(holder) ? holder : 'stale';
  const waitMs = options.staleAfterMs ?? STALE_AFTER_MS;
  options.onWait?.(holder, waitMs);
  const beat = await heartbeat(path, waitMs);
  if (beat === 'beating') return holder;
  return beat === 'gone' ? 'gone' : 'stale';
}

/** Creates `dir/<generation>` holding `record` unless it exists; false when another starter made it. */
async function createGeneration(dir: string, generation: number, record: string): Promise<boolean> {
  await mkdir(dir, { recursive: true });
  const temp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  try {
    await writeFile(temp, record, { flag: 'wx' });
    await link(temp, join(dir, String(generation)));
    return true;
  } catch (error) {
    // ENOENT: a releasing holder removed the (then empty) directory; the caller looks again.
    if (errnoOf(error) === 'EEXIST' || errnoOf(error) === 'ENOENT') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/**
 * Takes the instance lock of the metadata root `root` for `command`, taking over a stale one.
 * Throws InstanceLockHeldError when a live process holds it. The lock is released by `release()`,
 * or when the process exits (a crash that skips both leaves a stale lock, which the next starter
 * takes over).
 */
export async function acquireInstanceLock(
  root: string,
  command: string,
  options: InstanceLockOptions = {},
): Promise<InstanceLock> {
  const dir = join(root, INSTANCE_LOCK_DIR);
  const record = JSON.stringify({
    command,
    pid: process.pid,
    hostname: hostname(),
    started: startMarker('self'),
    since: new Date().toISOString(),
  } satisfies InstanceLockHolder);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const taken = await generations(dir);
    const top = taken.at(-1);
    if (top !== undefined) {
      const path = join(dir, String(top));
      const holder = await holderOf(path, options);
      if (holder === 'gone') continue;
      if (holder !== 'stale') throw new InstanceLockHeldError(root, holder, path);
    }
    const mine = (top ?? 0) + 1;
    if (!(await createGeneration(dir, mine, record))) continue;
    // Every generation below this one is a dead holder's (or was already released).
    for (const generation of taken) await unlink(join(dir, String(generation))).catch(() => {});
    return heldLock(dir, join(dir, String(mine)), options);
  }
  throw new Error(`${dir}: the instance lock changed hands ${MAX_ATTEMPTS} times while being taken`);
}

function heldLock(dir: string, path: string, options: InstanceLockOptions): InstanceLock {
  // A process.exit() (a second signal, a fatal error) still removes the file; SIGKILL cannot.
  const onExit = () => {
    try {
      unlinkSync(path);
    } catch {}
  };
  process.once('exit', onExit);
  let lost = false;
  const beat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch((error: unknown) => {
      if (errnoOf(error) !== 'ENOENT' || lost) return;
      lost = true;
      options.onLost?.(path);
    });
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  beat.unref();
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        clearInterval(beat);
        process.off('exit', onExit);
        await unlink(path).catch((error: unknown) => {
          if (errnoOf(error) !== 'ENOENT') throw error;
        });
        // Leaves the metadata root as it was; another starter's files keep it (ENOTEMPTY).
        await rmdir(dir).catch(() => {});
      })();
      return released;
    },
  };
}
