import { Readable } from 'node:stream';
import { silentLogger } from '@angos/observability';
import { parseReference } from '@angos/oci';
import { blobLockKey } from '@angos/registry';
import { keyFor, NotFoundError } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  blobsCheck,
  orphanGrantsCheck,
  reconcileBlobIndexCheck,
  tagsCheck,
  uploadsCheck,
} from '../src/checks/index.js';
import { linksCheck } from '../src/checks/links.js';
import { manifestsCheck } from '../src/checks/manifests.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../src/index.js';
import { digestOf, KINDS, OCI_MANIFEST, openStore, pull, pushImage, type Store, upload } from './support.js';

/**
 * Scrub online: a repair planned from what the store held a moment ago must do nothing when a
 * request fixed the fault in between (a push of the missing manifest, an upload of the missing
 * blob, a session completed). Forced deterministically: plan, then the request, then apply.
 */

describe.each(KINDS)('scrub racing requests on %s', (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore(kind);
  });
  afterEach(async () => {
    await store.close();
  });

  function ctx(now = Date.now): ScrubContext {
    return {
      metadata: store.metadata,
      blobs: store.blobs,
      registry: store.registry,
      locks: store.locks,
      logger: silentLogger,
      now,
      options: { uploadsOlderThanMs: 3600_000, orphanGrantsOlderThanMs: 3600_000 },
      fsRoots: store.fsRoots,
      walked: () => {},
    };
  }

  async function planned(check: ScrubCheck, context = ctx()): Promise<ScrubAction[]> {
    const actions: ScrubAction[] = [];
    for await (const action of check.plan(context)) actions.push(action);
    return actions;
  }

  it('a tag re-pushed after the plan is kept', async () => {
    const image = await pushImage(store.registry, 'app', 'v1', { config: 'c', layers: ['l'] });
    const body = await store.registry.manifests.get('app', parseReference('v1'));
    await store.blobs.deleteBlob(image.digest);
    const [deleteTag] = await planned(tagsCheck);
    expect(deleteTag?.action).toBe('delete-tag');
    // The client pushes the same image again: bytes back, tag re-pointed.
    await store.registry.manifests.put('app', parseReference('v1'), body.body, OCI_MANIFEST, []);
    await deleteTag?.apply();
    expect(await pull(store.registry, 'app', 'v1')).toBe(true);
  });

  it('a revision whose bytes come back after the plan is kept', async () => {
    const image = await pushImage(store.registry, 'app', 'v1', { config: 'c', layers: ['l'] });
    const body = (await store.registry.manifests.get('app', parseReference('v1'))).body;
    await store.blobs.deleteBlob(image.digest);
    const revision = (await planned(manifestsCheck)).find((action) => action.action === 'delete-revision');
    expect(revision).toBeDefined();
    await store.registry.manifests.put('app', parseReference('v1'), body, OCI_MANIFEST, []);
    await revision?.apply();
    expect(await pull(store.registry, 'app', 'v1')).toBe(true);
  });

  it('a grant whose blob is uploaded again after the plan is kept', async () => {
    const layer = await upload(store.registry, 'app', 'layer');
    await store.blobs.deleteBlob(layer);
    const [revoke] = await planned(linksCheck);
    expect(revoke?.action).toBe('delete-layer-link');
    await upload(store.registry, 'app', 'layer');
    await revoke?.apply();
    expect((await store.registry.blobs.stat('app', layer)).size).toBe(5);
  });

  it('an old session completed after the plan is not touched again', async () => {
    const id = await store.registry.uploads.start('app');
    const [remove] = await planned(
      uploadsCheck,
      ctx(() => Date.now() + 2 * 3600_000),
    );
    expect(remove?.action).toBe('delete-upload');
    await store.registry.uploads.complete(
      'app',
      id,
      digestOf('late'),
      Readable.from([Buffer.from('late')]),
      {},
    );
    await remove?.apply();
    expect((await store.registry.blobs.stat('app', digestOf('late'))).size).toBe(4);
    await expect(
      store.metadata.get(keyFor({ kind: 'uploadStartedAt', namespace: 'app', id })),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it('a corrupt blob whose good bytes come back after the plan is kept, and its entry unclaimed', async () => {
    const image = await pushImage(store.registry, 'app', 'v1', { config: 'c', layers: ['layer'] });
    const layer = digestOf('layer');
    await store.blobs.deleteBlob(layer);
    await store.blobs.putBlob(layer, Buffer.from('LAYER'));
    const [remove] = await planned(blobsCheck);
    expect(remove?.action).toBe('remove-corrupt-blob');
    // Reclaimed and pushed again meanwhile: the bytes at the key are good now.
    await store.blobs.deleteBlob(layer);
    await store.blobs.putBlob(layer, Buffer.from('layer'));
    await remove?.apply();
    expect((await store.blobs.statBlob(layer)).size).toBe(5);
    const entry = JSON.parse(
      (await store.metadata.get(keyFor({ kind: 'blobIndex', digest: layer }))).toString(),
    );
    expect(entry).not.toHaveProperty('_claim');
    expect(entry['app']).toContain('layer');
    expect(await pull(store.registry, 'app', 'v1')).toBe(true);
    expect(image).toBeDefined();
  });

  it('an index grant whose link is written after the plan is kept', async () => {
    const layer = await upload(store.registry, 'app', 'layer');
    await store.metadata.delete(keyFor({ kind: 'layerLink', namespace: 'app', digest: layer }));
    const [drop] = (await planned(blobsCheck)).filter((action) => action.action === 'drop-stale-grant');
    expect(drop?.key).toBe(keyFor({ kind: 'layerLink', namespace: 'app', digest: layer }));
    // The upload is committed again: its grant lock ends with the link written.
    await upload(store.registry, 'app', 'layer');
    await drop?.apply();
    expect((await store.registry.blobs.stat('app', layer)).size).toBe(5);
    const entry = JSON.parse(
      (await store.metadata.get(keyFor({ kind: 'blobIndex', digest: layer }))).toString(),
    );
    expect(entry['app']).toEqual(['layer']);
  });

  it('an orphan grant a manifest references after the plan is kept', async () => {
    await upload(store.registry, 'app', 'layer');
    const later = () => Date.now() + 2 * 3600_000;
    const [revoke] = await planned(orphanGrantsCheck, ctx(later));
    expect(revoke?.action).toBe('revoke-grant');
    // A manifest using the layer lands between the plan and the revocation.
    await pushImage(store.registry, 'app', 'v1', { config: 'c', layers: ['layer'] });
    await revoke?.apply();
    expect(await pull(store.registry, 'app', 'v1')).toBe(true);
    expect((await store.registry.blobs.stat('app', digestOf('layer'))).size).toBe(5);
  });

  it('a manifest deleted after the reconcile plan gets no holds back', async () => {
    const image = await pushImage(store.registry, 'app', 'v1', { config: 'c', layers: ['layer'] });
    const layer = digestOf('layer');
    await store.metadata.delete(keyFor({ kind: 'blobIndex', digest: layer }));
    const reindex = (await planned(reconcileBlobIndexCheck)).find(
      (action) => action.action === 'reindex-manifest',
    );
    expect(reindex).toBeDefined();
    await store.registry.manifests.delete('app', parseReference(`sha256:${image.digest.hex}`));
    await reindex?.apply();
    await expect(store.metadata.get(keyFor({ kind: 'blobIndex', digest: layer }))).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('an upload of a corrupt blob that starts during its removal waits for it, and its bytes are kept', async () => {
    await upload(store.registry, 'app', 'layer');
    const layer = digestOf('layer');
    await store.blobs.deleteBlob(layer);
    await store.blobs.putBlob(layer, Buffer.from('LAYER'));
    // The removal's re-hash under the digest lock is held open until the upload has started.
    let reads = 0;
    let reached!: () => void;
    const atRehash = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const blobs = Object.create(store.blobs) as typeof store.blobs;
    blobs.readBlob = async (digest, range) => {
      reads++;
      if (reads === 2) {
        reached();
        await gate;
      }
      return store.blobs.readBlob(digest, range);
    };
    const context = { ...ctx(), blobs };
    const [remove] = await planned(blobsCheck, context);
    expect(remove?.action).toBe('remove-corrupt-blob');
    const removing = remove!.apply();
    await atRehash;
    // Which comes first for the upload: asking for the digest lock (it found the claim, or, without
    // compare-and-swap, any index update), or writing its bytes over the corrupt ones' key.
    let first!: (step: string) => void;
    const firstStep = new Promise<string>((resolve) => {
      first = resolve;
    });
    const withLocks = store.locks.withLocks.bind(store.locks);
    store.locks.withLocks = ((keys, work, options) => {
      if (keys.includes(blobLockKey(layer))) first('waits for the digest lock');
      return withLocks(keys, work, options);
    }) as typeof store.locks.withLocks;
    const commitUpload = store.blobs.commitUpload.bind(store.blobs);
    store.blobs.commitUpload = (namespace, id, digest) => {
      first('commits its bytes');
      return commitUpload(namespace, id, digest);
    };
    const uploading = upload(store.registry, 'other', 'layer');
    const step = await firstStep;
    release();
    await removing;
    await uploading;
    expect(step).toBe('waits for the digest lock');
    // The upload committed after the removal: its bytes are the ones stored, and readable.
    expect((await store.registry.blobs.stat('other', layer)).size).toBe(5);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.blobs.readBlob(layer)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('layer');
  });
});
