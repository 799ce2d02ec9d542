import { parseConfig } from '@angos/config';
import { describe, expect, it } from 'vitest';
import { createReplicationEvents, parseReplicationPayload, type ReplicationPayload } from '../src/index.js';

describe('replication payload', () => {
  const valid: ReplicationPayload = {
    namespace: 'team/app',
    downstream: 'eu',
    tag: 'v1',
    change: 'push',
    sourceTimestamp: '2026-01-01T00:00:00.000Z',
  };

  it('reads back what is enqueued', () => {
    expect(parseReplicationPayload(JSON.parse(JSON.stringify(valid)))).toEqual(valid);
  });

  it.each([
    ['no target', { ...valid, tag: undefined }],
    ['both targets', { ...valid, digest: `sha256:${'a'.repeat(64)}` }],
    ['a bad namespace', { ...valid, namespace: 'Team' }],
    ['a bad change', { ...valid, change: 'move' }],
    ['a bad time', { ...valid, sourceTimestamp: 'soon' }],
  ])('refuses %s', (_, payload) => {
    expect(() => parseReplicationPayload(payload)).toThrow();
  });
});

describe('enqueueing local changes', () => {
  const config = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[repository."team"]
[[repository."team".downstream]]
name = "live"
url = "http://live:8000"
[[repository."team".downstream]]
name = "nightly"
url = "http://nightly:8000"
mode = "reconcile-only"
[[repository."team".downstream]]
name = "apps-only"
url = "http://apps:8000"
mode = "event-only"
namespace_filter = ["^team/app"]
`).config;

  async function enqueued(change: Parameters<ReturnType<typeof createReplicationEvents>['changed']>[0]) {
    const jobs: Array<{ lockKey: string; payload: ReplicationPayload }> = [];
    const events = createReplicationEvents({
      config: () => config,
      logger: (await import('@angos/observability')).silentLogger,
      enqueue: async (_queue, _kind, lockKey, payload) => {
        jobs.push({ lockKey, payload: payload as ReplicationPayload });
        return { id: String(jobs.length), deduplicated: false };
      },
    });
    await events.changed(change);
    return jobs;
  }

  it('one job per event downstream and tag; reconcile-only and filtered-out downstreams get none', async () => {
    const jobs = await enqueued({ namespace: 'team/app', change: 'push', tags: ['v1', 'latest'] });
    expect(jobs.map((job) => job.lockKey).sort()).toEqual([
      'replication:apps-only:team/app:tag:latest',
      'replication:apps-only:team/app:tag:v1',
      'replication:live:team/app:tag:latest',
      'replication:live:team/app:tag:v1',
    ]);
    expect(await enqueued({ namespace: 'team/db', change: 'push', tags: ['v1'] })).toHaveLength(1);
    expect(await enqueued({ namespace: 'other/x', change: 'push', tags: ['v1'] })).toHaveLength(0);
  });

  it('carries the author time of a replicated change unchanged', async () => {
    const at = '2020-02-02T02:02:02.000Z';
    const jobs = await enqueued({
      namespace: 'team/db',
      change: 'delete',
      tags: ['v1'],
      sourceTimestamp: at,
    });
    expect(jobs[0]?.payload).toMatchObject({ change: 'delete', tag: 'v1', sourceTimestamp: at });
  });

  it('a change by digest without tags replicates the digest', async () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const jobs = await enqueued({ namespace: 'team/db', change: 'delete', tags: [], digest });
    expect(jobs[0]?.payload).toMatchObject({ digest });
    expect(jobs[0]?.payload.tag).toBeUndefined();
  });
});
