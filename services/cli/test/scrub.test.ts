import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { JobQueue } from '@angos/jobs';
import { createStores } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { baseConfig, freePort, logRecords, runAngos, useWorkspace } from './helpers.js';

/**
 * `angos scrub` as an operator runs it (the scrub job): the checks of libs/scrub over the
 * configured storage, one log line per repair, a summary line, and the exit status. The fault
 * matrix itself is libs/scrub's (test/fault-matrix.test.ts, fs and S3).
 */

const ws = useWorkspace();

const hex = (data: string) => createHash('sha256').update(data).digest('hex');

async function put(path: string, data: string): Promise<void> {
  const file = join(ws().dir, 'data', path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, data);
}

const actionsOf = (stderr: string, message: string) =>
  logRecords(stderr)
    .filter((record) => record['message'] === message)
    .map(({ check, action, key, reason }) => ({ check, action, key, reason }));

describe('angos scrub', () => {
  it('--cache-orphans deletes the cache jobs of repositories no longer configured for pull-through', async () => {
    const upstream = '[[repository."docker-io".upstream]]\nurl = "https://registry-1.docker.io"\n';
    await ws().writeConfig(baseConfig(ws().dir, await freePort(), upstream));
    const root = join(ws().dir, 'data');
    const { metadata } = createStores({
      blob: { kind: 'fs', rootDir: root, syncToDisk: false },
      metadata: { kind: 'fs', rootDir: root, syncToDisk: false },
    });
    const queue = new JobQueue({ store: metadata });
    const kept = await queue.enqueue('cache', 'fill', 'k1', { namespace: 'docker-io/library/alpine' });
    const orphan = await queue.enqueue('cache', 'fill', 'k2', { namespace: 'quay/app' });
    const env = { RUST_LOG: 'info' };

    const dry = await runAngos(['-c', ws().configPath, 'scrub', '--dry-run', '--cache-orphans'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const planned = actionsOf(dry.stderr, 'would repair');
    expect(planned).toHaveLength(1);
    expect(planned[0]).toMatchObject({ check: 'cache-orphans', action: 'delete-pending-job' });
    expect(String(planned[0]?.key)).toContain(orphan.id);
    expect((await queue.listPending('cache')).items).toHaveLength(2);

    const real = await runAngos(['-c', ws().configPath, 'scrub', '--cache-orphans'], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(actionsOf(real.stderr, 'repaired')).toEqual(planned);
    expect((await queue.listPending('cache')).items.map((job) => job.id)).toEqual([kept.id]);
    await queue.deletePending('cache', kept.id);
  });

  it('--dry-run reports the repairs and changes nothing; the real run makes exactly those', async () => {
    await ws().writeConfig(baseConfig(ws().dir, await freePort()));
    const tagLink = 'app/_manifests/tags/v1/link';
    await put(tagLink, JSON.stringify({ digest: `sha256:${hex('gone')}` }));
    await put('app/_manifests/tags/-bad/link', JSON.stringify({ digest: `sha256:${hex('gone')}` }));
    const env = { RUST_LOG: 'info' };

    const dry = await runAngos(['-c', ws().configPath, 'scrub', '-d', '-t', '-m', '-l', '-M', '-R'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const planned = actionsOf(dry.stderr, 'would repair');
    expect(planned.map(({ action, key }) => `${action} ${key}`)).toEqual([
      'delete-tag app/_manifests/tags/-bad',
      `delete-tag ${tagLink}`,
    ]);
    expect(await readFile(join(ws().dir, 'data', tagLink), 'utf8')).toContain(hex('gone'));

    const real = await runAngos(['-c', ws().configPath, 'scrub', '-t', '-m', '-l', '-M', '-R'], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(actionsOf(real.stderr, 'repaired')).toEqual(planned);
    await expect(readFile(join(ws().dir, 'data', tagLink))).rejects.toThrow();
    const summary = logRecords(real.stderr).find((record) => record['message'] === 'scrub finished');
    expect(summary).toMatchObject({ repairs: 2, quarantined: 0, corrupt_removed: 0, failures: 0 });
    expect(Number(summary?.['keys_walked'])).toBeGreaterThan(0);
  });

  it('exits with status 1 when a repair fails, after the others', async () => {
    await ws().writeConfig(baseConfig(ws().dir, await freePort()));
    // A revision without a media type, whose bytes are not a manifest: nothing to backfill from.
    const body = 'not a manifest';
    await put(`_blobs/sha256/${hex(body).slice(0, 2)}/${hex(body)}`, body);
    await put(
      `broken/_manifests/revisions/sha256/${hex(body)}/link`,
      JSON.stringify({ digest: `sha256:${hex(body)}` }),
    );
    const result = await runAngos(['-c', ws().configPath, 'scrub', '--media-types'], {
      env: { RUST_LOG: 'info' },
    });
    expect(result.code).toBe(1);
    expect(actionsOf(result.stderr, 'repair failed')).toHaveLength(1);
    expect(result.stderr).toContain('scrub: 1 check(s) or repair(s) failed');
  });

  it('--blobs removes a corrupt blob and counts it; the dry run lists exactly that', async () => {
    await ws().writeConfig(baseConfig(ws().dir, await freePort()));
    const blob = `_blobs/sha256/${hex('good').slice(0, 2)}/${hex('good')}`;
    await put(blob, 'bad!');
    const env = { RUST_LOG: 'info' };
    const dry = await runAngos(['-c', ws().configPath, 'scrub', '-d', '-b'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const planned = actionsOf(dry.stderr, 'would repair');
    // (The workspace is shared: the blob of the test before is there too, with no index entry.)
    expect(planned.map(({ action, key }) => `${action} ${key}`)).toContain(`remove-corrupt-blob ${blob}`);
    expect(await readFile(join(ws().dir, 'data', blob), 'utf8')).toBe('bad!');
    const real = await runAngos(['-c', ws().configPath, 'scrub', '-b'], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(actionsOf(real.stderr, 'repaired')).toEqual(planned);
    await expect(readFile(join(ws().dir, 'data', blob))).rejects.toThrow();
    const summary = logRecords(real.stderr).find((record) => record['message'] === 'scrub finished');
    expect(summary).toMatchObject({ corrupt_removed: 1, failures: 0 });
  });

  it('--orphan-namespaces with no repository configured deletes nothing and says why; --orphan-grants takes a duration', async () => {
    await ws().writeConfig(baseConfig(ws().dir, await freePort()));
    const tagLink = 'app/_manifests/tags/v1/link';
    await put(tagLink, JSON.stringify({ digest: `sha256:${hex('gone')}` }));
    const result = await runAngos(['-c', ws().configPath, 'scrub', '-n', '--orphan-grants', '24h'], {
      env: { RUST_LOG: 'info' },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('scrub --orphan-namespaces ignored: no [repository');
    expect(await readFile(join(ws().dir, 'data', tagLink), 'utf8')).toContain(hex('gone'));
    const bad = await runAngos(['-c', ws().configPath, 'scrub', '--orphan-grants', 'soon']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--orphan-grants: invalid duration "soon"');
  });
});
