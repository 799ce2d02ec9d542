import { randomBytes } from 'node:crypto';
import { access, type FileHandle, link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { STREAM_CHUNK_BYTES } from '../streaming.js';
import { errnoCode } from './errors.js';

/**
 * Crash-safe file publication: bytes go to a temp file in the target's own
 * directory (same filesystem, so the final step is an atomic rename or link),
 * and the final path only ever names a complete file.
 */

/** Unique per process (random tag) and per call (counter): no collisions, no per-call randomness. */
const PROCESS_TAG = randomBytes(6).toString('hex');
let tempCounter = 0;

/**
 * How often a write retries when its directory disappears underneath it (a
 * concurrent delete pruned it as empty). Each retry recreates the directory, so
 * only a pathological storm of deletes could exhaust this.
 */
const MAX_ATTEMPTS = 8;

export type FileSource = Uint8Array | string | Readable;

function tempPathIn(dir: string): string {
  tempCounter = (tempCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${dir}${sep}.tmp-${PROCESS_TAG}-${tempCounter.toString(36)}`;
}

/**
 * fsync of a directory, which makes entries created, renamed or linked in it
 * durable. A directory that a concurrent delete already removed has nothing
 * left to make durable.
 */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * mkdir -p; when syncing, also makes each newly created directory's entry
 * durable. mkdir -p itself fails with ENOENT when a concurrent prune removes a
 * parent between its steps, and with ENOTDIR when the prune removes a directory
 * it found existing (EEXIST) before it stats it to check that it is one: both
 * are retried like any vanished directory. A file really in the way still fails
 * with ENOTDIR, from the level-by-level mkdir or from the open that follows.
 */
export async function ensureDirectory(dir: string, syncToDisk: boolean): Promise<void> {
  let firstCreated: string | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      firstCreated = await mkdir(dir, { recursive: true });
      break;
    } catch (error) {
      const code = errnoCode(error);
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || attempt >= MAX_ATTEMPTS) throw error;
    }
    // Node's recursive mkdir answers ENOENT whatever failed below an existing parent (EROFS,
    // ENOSPC, EACCES…): one level at a time says what it was, or succeeds after a prune.
    try {
      firstCreated = await mkdirEachLevel(dir);
      break;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
  if (!syncToDisk || firstCreated === undefined) return;
  const parents: string[] = [];
  for (let created = dir; created.length >= firstCreated.length; created = dirname(created)) {
    parents.push(dirname(created));
  }
  for (const parent of parents.reverse()) await syncDirectory(parent);
}

/** mkdir -p one level at a time; returns the topmost directory it created, if any. */
async function mkdirEachLevel(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir);
    return dir;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EEXIST') return undefined;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
  }
  const parentCreated = await mkdirEachLevel(dirname(dir));
  try {
    await mkdir(dir);
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
  }
  return parentCreated ?? dir;
}

/**
 * Opens with flags that create the file (O_CREAT), recreating its directory if
 * it is missing: ENOENT from such an open can only mean the directory is gone.
 */
export async function openCreatingDirectory(
  path: string,
  flags: string,
  syncToDisk: boolean,
): Promise<FileHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await open(path, flags);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || attempt >= MAX_ATTEMPTS) throw error;
      await ensureDirectory(dirname(path), syncToDisk);
    }
  }
}

/** Writes a complete temp file next to `target` and returns its path; leaves nothing behind on failure. */
async function writeTempFile(target: string, source: FileSource, syncToDisk: boolean): Promise<string> {
  const temp = tempPathIn(dirname(target));
  const handle = await openCreatingDirectory(temp, 'wx', syncToDisk);
  try {
    if (source instanceof Readable) {
      // The stream owns the handle from here: it fsyncs (flush) and closes it.
      await pipeline(
        source,
        handle.createWriteStream({ highWaterMark: STREAM_CHUNK_BYTES, flush: syncToDisk }),
      );
    } else {
      await handle.writeFile(source);
      if (syncToDisk) await handle.datasync();
    }
  } catch (error) {
    // Resolves once a stream that took the handle has released it.
    await handle.close().catch(ignore);
    await unlink(temp).catch(ignore);
    throw error;
  }
  await handle.close();
  return temp;
}

/**
 * Writes `target` atomically, replacing any current file: readers see the old
 * bytes or the new ones, and a crash leaves at most an unlisted temp file.
 */
export async function replaceFile(target: string, source: FileSource, syncToDisk: boolean): Promise<void> {
  await publish(target, source, syncToDisk, rename);
}

/**
 * Creates `target` atomically only if it does not exist: link() fails with
 * EEXIST when it does, so of any number of concurrent creators exactly one wins.
 * Returns false (and leaves the existing file untouched) if it existed.
 */
export async function createFileIfAbsent(
  target: string,
  source: FileSource,
  syncToDisk: boolean,
): Promise<boolean> {
  return publish(target, source, syncToDisk, linkThenDropTemp);
}

async function linkThenDropTemp(temp: string, target: string): Promise<void> {
  try {
    await link(temp, target);
  } finally {
    await unlink(temp).catch(ignore);
  }
}

/** Links an existing file to a new name unless that name exists; false if it did. */
export async function linkIfAbsent(existing: string, target: string, syncToDisk: boolean): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await link(existing, target);
      break;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') return false;
      if (code !== 'ENOENT' || attempt >= MAX_ATTEMPTS) throw error;
      // ENOENT: the target directory, or `existing` itself, is missing; an
      // absent `existing` makes access() throw ENOENT to the caller.
      await access(existing);
      await ensureDirectory(dirname(target), syncToDisk);
    }
  }
  if (syncToDisk) await syncDirectory(dirname(target));
  return true;
}

async function publish(
  target: string,
  source: FileSource,
  syncToDisk: boolean,
  move: (temp: string, target: string) => Promise<void>,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const temp = await writeTempFile(target, source, syncToDisk);
    try {
      await move(temp, target);
      break;
    } catch (error) {
      await unlink(temp).catch(ignore);
      const code = errnoCode(error);
      if (code === 'EEXIST') return false;
      // ENOENT: a concurrent deletePrefix removed the temp file's directory.
      // Bytes in memory can simply be written again; a stream is spent.
      if (code !== 'ENOENT' || source instanceof Readable || attempt >= MAX_ATTEMPTS) throw error;
    }
  }
  if (syncToDisk) await syncDirectory(dirname(target));
  return true;
}

function ignore(): void {}
