import { join } from 'node:path';
import { JobQueue } from '@angos/jobs';
import { openMetadataStore } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { baseConfig } from './helpers.js';
import { useInProcessServer } from './in-process.js';

const { ws, start } = useInProcessServer();

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
const ALICE = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;

describe('the jobs API through angos server', () => {
  it('lets a policy grant listing jobs without deleting them', async () => {
    // Seeded before the server starts, on the metadata store it will open (the blob store's root).
    const store = await openMetadataStore({ kind: 'fs', rootDir: join(ws().dir, 'data'), syncToDisk: false });
    // Due in a day: the server's own drain (no [global.job_queue]) leaves it pending meanwhile.
    const { id } = await new JobQueue({ store }).enqueue(
      'replication',
      'replicate',
      'tag:team/app:v1',
      { tag: 'v1' },
      { notBefore: new Date(Date.now() + 86_400_000) },
    );
    await store.close?.();
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        [
          '[auth.identity.alice]',
          'username = "alice"',
          `password = "${ALICE_HASH}"`,
          '[global.access_policy]',
          'default = "deny"',
          `rules = ["identity.username == 'alice' && request.action in ['list-pending-jobs', 'list-failed-jobs']"]`,
          '',
        ].join('\n'),
      ),
    );
    const service = await start();
    const base = `http://127.0.0.1:${service.address.port}/v2/_ext/jobs`;
    const as = (authorization?: string) => (authorization === undefined ? {} : { authorization });

    const listed = await fetch(`${base}/pending?queue=replication`, { headers: as(ALICE) });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { jobs: { id: string }[] }).jobs.map((job) => job.id)).toEqual([id]);
    expect((await fetch(`${base}/failed?queue=replication`, { headers: as(ALICE) })).status).toBe(200);

    const deleted = await fetch(`${base}/pending/replication/${id}`, {
      method: 'DELETE',
      headers: as(ALICE),
    });
    expect(deleted.status).toBe(403);
    expect(((await deleted.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('DENIED');
    const retried = await fetch(`${base}/failed/replication/${id}/retry`, {
      method: 'POST',
      headers: as(ALICE),
    });
    expect(retried.status).toBe(403);
    const anonymous = await fetch(`${base}/pending?queue=replication`);
    expect(anonymous.status).toBe(401);

    const still = await fetch(`${base}/pending?queue=replication`, { headers: as(ALICE) });
    expect(((await still.json()) as { jobs: unknown[] }).jobs).toHaveLength(1);
  });
});
