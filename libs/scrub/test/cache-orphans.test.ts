import { parseConfig } from '@angos/config';
import { JobQueue, JobRunner, TerminalJobError } from '@angos/jobs';
import { silentLogger } from '@angos/observability';
import { keyFor } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KINDS, openStore, type Store } from './support.js';

/**
 * `--cache-orphans` on real stores (fs, and Ceph RGW when it runs): the jobs of the `cache` queue,
 * pending and dead-lettered, whose namespace no repository with an upstream governs any more are
 * deleted, the rest are kept, and a dry run lists exactly the deletions of the real run.
 */

/** `docker-io` keeps its upstream; `ghcr` lost it; `quay` was removed. */
const CONFIG = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
[repository."ghcr"]
immutable_tags = true
`).config;

const CACHE = 'cache';

describe.each(KINDS)('scrub --cache-orphans on %s', (kind) => {
  let store: Store;
  let queue: JobQueue;
  beforeEach(async () => {
    store = await openStore(kind);
    queue = new JobQueue({ store: store.metadata, logger: silentLogger });
  });
  afterEach(async () => {
    await store.close();
  });

  /** Enqueues a cache job for `namespace` (undefined: a payload without one). */
  const enqueue = (namespace: string | undefined, digest: string) =>
    queue.enqueue(
      CACHE,
      'fill-blob',
      `cache:${namespace}:${digest}`,
      namespace === undefined ? { digest } : { namespace, digest },
    );

  /** Dead-letters the pending jobs of the queue through the runner, as a failing fill would. */
  async function deadLetterAll(): Promise<void> {
    const runner = new JobRunner({
      queue,
      locks: store.locks,
      pools: [{ name: CACHE, concurrency: 4 }],
      handlers: [
        {
          kind: 'fill-blob',
          run: async () => {
            throw new TerminalJobError('upstream refused');
          },
        },
      ],
      pollIntervalMs: 20,
      logger: silentLogger,
    });
    runner.start();
    try {
      const deadline = Date.now() + 30_000;
      while ((await queue.listPending(CACHE)).items.length > 0) {
        if (Date.now() > deadline) throw new Error('jobs not dead-lettered in time');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await runner.stop(1000);
    }
  }

  it('deletes the pending and dead-lettered jobs of namespaces no longer cached, and only those', async () => {
    const failedKept = await enqueue('docker-io/library/alpine', 'sha256:f1');
    const failedOrphan = await enqueue('quay/app', 'sha256:f2');
    await deadLetterAll();
    const kept = await enqueue('docker-io/library/alpine', 'sha256:p1');
    const keptRoot = await enqueue('docker-io', 'sha256:p2');
    const noNamespace = await enqueue(undefined, 'sha256:p3');
    const lostUpstream = await enqueue('ghcr/team/app', 'sha256:p4');
    const removed = await enqueue('quay/app', 'sha256:p5');
    // A replication job of the same namespace is not the cache's.
    await queue.enqueue('replication', 'push', 'push:quay/app', { namespace: 'quay/app' });

    const pendingKey = async (id: string) => {
      const job = (await queue.listPending(CACHE)).items.find((item) => item.id === id);
      const notBefore = Date.parse(job!.notBefore);
      return keyFor({
        kind: 'jobPending',
        queue: CACHE,
        name: `${String(notBefore).padStart(15, '0')}-${id}`,
      });
    };
    const expected = [
      { action: 'delete-pending-job', key: await pendingKey(lostUpstream.id) },
      { action: 'delete-pending-job', key: await pendingKey(removed.id) },
      { action: 'delete-failed-job', key: keyFor({ kind: 'jobFailed', queue: CACHE, id: failedOrphan.id }) },
    ].sort((a, b) => a.key.localeCompare(b.key));

    const before = await store.snapshot();
    const dry = await store.scrub(true, { cacheOrphans: { config: CONFIG } });
    expect(await store.snapshot()).toEqual(before);
    const actions = (run: typeof dry) =>
      run.actions.map(({ action, key }) => ({ action, key })).sort((a, b) => a.key.localeCompare(b.key));
    expect(actions(dry)).toEqual(expected);
    expect(dry.actions.every((action) => action.check === 'cache-orphans')).toBe(true);

    const real = await store.scrub(false, { cacheOrphans: { config: CONFIG } });
    expect(actions(real)).toEqual(expected);
    expect(real.summary).toMatchObject({ repairs: 3, failures: 0 });

    const pendingIds = (await queue.listPending(CACHE)).items.map((item) => item.id).sort();
    expect(pendingIds).toEqual([kept.id, keptRoot.id, noNamespace.id].sort());
    expect((await queue.listFailed(CACHE)).items.map((item) => item.id)).toEqual([failedKept.id]);
    expect((await queue.listPending('replication')).items).toHaveLength(1);
    // Nothing left to do: a second run plans nothing.
    expect((await store.scrub(false, { cacheOrphans: { config: CONFIG } })).actions).toEqual([]);
    // The lock key of a deleted job is free again: a new enqueue makes a new job.
    expect((await enqueue('quay/app', 'sha256:p5')).deduplicated).toBe(false);
  });

  it('plans nothing, and changes nothing, without cache jobs', async () => {
    const before = await store.snapshot();
    for (const dryRun of [true, false]) {
      const { actions, summary } = await store.scrub(dryRun, { cacheOrphans: { config: CONFIG } });
      expect(actions).toEqual([]);
      expect(summary.failures).toBe(0);
    }
    expect(await store.snapshot()).toEqual(before);
  });
});
