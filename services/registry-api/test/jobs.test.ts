import { JobRunner, TerminalJobError } from '@angos/jobs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Api, BACKENDS, type Backend, type Reply, s3Server, startApi, usesS3 } from './harness.js';

let api: Api;
afterEach(async () => api?.close());

function errorCode(reply: Reply): string {
  return reply.json().errors[0].code;
}

/** The path and query of a `Link: <…>; rel="next"` header. */
function nextLink(reply: Reply): string | undefined {
  const link = reply.headers.link;
  if (typeof link !== 'string') return undefined;
  return /^<([^>]+)>; rel="next"$/.exec(link)?.[1];
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Dead-letters `count` jobs of `queue` the way a worker does: a handler that fails terminally
 * (a peer answering 403). Returns their ids in enqueue (listing) order.
 */
async function seedFailedJobs(queue: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push((await api.jobs.enqueue(queue, 'replicate', `tag:team/app:v${i}`, { tag: `v${i}` })).id);
  }
  const runner = new JobRunner({
    queue: api.jobs,
    locks: api.locks,
    pools: [{ name: queue, concurrency: 2 }],
    handlers: [
      {
        kind: 'replicate',
        async run() {
          throw new TerminalJobError('the downstream answered 403');
        },
      },
    ],
    pollIntervalMs: 20,
  });
  runner.start();
  try {
    await waitFor(`${count} dead letters`, async () => (await api.jobs.failedCount(queue)) === count);
  } finally {
    await runner.stop(0);
  }
  return ids;
}

// Jobs live in the metadata store: fs and S3 (the splits add nothing here).
const METADATA_BACKENDS = BACKENDS.filter((backend) => backend.blob === backend.metadata);

