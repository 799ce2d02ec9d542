import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { type Config, parseConfig } from '@angos/config';
import { type JobEnvelope, TerminalJobError } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { createMetrics, silentLogger } from '@angos/observability';
import { formatDigest, parseDigest, parseReference } from '@angos/oci';
import { createRegistry, type Registry } from '@angos/registry';
import { createStores } from '@angos/storage';
import {
  DISTRIBUTION_USER,
  type Distribution,
  OciClient,
  skipWithout,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReplicationPayload, replicationHandler } from '../src/index.js';

/**
 * The replication job against a real downstream (CNCF distribution with Basic auth), from an
 * in-memory registry: content before manifests, idempotent redelivery, terminal failures.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

function configFor(url: string, password: string = DISTRIBUTION_USER.password): Config {
  const toml = [
    '[server]\nbind_address = "127.0.0.1"',
    '[blob_store.fs]\nroot_dir = "/unused"',
    '[repository."team"]',
    '[[repository."team".downstream]]',
    'name = "mirror"',
    `url = ${JSON.stringify(url)}`,
    `username = ${JSON.stringify(DISTRIBUTION_USER.username)}`,
    `password = ${JSON.stringify(password)}`,
    'max_concurrent_pushes = 2',
  ].join('\n');
  return parseConfig(toml).config;
}

function newRegistry(config: Config): Registry {
  return createRegistry({
    ...createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } }),
    locks: new MemoryLockManager(),
    config: () => config,
    logger: silentLogger,
  });
}

const sha = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function upload(registry: Registry, namespace: string, data: Buffer): Promise<string> {
  const id = await registry.uploads.start(namespace);
  await registry.uploads.complete(namespace, id, parseDigest(sha(data)), Readable.from([data]), {});
  return sha(data);
}

/** An image (config and two layers) pushed by `reference`; its digest. */
async function pushImage(registry: Registry, namespace: string, reference: string): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(4).toString('hex') }),
  );
  const layers = [randomBytes(2048), randomBytes(4096)];
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: await upload(registry, namespace, config),
        size: config.length,
      },
      layers: await Promise.all(
        layers.map(async (layer) => ({
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: await upload(registry, namespace, layer),
          size: layer.length,
        })),
      ),
    }),
  );
  const pushed = await registry.manifests.put(namespace, parseReference(reference), body, OCI_MANIFEST, []);
  return formatDigest(pushed.digest);
}

function job(payload: ReplicationPayload): {
  job: JobEnvelope;
  payload: ReplicationPayload;
  signal: AbortSignal;
} {
  const now = new Date().toISOString();
  return {
    job: {
      id: '000000001-0000000000000000',
      queue: 'replication',
      kind: 'replication',
      lockKey: 'test',
      createdAt: now,
      attempts: 0,
      notBefore: now,
      payload,
    },
    payload,
    signal: new AbortController().signal,
  };
}

