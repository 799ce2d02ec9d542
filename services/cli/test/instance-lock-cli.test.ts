import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '@angos/config';
import { silentLogger } from '@angos/observability';
import { skipWithout } from '@angos/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { INSTANCE_LOCK_DIR } from '../src/instance-lock.js';
import { holdInstanceLock } from '../src/open-storage.js';
import {
  baseConfig,
  freePort,
  type LongRunning,
  logRecords,
  runAngos,
  startAngos,
  useRedisServer,
  useWorkspace,
  waitForHttp,
} from './helpers.js';

/**
 * One writer per directory with fs metadata and the default `"memory"` lock strategy: a second
 * `angos server` and a repairing `angos scrub` refuse while a server holds the instance lock; a
 * dry run reads beside it; the lock leaves with a server stopped cleanly, and a SIGKILLed
 * server's is taken over. Real processes on a real directory.
 */

const ws = useWorkspace();
const lockDir = () => join(ws().dir, 'data', INSTANCE_LOCK_DIR);
const generations = async () =>
  (await readdir(lockDir()).catch(() => [])).filter((name) => /^\d+$/.test(name));

async function startServer(configPath = ws().configPath): Promise<{ server: LongRunning; url: string }> {
  const port = await freePort();
  const server = startAngos(['-c', configPath, 'server', '--listen', `127.0.0.1:${port}`]);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v2/`, server);
  return { server, url };
}

/** Every check of this build that walks the metadata store. */
const EVERY_CHECK = [
  '-t',
  '-m',
  '-b',
  '-r',
  '-l',
  '-M',
  '-R',
  '-n',
  '--uploads',
  '0s',
  '--reconcile-blob-index',
  '--orphan-grants',
  '0s',
];

function expectRefusal(stderr: string, advice: string): void {
  expect(stderr).toContain(
    'metadata_store.fs.lock_strategy: the "memory" lock strategy allows one angos process',
  );
  expect(stderr).toContain('angos server (pid');
  expect(stderr).toContain('[metadata_store.fs.lock_strategy.redis]');
  expect(stderr).toContain(advice);
}

describe('instance lock (fs metadata, memory lock strategy)', () => {
  beforeAll(async () => {
    await ws().writeConfig(
      baseConfig(ws().dir, await freePort(), '[global.access_policy]\ndefault = "allow"\n'),
    );
  });

  it('a second server on the same directory refuses to start, naming the lock strategy', async () => {
    const { server } = await startServer();
    try {
      const second = await runAngos([
        '-c',
        ws().configPath,
        'server',
        '--listen',
        `127.0.0.1:${await freePort()}`,
      ]);
      expect(second.code).toBe(1);
      expectRefusal(second.stderr, 'Stop that process first');
      // registry-api writes the same directory: refused too.
      const apiConfig = join(ws().dir, 'registry-api.toml');
      await writeFile(
        apiConfig,
        baseConfig(
          ws().dir,
          await freePort(),
          `[services]\ninternal_token = "${'0123456789abcdef'.repeat(4)}"\n`,
        ),
      );
      const api = await runAngos([
        '-c',
        apiConfig,
        'registry-api',
        '--listen',
        `127.0.0.1:${await freePort()}`,
      ]);
      expect(api.code).toBe(1);
      expectRefusal(api.stderr, 'Stop that process first');
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 60_000);

  it('a repairing scrub beside a live server is handed to it (scrub-handoff.test.ts); a dry run reads beside it', async () => {
    const { server } = await startServer();
    try {
      const real = await runAngos(['-c', ws().configPath, 'scrub', '-t', '-m', '-b']);
      expect(real.stderr).not.toContain('lock_strategy');
      expect(real.code).toBe(0);
      const dry = await runAngos(['-c', ws().configPath, 'scrub', '-d', '-t', '-m', '-b']);
      expect(dry.stderr).not.toContain('lock_strategy');
      expect(dry.code).toBe(0);
      // Still the server's, untouched by either run.
      expect(await generations()).toHaveLength(1);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 60_000);

  it('no scrub check touches the lock: a dry run beside a server plans nothing for it', async () => {
    const { server, url } = await startServer();
    try {
      // Content in the store, so that every check has a namespace to walk.
      const blob = Buffer.from('instance lock test');
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      const put = await fetch(`${url}/v2/lock/app/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        body: blob,
      });
      expect(put.status).toBe(201);
      const dry = await runAngos(['-c', ws().configPath, 'scrub', '-d', ...EVERY_CHECK], {
        env: { RUST_LOG: 'info' },
      });
      expect(dry.code, dry.stderr).toBe(0);
      const planned = logRecords(dry.stderr).filter((record) => record['message'] === 'would repair');
      // The blob no manifest holds is an orphan grant: the run did plan repairs, none of the lock.
      expect(planned.length).toBeGreaterThan(0);
      expect(planned.filter((record) => String(record['key']).includes(INSTANCE_LOCK_DIR))).toEqual([]);
      expect(await generations()).toHaveLength(1);
      // A real run with every check, handed off to the server: the lock and its socket stay.
      const handed = await runAngos(['-c', ws().configPath, 'scrub', ...EVERY_CHECK]);
      expect(handed.code, handed.stderr).toBe(0);
      expect(await generations()).toHaveLength(1);
      expect(existsSync(join(lockDir(), 'scrub.sock'))).toBe(true);
      expect(existsSync(join(ws().dir, 'data', '_lost_and_found'))).toBe(false);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    // A real run with every check, beside its own lock: nothing moved to lost-and-found.
    const real = await runAngos(['-c', ws().configPath, 'scrub', ...EVERY_CHECK]);
    expect(real.code, real.stderr).toBe(0);
    expect(existsSync(join(ws().dir, 'data', '_lost_and_found'))).toBe(false);
    expect(existsSync(lockDir())).toBe(false);
  }, 60_000);

  it('a server stopped cleanly releases the lock: the directory is as it was, scrub then repairs', async () => {
    const { server } = await startServer();
    expect(await generations()).toHaveLength(1);
    expect(await server.stop()).toBe(0);
    expect(existsSync(lockDir())).toBe(false);
    const scrub = await runAngos(['-c', ws().configPath, 'scrub', '-t', '-m', '-b']);
    expect(scrub.stderr).toBe('');
    expect(scrub.code).toBe(0);
    expect(existsSync(lockDir())).toBe(false);
  }, 60_000);

  it("a SIGKILLed server's lock is stale: the next server takes it over", async () => {
    const { server: killed } = await startServer();
    const exited = once(killed.child, 'exit');
    killed.child.kill('SIGKILL');
    await exited;
    const left = await generations();
    expect(left).toHaveLength(1);
    const { server } = await startServer();
    try {
      const now = await generations();
      expect(now).toHaveLength(1);
      expect(Number(now[0])).toBe(Number(left[0]) + 1);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(existsSync(lockDir())).toBe(false);
  }, 60_000);

  it('a server does not start while a repairing scrub holds the lock', async () => {
    const { config } = parseConfig(baseConfig(ws().dir, 1));
    // This test process stands in for a scrub in the middle of its run.
    const scrub = await holdInstanceLock(config, 'scrub', silentLogger);
    try {
      const refused = await runAngos([
        '-c',
        ws().configPath,
        'server',
        '--listen',
        `127.0.0.1:${await freePort()}`,
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`angos scrub (pid ${process.pid}`);
      expect(refused.stderr).toContain('metadata_store.fs.lock_strategy');
    } finally {
      await scrub?.release();
    }
  }, 60_000);
});

const skipRedis = skipWithout('the instance lock test with the Redis lock', 'redis-server');

describe.skipIf(skipRedis)('no instance lock with the Redis lock strategy', () => {
  const redis = useRedisServer();

  it('two servers and a repairing scrub share the directory', async () => {
    const configPath = join(ws().dir, 'redis.toml');
    await writeFile(
      configPath,
      baseConfig(
        ws().dir,
        await freePort(),
        [
          '[global.access_policy]',
          'default = "allow"',
          '[metadata_store.fs.lock_strategy.redis]',
          `url = "${redis().url}"`,
          'ttl = 5',
          'key_prefix = "instance-lock-test"',
        ].join('\n'),
      ),
    );
    const first = await startServer(configPath);
    const second = await startServer(configPath);
    try {
      const scrub = await runAngos(['-c', configPath, 'scrub', '-t', '-m', '-b']);
      expect(scrub.stderr).toBe('');
      expect(scrub.code).toBe(0);
      expect(existsSync(lockDir())).toBe(false);
    } finally {
      expect(await first.server.stop()).toBe(0);
      expect(await second.server.stop()).toBe(0);
    }
  }, 60_000);
});
