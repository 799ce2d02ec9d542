import { LockLostError } from '@angos/lock';
import { type DigestParts, digestOf as digestOfBytes, formatDigest, parseReference } from '@angos/oci';
import { keyFor } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import {
  digestMatch,
  digestOf,
  isPath,
  manifestOf,
  putManifest,
  readAs,
  type StoreKind,
  s3Replicas,
  s3Server,
  settle,
  type TestRegistry,
  testRegistry,
  upload,
} from './support.js';

const HOUR = 3_600_000;
// At grace 0 a blob can be reclaimed between its upload and the manifest PUT; the push must then be
// refused, not acknowledged as a push of missing references (the default allows those, by design).
const STRICT_REFERENCES = '[global]\nallow_missing_manifest_references = false\n';
const byDigest = (digest: DigestParts) => ({ kind: 'digest' as const, digest });

let current: TestRegistry | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});
async function open(kind: StoreKind, toml = ''): Promise<TestRegistry> {
  current = await testRegistry(kind, toml);
  return current;
}

/** The holders of a blob in its index entry. */
async function readRefs(t: TestRegistry, digest: DigestParts): Promise<Record<string, unknown>> {
  const entry = JSON.parse((await t.metadata.store.get(keyFor({ kind: 'blobIndex', digest }))).toString());
  return Object.fromEntries(Object.entries(entry).filter(([key]) => !key.startsWith('_')));
}

/** Whether the blob store still has the bytes (whatever any namespace may read). */
async function hasBytes(t: TestRegistry, digest: DigestParts): Promise<boolean> {
  return t.blobs.store.statBlob(digest).then(
    () => true,
    () => false,
  );
}