const writes = (output: string) => (output.match(/"(PUT|POST|PATCH|DELETE) \/v2\//g) ?? []).length;

describe.skipIf(skipWithout('replication to CNCF distribution', 'docker-registry'))(
  'the replication job, to CNCF distribution',
  () => {
    let distribution: Distribution;
    let client: OciClient;

    beforeAll(async () => {
      distribution = await startDistribution({ auth: 'htpasswd' });
      client = new OciClient(distribution.url, distribution.pushHeaders('x'));
    });
    afterAll(async () => {
      await distribution?.stop();
    });

    it('pushes an index: blobs, then children, then the index by tag; a redelivery only HEADs', async () => {
      const config = configFor(distribution.url);
      const registry = newRegistry(config);
      const metrics = createMetrics({ defaultMetrics: false });
      const handler = replicationHandler({ config, registry, logger: silentLogger, metrics });
      const children = [
        await pushImage(registry, 'team/app', 'a'),
        await pushImage(registry, 'team/app', 'b'),
      ];
      const index = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: children.map((digest) => ({ mediaType: OCI_MANIFEST, digest, size: 1 })),
        }),
      );
      // Sizes are not checked by the registry core; the downstream gets the real bytes anyway.
      await registry.manifests.put('team/app', parseReference('multi'), index, OCI_INDEX, []);
      const payload: ReplicationPayload = {
        namespace: 'team/app',
        downstream: 'mirror',
        tag: 'multi',
        change: 'push',
        sourceTimestamp: new Date().toISOString(),
      };
      await handler.run(job(payload));
      // A bare host mirrors the namespace verbatim.
      const fetched = await client.getManifest('team/app', 'multi');
      expect(fetched.status).toBe(200);
      expect(fetched.digest).toBe(sha(index));
      for (const child of children) {
        const manifest = await client.getManifest('team/app', child);
        expect(manifest.status).toBe(200);
        const parsed = JSON.parse(manifest.body.toString('utf8')) as { layers: Array<{ digest: string }> };
        for (const layer of parsed.layers) expect(await client.headBlob('team/app', layer.digest)).toBe(200);
      }
      const before = writes(distribution.output());
      expect(before).toBeGreaterThan(5); // the access log shows the first push's writes
      await handler.run(job(payload));
      expect(writes(distribution.output())).toBe(before);
      const rendered = (await metrics.render()).body;
      expect(rendered).toMatch(/angos_replication_push_total\{downstream="mirror",outcome="pushed"\} 1/);
      expect(rendered).toMatch(/angos_replication_push_total\{downstream="mirror",outcome="converged"\} 1/);
    });

    it('mounts a blob the downstream holds in a sibling namespace instead of uploading it', async () => {
      const config = configFor(distribution.url);
      const registry = newRegistry(config);
      const handler = replicationHandler({ config, registry, logger: silentLogger });
      const layer = randomBytes(8192);
      const image = async (namespace: string) => {
        const cfg = Buffer.from(JSON.stringify({ os: 'linux', namespace }));
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: await upload(registry, namespace, cfg),
            size: cfg.length,
          },
          layers: [
            {
              mediaType: 'application/vnd.oci.image.layer.v1.tar',
              digest: await upload(registry, namespace, layer),
              size: layer.length,
            },
          ],
        });
        await registry.manifests.put(namespace, parseReference('v1'), Buffer.from(body), OCI_MANIFEST, []);
      };
      await image('team/first');
      await image('team/second');
      const payload = (namespace: string): ReplicationPayload => ({
        namespace,
        downstream: 'mirror',
        tag: 'v1',
        change: 'push',
        sourceTimestamp: new Date().toISOString(),
      });
      await handler.run(job(payload('team/first')));
      await handler.run(job(payload('team/second')));
      expect(await client.headBlob('team/second', sha(layer))).toBe(200);
      const mounts = distribution
        .output()
        .match(/"POST \/v2\/team\/second\/blobs\/uploads\/\?mount=[^"]*from=team%2Ffirst[^"]*" 201/g);
      expect(mounts).toHaveLength(1);
    });

    it('a refused credential dead-letters the job at once', async () => {
      const config = configFor(distribution.url, 'wrong');
      const registry = newRegistry(config);
      await pushImage(registry, 'team/app', 'v1');
      const handler = replicationHandler({ config, registry, logger: silentLogger });
      const run = handler.run(
        job({
          namespace: 'team/app',
          downstream: 'mirror',
          tag: 'v1',
          change: 'push',
          sourceTimestamp: new Date().toISOString(),
        }),
      );
      await expect(run).rejects.toBeInstanceOf(TerminalJobError);
    });

    it('a downstream no longer configured dead-letters the job, naming it', async () => {
      const config = configFor(distribution.url);
      const handler = replicationHandler({ config, registry: newRegistry(config), logger: silentLogger });
      const run = handler.run(
        job({
          namespace: 'team/app',
          downstream: 'renamed',
          tag: 'v1',
          change: 'push',
          sourceTimestamp: new Date().toISOString(),
        }),
      );
      await expect(run).rejects.toThrow(/"renamed".*not configured.*--replication-orphans/);
    });

    it('a tag gone here is deleted there by digest when it was pushed by digest', async () => {
      const config = configFor(distribution.url);
      const registry = newRegistry(config);
      const handler = replicationHandler({ config, registry, logger: silentLogger });
      const digest = await pushImage(registry, 'team/app', 'gone');
      const push = { namespace: 'team/app', downstream: 'mirror', sourceTimestamp: new Date().toISOString() };
      await handler.run(job({ ...push, digest, change: 'push' }));
      expect((await client.getManifest('team/app', digest)).status).toBe(200);
      await registry.manifests.delete('team/app', parseReference(digest));
      await handler.run(job({ ...push, digest, change: 'delete' }));
      expect((await client.getManifest('team/app', digest)).status).toBe(404);
    });
  },
);

describe('the replication job, for a tag gone here', () => {
  let server: Server;
  let url: string;
  const deletes: Array<{ path: string | undefined; at: string | undefined }> = [];

  beforeAll(async () => {
    // A downstream that records the deletes it is sent: what a job sends is all this checks.
    server = createServer((req, res) => {
      if (req.method === 'DELETE') {
        const at = req.headers['x-angos-source-timestamp'];
        deletes.push({ path: req.url, at: typeof at === 'string' ? at : undefined });
      }
      req.resume();
      res.writeHead(req.method === 'DELETE' ? 202 : 404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('dates the delete with the tag tombstone, whichever job finds it gone', async () => {
    const config = parseConfig(
      [
        '[server]\nbind_address = "127.0.0.1"',
        '[blob_store.fs]\nroot_dir = "/unused"',
        '[repository."team"]',
        '[[repository."team".downstream]]',
        'name = "peer"',
        `url = ${JSON.stringify(url)}`,
      ].join('\n'),
    ).config;
    const registry = newRegistry(config);
    const handler = replicationHandler({ config, registry, logger: silentLogger });
    await pushImage(registry, 'team/app', 'v1');
    const deletedAt = '2026-01-01T00:00:05.000Z';
    await registry.manifests.delete('team/app', parseReference('v1'), { deletedAtMs: Date.parse(deletedAt) });
    // The push job of the tag, run after its delete, and the delete's own job with another time:
    // both send the time the tag was deleted here, as every peer then records it.
    const base = { namespace: 'team/app', downstream: 'peer', tag: 'v1' };
    await handler.run(job({ ...base, change: 'push', sourceTimestamp: new Date().toISOString() }));
    await handler.run(job({ ...base, change: 'delete', sourceTimestamp: '2026-01-01T00:00:04.000Z' }));
    expect(deletes).toEqual([
      { path: '/v2/team/app/manifests/v1', at: deletedAt },
      { path: '/v2/team/app/manifests/v1', at: deletedAt },
    ]);
  });
});
