import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseConfig } from '@angos/config';
import { JobQueue } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { createMetrics, silentLogger } from '@angos/observability';
import { parseDigest, parseReference } from '@angos/oci';
import { createRegistry } from '@angos/registry';
import { createStores } from '@angos/storage';
import {
  DISTRIBUTION_USER,
  type Distribution,
  OciClient,
  skipWithout,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainReplication } from '../src/replication-drain.js';

/**
 * The end-of-run drain of `angos scrub --replicate`, against CNCF distribution: it runs the
 * run's jobs, waits for one that backs off for a short while (joined while its downstream was
 * failing), and leaves one whose retry is far off to that retry.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe.skipIf(skipWithout('replication to CNCF distribution', 'docker-registry'))(
  'the replication drain of scrub --replicate',
  () => {
    let distribution: Distribution;
    beforeAll(async () => {
      distribution = await startDistribution({ auth: 'htpasswd' });
    });
    afterAll(async () => {
      await distribution?.stop();
    });

    it('waits for a job due soon, not for one due later', async () => {
      const { config } = parseConfig(`
[server]
bind_address = "127.0.0.1"
[blob_store.fs]
root_dir = "/unused"
[[repository."team".downstream]]
name = "mirror"
url = ${JSON.stringify(distribution.url)}
username = ${JSON.stringify(DISTRIBUTION_USER.username)}
password = ${JSON.stringify(DISTRIBUTION_USER.password)}
`);
      const stores = createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } });
      const locks = new MemoryLockManager();
      const registry = createRegistry({ ...stores, locks, config: () => config, logger: silentLogger });
      const push = async (tag: string) => {
        const blob = randomBytes(512);
        const id = await registry.uploads.start('team/app');
        await registry.uploads.complete('team/app', id, parseDigest(sha(blob)), Readable.from([blob]), {});
        const body = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(blob), size: 512 },
            layers: [],
          }),
        );
        await registry.manifests.put('team/app', parseReference(tag), body, OCI_MANIFEST, []);
      };
      await push('soon');
      await push('later');
      const queue = new JobQueue({ store: stores.metadata, logger: silentLogger });
      const enqueue = (tag: string, inMs: number) =>
        queue.enqueue(
          'replication',
          'replication',
          `replication:mirror:team/app:tag:${tag}`,
          {
            namespace: 'team/app',
            downstream: 'mirror',
            tag,
            change: 'push',
            sourceTimestamp: new Date().toISOString(),
          },
          { notBefore: new Date(Date.now() + inMs) },
        );
      const soon = await enqueue('soon', 2000);
      const later = await enqueue('later', 600_000);

      const result = await drainReplication(
        {
          config,
          registry,
          metadata: stores.metadata,
          locks,
          logger: silentLogger,
          metrics: createMetrics(),
        },
        new Set([soon.id, later.id]),
      );
      expect(result).toMatchObject({ failed: 0, outcomes: { completed: 1 } });
      const client = new OciClient(distribution.url, distribution.pushHeaders('x'));
      expect((await client.getManifest('team/app', 'soon')).status).toBe(200);
      expect((await client.getManifest('team/app', 'later')).status).toBe(404);
      expect((await queue.pendingNames('replication')).map((job) => job.id)).toEqual([later.id]);
    }, 60_000);
  },
);