// memory: the index updates by compare-and-swap; fs: no compare-and-swap, updates under the digest
// lock; s3 (Ceph RGW): compare-and-swap without delete-if-match, each call a real network round trip.
const KINDS: readonly StoreKind[] = s3Server ? ['memory', 'fs', 's3'] : ['memory', 'fs'];
describe.each(KINDS)('reclamation on %s storage', (kind) => {
  describe('point 1: deletes never take a layer from a push that was told it exists', () => {
    it('keeps the layer when the last other manifest is deleted between the HEAD and the PUT', async () => {
      const t = await open(kind, '[global]\nallow_missing_manifest_references = false\n');
      const { registry } = t;
      const layer = await upload(registry, 't/app', 'layer L');
      await upload(registry, 't/app', 'config a');
      await upload(registry, 't/app', 'config b');
      const a = await putManifest(registry, 't/app', 'a', manifestOf('config a', ['layer L']));
      expect(await registry.blobs.stat('t/app', layer)).toEqual({ size: 7 });
      // B's push finds L readable, then waits while A, the last manifest using L, is deleted.
      const checked = t.metadata.pause('get', isPath(`/_layers/sha256/${layer.hex}/link`));
      const pushing = putManifest(registry, 't/app', 'b', manifestOf('config b', ['layer L']));
      await checked.reached;
      await registry.manifests.delete('t/app', byDigest(a.digest));
      checked.release();
      await pushing;
      expect(await readAs(registry, 't/app', layer)).toBe('layer L');
      await registry.collectGarbage({ gracePeriodMs: 0 });
      expect(await readAs(registry, 't/app', layer)).toBe('layer L');
    });

    it('breaks no acknowledged image when deletes race pushes for many rounds, with GC passes at grace 0', async () => {
      const { registry } = await open(kind, STRICT_REFERENCES);
      let acknowledged = 0;
      const broken: string[] = [];
      // 40 rounds as the issue measured; fewer on RGW, where each round is ~100 network round trips.
      const rounds = kind === 's3' ? 10 : 40;
      for (let round = 0; round < rounds; round++) {
        const layer = `layer ${round}`;
        await upload(registry, 't/app', layer);
        await upload(registry, 't/app', `config a ${round}`);
        await upload(registry, 't/app', `config b ${round}`);
        const a = await putManifest(registry, 't/app', 'a', manifestOf(`config a ${round}`, [layer]));
        await registry.blobs.stat('t/app', digestOf(layer));
        const [, pushed] = await Promise.allSettled([
          registry.manifests.delete('t/app', byDigest(a.digest)),
          putManifest(registry, 't/app', 'b', manifestOf(`config b ${round}`, [layer])),
          registry.collectGarbage({ gracePeriodMs: 0 }),
        ]);
        if (pushed.status !== 'fulfilled') continue;
        acknowledged++;
        await registry.collectGarbage({ gracePeriodMs: 0 });
        for (const blob of [layer, `config b ${round}`]) {
          if ((await readAs(registry, 't/app', digestOf(blob))) !== blob) broken.push(`${round}: ${blob}`);
        }
      }
      expect(broken).toEqual([]);
      // Pushes are refused only when GC revoked a grant under them; most get through.
      expect(acknowledged).toBeGreaterThan(0);
    }, 180_000);

    it('breaks no acknowledged image when GC passes at grace 0 race pushes', async () => {
      const { registry } = await open(kind, STRICT_REFERENCES);
      let stop = false;
      const collecting = (async () => {
        let passes = 0;
        while (!stop || passes === 0) {
          await registry.collectGarbage({ gracePeriodMs: 0 });
          passes++;
          // On memory stores a pass never leaves the microtask queue: let the pushes' streams run.
          await settle(1);
        }
        return passes;
      })();
      const pushes = await Promise.allSettled(
        Array.from({ length: 20 }, async (_, i) => {
          await upload(registry, 't/app', `shared layer`);
          await upload(registry, 't/app', `own layer ${i}`);
          await upload(registry, 't/app', `config ${i}`);
          await putManifest(
            registry,
            't/app',
            `v${i}`,
            manifestOf(`config ${i}`, ['shared layer', `own layer ${i}`]),
          );
          return i;
        }),
      );
      stop = true;
      expect(await collecting).toBeGreaterThan(0);
      await registry.collectGarbage({ gracePeriodMs: 0 });
      const broken: string[] = [];
      for (const push of pushes) {
        if (push.status !== 'fulfilled') continue;
        const i = push.value;
        for (const blob of ['shared layer', `own layer ${i}`, `config ${i}`]) {
          if ((await readAs(registry, 't/app', digestOf(blob))) !== blob) broken.push(`v${i}: ${blob}`);
        }
        expect((await registry.manifests.resolve('t/app', parseReference(`v${i}`))).size).toBeGreaterThan(0);
      }
      expect(broken).toEqual([]);
      // Some pushes are refused (GC revoked a layer between upload and manifest), not all.
      expect(pushes.filter((push) => push.status === 'fulfilled').length).toBeGreaterThan(0);
    }, 120_000);
  });

  describe('point 5: manifest pushes take no lock on the blobs they reference', () => {
    it('pushes 24 manifests sharing a layer in parallel without touching its locks', async () => {
      const t = await open(kind);
      const { registry } = t;
      const shared = await upload(registry, 't/app', 'shared layer');
      await Promise.all(Array.from({ length: 24 }, (_, i) => upload(registry, 't/app', `config ${i}`)));
      const before = t.locks.requested.length;
      const pushed = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          putManifest(registry, 't/app', `v${i}`, manifestOf(`config ${i}`, ['shared layer'])),
        ),
      );
      expect(pushed).toHaveLength(24);
      const taken = t.locks.requested.slice(before);
      // Only the manifest's own lock and its tag's; on fs the index update of each blob takes the
      // digest lock for that one read-modify-write, never for the length of the push.
      expect(taken.filter((key) => key.startsWith('grant:'))).toEqual([]);
      if (kind === 'memory') expect(taken.filter((key) => key.startsWith('blob:'))).toEqual([]);
      expect(Object.keys(await readRefs(t, shared))).toEqual(['t/app']);
      expect(await readAs(registry, 't/app', shared)).toBe('shared layer');
    });
  });

  describe('point 2: a slow reclaim never deletes the bytes of an acknowledged push', () => {
    async function orphanedBytes(t: TestRegistry, data: string): Promise<DigestParts> {
      const digest = await upload(t.registry, 't/old', data);
      await t.registry.blobs.delete('t/old', digest);
      // The grant is gone, the bytes stay for garbage collection.
      expect(await hasBytes(t, digest)).toBe(true);
      return digest;
    }

    it('makes a push of the same content wait for a reclaim stuck in its delete call', async () => {
      const t = await open(kind);
      const digest = await orphanedBytes(t, 'slow bytes');
      const deleting = t.blobs.pause('deleteBlob', digestMatch(digest), { before: true });
      const collecting = t.registry.collectGarbage({ gracePeriodMs: 0 });
      await deleting.reached;
      let acknowledged = false;
      const pushing = upload(t.registry, 't/new', 'slow bytes').then(() => {
        acknowledged = true;
      });
      await settle(200);
      // Not acknowledged while the reclaim it would race is still running.
      expect(acknowledged).toBe(false);
      deleting.release();
      const report = await collecting;
      await pushing;
      expect(report.blobsDeleted).toBe(1);
      expect(await readAs(t.registry, 't/new', digest)).toBe('slow bytes');
      // And the next pass keeps it: t/new holds it.
      await t.registry.collectGarbage({ gracePeriodMs: HOUR });
      expect(await readAs(t.registry, 't/new', digest)).toBe('slow bytes');
    });

    it('stops a reclaim that lost its lock before it deletes anything; the push takes over by the lock', async () => {
      const t = await open(kind);
      const digest = await orphanedBytes(t, 'lost reclaim');
      const path = keyFor({ kind: 'blobIndex', digest });
      // Pause right after the claim is written (compare-and-swap on memory, a plain put on fs).
      const claimed = t.metadata.pause(
        t.metadata.store.conditional ? 'conditional.putIfVersion' : 'put',
        (arg) => arg === path,
      );
      const collecting = t.registry.collectGarbage({ gracePeriodMs: 0 });
      await claimed.reached;
      expect((await t.registry.collectGarbage({ gracePeriodMs: 0, dryRun: true })).blobsDeleted).toBe(1);
      expect(t.locks.lose('blob:')).toBe(1);
      const pushing = upload(t.registry, 't/new', 'lost reclaim');
      claimed.release();
      const report = await collecting;
      await pushing;
      expect(report).toMatchObject({ blobsDeleted: 0, errors: 1 });
      expect(t.blobs.calls.filter((call) => call.startsWith('deleteBlob'))).toEqual([]);
      expect(await readAs(t.registry, 't/new', digest)).toBe('lost reclaim');
      expect((await t.registry.collectGarbage({ gracePeriodMs: HOUR })).blobsDeleted).toBe(0);
      expect(await readAs(t.registry, 't/new', digest)).toBe('lost reclaim');
    });
  });

  describe('point 3: a lost lock stops the work', () => {
    it('writes no grant after the upload commit lost its locks', async () => {
      const t = await open(kind);
      const digest = digestOf('committed late');
      const committing = t.blobs.pause('commitUpload', () => true);
      const completing = upload(t.registry, 't/app', 'committed late');
      await committing.reached;
      expect(t.locks.lose('')).toBeGreaterThan(0);
      await expect(completing).rejects.toBeInstanceOf(LockLostError);
      const before = t.metadata.calls.length;
      committing.release();
      await settle(100);
      const link = keyFor({ kind: 'layerLink', namespace: 't/app', digest });
      expect(t.metadata.calls.slice(before).filter((call) => call.includes(link))).toEqual([]);
      expect(await readAs(t.registry, 't/app', digest)).toBeUndefined();
    });

    // fs: no compare-and-swap, so the index entry is written under the digest lock.
    it.runIf(kind === 'fs')('writes nothing after the lock around an index update was lost', async () => {
      const t = await open('fs');
      const digest = await upload(t.registry, 't/app', 'revoked late');
      const path = keyFor({ kind: 'blobIndex', digest });
      const reading = t.metadata.pause('get', (arg) => arg === path);
      const deleting = t.registry.blobs.delete('t/app', digest);
      await reading.reached;
      expect(t.locks.lose('')).toBeGreaterThan(0);
      await expect(deleting).rejects.toBeInstanceOf(LockLostError);
      const before = t.metadata.calls.length;
      reading.release();
      await settle(100);
      expect(t.metadata.calls.slice(before).filter((call) => /^(put|delete)/.test(call))).toEqual([]);
      expect(t.blobs.calls.filter((call) => call.startsWith('deleteBlob'))).toEqual([]);
      expect(await hasBytes(t, digest)).toBe(true);
    });
  });

  describe('point 6: deletes leave no dangling tag and record no pull', () => {
    it('leaves no tag to a deleted manifest when a push re-tags it during the delete', async () => {
      const t = await open(kind);
      const { registry } = t;
      await upload(registry, 't/app', 'cfg');
      const other = await putManifest(registry, 't/app', 'latest', manifestOf('cfg', [], 'other'));
      const target = await putManifest(registry, 't/app', 'keep', manifestOf('cfg', [], 'target'));
      await registry.manifests.delete('t/app', parseReference('keep'));
      // The delete of `target` has read `latest` (→ other) and pauses; a push moves latest to target.
      const scanned = t.metadata.pause('get', isPath('/_manifests/tags/latest/link'));
      const deleting = registry.manifests.delete('t/app', byDigest(target.digest));
      await scanned.reached;
      const retagging = putManifest(registry, 't/app', 'latest', manifestOf('cfg', [], 'target'));
      await settle(100);
      scanned.release();
      await Promise.allSettled([deleting, retagging]);
      expect(other.digest.hex).not.toBe(target.digest.hex);
      const { tags } = await registry.manifests.listTags('t/app', {});
      for (const tag of tags) {
        await expect(
          registry.manifests.resolve('t/app', parseReference(tag)),
          `tag ${tag}`,
        ).resolves.toBeDefined();
      }
    });

    it('records no pull when deleting a manifest', async () => {
      const t = await open(kind, '[global]\nupdate_pull_time = true\n');
      await upload(t.registry, 't/app', 'cfg');
      const pushed = await putManifest(t.registry, 't/app', 'v1', manifestOf('cfg', []));
      const before = t.metadata.calls.length;
      await t.registry.manifests.delete('t/app', byDigest(pushed.digest));
      await settle(50);
      expect(t.metadata.calls.slice(before).filter((call) => /^put\S* .*pulledat$/.test(call))).toEqual([]);
      const pulledAt = keyFor({ kind: 'pulledAt', namespace: 't/app', digest: pushed.digest });
      await expect(t.metadata.store.get(pulledAt)).rejects.toThrow();
    });
  });

  describe('the grace period', () => {
    it('keeps a young orphan grant, revokes an old one, and deletes bytes one grace period after the last holder', async () => {
      const t = await open(kind);
      const { registry } = t;
      const start = Date.now();
      const at = (ms: number) => () => start + ms;
      const layer = await upload(registry, 't/app', 'orphan');
      // Younger than the grace period: kept.
      let report = await registry.collectGarbage({ gracePeriodMs: HOUR, now: at(HOUR / 2) });
      expect(report).toMatchObject({ grantsRevoked: 0, blobsDeleted: 0, errors: 0 });
      expect(await readAs(registry, 't/app', layer)).toBe('orphan');
      // Older: revoked; the bytes stay one more grace period (the entry has just become empty).
      report = await registry.collectGarbage({ gracePeriodMs: HOUR, now: at(HOUR + 1000) });
      expect(report).toMatchObject({ grantsRevoked: 1, blobsDeleted: 0, errors: 0 });
      expect(await readAs(registry, 't/app', layer)).toBeUndefined();
      expect(await hasBytes(t, layer)).toBe(true);
      report = await registry.collectGarbage({ gracePeriodMs: HOUR, now: at(HOUR + HOUR / 2) });
      expect(report.blobsDeleted).toBe(0);
      expect(await hasBytes(t, layer)).toBe(true);
      report = await registry.collectGarbage({ gracePeriodMs: HOUR, now: at(2 * HOUR + 2000) });
      expect(report).toMatchObject({ blobsDeleted: 1, errors: 0 });
      expect(await hasBytes(t, layer)).toBe(false);
      expect(await registry.blobs.stat('t/app', layer).catch(() => 'unknown')).toBe('unknown');
    });

    it('refuses a push over a grant revoked within the grace period, even with missing references allowed', async () => {
      // The default allow_missing_manifest_references = true: a blob the namespace cannot read is
      // no reason to refuse, unless it could read it a moment ago (a client's HEAD said 200).
      const t = await open(kind, '[gc]\ngrace_period_secs = 1\n');
      const { registry } = t;
      await upload(registry, 't/app', 'config');
      const layer = await upload(registry, 't/app', 'layer seen by a HEAD');
      expect(await readAs(registry, 't/app', layer)).toBe('layer seen by a HEAD');
      const revokedAt = Date.now() + 1100;
      const report = await registry.collectGarbage({ gracePeriodMs: 1000, now: () => revokedAt });
      expect(report).toMatchObject({ grantsRevoked: 2, errors: 0 });
      expect(await readAs(registry, 't/app', layer)).toBeUndefined();
      const body = manifestOf('config', ['layer seen by a HEAD']);
      await expect(putManifest(registry, 't/app', 'v1', body)).rejects.toMatchObject({
        kind: 'MANIFEST_BLOB_UNKNOWN',
      });
      // Once the revocation is older than the grace period, nobody can have relied on the blob:
      // the push is a push of missing references, which this configuration allows.
      while (Date.now() < revokedAt + 1100) await settle(100);
      await expect(putManifest(registry, 't/app', 'v1', body)).resolves.toBeDefined();
    });

    it('keeps everything a manifest references, prunes references of vanished manifests, and writes nothing in a dry run', async () => {
      const t = await open(kind);
      const { registry } = t;
      await upload(registry, 't/app', 'cfg');
      await upload(registry, 't/app', 'kept layer');
      const pushed = await putManifest(registry, 't/app', 'v1', manifestOf('cfg', ['kept layer']));
      // A leftover: a reference to a manifest that is not (any more) a revision of the namespace.
      const ghost = digestOfBytes('sha256', Buffer.from('never stored'));
      await upload(registry, 't/app', 'leftover');
      const leftover = digestOf('leftover');
      const index = keyFor({ kind: 'blobIndex', digest: leftover });
      await t.metadata.store.put(index, JSON.stringify({ 't/app': ['layer', `ref:${formatDigest(ghost)}`] }));
      const later = () => Date.now() + 10 * HOUR;
      const dry = await registry.collectGarbage({ gracePeriodMs: HOUR, now: later, dryRun: true });
      expect(dry).toMatchObject({ refsPruned: 1, errors: 0 });
      expect(JSON.parse((await t.metadata.store.get(index)).toString())['t/app']).toHaveLength(2);
      const report = await registry.collectGarbage({ gracePeriodMs: HOUR, now: later });
      expect(report).toMatchObject({ refsPruned: 1, errors: 0 });
      for (const blob of ['cfg', 'kept layer'])
        expect(await readAs(registry, 't/app', digestOf(blob))).toBe(blob);
      expect((await registry.manifests.get('t/app', parseReference('v1'))).digest.hex).toBe(
        pushed.digest.hex,
      );
    });

    it('reclaims bytes that have no index entry one grace period after it first sees them', async () => {
      const t = await open(kind);
      const stray = digestOf('stray');
      await t.blobs.store.putBlob(stray, Buffer.from('stray'));
      const start = Date.now();
      expect((await t.registry.collectGarbage({ gracePeriodMs: HOUR, now: () => start })).blobsDeleted).toBe(
        0,
      );
      expect(await hasBytes(t, stray)).toBe(true);
      const report = await t.registry.collectGarbage({ gracePeriodMs: HOUR, now: () => start + HOUR });
      expect(report).toMatchObject({ blobsDeleted: 1, errors: 0 });
      expect(await hasBytes(t, stray)).toBe(false);
    });

    it('takes over an old-format reclaim claim by holding the digest lock', async () => {
      const t = await open(kind);
      const digest = digestOf('legacy');
      await t.blobs.store.putBlob(digest, Buffer.from('legacy'));
      await t.metadata.store.put(keyFor({ kind: 'blobIndex', digest }), JSON.stringify({ _reclaiming: [] }));
      const report = await t.registry.collectGarbage({ gracePeriodMs: HOUR });
      expect(report).toMatchObject({ blobsDeleted: 1, errors: 0 });
      expect(await hasBytes(t, digest)).toBe(false);
      await expect(t.metadata.store.get(keyFor({ kind: 'blobIndex', digest }))).rejects.toThrow();
    });
  });
});

