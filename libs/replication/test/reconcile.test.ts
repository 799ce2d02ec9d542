import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { type Config, parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { createMetrics, silentLogger } from '@angos/observability';
import { formatDigest, parseDigest, parseReference } from '@angos/oci';
import { createRegistry, type Registry } from '@angos/registry';
import { createStores } from '@angos/storage';
import {
  DISTRIBUTION_USER,
  type Distribution,
  freePort,
  skipWithout,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ReconcileDecision,
  Reconciler,
  type ReplicationPayload,
  replicationHandler,
} from '../src/index.js';

/**
 * Reconciliation (`angos scrub --replicate`) against a real downstream (CNCF distribution with
 * Basic auth), from in-memory registries: what it decides, and that running the decided jobs
 * converges (a second pass decides nothing).
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function configFor(url: string, extra: readonly string[] = []): Config {
  const toml = [
    '[server]\nbind_address = "127.0.0.1"',
    '[blob_store.fs]\nroot_dir = "/unused"',
    '[repository."team"]',
    '[[repository."team".downstream]]',
    'name = "mirror"',
    `url = ${JSON.stringify(url)}`,
    `username = ${JSON.stringify(DISTRIBUTION_USER.username)}`,
    `password = ${JSON.stringify(DISTRIBUTION_USER.password)}`,
    ...extra,
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

/** A one-layer image of fresh content, pushed by `tag`; its digest. */
async function pushImage(registry: Registry, namespace: string, tag: string): Promise<string> {
  const upload = async (data: Buffer) => {
    const id = await registry.uploads.start(namespace);
    await registry.uploads.complete(namespace, id, parseDigest(sha(data)), Readable.from([data]), {});
    return sha(data);
  };
  const config = Buffer.from(JSON.stringify({ os: 'linux', n: randomBytes(4).toString('hex') }));
  const layer = randomBytes(1024);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: await upload(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: await upload(layer), size: 1024 },
      ],
    }),
  );
  const pushed = await registry.manifests.put(namespace, parseReference(tag), body, OCI_MANIFEST, []);
  return formatDigest(pushed.digest);
}

/** Runs one replication job of `payload` to completion, as a worker would. */
async function runJob(config: Config, registry: Registry, payload: ReplicationPayload): Promise<void> {
  const handler = replicationHandler({ config, registry, logger: silentLogger });
  const now = new Date().toISOString();
  await handler.run({
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
  });
}

async function decide(reconciler: Reconciler, namespace: string): Promise<ReconcileDecision[]> {
  const decisions: ReconcileDecision[] = [];
  for await (const decision of reconciler.reconcile(namespace)) decisions.push(decision);
  return decisions;
}

const summary = (decisions: readonly ReconcileDecision[]) =>
  decisions.map(
    ({ payload }) => `${payload.change} ${payload.downstream} ${payload.namespace}:${payload.tag}`,
  );

describe.skipIf(skipWithout('replication to CNCF distribution', 'docker-registry'))(
  'reconciliation with CNCF distribution',
  () => {
    let distribution: Distribution;

    beforeAll(async () => {
      distribution = await startDistribution({ auth: 'htpasswd' });
    });
    afterAll(async () => {
      await distribution?.stop();
    });

    it('pushes the missing and diverging tags, never deletes, and converges in one pass', async () => {
      const config = configFor(distribution.url);
      const local = newRegistry(config);
      // What the downstream holds first: `same` and `moved` as here, and `extra` of its own.
      const other = newRegistry(config);
      const same = await pushImage(local, 'team/app', 'same');
      await pushImage(local, 'team/app', 'moved');
      const base = { namespace: 'team/app', downstream: 'mirror', change: 'push' } as const;
      const sourceTimestamp = new Date().toISOString();
      await runJob(config, local, { ...base, tag: 'same', sourceTimestamp });
      await runJob(config, local, { ...base, tag: 'moved', sourceTimestamp });
      await pushImage(other, 'team/app', 'extra');
      await runJob(config, other, { ...base, tag: 'extra', sourceTimestamp });
      // Then this side moves `moved` and gets `missing` while the downstream hears nothing.
      const moved = await pushImage(local, 'team/app', 'moved');
      await pushImage(local, 'team/app', 'missing');

      const metrics = createMetrics({ defaultMetrics: false });
      const reconciler = new Reconciler({ config, registry: local, logger: silentLogger, metrics });
      try {
        const decisions = await decide(reconciler, 'team/app');
        expect(summary(decisions)).toEqual(['push mirror team/app:missing', 'push mirror team/app:moved']);
        expect(decisions[1]?.reason).toContain(`here ${moved}`);
        // The job carries the tag's own time, as a live push does.
        expect(decisions[1]?.payload.sourceTimestamp).toBe(
          await local.manifests.tagTime('team/app', 'moved'),
        );
        // Deciding queues nothing: the enqueues are counted where they happen (scrub's check).
        expect((await metrics.render()).body).not.toMatch(/^angos_replication_reconcile_total\{/m);
        expect(reconciler.failures).toBe(0);

        for (const { payload } of decisions) await runJob(config, local, payload);
        expect(await decide(reconciler, 'team/app')).toEqual([]);
        expect(same).not.toBe(moved);
      } finally {
        reconciler.close();
      }
    });

    it('on a prune downstream also deletes the tags only it holds', async () => {
      const config = configFor(distribution.url, ['prune = true']);
      const local = newRegistry(config);
      const other = newRegistry(config);
      await pushImage(local, 'team/pruned', 'kept');
      await pushImage(other, 'team/pruned', 'stray');
      const sourceTimestamp = new Date().toISOString();
      await runJob(config, other, {
        namespace: 'team/pruned',
        downstream: 'mirror',
        change: 'push',
        tag: 'stray',
        sourceTimestamp,
      });
      const reconciler = new Reconciler({ config, registry: local, logger: silentLogger });
      try {
        const decisions = await decide(reconciler, 'team/pruned');
        expect(summary(decisions)).toEqual([
          'push mirror team/pruned:kept',
          'delete mirror team/pruned:stray',
        ]);
        expect(decisions[1]?.reason).toContain('prune');
      } finally {
        reconciler.close();
      }
    });

    it('leaves event-only downstreams and filtered-out namespaces alone', async () => {
      const eventOnly = configFor(distribution.url, ['mode = "event-only"']);
      const filtered = configFor(distribution.url, ['namespace_filter = ["^team/other$"]']);
      for (const config of [eventOnly, filtered]) {
        const local = newRegistry(config);
        await pushImage(local, 'team/app', 'v1');
        const reconciler = new Reconciler({ config, registry: local, logger: silentLogger });
        expect(await decide(reconciler, 'team/app')).toEqual([]);
        reconciler.close();
      }
    });
  },
);

describe('reconciliation with a downstream that does not answer', () => {
  it('counts the namespace as skipped, logs it, and goes on', async () => {
    const config = configFor(`http://127.0.0.1:${await freePort()}`);
    const local = newRegistry(config);
    await pushImage(local, 'team/app', 'v1');
    const metrics = createMetrics({ defaultMetrics: false });
    const reconciler = new Reconciler({ config, registry: local, logger: silentLogger, metrics });
    try {
      expect(await decide(reconciler, 'team/app')).toEqual([]);
      expect(reconciler.failures).toBe(1);
      expect((await metrics.render()).body).toMatch(
        /angos_replication_reconcile_total\{outcome="skipped"\} 1/,
      );
    } finally {
      reconciler.close();
    }
  });
});
