import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '@angos/config';
import { type DigestParts, parseReference } from '@angos/oci';
import { encodeLink } from '@angos/registry';
import { keyFor, NotFoundError } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ScrubSelection } from '../src/index.js';
import {
  ALL_CHECKS,
  digestOf,
  fmt,
  HOUR_MS,
  KINDS,
  OCI_MANIFEST,
  openStore,
  pull,
  pushImage,
  type Store,
  seedHealthy,
  upload,
} from './support.js';

/**
 * The fault matrix of `angos scrub` (issue 2.5), on fs and on S3 (Ceph RGW): each fault is seeded
 * into a store that otherwise holds healthy images; a dry run must report it and leave the store
 * byte-identical; the real run must plan exactly the same actions and repair the fault; a second
 * run then finds nothing. A healthy store stays byte-identical through every check.
 */

const TWO_HOURS_AGO = () => new Date(Date.now() - 2 * 3600_000);
/** A clock two hours ahead: past the grace period and the durations of these tests. */
const TWO_HOURS_ON = () => Date.now() + 2 * 3600_000;

/** Repositories `team` and `lib` configured: any other namespace is an orphan. */
const REPOSITORIES = parseConfig(
  '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n[repository."team"]\n[repository."lib"]\n',
).config;

const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key);

describe.each(KINDS)('scrub fault matrix on %s', (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore(kind);
  });
  afterEach(async () => {
    await store.close();
  });

  /** Dry run: reports `expected` and changes nothing; real run: the same actions; then idempotent. */
  async function scrubRepairs(
    expected: Array<{ action: string; key: string }>,
    selection: ScrubSelection = ALL_CHECKS,
    now: () => number = Date.now,
  ) {
    const before = await store.snapshot();
    const dry = await store.scrub(true, selection, now);
    expect(dry.summary.failures).toBe(0);
    for (const action of expected) expect(dry.actions).toContainEqual(expect.objectContaining(action));
    expect(await store.snapshot()).toEqual(before);
    const real = await store.scrub(false, selection, now);
    expect(real.summary.failures).toBe(0);
    expect(real.actions).toEqual(dry.actions);
    const again = await store.scrub(false, selection, now);
    expect(again.actions).toEqual([]);
    return { dry, real };
  }

  /** The blob-index entry of a blob, as stored; undefined when there is none. */
  async function indexEntry(digest: DigestParts): Promise<Record<string, unknown> | undefined> {
    try {
      return JSON.parse((await store.metadata.get(keyFor({ kind: 'blobIndex', digest }))).toString());
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  it('leaves a healthy store byte-identical, after each check and after all of them', async () => {
    await seedHealthy(store.registry);
    // A session in progress and a young temp file are healthy too.
    await store.registry.uploads.start('lib');
    if (store.fsRoots.metadata) await writeFile(join(store.fsRoots.metadata, 'lib/.tmp-cafe-1'), 'in flight');
    const before = await store.snapshot();
    const selections = [...Object.keys(ALL_CHECKS).map((name) => ({ [name]: true })), ALL_CHECKS];
    for (const selection of selections) {
      for (const dryRun of [true, false]) {
        const { summary, actions } = await store.scrub(dryRun, selection);
        expect(actions, JSON.stringify(selection)).toEqual([]);
        expect(summary).toMatchObject({ repairs: 0, quarantined: 0, failures: 0 });
        expect(summary.keysWalked).toBeGreaterThan(5);
      }
      expect(await store.snapshot()).toEqual(before);
    }
  });

  it('a tag whose manifest bytes are gone: the tag goes, with its revision', async () => {
    await seedHealthy(store.registry);
    const broken = await pushImage(store.registry, 'team/app', 'broken', { config: 'cfg-b', layers: ['b'] });
    await store.blobs.deleteBlob(broken.digest);
    await scrubRepairs([
      { action: 'delete-tag', key: keyFor({ kind: 'tagLink', namespace: 'team/app', tag: 'broken' }) },
      {
        action: 'delete-revision',
        key: keyFor({ kind: 'revisionLink', namespace: 'team/app', digest: broken.digest }),
      },
    ]);
    expect((await store.registry.manifests.listTags('team/app', {})).tags).toEqual(['sig', 'v1', 'v2']);
    expect(await pull(store.registry, 'team/app', 'v1')).toBe(true);
  });

  it('a revision without bytes', async () => {
    await seedHealthy(store.registry);
    const broken = await pushImage(store.registry, 'lib', 'gone', { config: 'cfg-g', layers: ['g'] });
    await store.registry.manifests.delete('lib', { kind: 'tag', tag: 'gone' });
    await store.blobs.deleteBlob(broken.digest);
    const revision = keyFor({ kind: 'revisionLink', namespace: 'lib', digest: broken.digest });
    await scrubRepairs([{ action: 'delete-revision', key: revision }]);
    await expect(store.metadata.get(revision)).rejects.toBeInstanceOf(NotFoundError);
    expect(await pull(store.registry, 'lib', 'latest')).toBe(true);
  });

  it('a layer link to a missing blob: the grant is revoked', async () => {
    await seedHealthy(store.registry);
    const orphan = await upload(store.registry, 'lib', 'lost-layer');
    await store.blobs.deleteBlob(orphan);
    const link = keyFor({ kind: 'layerLink', namespace: 'lib', digest: orphan });
    await scrubRepairs([{ action: 'delete-layer-link', key: link }]);
    await expect(store.metadata.get(link)).rejects.toBeInstanceOf(NotFoundError);
    const entry = JSON.parse(
      (await store.metadata.get(keyFor({ kind: 'blobIndex', digest: orphan }))).toString(),
    );
    expect(entry.lib).toBeUndefined();
  });

  it('a referrer link to a deleted manifest', async () => {
    const { app, signature } = await seedHealthy(store.registry);
    // A crash between the revision's delete and its referrer link's (or an older version's delete).
    await store.metadata.delete(
      keyFor({ kind: 'revisionLink', namespace: 'team/app', digest: signature.digest }),
    );
    await store.metadata.delete(keyFor({ kind: 'tagLink', namespace: 'team/app', tag: 'sig' }));
    const link = keyFor({
      kind: 'referrerLink',
      namespace: 'team/app',
      subject: app.digest,
      referrer: signature.digest,
    });
    await scrubRepairs([{ action: 'delete-referrer-link', key: link }]);
    expect(await store.registry.manifests.referrers('team/app', app.digest, undefined)).toEqual([]);
  });

  it('a phantom referrer back-link: the referrer has another subject', async () => {
    const { signature } = await seedHealthy(store.registry);
    const other = await pushImage(store.registry, 'team/app', 'other', { config: 'cfg-o', layers: ['o'] });
    const link = keyFor({
      kind: 'referrerLink',
      namespace: 'team/app',
      subject: other.digest,
      referrer: signature.digest,
    });
    await store.metadata.put(
      link,
      JSON.stringify({ mediaType: 'x', digest: `sha256:${signature.digest.hex}`, size: 1 }),
    );
    await scrubRepairs([{ action: 'delete-referrer-link', key: link }]);
    expect(await store.registry.manifests.referrers('team/app', other.digest, undefined)).toEqual([]);
  });

  it('a tag directory whose name violates the tag grammar', async () => {
    const { app } = await seedHealthy(store.registry);
    const dir = keyFor({ kind: 'tag', namespace: 'team/app', tag: '-not-a-tag' });
    await store.metadata.put(`${dir}/link`, encodeLink({ digest: app.digest }));
    await scrubRepairs([{ action: 'delete-tag', key: dir }]);
    expect((await store.registry.manifests.listTags('team/app', {})).tags).toEqual(['sig', 'v1', 'v2']);
  });

  it('an upload older than --uploads, and a broken one', async () => {
    await seedHealthy(store.registry);
    const old = await store.registry.uploads.start('lib');
    await store.metadata.put(
      keyFor({ kind: 'uploadStartedAt', namespace: 'lib', id: old }),
      TWO_HOURS_AGO().toISOString(),
    );
    const young = await store.registry.uploads.start('lib');
    const broken = await store.registry.uploads.start('lib');
    await store.blobs.deleteUpload('lib', broken);
    await scrubRepairs([
      { action: 'delete-upload', key: keyFor({ kind: 'upload', namespace: 'lib', id: old }) },
      { action: 'delete-upload', key: keyFor({ kind: 'upload', namespace: 'lib', id: broken }) },
    ]);
    await expect(store.blobs.uploadSize('lib', old)).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.blobs.uploadSize('lib', young)).toBe(0);
    await expect(
      store.metadata.get(keyFor({ kind: 'uploadStartedAt', namespace: 'lib', id: broken })),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it.skipIf(kind !== 'fs')('an abandoned fs session (no start time) is aged by its data file', async () => {
    await seedHealthy(store.registry);
    const root = store.fsRoots.blobs!;
    const abandoned = await store.registry.uploads.start('lib');
    const recent = await store.registry.uploads.start('lib');
    for (const id of [abandoned, recent]) {
      await store.metadata.delete(keyFor({ kind: 'uploadStartedAt', namespace: 'lib', id }));
    }
    const data = join(root, keyFor({ kind: 'uploadData', namespace: 'lib', id: abandoned }));
    await utimes(data, TWO_HOURS_AGO(), TWO_HOURS_AGO());
    await scrubRepairs([
      { action: 'delete-upload', key: keyFor({ kind: 'upload', namespace: 'lib', id: abandoned }) },
    ]);
    await expect(store.blobs.uploadSize('lib', abandoned)).rejects.toBeInstanceOf(NotFoundError);
    expect(await store.blobs.uploadSize('lib', recent)).toBe(0);
  });

  it.skipIf(kind !== 'fs')('leftover temp files', async () => {
    await seedHealthy(store.registry);
    const root = store.fsRoots.metadata!;
    const stale = join(root, 'team/app/_manifests/tags/v1/.tmp-deadbeef-1');
    const fresh = join(root, 'lib/_manifests/.tmp-deadbeef-2');
    // A job queue worker SIGKILLed while writing a claim: the queue's directory holds only this.
    const claims = join(root, keyFor({ kind: 'jobClaims', queue: 'cache' }));
    const staleClaim = join(claims, '.tmp-deadbeef-3');
    await mkdir(claims, { recursive: true });
    await writeFile(stale, 'half a link');
    await writeFile(fresh, 'a write in flight');
    await writeFile(staleClaim, '{"token":');
    await utimes(stale, TWO_HOURS_AGO(), TWO_HOURS_AGO());
    await utimes(staleClaim, TWO_HOURS_AGO(), TWO_HOURS_AGO());
    await scrubRepairs([
      { action: 'delete-temp', key: 'team/app/_manifests/tags/v1/.tmp-deadbeef-1' },
      { action: 'delete-temp', key: '_jobs/cache/claims/.tmp-deadbeef-3' },
    ]);
    expect(Object.keys(Object.fromEntries(await store.snapshot()))).toContain(
      'lib/_manifests/.tmp-deadbeef-2',
    );
    // The directories the temp file alone kept are gone with it: no job queue is listed.
    expect(await store.metadata.list(keyFor({ kind: 'jobQueues' }))).toEqual([]);
  });

  it('a manifest link without a media type: backfilled from the manifest', async () => {
    const { app } = await seedHealthy(store.registry);
    const revision = keyFor({ kind: 'revisionLink', namespace: 'team/app', digest: app.digest });
    await store.metadata.put(
      revision,
      encodeLink({ digest: app.digest, createdAt: '2020-01-01T00:00:00.000Z' }),
    );
    expect(await pull(store.registry, 'team/app', 'v1')).toBe(false);
    await scrubRepairs([{ action: 'backfill-media-type', key: revision }]);
    const link = JSON.parse((await store.metadata.get(revision)).toString());
    expect(link).toMatchObject({ media_type: 'application/vnd.oci.image.manifest.v1+json', size: app.size });
    expect(link.created_at).toBe('2020-01-01T00:00:00.000Z');
    expect(await pull(store.registry, 'team/app', 'v1')).toBe(true);
  });

  it('an unknown key is moved to lost-and-found, never deleted', async () => {
    const { app } = await seedHealthy(store.registry);
    const stray = `${keyFor({ kind: 'revision', namespace: 'team/app', digest: app.digest })}/notes`;
    await store.metadata.put(stray, 'hello');
    await scrubRepairs([{ action: 'quarantine', key: stray }]);
    expect((await store.metadata.get(keyFor({ kind: 'lostAndFound', key: stray }))).toString()).toBe('hello');
    await expect(store.metadata.get(stray)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a link that names another digest is rewritten from its directory', async () => {
    const { app } = await seedHealthy(store.registry);
    const layer = digestOf('app-1');
    const link = keyFor({ kind: 'layerLink', namespace: 'team/app', digest: layer });
    await store.metadata.put(link, 'not json');
    await scrubRepairs([{ action: 'rewrite-link', key: link }]);
    expect(JSON.parse((await store.metadata.get(link)).toString()).digest).toBe(`sha256:${layer.hex}`);
    expect(await pull(store.registry, 'team/app', 'v1')).toBe(true);
    expect(app).toBeDefined();
  });

  it('a blob whose bytes were corrupted: removed (counted as corrupt), and the links to it then repaired', async () => {
    const { app } = await seedHealthy(store.registry);
    const layer = digestOf('app-1');
    await store.blobs.deleteBlob(layer);
    await store.blobs.putBlob(layer, Buffer.from('app-X'));
    const { dry, real } = await scrubRepairs(
      [{ action: 'remove-corrupt-blob', key: keyFor({ kind: 'blob', digest: layer }) }],
      { blobs: true },
    );
    expect(dry.actions).toHaveLength(1);
    expect(dry.summary.corruptRemoved).toBe(1);
    expect(real.summary).toMatchObject({ corruptRemoved: 1, repairs: 0, failures: 0 });
    await expect(store.blobs.statBlob(layer)).rejects.toBeInstanceOf(NotFoundError);
    // The holders stay; the link to the removed bytes is `--links`' to revoke.
    expect(await indexEntry(layer)).toMatchObject({ 'team/app': ['layer', `ref:${fmt(app.digest)}`] });
    const follow = await store.scrub(false, { links: true });
    expect(follow.actions).toContainEqual(
      expect.objectContaining({
        action: 'delete-layer-link',
        key: keyFor({ kind: 'layerLink', namespace: 'team/app', digest: layer }),
      }),
    );
    // Every other blob was hashed and kept.
    expect(await pull(store.registry, 'team/app', 'v2')).toBe(true);
  });

  it('a blob-index entry for a deleted namespace: its grants dropped, its references pruned', async () => {
    await seedHealthy(store.registry);
    const gone = await pushImage(store.registry, 'gone/app', 'v1', {
      config: 'cfg-gone',
      layers: ['base', 'gone-1'],
    });
    await store.metadata.deletePrefix(keyFor({ kind: 'namespace', namespace: 'gone/app' }));
    const digests = [digestOf('cfg-gone'), digestOf('base'), digestOf('gone-1')];
    const { real } = await scrubRepairs(
      digests.map((digest) => ({
        action: 'drop-stale-grant',
        key: keyFor({ kind: 'layerLink', namespace: 'gone/app', digest }),
      })),
      { blobs: true },
    );
    expect(real.actions).toHaveLength(3);
    expect(real.gc?.refsPruned).toBe(4);
    for (const digest of [...digests, gone.digest])
      expect((await indexEntry(digest))?.['gone/app']).toBeUndefined();
    // Shared with live namespaces: still held; the namespace's own blobs: empty, reclaimed later.
    expect(await indexEntry(digestOf('base'))).toHaveProperty('lib');
    expect(await indexEntry(digestOf('gone-1'))).toHaveProperty('_empty');
    const later = await store.registry.collectGarbage({ gracePeriodMs: HOUR_MS, now: TWO_HOURS_ON });
    expect(later.blobsDeleted).toBe(3); // cfg-gone, gone-1 and the manifest
    expect(await pull(store.registry, 'lib', 'latest')).toBe(true);
  });

  it('an un-indexed blob older than the grace period: adopted, then reclaimed by the pass', async () => {
    await seedHealthy(store.registry);
    const stray = digestOf('stray bytes');
    await store.blobs.putBlob(stray, Buffer.from('stray bytes'));
    await scrubRepairs([{ action: 'adopt-blob', key: keyFor({ kind: 'blobIndex', digest: stray }) }], {
      blobs: true,
    });
    expect(await indexEntry(stray)).toHaveProperty('_empty');
    // One grace period after adoption nothing has claimed it: the pass reclaims it.
    const { gc } = await store.scrub(false, { blobs: true }, TWO_HOURS_ON);
    expect(gc?.blobsDeleted).toBe(1);
    await expect(store.blobs.statBlob(stray)).rejects.toBeInstanceOf(NotFoundError);
    expect(await indexEntry(stray)).toBeUndefined();
    expect(await pull(store.registry, 'team/app', 'v1')).toBe(true);
  });

  it('orphan grants older than --orphan-grants: revoked through the protocol, bytes left to the pass', async () => {
    await seedHealthy(store.registry);
    const orphan = await upload(store.registry, 'lib', 'replicated-but-lost');
    const young = await upload(store.registry, 'team/app', 'base'); // referenced: never an orphan
    const link = keyFor({ kind: 'layerLink', namespace: 'lib', digest: orphan });
    // Not yet an orphan for an hour: nothing.
    expect((await store.scrub(true, { orphanGrants: true })).actions).toEqual([]);
    const { real } = await scrubRepairs(
      [{ action: 'revoke-grant', key: link }],
      { orphanGrants: true },
      TWO_HOURS_ON,
    );
    expect(real.actions).toHaveLength(1);
    await expect(store.metadata.get(link)).rejects.toBeInstanceOf(NotFoundError);
    const entry = await indexEntry(orphan);
    expect(entry?.['lib']).toBeUndefined();
    expect(entry).toHaveProperty('_revoked.lib');
    expect(await indexEntry(young)).toHaveProperty('team/app');
    // The bytes go with the garbage-collection pass, one grace period after the entry emptied.
    const later = await store.registry.collectGarbage({
      gracePeriodMs: HOUR_MS,
      now: () => TWO_HOURS_ON() + 2 * HOUR_MS,
    });
    expect(later.blobsDeleted).toBe(1);
    await expect(store.blobs.statBlob(orphan)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('an orphan namespace: its tags, revisions, uploads and grants go; shared blobs stay', async () => {
    await seedHealthy(store.registry);
    const old = await pushImage(store.registry, 'old/app', 'v1', {
      config: 'cfg-old',
      layers: ['base', 'old-1'],
    });
    const session = await store.registry.uploads.start('old/app');
    const orphanGrant = await upload(store.registry, 'old/app', 'old-unused');
    const namespace = 'old/app';
    // A tag deleted earlier: its tombstone goes with the namespace.
    const body = (await store.registry.manifests.get(namespace, parseReference('v1'))).body;
    await store.registry.manifests.put(namespace, parseReference('was'), body, OCI_MANIFEST, []);
    await store.registry.manifests.delete(namespace, parseReference('was'));
    const selection = { ...ALL_CHECKS, orphanNamespaces: { config: REPOSITORIES } };
    const expected = [
      { action: 'delete-tag', key: keyFor({ kind: 'tagLink', namespace, tag: 'v1' }) },
      { action: 'delete-tombstone', key: keyFor({ kind: 'tagTombstone', namespace, tag: 'was' }) },
      { action: 'delete-manifest', key: keyFor({ kind: 'revisionLink', namespace, digest: old.digest }) },
      { action: 'delete-upload', key: keyFor({ kind: 'upload', namespace, id: session }) },
      ...[digestOf('base'), digestOf('cfg-old'), digestOf('old-1'), orphanGrant].map((digest) => ({
        action: 'revoke-grant',
        key: keyFor({ kind: 'layerLink', namespace, digest }),
      })),
    ];
    const { real } = await scrubRepairs(expected, selection);
    expect(real.actions.map(({ action, key }) => ({ action, key })).sort(byKey)).toEqual(
      expected.sort(byKey),
    );
    expect((await store.registry.listNamespaces({})).namespaces).toEqual(['lib', 'team/app']);
    expect(await store.metadata.list(keyFor({ kind: 'tagTombstones', namespace }))).toEqual([]);
    await expect(store.blobs.uploadSize(namespace, session)).rejects.toBeInstanceOf(NotFoundError);
    for (const digest of [digestOf('cfg-old'), digestOf('old-1'), orphanGrant, old.digest]) {
      expect((await indexEntry(digest))?.[namespace]).toBeUndefined();
    }
    expect(await indexEntry(digestOf('base'))).toHaveProperty('team/app');
    // The pass reclaims the namespace's own blobs one grace period later, never a shared one.
    const later = await store.registry.collectGarbage({ gracePeriodMs: HOUR_MS, now: TWO_HOURS_ON });
    expect(later.blobsDeleted).toBe(4);
    expect(await pull(store.registry, 'team/app', 'v1')).toBe(true);
    expect(await pull(store.registry, 'lib', 'latest')).toBe(true);
  });

  it('--orphan-namespaces with no repository configured deletes nothing', async () => {
    await seedHealthy(store.registry);
    const before = await store.snapshot();
    const { config } = parseConfig(
      '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n',
    );
    for (const dryRun of [true, false]) {
      const { actions, summary } = await store.scrub(dryRun, { orphanNamespaces: { config } });
      expect(actions).toEqual([]);
      expect(summary.failures).toBe(0);
    }
    expect(await store.snapshot()).toEqual(before);
  });

  it('--reconcile-blob-index rebuilds the holds the manifests and links imply', async () => {
    const { app } = await seedHealthy(store.registry);
    const layer = digestOf('app-1');
    await store.metadata.delete(keyFor({ kind: 'blobIndex', digest: layer }));
    await store.metadata.delete(keyFor({ kind: 'blobIndex', digest: app.digest }));
    await scrubRepairs(
      [
        {
          action: 'reindex-manifest',
          key: keyFor({ kind: 'revisionLink', namespace: 'team/app', digest: app.digest }),
        },
        { action: 'reindex-grant', key: keyFor({ kind: 'layerLink', namespace: 'team/app', digest: layer }) },
      ],
      { reconcileBlobIndex: true },
    );
    expect(await indexEntry(layer)).toMatchObject({ 'team/app': ['layer', `ref:${fmt(app.digest)}`] });
    // The signature lists the app manifest as its subject, not as a reference: only its own hold.
    expect(await indexEntry(app.digest)).toMatchObject({ 'team/app': ['manifest'] });
  });

  it('a healthy store with its repositories configured stays byte-identical under --orphan-namespaces', async () => {
    await seedHealthy(store.registry);
    await store.registry.uploads.start('lib');
    const before = await store.snapshot();
    for (const dryRun of [true, false]) {
      const { actions } = await store.scrub(dryRun, {
        ...ALL_CHECKS,
        orphanNamespaces: { config: REPOSITORIES },
      });
      expect(actions).toEqual([]);
    }
    expect(await store.snapshot()).toEqual(before);
  });
});
