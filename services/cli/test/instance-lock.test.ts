import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '@angos/config';
import { type Logger, silentLogger } from '@angos/observability';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CliError } from '../src/errors.js';
import {
  acquireInstanceLock,
  INSTANCE_LOCK_DIR,
  InstanceLockHeldError,
  type InstanceLockHolder,
} from '../src/instance-lock.js';
import { holdInstanceLock } from '../src/open-storage.js';

/**
 * The instance lock itself, on a real directory: who holds it, what is stale, and that of several
 * starters racing on one stale lock exactly one wins. The processes around it (servers, scrub)
 * are in instance-lock-cli.test.ts.
 */

const BUILT = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'instance-lock.js');
const hasProc = existsSync('/proc/self/stat');

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'angos-instance-lock-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const lockDir = () => join(root, INSTANCE_LOCK_DIR);
const lockFiles = async () => (await readdir(lockDir()).catch(() => [])).sort();

/** Writes a generation as another process would have left it. */
async function leaveLock(generation: number, holder: Partial<InstanceLockHolder> | string): Promise<void> {
  await mkdir(lockDir(), { recursive: true });
  const record =
    typeof holder === 'string'
      ? holder
      : JSON.stringify({
          command: 'angos server',
          hostname: hostname(),
          since: '2026-01-01T00:00:00Z',
          ...holder,
        });
  await writeFile(join(lockDir(), String(generation)), record);
}

/** Renews a lock file's mtime as its holder would, until the returned function is called. */
function renew(path: string): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => {});
  }, 50);
  return () => clearInterval(timer);
}