describe.skipIf(!s3Server)('reclamation across replicas on S3 with the S3 lock', () => {
  it("keeps a reclaim stuck in its delete call for longer than the lock TTL; the other replica's push waits or is refused", async () => {
    const { replicas, close } = await s3Replicas(2);
    try {
      const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
      const digest = await upload(a.registry, 't/old', 'slow on s3');
      await a.registry.blobs.delete('t/old', digest);
      const deleting = a.blobs.pause('deleteBlob', digestMatch(digest), { before: true });
      const collecting = a.registry.collectGarbage({ gracePeriodMs: 0 });
      await deleting.reached;
      let acknowledged = false;
      const pushing = upload(b.registry, 't/new', 'slow on s3').then(
        () => {
          acknowledged = true;
          return 'acknowledged' as const;
        },
        (error: unknown) => error,
      );
      // Longer than the lock's TTL (2 s): the reclaimer keeps its lease by heartbeats, and the
      // push on the other replica cannot take the claim over meanwhile.
      await settle(5000);
      expect(acknowledged).toBe(false);
      deleting.release();
      const report = await collecting;
      expect(report).toMatchObject({ blobsDeleted: 1, errors: 0 });
      // The push waited for the reclaim to end, then wrote the bytes again (600 lock retries
      // leave it a minute; with fewer it would be refused, never acknowledged without its bytes).
      expect(await pushing).toBe('acknowledged');
      expect(await readAs(b.registry, 't/new', digest)).toBe('slow on s3');
      expect(await readAs(a.registry, 't/new', digest)).toBe('slow on s3');
    } finally {
      await close();
    }
  }, 120_000);
});
