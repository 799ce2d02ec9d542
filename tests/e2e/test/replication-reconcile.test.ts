/**
 * Reconciliation between real registries (`angos scrub --replicate`), `--replication-orphans`
 * and `--orphan-grants` after a replicated push lost last-writer-wins:
 * - A: `angos server` with `[global.job_queue]` and Redis locks, and no worker, so its live
 *   replication jobs wait in its queue (as behind a worker that is down) and `scrub` runs beside
 *   it; downstreams B (its active-active peer), C (a one-way mirror with `prune = true`,
 *   `reconcile-only`) and `gone` (a downstream that never answers, later removed);
 * - B: a plain `angos server` naming A, stopped while A takes writes and deletes, then restarted
 *   on the same storage;
 * - C: a plain `angos server`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDigest } from '@angos/oci';
import { keyFor } from '@angos/storage';
import {
  type AngosInstance,
  cliEntry,
  freePort,
  OciClient,
  type RedisServer,
  run,
  skipWithout,
  startAngos,
  startRedisServer,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCI_MANIFEST, until } from './replication-fixtures.js';

const REPO = 'nginx/app';

/** Pushes a small image (a config and a layer unique to the call) and returns its digest and layer. */
async function pushImage(
  client: OciClient,
  tag: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; digest: string; layer: string }> {
  const config = Buffer.from(JSON.stringify({ tag, n: randomBytes(4).toString('hex') }));
  const layer = randomBytes(2048);
  const configDigest = await client.pushBlob(REPO, config);
  const layerDigest = await client.pushBlob(REPO, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length },
      ],
    }),
  );
  const response = await client.request('PUT', `/v2/${REPO}/manifests/${tag}`, {
    headers: { 'content-type': OCI_MANIFEST, ...headers },
    body: manifest,
  });
  await response.arrayBuffer();
  return {
    status: response.status,
    digest: response.headers.get('docker-content-digest') ?? '',
    layer: layerDigest,
  };
}

/** The tag→digest map of the repository (empty when it has none). */
async function tagMap(client: OciClient): Promise<Record<string, string>> {
  const listed = await client.request('GET', `/v2/${REPO}/tags/list`);
  if (listed.status === 404) {
    await listed.arrayBuffer();
    return {};
  }
  const { tags } = (await listed.json()) as { tags: string[] | null };
  const map: Record<string, string> = {};
  for (const tag of tags ?? []) {
    const head = await client.request('HEAD', `/v2/${REPO}/manifests/${tag}`, {
      headers: { accept: OCI_MANIFEST },
    });
    await head.arrayBuffer();
    if (head.status === 200) map[tag] = head.headers.get('docker-content-digest') ?? '';
  }
  return map;
}

interface ScrubLine {
  readonly message: string;
  readonly action?: string;
  readonly key?: string;
}

/** Runs `angos -c <config> scrub <flags>`; its exit status and JSON log lines. */
async function scrub(configPath: string, flags: readonly string[]) {
  const result = await run(process.execPath, [cliEntry(), '-c', configPath, 'scrub', ...flags], {
    env: { ...process.env, RUST_LOG: 'info' },
    timeoutMs: 120_000,
  });
  const lines: ScrubLine[] = [];
  for (const line of `${result.stdout}\n${result.stderr}`.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as ScrubLine);
    } catch {
      // not a log line
    }
  }
  const actions = (message: string) =>
    lines
      .filter((line) => line.message === message)
      .map((line) => `${line.action} ${line.key}`)
      .sort();
  return { result, lines, actions };
}

interface Job {
  readonly id: string;
  readonly payload: { downstream?: string; tag?: string };
}

async function jobs(instance: AngosInstance, state: 'pending' | 'failed'): Promise<Job[]> {
  const response = await fetch(`${instance.url}/v2/_ext/jobs/${state}?queue=replication&n=1000`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { jobs: Job[] }).jobs;
}