/** The pid of a process that has exited (and been reaped): nothing runs under it now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid as number;
}

describe('acquireInstanceLock', () => {
  it('refuses a second holder while the first lives, and is free again once released', async () => {
    const first = await acquireInstanceLock(root, 'angos server');
    expect(await lockFiles()).toEqual(['1']);
    const refused = await acquireInstanceLock(root, 'angos scrub').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InstanceLockHeldError);
    expect((refused as InstanceLockHeldError).holder).toMatchObject({
      command: 'angos server',
      pid: process.pid,
      hostname: hostname(),
    });
    await first.release();
    await first.release(); // idempotent
    // Released: the metadata root is as it was.
    expect(existsSync(lockDir())).toBe(false);
    const second = await acquireInstanceLock(root, 'angos scrub');
    await second.release();
  });

  it('takes over the lock of a process that is gone (ESRCH), and removes it', async () => {
    await leaveLock(1, { pid: await deadPid() });
    const lock = await acquireInstanceLock(root, 'angos server');
    expect(await lockFiles()).toEqual(['2']);
    await lock.release();
    expect(existsSync(lockDir())).toBe(false);
  });

  it.skipIf(!hasProc)(
    'takes over the lock of a live pid that another process held before (pid reuse: start marker differs)',
    async () => {
      await leaveLock(4, { pid: process.pid, started: '00000000-0000-0000-0000-000000000000:1' });
      const lock = await acquireInstanceLock(root, 'angos server');
      expect(await lockFiles()).toEqual(['5']);
      await lock.release();
    },
  );

  it('takes over a record that does not parse (a crash before its bytes reached the disk)', async () => {
    await leaveLock(1, '');
    const lock = await acquireInstanceLock(root, 'angos server');
    expect(await lockFiles()).toEqual(['2']);
    await lock.release();
  });

  it('judges the highest generation only: stale ones below a live holder do not free the lock', async () => {
    await leaveLock(1, { pid: await deadPid() });
    const live = await acquireInstanceLock(root, 'angos server');
    await leaveLock(1, { pid: await deadPid() });
    await expect(acquireInstanceLock(root, 'angos scrub')).rejects.toBeInstanceOf(InstanceLockHeldError);
    await live.release();
  });

  it('refuses a holder on another host while it renews its lock (its pid cannot be asked)', async () => {
    await leaveLock(1, { pid: await deadPid(), hostname: `not-${hostname()}` });
    const stopRenewing = renew(join(lockDir(), '1'));
    try {
      const waits: InstanceLockHolder[] = [];
      const refused = await acquireInstanceLock(root, 'angos server', {
        staleAfterMs: 2_000,
        onWait: (holder) => waits.push(holder),
      }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(InstanceLockHeldError);
      expect((refused as InstanceLockHeldError).path).toBe(join(lockDir(), '1'));
      expect(waits.map((holder) => holder.hostname)).toEqual([`not-${hostname()}`]);
    } finally {
      stopRenewing();
    }
  });

  it('takes over a holder on another host whose lock is no longer renewed (a recreated container)', async () => {
    await leaveLock(1, { pid: process.pid, hostname: `not-${hostname()}` });
    const lock = await acquireInstanceLock(root, 'angos server', { staleAfterMs: 300 });
    expect(await lockFiles()).toEqual(['2']);
    await lock.release();
  });

  it('renews its own lock, so that a starter on another host sees it alive', async () => {
    const lock = await acquireInstanceLock(root, 'angos server', { heartbeatMs: 50 });
    try {
      const path = join(lockDir(), '1');
      const before = (await stat(path)).mtimeMs;
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect((await stat(path)).mtimeMs).not.toBe(before);
    } finally {
      await lock.release();
    }
  });

  it('says so when another process took its lock over', async () => {
    const lost: string[] = [];
    const lock = await acquireInstanceLock(root, 'angos server', {
      heartbeatMs: 20,
      onLost: (path) => lost.push(path),
    });
    await rm(join(lockDir(), '1'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(lost).toEqual([join(lockDir(), '1')]);
    await lock.release();
  });

  it('of starters racing in one process on a stale lock, exactly one wins', async () => {
    await leaveLock(7, { pid: await deadPid() });
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => acquireInstanceLock(root, 'angos server')),
    );
    const won = results.filter((result) => result.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(InstanceLockHeldError);
    }
    expect(await lockFiles()).toEqual(['8']);
    await (won[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
  });

  it('of processes racing on a stale lock, exactly one wins; the file leaves with its holder', async () => {
    await leaveLock(3, { pid: await deadPid() });
    // Each racer takes the lock, says whether it won, and holds it until its stdin closes.
    const script = [
      `const { acquireInstanceLock } = await import(${JSON.stringify(BUILT)});`,
      `const lock = await acquireInstanceLock(${JSON.stringify(root)}, 'angos server').catch(() => undefined);`,
      `process.stdout.write(lock ? 'won\\n' : 'lost\\n');`,
      'process.stdin.resume();',
      "process.stdin.on('end', async () => { await lock?.release(); process.exit(0); });",
    ].join('\n');
    const racers = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    try {
      const answers = await Promise.all(
        racers.map(async (racer) => {
          const [chunk] = (await once(racer.stdout, 'data')) as [Buffer];
          return chunk.toString().trim();
        }),
      );
      expect(answers.filter((answer) => answer === 'won')).toHaveLength(1);
      expect(answers.filter((answer) => answer === 'lost')).toHaveLength(3);
      expect(await lockFiles()).toEqual(['4']);
    } finally {
      await Promise.all(
        racers.map(async (racer) => {
          const exited = once(racer, 'exit');
          racer.stdin.end();
          await exited;
        }),
      );
    }
    expect(existsSync(lockDir())).toBe(false);
  }, 30_000);
});

describe('holdInstanceLock', () => {
  const configOf = (lock = '') =>
    parseConfig(
      `[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = ${JSON.stringify(root)}\n${lock}`,
    ).config;

  it('names the lock strategy key and says what to do, by the command refused', async () => {
    const server = await holdInstanceLock(configOf(), 'server', silentLogger);
    try {
      const refused = await holdInstanceLock(configOf(), 'scrub', silentLogger).catch(
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(CliError);
      const [reason, advice, ...rest] = (refused as CliError).lines;
      expect(reason).toContain('metadata_store.fs.lock_strategy: ');
      expect(reason).toContain(`angos server (pid ${process.pid} on ${hostname()}`);
      expect(advice).toContain('Stop the server');
      expect(advice).toContain('[metadata_store.fs.lock_strategy.redis]');
      expect(advice).toContain('--dry-run');
      expect(rest).toEqual([]);
      const second = await holdInstanceLock(configOf(), 'registry-api', silentLogger).catch(
        (error: unknown) => error,
      );
      expect((second as CliError).lines[1]).toContain('[metadata_store.fs.lock_strategy.redis]');
    } finally {
      await server?.release();
    }
  });

  it('says when the holder runs on another host, and logs while it watches its heartbeat', async () => {
    await leaveLock(1, { pid: 1, hostname: `not-${hostname()}` });
    const stopRenewing = renew(join(lockDir(), '1'));
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => warnings.push(message) };
    try {
      const refused = await holdInstanceLock(configOf(), 'server', logger as Logger, {
        staleAfterMs: 2_000,
      }).catch((error: unknown) => error);
      expect((refused as CliError).lines[2]).toContain('runs on another host and still renews its lock');
      expect(warnings).toEqual(['instance lock held by a process on another host; watching its heartbeat']);
    } finally {
      stopRenewing();
    }
  });

  it('takes no lock with a shared lock strategy: Redis locks exclude across processes', async () => {
    const config = configOf(
      '[metadata_store.fs.lock_strategy.redis]\nurl = "redis://127.0.0.1:1"\nttl = 5\n',
    );
    expect(await holdInstanceLock(config, 'server', silentLogger)).toBeUndefined();
    expect(await holdInstanceLock(config, 'scrub', silentLogger)).toBeUndefined();
    expect(existsSync(lockDir())).toBe(false);
  });
});
