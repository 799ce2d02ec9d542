import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobQueue } from '@angos/jobs';
import { parseDigest } from '@angos/oci';
import { createBlobStore, createMetadataStore } from '@angos/storage';
import { OciClient, skipWithout, startDistribution, startWebhookReceiver } from '@angos/test-support';
import { BLOB_FILL_JOB, CACHE_QUEUE } from '@angos/upstream';
import { describe, expect, it } from 'vitest';
import {
  baseConfig,
  freePort,
  type LongRunning,
  runAngos,
  startAngos,
  useRedisServer,
  useWorkspace,
  waitForHttp,
  waitForRecord,
} from './helpers.js';

/**
 * `angos worker` and the in-process drain, spawned. The tests enqueue straight into the metadata
 * store (a JobQueue on the same directory, as another replica would); a job of a kind this build
 * does not know ends in the dead letter with "unknown job kind": proof that something drained it.
 * The pull-through cache's fills (`cache` queue, kind `blob`) are run for real.
 */

const ws = useWorkspace();
const REDIS_LOCK = (url: string) => `[metadata_store.fs.lock_strategy.redis]\nurl = "${url}"\nttl = 5\n`;
const JOB_QUEUE = '[global.job_queue]\npending_refresh_interval_secs = 5\n';

/** The queue the processes of the workspace use (fs metadata defaults to the blob store's root). */
const queueOf = () =>
  new JobQueue({
    store: createMetadataStore({ kind: 'fs', rootDir: join(ws().dir, 'data'), syncToDisk: false }),
  });

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  process?: LongRunning,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${process?.output() ?? ''}`);
    await sleep(100);
  }
}

/** Waits until the job is dead-lettered; resolves with its last error. */
const deadLettered = (queue: JobQueue, name: string, id: string, process?: LongRunning) =>
  until(
    `job ${id} in the dead letter`,
    async () => (await queue.listFailed(name)).items.find((job) => job.id === id)?.lastError,
    process,
  );

const metricsText = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

describe('angos worker refuses to start', () => {
  it('without [global.job_queue]', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 0));
    const { code, stderr } = await runAngos(['-c', ws().configPath, 'worker']);
    expect(code).toBe(1);
    expect(stderr).toContain('angos worker requires [global.job_queue]');
  });

  it('with the memory lock, naming the keys', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 0, JOB_QUEUE));
    const { code, stderr } = await runAngos(['-c', ws().configPath, 'worker']);
    expect(code).toBe(1);
    expect(stderr).toContain(
      'global.job_queue: requires a shared lock strategy ([metadata_store.fs.lock_strategy.redis])',
    );
  });

  it('with an unknown --queue or a bad --poll-interval (usage errors)', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 0));
    const queue = await runAngos(['-c', ws().configPath, 'worker', '--queue', 'cache', '--queue', 'nope']);
    expect(queue.code).toBe(1);
    expect(queue.stderr).toContain('--queue: unknown queue "nope" (expected cache, replication or events)');
    const poll = await runAngos(['-c', ws().configPath, 'worker', '--poll-interval', 'soon']);
    expect(poll.code).toBe(1);
    expect(poll.stderr).toContain('--poll-interval: invalid duration "soon"');
  });
});

describe('angos server without [global.job_queue]', () => {
  it('drains the queue in its own process', async () => {
    const port = await freePort();
    await ws().writeConfig(baseConfig(ws().dir, port));
    const server = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, server);
    const queue = queueOf();
    const { id } = await queue.enqueue('replication', 'from-the-future', 'in-process', {});
    expect(await deadLettered(queue, 'replication', id, server)).toBe('unknown job kind "from-the-future"');
    expect(await metricsText(port)).toContain(
      'angos_jobs_finished_total{queue="replication",kind="from-the-future",outcome="dead_lettered"} 1',
    );
    expect(await server.stop()).toBe(0);
  }, 60_000);
});

describe.skipIf(skipWithout('the angos worker test', 'redis-server'))('angos worker (redis-server)', () => {
  const redis = useRedisServer();

  it('leaves the jobs to workers when the server has [global.job_queue]; a worker drains them, reloads, and stops on SIGTERM', async () => {
    const serverPort = await freePort();
    const workerPort = await freePort();
    const config = (extra = '') =>
      baseConfig(ws().dir, serverPort, `${JOB_QUEUE}${extra}${REDIS_LOCK(redis().url)}`);
    await ws().writeConfig(config());
    const queue = queueOf();
    const { id } = await queue.enqueue('cache', 'from-the-future', 'worker', {});

    // The server publishes the gauge and leaves the job alone.
    const server = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`http://127.0.0.1:${serverPort}/healthz`, server);
    await until(
      'the pending gauge on the server',
      async () =>
        (await metricsText(serverPort)).includes('angos_job_queue_pending{queue="cache"} 1') || undefined,
    );
    await sleep(1500);
    expect((await queue.listPending('cache')).items.map((job) => [job.id, job.claimed])).toEqual([
      [id, false],
    ]);

    const worker = startAngos([
      '-c',
      ws().configPath,
      'worker',
      '--listen',
      `127.0.0.1:${workerPort}`,
      '--poll-interval',
      '200ms',
    ]);
    const url = `http://127.0.0.1:${workerPort}`;
    await waitForHttp(`${url}/healthz`, worker);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await deadLettered(queue, 'cache', id, worker)).toBe('unknown job kind "from-the-future"');
    const metrics = await until('the worker gauges', async () => {
      const text = await metricsText(workerPort);
      return text.includes('angos_job_queue_failed{queue="cache"} 1') ? text : undefined;
    });
    for (const line of [
      'angos_job_queue_pending{queue="cache"} 0',
      'angos_job_queue_pending{queue="replication"} 0',
      '# TYPE angos_job_queue_enqueued_total counter',
      '# TYPE angos_job_queue_enqueue_failures_total counter',
      'angos_jobs_finished_total{queue="cache",kind="from-the-future",outcome="dead_lettered"} 1',
      'angos_job_duration_seconds_count{queue="cache",kind="from-the-future"} 1',
    ]) {
      expect(metrics).toContain(line);
    }

    // A configuration change: a new runner (its own storage and locks) takes the next claims.
    await ws().writeConfig(config('[global]\nmax_concurrent_cache_jobs = 2\n'));
    await waitForRecord(
      worker,
      (record) => record['message'] === 'job runner reloaded: new claims use the new configuration',
    );
    const second = await queue.enqueue('cache', 'from-the-future', 'after-reload', {});
    expect(await deadLettered(queue, 'cache', second.id, worker)).toBe('unknown job kind "from-the-future"');

    expect(await worker.stop(15_000)).toBe(0);
    await waitForRecord(worker, (record) => record['message'] === 'stopped');
    expect(await server.stop()).toBe(0);
  }, 120_000);

  it.skipIf(skipWithout('the cache worker test', 'docker-registry'))(
    'angos worker --queue cache runs the fills of the pull-through cache',
    async () => {
      const upstream = await startDistribution();
      try {
        const data = randomBytes(256 * 1024);
        const digest = await new OciClient(upstream.url).pushBlob('team/app', data);
        const workerPort = await freePort();
        const mirror = `[[repository."mirror".upstream]]\nurl = "${upstream.url}"\n`;
        await ws().writeConfig(baseConfig(ws().dir, 0, `${JOB_QUEUE}${mirror}${REDIS_LOCK(redis().url)}`));
        const queue = queueOf();
        // What a fill of a cold blob leaves queued when its process dies before finishing it.
        const { id } = await queue.enqueue(CACHE_QUEUE, BLOB_FILL_JOB, `worker-test:${digest}`, {
          namespace: 'mirror/team/app',
          digest,
        });
        const worker = startAngos([
          '-c',
          ws().configPath,
          'worker',
          '--queue',
          'cache',
          '--listen',
          `127.0.0.1:${workerPort}`,
          '--poll-interval',
          '200ms',
        ]);
        await waitForHttp(`http://127.0.0.1:${workerPort}/healthz`, worker);
        const ours = (jobs: { id: string }[]) => jobs.some((job) => job.id === id);
        await until(
          `job ${id} done`,
          async () => (ours((await queue.listPending(CACHE_QUEUE)).items) ? undefined : true),
          worker,
        );
        // (The workspace is shared: earlier tests left jobs of their own in the dead letter.)
        expect(ours((await queue.listFailed(CACHE_QUEUE)).items)).toBe(false);
        const blobs = createBlobStore({ kind: 'fs', rootDir: join(ws().dir, 'data'), syncToDisk: false });
        expect(await blobs.statBlob(parseDigest(digest))).toEqual({ size: data.length });
        expect(await metricsText(workerPort)).toContain(
          `angos_jobs_finished_total{queue="cache",kind="${BLOB_FILL_JOB}",outcome="completed"} 1`,
        );
        expect(await worker.stop(15_000)).toBe(0);
      } finally {
        await upstream.stop();
      }
    },
    120_000,
  );

  it('angos worker --queue events delivers the async events a server with [global.job_queue] only queued', async () => {
    const hook = await startWebhookReceiver({ token: 'worker-secret' });
    try {
      const serverPort = await freePort();
      const workerPort = await freePort();
      const webhook = [
        '[global]',
        'event_webhooks = ["later"]',
        '[global.access_policy]',
        'default = "allow"',
        JOB_QUEUE,
        '[event_webhook.later]',
        `url = ${JSON.stringify(hook.url)}`,
        'policy = "async"',
        'token = "worker-secret"',
        'events = ["blob.push"]',
        'max_retries = 5',
        '',
      ].join('\n');
      await ws().writeConfig(baseConfig(ws().dir, serverPort, `${webhook}${REDIS_LOCK(redis().url)}`));
      const server = startAngos(['-c', ws().configPath, 'server']);
      await waitForHttp(`http://127.0.0.1:${serverPort}/healthz`, server);
      const digest = await new OciClient(`http://127.0.0.1:${serverPort}`).pushBlob(
        'team/events',
        randomBytes(512),
      );
      await sleep(500);
      expect(hook.deliveries).toHaveLength(0); // the server only queued it
      const worker = startAngos([
        '-c',
        ws().configPath,
        'worker',
        '--queue',
        'events',
        '--listen',
        `127.0.0.1:${workerPort}`,
        '--poll-interval',
        '200ms',
      ]);
      await waitForHttp(`http://127.0.0.1:${workerPort}/healthz`, worker);
      await hook.waitFor((deliveries) => deliveries.some((d) => d.status === 200), 30_000);
      expect(hook.deliveries.map((d) => [d.event['kind'], d.event['digest'], d.signatureValid])).toEqual([
        ['blob.push', digest, true],
      ]);
      expect(await metricsText(workerPort)).toContain(
        'event_webhook_deliveries_total{webhook="later",event="blob.push",result="success"} 1',
      );
      expect(await worker.stop(15_000)).toBe(0);
      expect(await server.stop()).toBe(0);
    } finally {
      await hook.close();
    }
  }, 120_000);
});
