import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { parseDigest } from '@angos/oci';
import { createStores } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../src/index.js';
import { processRunningHashes, RunningHashes } from '../src/running-hashes.js';

const MiB = 1024 * 1024;
const opened: RunningHashes[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((hashes) => hashes.close()));
});

function hashes(threads?: number): RunningHashes {
  const created = new RunningHashes(threads);
  opened.push(created);
  return created;
}

const expected = (algorithm: 'sha256' | 'sha512', data: Buffer) =>
  createHash(algorithm).update(data).digest('hex');

describe('RunningHashes', () => {
  it('hashes off the event loop what it is fed, slices of larger buffers included, for sha256 and sha512', async () => {
    const pool = hashes(2);
    const data = randomBytes(3 * MiB + 17);
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const hash = pool.create(algorithm);
      // Views into one buffer: each must be hashed as the view, not as its whole buffer.
      for (let at = 0; at < data.length; at += 65_000) await hash.update(data.subarray(at, at + 65_000));
      expect(hash.bytes).toBe(data.length);
      expect((await hash.digest()).hex).toBe(expected(algorithm, data));
      expect(() => hash.update(Buffer.from('late'))).toThrow();
    }
  });

  it('keeps interleaved sessions apart across threads', async () => {
    const pool = hashes(2);
    const datas = Array.from({ length: 5 }, () => randomBytes(300_000));
    const sessions = datas.map(() => pool.create('sha256'));
    for (let at = 0; at < 300_000; at += 10_000) {
      for (const [i, session] of sessions.entries())
        await session.update(datas[i]!.subarray(at, at + 10_000));
    }
    const digests = await Promise.all(sessions.map((session) => session.digest()));
    expect(digests.map((digest) => digest.hex)).toEqual(datas.map((data) => expected('sha256', data)));
  });

  it('asks its feeder to wait while the thread is behind (its 4 MiB ring full), and lets it go on', async () => {
    const hash = hashes(1).create('sha256');
    const data = randomBytes(24 * MiB);
    const waits: Promise<void>[] = [];
    for (let at = 0; at < data.length; at += MiB) {
      const behind = hash.update(data.subarray(at, at + MiB));
      if (behind) waits.push(behind);
    }
    expect(waits.length).toBeGreaterThan(0);
    await Promise.all(waits);
    expect((await hash.digest()).hex).toBe(expected('sha256', data));
  });

  it('lets go of the waiting chunks of a session disposed of, and serves the next sessions', async () => {
    const pool = hashes(1);
    const abandoned = pool.create('sha256');
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 12; i++) {
      const behind = abandoned.update(randomBytes(MiB));
      if (behind) waits.push(behind);
    }
    expect(waits.length).toBeGreaterThan(0);
    abandoned.dispose();
    await Promise.all(waits);
    const next = pool.create('sha256');
    const data = randomBytes(5 * MiB);
    for (let at = 0; at < data.length; at += MiB) await next.update(data.subarray(at, at + MiB));
    expect((await next.digest()).hex).toBe(expected('sha256', data));
  });

  it('rejects the digest of a hash whose thread is gone, and starts a new thread for new hashes', async () => {
    const pool = hashes(1);
    const lost = pool.create('sha256');
    await lost.update(Buffer.from('some bytes'));
    await pool.close();
    await expect(lost.digest()).rejects.toThrow();
    const fresh = pool.create('sha256');
    await fresh.update(Buffer.from('again'));
    expect((await fresh.digest()).hex).toBe(expected('sha256', Buffer.from('again')));
  });
});

describe('uploads with a lost running hash', () => {
  it('verify the digest by re-reading the stored bytes', async () => {
    const { config } = parseConfig(
      '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n',
    );
    const registry = createRegistry({
      ...createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } }),
      locks: new MemoryLockManager(),
      config: () => config,
      logger: silentLogger,
    });
    const data = randomBytes(2 * MiB);
    const digest = parseDigest(`sha256:${expected('sha256', data)}`);
    const wrong = parseDigest(`sha256:${'0'.repeat(64)}`);
    const sessions = [await registry.uploads.start('team/app'), await registry.uploads.start('team/app')];
    for (const id of sessions)
      await registry.uploads.append('team/app', id, Readable.from([data.subarray(0, MiB)]), {});
    // The hashing threads go away mid-session (as if one crashed).
    await processRunningHashes().close();
    for (const id of sessions)
      await registry.uploads.append('team/app', id, Readable.from([data.subarray(MiB)]), {});
    await expect(
      registry.uploads.complete('team/app', sessions[0]!, wrong, undefined, {}),
    ).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    await registry.uploads.complete('team/app', sessions[1]!, digest, undefined, {});
    expect((await registry.blobs.stat('team/app', digest)).size).toBe(2 * MiB);
  });
});
