import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeLink } from '@angos/registry';
import { keyFor, NotFoundError } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ALL_CHECKS,
  digestOf,
  KINDS,
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

describe.each(KINDS)('scrub fault matrix on %s', (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore(kind);
  });
  afterEach(async () => {
    await store.close();
  });

  /** Dry run: reports `expected` and changes nothing; real run: the same actions; then idempotent. */
  async function scrubRepairs(expected: Array<{ action: string; key: string }>) {
    const before = await store.snapshot();
    const dry = await store.scrub(true);
    expect(dry.summary.failures).toBe(0);
    for (const action of expected) expect(dry.actions).toContainEqual(expect.objectContaining(action));
    expect(await store.snapshot()).toEqual(before);
    const real = await store.scrub(false);
    expect(real.summary.failures).toBe(0);
    expect(real.actions).toEqual(dry.actions);
    const again = await store.scrub(false);
    expect(again.actions).toEqual([]);
    return real;
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
    await writeFile(stale, 'half a link');
    await writeFile(fresh, 'a write in flight');
    await utimes(stale, TWO_HOURS_AGO(), TWO_HOURS_AGO());
    await scrubRepairs([{ action: 'delete-temp', key: 'team/app/_manifests/tags/v1/.tmp-deadbeef-1' }]);
    expect(Object.keys(Object.fromEntries(await store.snapshot()))).toContain(
      'lib/_manifests/.tmp-deadbeef-2',
    );
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
});
