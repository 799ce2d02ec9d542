import { parseConfig } from '@angos/config';
import { JobQueue, JobRunner, TerminalJobError } from '@angos/jobs';
import { createMetrics, silentLogger } from '@angos/observability';
import { keyFor } from '@angos/storage';
import { DISTRIBUTION_USER, type Distribution, skipWithout, startDistribution } from '@angos/test-support';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KINDS, openStore, pushImage, type Store } from './support.js';

/**
 * The replication checks on real stores (fs, and Ceph RGW when it runs):
 * - `--replication-orphans`: the jobs of the `replication` queue, pending and dead-lettered, whose
 *   downstream is no longer configured are deleted, the rest kept;
 * - `--replicate`: one job per tag missing or diverging on a real downstream (CNCF distribution),
 *   keyed as the live path keys them; a dry run lists exactly what the real run enqueues.
 */

const REPLICATION = 'replication';

/** `team` keeps its downstream `eu`; `team`'s `us` was removed; `gone` lost its repository. */
const CONFIG = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[repository."team"]
[[repository."team".downstream]]
name = "eu"
url = "https://eu.example.com"
`).config;

const payload = (namespace: string, downstream: string, tag: string) => ({
  namespace,
  downstream,
  tag,
  change: 'push',
  sourceTimestamp: new Date().toISOString(),
});

/** The `angos_replication_reconcile_total` series of `metrics`. */
const reconcileSeries = async (metrics: ReturnType<typeof createMetrics>) =>
  (await metrics.render()).body
    .split('\n')
    .filter((line) => line.startsWith('angos_replication_reconcile_total{'));

const sortedByKey = (actions: ReadonlyArray<{ action: string; key: string }>) =>
  actions.map(({ action, key }) => ({ action, key })).sort((a, b) => a.key.localeCompare(b.key));

describe.each(KINDS)('scrub --replication-orphans on %s', (kind) => {
  let store: Store;
  let queue: JobQueue;
  beforeEach(async () => {
    store = await openStore(kind);
    queue = new JobQueue({ store: store.metadata, logger: silentLogger });
  });
  afterEach(async () => {
    await store.close();
  });

  const enqueue = (namespace: string, downstream: string, tag: string) =>
    queue.enqueue(
      REPLICATION,
      'replication',
      `replication:${downstream}:${namespace}:tag:${tag}`,
      payload(namespace, downstream, tag),
    );

  /** Dead-letters the pending jobs, as a downstream refusing the credentials would. */
  async function deadLetterAll(): Promise<void> {
    const runner = new JobRunner({
      queue,
      locks: store.locks,
      pools: [{ name: REPLICATION, concurrency: 4 }],
      handlers: [
        {
          kind: 'replication',
          run: async () => {
            throw new TerminalJobError('downstream answered 401');
          },
        },
      ],
      pollIntervalMs: 20,
      logger: silentLogger,
    });
    runner.start();
    try {
      const deadline = Date.now() + 30_000;
      while ((await queue.listPending(REPLICATION)).items.length > 0) {
        if (Date.now() > deadline) throw new Error('jobs not dead-lettered in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await runner.stop(1000);
    }
  }

  it('deletes the jobs of removed downstreams and repositories, and only those', async () => {
    const failedKept = await enqueue('team/app', 'eu', 'f1');
    const failedOrphan = await enqueue('team/app', 'us', 'f2');
    await deadLetterAll();
    const kept = await enqueue('team/app', 'eu', 'p1');
    const renamed = await enqueue('team/app', 'us', 'p2');
    const noRepository = await enqueue('gone/app', 'eu', 'p3');
    // A cache job of the same namespace is not replication's.
    await queue.enqueue('cache', 'fill-blob', 'cache:gone/app', { namespace: 'gone/app' });

    const pendingKey = async (id: string) => {
      const job = (await queue.listPending(REPLICATION)).items.find((item) => item.id === id);
      const name = `${String(Date.parse(job!.notBefore)).padStart(15, '0')}-${id}`;
      return keyFor({ kind: 'jobPending', queue: REPLICATION, name });
    };
    const expected = sortedByKey([
      { action: 'delete-pending-job', key: await pendingKey(renamed.id) },
      { action: 'delete-pending-job', key: await pendingKey(noRepository.id) },
      {
        action: 'delete-failed-job',
        key: keyFor({ kind: 'jobFailed', queue: REPLICATION, id: failedOrphan.id }),
      },
    ]);

    const selection = { replicationOrphans: { config: CONFIG } };
    const before = await store.snapshot();
    const dry = await store.scrub(true, selection);
    expect(await store.snapshot()).toEqual(before);
    expect(sortedByKey(dry.actions)).toEqual(expected);
    expect(dry.actions.every((action) => action.check === 'replication-orphans')).toBe(true);

    const real = await store.scrub(false, selection);
    expect(sortedByKey(real.actions)).toEqual(expected);
    expect(real.summary).toMatchObject({ repairs: 3, failures: 0 });
    expect((await queue.listPending(REPLICATION)).items.map((item) => item.id)).toEqual([kept.id]);
    expect((await queue.listFailed(REPLICATION)).items.map((item) => item.id)).toEqual([failedKept.id]);
    expect((await queue.listPending('cache')).items).toHaveLength(1);
    expect((await store.scrub(false, selection)).actions).toEqual([]);
  });
});

describe.skipIf(skipWithout('replication to CNCF distribution', 'docker-registry'))(
  'scrub --replicate against CNCF distribution',
  () => {
    let distribution: Distribution;
    let store: Store;

    beforeAll(async () => {
      distribution = await startDistribution({ auth: 'htpasswd' });
      store = await openStore('fs');
    });
    afterAll(async () => {
      await store?.close();
      await distribution?.stop();
    });

    it('enqueues one push per tag the downstream lacks; the dry run lists exactly those', async () => {
      const config = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[repository."team"]
[[repository."team".downstream]]
name = "mirror"
url = ${JSON.stringify(distribution.url)}
username = ${JSON.stringify(DISTRIBUTION_USER.username)}
password = ${JSON.stringify(DISTRIBUTION_USER.password)}
[repository."solo"]
`).config;
      await pushImage(store.registry, 'team/app', 'v1', { config: '{"n":1}', layers: ['one'] });
      await pushImage(store.registry, 'team/app', 'v2', { config: '{"n":2}', layers: ['two'] });
      // A repository without downstreams is not reconciled.
      await pushImage(store.registry, 'solo', 'v1', { config: '{"n":3}', layers: ['three'] });
      const queue = new JobQueue({ store: store.metadata, logger: silentLogger });
      const metrics = createMetrics({ defaultMetrics: false });
      const selection = { replicate: { config, metrics } };
      const expected = [
        { action: 'enqueue-replication-push', key: 'replication:mirror:team/app:tag:v1' },
        { action: 'enqueue-replication-push', key: 'replication:mirror:team/app:tag:v2' },
      ];

      const dry = await store.scrub(true, selection);
      expect(sortedByKey(dry.actions)).toEqual(expected);
      expect(await queue.pendingNames(REPLICATION)).toEqual([]);
      // A dry run queues nothing, so counts nothing.
      expect(await reconcileSeries(metrics)).toEqual([]);

      const real = await store.scrub(false, selection);
      expect(sortedByKey(real.actions)).toEqual(expected);
      expect(real.summary).toMatchObject({ repairs: 2, failures: 0 });
      const jobs = (await queue.listPending(REPLICATION)).items;
      expect(jobs.map((job) => job.payload)).toEqual([
        expect.objectContaining({ namespace: 'team/app', downstream: 'mirror', tag: 'v1', change: 'push' }),
        expect.objectContaining({ namespace: 'team/app', downstream: 'mirror', tag: 'v2', change: 'push' }),
      ]);
      expect(jobs[0]?.lockKey).toBe('replication:mirror:team/app:tag:v1');
      expect(await reconcileSeries(metrics)).toEqual([
        'angos_replication_reconcile_total{outcome="enqueued"} 2',
      ]);

      // Run again before the jobs ran: the same decisions, joined to the pending jobs.
      await store.scrub(false, selection);
      expect((await queue.listPending(REPLICATION)).items.map((job) => job.id)).toEqual(
        jobs.map((job) => job.id),
      );
    });

    it('fails the check (after the others) when a downstream cannot be compared', async () => {
      const config = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[repository."team"]
[[repository."team".downstream]]
name = "down"
url = "http://127.0.0.1:9"
`).config;
      const metrics = createMetrics({ defaultMetrics: false });
      const { summary, actions } = await store.scrub(false, { replicate: { config, metrics } });
      expect(actions).toEqual([]);
      expect(summary.failures).toBe(1);
      // One namespace could not be compared with one downstream.
      expect(await reconcileSeries(metrics)).toEqual([
        'angos_replication_reconcile_total{outcome="skipped"} 1',
      ]);
    });

    it('counts an enqueue that fails as failed', async () => {
      const config = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[repository."team"]
[[repository."team".downstream]]
name = "mirror"
url = ${JSON.stringify(distribution.url)}
username = ${JSON.stringify(DISTRIBUTION_USER.username)}
password = ${JSON.stringify(DISTRIBUTION_USER.password)}
`).config;
      await pushImage(store.registry, 'team/lost', 'v1', { config: '{"n":4}', layers: ['four'] });
      const metrics = createMetrics({ defaultMetrics: false });
      const enqueue = async (): Promise<never> => {
        throw new Error('the metadata store refused the job');
      };
      const { summary } = await store.scrub(false, { replicate: { config, metrics, enqueue } });
      // Every push decided (team/lost:v1, and the tags of the tests above) failed to queue.
      expect(summary.failures).toBeGreaterThan(0);
      expect(await reconcileSeries(metrics)).toEqual([
        `angos_replication_reconcile_total{outcome="failed"} ${summary.failures}`,
      ]);
    });
  },
);