describe.each(METADATA_BACKENDS)('on $name storage', (backend: Backend) => {
  describe.skipIf(usesS3(backend) && !s3Server)('jobs API', () => {
    beforeEach(async () => {
      api = await startApi('', undefined, [], backend);
    });

    it('lists pending jobs with their envelope, a page at a time with a Link to the next', async () => {
      const first = await api.jobs.enqueue('replication', 'replicate', 'tag:team/app:v1', { tag: 'v1' });
      const second = await api.jobs.enqueue(
        'replication',
        'replicate',
        'tag:team/app:v2',
        { tag: 'v2' },
        {
          maxAttempts: 3,
        },
      );
      const third = await api.jobs.enqueue('replication', 'replicate', 'tag:team/app:v3', { tag: 'v3' });
      await api.jobs.enqueue('cache', 'fetch', 'blob:x', {});

      const page1 = await api.send('GET', '/v2/_ext/jobs/pending?queue=replication&n=2');
      expect(page1.status).toBe(200);
      expect(page1.headers['content-type']).toBe('application/json');
      const body1 = page1.json();
      expect(body1.queue).toBe('replication');
      expect(body1.jobs.map((job: { id: string }) => job.id)).toEqual([first.id, second.id]);
      expect(body1.jobs[1]).toEqual({
        id: second.id,
        queue: 'replication',
        kind: 'replicate',
        lockKey: 'tag:team/app:v2',
        createdAt: expect.any(String),
        attempts: 0,
        maxAttempts: 3,
        notBefore: expect.any(String),
        payload: { tag: 'v2' },
        claimed: false,
      });
      expect(body1.jobs[0]).not.toHaveProperty('maxAttempts');
      const next = nextLink(page1);
      expect(next).toMatch(/^\/v2\/_ext\/jobs\/pending\?queue=replication&n=2&last=/);

      const page2 = await api.send('GET', next as string);
      expect(page2.status).toBe(200);
      expect(page2.json().jobs.map((job: { id: string }) => job.id)).toEqual([third.id]);
      expect(page2.headers.link).toBeUndefined();

      // Without n: the default page (100) holds them all, and no Link.
      const all = await api.send('GET', '/v2/_ext/jobs/pending?queue=replication');
      expect(all.json().jobs).toHaveLength(3);
      expect(all.headers.link).toBeUndefined();
      const head = await api.send('HEAD', '/v2/_ext/jobs/pending?queue=replication');
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      const none = await api.send('GET', '/v2/_ext/jobs/pending?queue=replication&n=0');
      expect(none.json()).toEqual({ queue: 'replication', jobs: [] });
      expect((await api.send('GET', '/v2/_ext/jobs/failed?queue=replication')).json().jobs).toEqual([]);
    });

    it('shows a running job as claimed', async () => {
      const { id } = await api.jobs.enqueue('cache', 'fetch', 'blob:a', {});
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let started = false;
      const runner = new JobRunner({
        queue: api.jobs,
        locks: api.locks,
        pools: [{ name: 'cache', concurrency: 1 }],
        handlers: [
          {
            kind: 'fetch',
            async run() {
              started = true;
              await released;
            },
          },
        ],
        pollIntervalMs: 20,
      });
      runner.start();
      try {
        await waitFor('the job to start', async () => started);
        const reply = await api.send('GET', '/v2/_ext/jobs/pending?queue=cache');
        expect(reply.json().jobs).toEqual([expect.objectContaining({ id, claimed: true })]);
      } finally {
        release();
        await runner.stop(10_000);
      }
      expect((await api.send('GET', '/v2/_ext/jobs/pending?queue=cache')).json().jobs).toEqual([]);
    });

    it('lists dead-lettered jobs with their error, paginated, and retries one back into the queue', async () => {
      const [a, b, c] = await seedFailedJobs('replication', 3);

      const page1 = await api.send('GET', '/v2/_ext/jobs/failed?queue=replication&n=2');
      expect(page1.status).toBe(200);
      const jobs = page1.json().jobs;
      expect(jobs.map((job: { id: string }) => job.id)).toEqual([a, b]);
      expect(jobs[0]).toEqual({
        id: a,
        queue: 'replication',
        kind: 'replicate',
        lockKey: 'tag:team/app:v0',
        createdAt: expect.any(String),
        attempts: 1,
        notBefore: expect.any(String),
        lastError: 'the downstream answered 403',
        payload: { tag: 'v0' },
        failedAt: expect.any(String),
      });
      const next = nextLink(page1);
      expect(next).toMatch(/^\/v2\/_ext\/jobs\/failed\?queue=replication&n=2&last=/);
      const page2 = await api.send('GET', next as string);
      expect(page2.json().jobs.map((job: { id: string }) => job.id)).toEqual([c]);
      expect(page2.headers.link).toBeUndefined();

      const retry = await api.send('POST', `/v2/_ext/jobs/failed/replication/${b}/retry`);
      expect(retry.status).toBe(202);
      expect(retry.body.length).toBe(0);
      const failed = (await api.send('GET', '/v2/_ext/jobs/failed?queue=replication')).json().jobs;
      expect(failed.map((job: { id: string }) => job.id)).toEqual([a, c]);
      const pending = (await api.send('GET', '/v2/_ext/jobs/pending?queue=replication')).json().jobs;
      expect(pending).toEqual([
        expect.objectContaining({ id: b, attempts: 0, claimed: false, lockKey: 'tag:team/app:v1' }),
      ]);

      const again = await api.send('POST', `/v2/_ext/jobs/failed/replication/${b}/retry`);
      expect(again.status).toBe(404);
      expect(errorCode(again)).toBe('NAME_UNKNOWN');
      expect(again.json().errors[0].detail).toEqual({ queue: 'replication', id: b });
    });

    it('deletes a pending job and a dead-lettered one; a second delete is 404', async () => {
      const [failed] = await seedFailedJobs('cache', 1);
      const { id: pending } = await api.jobs.enqueue('cache', 'fetch', 'blob:b', {});

      const deletePending = await api.send('DELETE', `/v2/_ext/jobs/pending/cache/${pending}`);
      expect(deletePending.status).toBe(202);
      expect((await api.send('GET', '/v2/_ext/jobs/pending?queue=cache')).json().jobs).toEqual([]);
      const deleteFailed = await api.send('DELETE', `/v2/_ext/jobs/failed/cache/${failed}`);
      expect(deleteFailed.status).toBe(202);
      expect((await api.send('GET', '/v2/_ext/jobs/failed?queue=cache')).json().jobs).toEqual([]);

      for (const path of [`/v2/_ext/jobs/pending/cache/${pending}`, `/v2/_ext/jobs/failed/cache/${failed}`]) {
        const reply = await api.send('DELETE', path);
        expect(reply.status).toBe(404);
        expect(errorCode(reply)).toBe('NAME_UNKNOWN');
      }
      // A job of the other state, or of another queue, is not this one.
      const { id: other } = await api.jobs.enqueue('cache', 'fetch', 'blob:c', {});
      expect((await api.send('DELETE', `/v2/_ext/jobs/failed/cache/${other}`)).status).toBe(404);
      expect((await api.send('DELETE', `/v2/_ext/jobs/pending/replication/${other}`)).status).toBe(404);
      expect((await api.send('POST', `/v2/_ext/jobs/failed/cache/${other}/retry`)).status).toBe(404);
      expect((await api.send('GET', '/v2/_ext/jobs/pending?queue=cache')).json().jobs).toHaveLength(1);
    });

    it.each([
      ['no queue', 'GET', '/v2/_ext/jobs/pending'],
      ['an empty queue', 'GET', '/v2/_ext/jobs/failed?queue='],
      ['an unknown queue', 'GET', '/v2/_ext/jobs/pending?queue=replicaton'],
      ['an unknown queue in the path', 'DELETE', '/v2/_ext/jobs/pending/nope/000000000-0000000000000000'],
      [
        'an encoded queue in the path',
        'POST',
        '/v2/_ext/jobs/failed/%63ache/000000000-0000000000000000/retry',
      ],
      ['a non-numeric n', 'GET', '/v2/_ext/jobs/pending?queue=cache&n=ten'],
      ['a negative n', 'GET', '/v2/_ext/jobs/failed?queue=cache&n=-1'],
      ['an n above 1000', 'GET', '/v2/_ext/jobs/pending?queue=cache&n=1001'],
    ])('answers %s with 400 UNSUPPORTED', async (_label, method, path) => {
      const reply = await api.send(method, path);
      expect(reply.status).toBe(400);
      expect(errorCode(reply)).toBe('UNSUPPORTED');
    });

    it.each([
      ['a malformed id', 'DELETE', '/v2/_ext/jobs/pending/cache/..'],
      ['an unknown id', 'DELETE', '/v2/_ext/jobs/failed/replication/000000000-0000000000000000'],
      ['an unknown id to retry', 'POST', '/v2/_ext/jobs/failed/cache/000000000-0000000000000000/retry'],
    ])('answers %s with 404 NAME_UNKNOWN', async (_label, method, path) => {
      const reply = await api.send(method, path);
      expect(reply.status).toBe(404);
      expect(errorCode(reply)).toBe('NAME_UNKNOWN');
    });

    it.each([
      ['POST', '/v2/_ext/jobs/pending?queue=cache', 'GET, HEAD'],
      ['DELETE', '/v2/_ext/jobs/failed?queue=cache', 'GET, HEAD'],
      ['GET', '/v2/_ext/jobs/pending/cache/000000000-0000000000000000', 'DELETE'],
      ['PUT', '/v2/_ext/jobs/failed/cache/000000000-0000000000000000', 'DELETE'],
      ['GET', '/v2/_ext/jobs/failed/cache/000000000-0000000000000000/retry', 'POST'],
    ])('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
      const reply = await api.send(method, path);
      expect(reply.status).toBe(405);
      expect(errorCode(reply)).toBe('UNSUPPORTED');
      expect(reply.headers.allow).toBe(allow);
    });

    it.each([
      '/v2/_ext/jobs',
      '/v2/_ext/jobs/pending/',
      '/v2/_ext/jobs/pending/cache',
      '/v2/_ext/jobs/pending/cache/000000000-0000000000000000/retry',
    ])('answers %s, no endpoint, with 404', async (path) => {
      const reply = await api.send('GET', path);
      expect(reply.status).toBe(404);
      expect(errorCode(reply)).toBe('UNSUPPORTED');
    });
  });
});