describe.skipIf(skipWithout('the reconciliation tests', 'redis-server'))(
  'replication: scrub --replicate after a partition, a prune mirror, orphan jobs and grants',
  () => {
    let redis: RedisServer;
    let work: string;
    let a: AngosInstance;
    let b: AngosInstance;
    let c: AngosInstance;
    let portB: number;
    let rootB: string;
    let configB: string;
    const clients = () => ({ a: new OciClient(a.url), b: new OciClient(b.url), c: new OciClient(c.url) });

    const startB = () =>
      startAngos({
        mode: 'server',
        port: portB,
        rootDir: rootB,
        config: configB,
      });

    beforeAll(async () => {
      redis = await startRedisServer();
      work = await mkdtemp(join(tmpdir(), 'angos-reconcile-'));
      rootB = join(work, 'b');
      const rootA = join(work, 'a');
      const [portA, closed] = [await freePort(), await freePort()];
      portB = await freePort();
      c = await startAngos({ mode: 'server' });
      configB = [
        '[repository."nginx"]',
        '[[repository."nginx".downstream]]',
        'name = "instance-a"',
        `url = "http://127.0.0.1:${portA}"`,
      ].join('\n');
      b = await startB();
      a = await startAngos({
        mode: 'server',
        port: portA,
        config: [
          `[blob_store.fs]\nroot_dir = ${JSON.stringify(rootA)}`,
          `[metadata_store.fs]\nroot_dir = ${JSON.stringify(rootA)}`,
          `[metadata_store.fs.lock_strategy.redis]\nurl = "${redis.url}"\nttl = 10\nkey_prefix = "a"`,
          '[global.job_queue]\npending_refresh_interval_secs = 5',
          '[repository."nginx"]',
          '[[repository."nginx".downstream]]\nname = "instance-b"',
          `url = "http://127.0.0.1:${portB}"`,
          '[[repository."nginx".downstream]]\nname = "mirror"',
          `url = ${JSON.stringify(c.url)}\nmode = "reconcile-only"\nprune = true`,
          '[[repository."nginx".downstream]]\nname = "gone"',
          `url = "http://127.0.0.1:${closed}"\nmode = "event-only"`,
        ].join('\n'),
      });
    }, 90_000);

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
      await redis?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('B down while A takes writes and deletes; after B is back one scrub --replicate converges A, B and the mirror', async () => {
      let { a: clientA, b: clientB, c: clientC } = clients();
      for (const tag of ['v1', 'v2', 'old']) expect((await pushImage(clientA, tag)).status).toBe(201);
      // The first reconciliation pushes everything to B (joining the live jobs) and the mirror.
      const first = await scrub(a.configPath, ['--replicate']);
      expect(first.result.code, first.result.stderr).toBe(0);
      const before = await tagMap(clientA);
      expect(Object.keys(before).sort()).toEqual(['old', 'v1', 'v2']);
      expect(await tagMap(clientB)).toEqual(before);
      expect(await tagMap(clientC)).toEqual(before);

      await b.stop();
      const moved = await pushImage(clientA, 'v1');
      const added = await pushImage(clientA, 'v3');
      expect(await clientA.deleteManifest(REPO, 'old')).toBe(202);
      // A lost event: the live job that would push v3 to B is gone (deleted through the jobs API).
      const lost = (await jobs(a, 'pending')).filter(
        (job) => job.payload.downstream === 'instance-b' && job.payload.tag === 'v3',
      );
      expect(lost).toHaveLength(1);
      const deleted = await fetch(`${a.url}/v2/_ext/jobs/pending/replication/${lost[0]?.id}`, {
        method: 'DELETE',
      });
      expect(deleted.status).toBe(202);
      // And a stray tag on the mirror, which the prune removes.
      expect((await pushImage(clientC, 'stray')).status).toBe(201);
      b = await startB();
      ({ b: clientB } = clients());
      expect((await tagMap(clientB)).old).toBeDefined(); // B missed the delete

      const expected = [
        'enqueue-replication-delete replication:mirror:nginx/app:tag:old',
        'enqueue-replication-delete replication:mirror:nginx/app:tag:stray',
        'enqueue-replication-push replication:instance-b:nginx/app:tag:v1',
        'enqueue-replication-push replication:instance-b:nginx/app:tag:v3',
        'enqueue-replication-push replication:mirror:nginx/app:tag:v1',
        'enqueue-replication-push replication:mirror:nginx/app:tag:v3',
      ];
      const dry = await scrub(a.configPath, ['--replicate', '--dry-run']);
      expect(dry.result.code, dry.result.stderr).toBe(0);
      expect(dry.actions('would repair')).toEqual(expected);
      const real = await scrub(a.configPath, ['--replicate']);
      expect(real.result.code, real.result.stderr).toBe(0);
      expect(real.actions('repaired')).toEqual(expected);
      expect(real.lines.some((line) => line.message === 'replication drain finished')).toBe(true);

      const after = await tagMap(clientA);
      expect(after).toEqual({ v1: moved.digest, v2: before.v2, v3: added.digest });
      // The delete reached B through its live job, which the run drained with the others.
      expect(await tagMap(clientB)).toEqual(after);
      expect(await tagMap(clientC)).toEqual(after);
      // Converged: nothing more to do.
      const again = await scrub(a.configPath, ['--replicate', '--dry-run']);
      expect(again.actions('would repair')).toEqual([]);
    }, 180_000);

    it('--replication-orphans clears the jobs of a downstream removed from the configuration', async () => {
      const ofGone = async () =>
        [...(await jobs(a, 'pending')), ...(await jobs(a, 'failed'))].filter(
          (job) => job.payload.downstream === 'gone',
        );
      // A live job for `gone` (with those of the test above: waiting for retries, or dead-lettered).
      expect((await pushImage(new OciClient(a.url), 'for-gone')).status).toBe(201);
      const orphans = await ofGone();
      expect(orphans.length).toBeGreaterThan(0);
      const others = (await jobs(a, 'failed')).length + (await jobs(a, 'pending')).length - orphans.length;
      const config = (await readFile(a.configPath, 'utf8')).replace(
        /\[\[repository\."nginx"\.downstream\]\]\nname = "gone"\nurl = "[^"]*"\nmode = "event-only"\n/,
        '',
      );
      expect(config).not.toContain('"gone"');
      const withoutGone = join(work, 'without-gone.toml');
      await writeFile(withoutGone, config);

      // The lag gauge shows them: `gone` has old jobs, the mirror (whose jobs succeed) none.
      const lag = async (): Promise<string[]> => [
        ...((await (await fetch(`${a.url}/metrics`)).text()).match(/^angos_replication_lag_seconds\{.*$/gm) ??
          []),
      ];
      await until('the lag of gone', async () =>
        (await lag()).some((line) => /downstream="gone"\} [1-9]/.test(line)),
      );
      // The mirror's job for `for-gone` runs at once, but on a loaded machine not necessarily yet.
      await until('the mirror caught up', async () =>
        (await lag()).includes('angos_replication_lag_seconds{downstream="mirror"} 0'),
      );

      const dry = await scrub(withoutGone, ['--replication-orphans', '--dry-run']);
      expect(dry.result.code, dry.result.stderr).toBe(0);
      expect(dry.actions('would repair')).toHaveLength(orphans.length);
      expect(await ofGone()).toHaveLength(orphans.length);
      const real = await scrub(withoutGone, ['--replication-orphans']);
      expect(real.result.code, real.result.stderr).toBe(0);
      expect(real.actions('repaired')).toEqual(dry.actions('would repair'));
      expect(await ofGone()).toEqual([]);
      expect((await jobs(a, 'failed')).length + (await jobs(a, 'pending')).length).toBe(others);
      // `gone` is still configured on the running A: its lag falls to 0.
      await until('no lag of gone', async () =>
        (await lag()).includes('angos_replication_lag_seconds{downstream="gone"} 0'),
      );
    }, 120_000);

    it('--orphan-grants reclaims the blobs of a replicated push whose manifest lost last-writer-wins', async () => {
      const { b: clientB } = clients();
      const winner = await pushImage(clientB, 'lww');
      expect(winner.status).toBe(201);
      // A replicated push dated before B's write: its blobs are uploaded, its manifest refused.
      const loser = await pushImage(clientB, 'lww', {
        'x-angos-source-timestamp': '2001-01-01T00:00:00.000Z',
      });
      expect(loser.status).toBe(409);
      expect(await clientB.headBlob(REPO, loser.layer)).toBe(200);

      // B runs on fs with the memory lock: the repairing run is handed to B itself.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const reclaimed = await scrub(b.configPath, ['--orphan-grants', '1s']);
      expect(reclaimed.result.code, reclaimed.result.stderr).toBe(0);
      const grant = keyFor({ kind: 'layerLink', namespace: REPO, digest: parseDigest(loser.layer) });
      expect(reclaimed.actions('repaired')).toContain(`revoke-grant ${grant}`);
      const after = new OciClient(b.url);
      expect(await after.headBlob(REPO, loser.layer)).toBe(404);
      expect(await after.headBlob(REPO, winner.layer)).toBe(200);
      expect((await tagMap(after)).lww).toBe(winner.digest);
    }, 120_000);
  },
);
