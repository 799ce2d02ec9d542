import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A small filesystem of its own, for tests that need a real ENOSPC or EROFS. */
export interface Tmpfs {
  readonly dir: string;
  /** Remounts it read-only (EROFS on every write) or writable again. */
  setReadOnly(readOnly: boolean): Promise<void>;
  unmount(): Promise<void>;
}

function isCi(): boolean {
  const ci = process.env['CI'];
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * Mounts a tmpfs of `sizeBytes` on a fresh temp directory. Needs root (or CAP_SYS_ADMIN), as CI
 * has: elsewhere it warns and returns null (the caller skips), under CI it throws.
 */
export async function mountTmpfs(sizeBytes: number, warn = console.warn): Promise<Tmpfs | null> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-tmpfs-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'angos-test', dir]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    const reason = `cannot mount a tmpfs (needs root): ${error instanceof Error ? error.message : String(error)}`;
    if (isCi()) throw new Error(reason);
    warn(`full-filesystem tests skipped: ${reason}`);
    return null;
  }
  return {
    dir,
    async setReadOnly(readOnly) {
      await run('mount', ['-o', `remount,${readOnly ? 'ro' : 'rw'}`, dir]);
    },
    async unmount() {
      await run('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
