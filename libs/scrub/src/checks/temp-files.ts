import type { Dirent } from 'node:fs';
import { lstat, opendir, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { FsRoot, isTempName } from '@angos/storage';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';

const CHECK = 'temp-files';

/**
 * Leftover temp files of the fs driver (`.tmp-*`, libs/storage fs/atomic-file.ts): a write
 * publishes its bytes by renaming or linking a temp file into place, and a process killed in
 * between leaves the temp file behind, unlisted. Each is a small document's write (metadata,
 * manifests), which takes milliseconds: one older than the `--uploads` duration belongs to a
 * write that is over, and goes (`delete-temp`), with the directories that leaves empty, as the
 * store's own deletes do (a job queue's directory held only by a temp file would stay listed).
 * Every directory of the roots is walked, `_jobs/` included. Runs with `--uploads`; nothing to
 * do off the filesystem.
 */
export const tempFilesCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    const olderThanMs = ctx.options.uploadsOlderThanMs;
    if (olderThanMs === undefined) throw new Error('--uploads needs a duration');
    const roots = new Set([ctx.fsRoots.metadata, ctx.fsRoots.blobs].filter((root) => root !== undefined));
    for (const root of roots) {
      for await (const path of tempFiles(ctx, root, root)) {
        if (!(await isOlderThan(path, ctx.now() - olderThanMs))) continue;
        yield deleteTemp(ctx, root, path, olderThanMs);
      }
    }
  },
};

function deleteTemp(ctx: ScrubContext, root: string, path: string, olderThanMs: number): ScrubAction {
  return {
    check: CHECK,
    action: 'delete-temp',
    key: relative(root, path),
    reason: 'a temp file older than --uploads: its write is over',
    apply: async () => {
      if (!(await isOlderThan(path, ctx.now() - olderThanMs))) return;
      await unlink(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      await new FsRoot(root).pruneEmptyDirectories(dirname(path));
    },
  };
}

/** Every `.tmp-*` file under `dir`, depth first; directories are streamed, never held whole. */
async function* tempFiles(ctx: ScrubContext, root: string, dir: string): AsyncIterable<string> {
  let entries: AsyncIterable<Dirent>;
  try {
    entries = await opendir(dir, { bufferSize: 1024 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const subdirectories: string[] = [];
  try {
    for await (const entry of entries) {
      ctx.walked();
      const path = join(dir, entry.name);
      if (isTempName(entry.name)) yield path;
      else if (entry.isDirectory()) subdirectories.push(path);
    }
  } catch (error) {
    // The directory went away while listed (pruned once its last entry was deleted).
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const subdirectory of subdirectories) yield* tempFiles(ctx, root, subdirectory);
}

async function isOlderThan(path: string, cutoff: number): Promise<boolean> {
  try {
    return (await lstat(path)).mtimeMs <= cutoff;
  } catch {
    return false;
  }
}
