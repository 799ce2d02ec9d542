import { silentLogger } from '@angos/observability';
import { parseReference } from '@angos/oci';
import { TOMBSTONE_RETENTION_MS } from '@angos/registry';
import { keyFor, NotFoundError } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tagsCheck } from '../src/checks/index.js';
import type { ScrubAction, ScrubContext } from '../src/index.js';
import { KINDS, OCI_MANIFEST, openStore, pull, pushImage, type Store } from './support.js';

/**
 * `--tags` reclaims the tag tombstones last-writer-wins no longer needs (libs/registry
 * tombstones.ts): those whose tag exists again, and those older than 30 days.
 */

const NS = 'team/app';
const DAY_MS = 86_400_000;

describe.each(KINDS)('tombstone reclamation on %s', (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await openStore(kind);
  });
  afterEach(async () => {
    await store.close();
  });

  const tombstone = (tag: string) => keyFor({ kind: 'tagTombstone', namespace: NS, tag });
  const hasTombstone = async (tag: string) =>
    store.metadata.get(tombstone(tag)).then(
      () => true,
      (error: unknown) => {
        if (error instanceof NotFoundError) return false;
        throw error;
      },
    );

  /** An image tagged `keep` and `tag`, then `tag` deleted: its tombstone, dated now. */
  async function deletedTag(tag: string): Promise<Buffer> {
    await pushImage(store.registry, NS, 'keep', { config: 'cfg', layers: ['layer'] });
    const body = (await store.registry.manifests.get(NS, parseReference('keep'))).body;
    await store.registry.manifests.put(NS, parseReference(tag), body, OCI_MANIFEST, []);
    await store.registry.manifests.delete(NS, parseReference(tag));
    expect(await hasTombstone(tag)).toBe(true);
    return body;
  }

  it('keeps a tombstone for 30 days, then reclaims it (a dry run only lists it)', async () => {
    await deletedTag('old');
    const young = await store.scrub(false, { tags: true, manifests: true });
    expect(young.actions).toEqual([]);
    expect(await hasTombstone('old')).toBe(true);

    const later = () => Date.now() + TOMBSTONE_RETENTION_MS + DAY_MS;
    const dry = await store.scrub(true, { tags: true }, later);
    expect(dry.actions).toEqual([
      expect.objectContaining({ check: 'tags', action: 'delete-tombstone', key: tombstone('old') }),
    ]);
    expect(await hasTombstone('old')).toBe(true);
    const real = await store.scrub(false, { tags: true }, later);
    expect(real.actions.map((action) => action.action)).toEqual(['delete-tombstone']);
    expect(await hasTombstone('old')).toBe(false);
    expect(await pull(store.registry, NS, 'keep')).toBe(true);
    expect((await store.registry.manifests.listTags(NS, {})).tags).toEqual(['keep']);
  });

  it('reclaims at once the tombstone of a tag pushed again', async () => {
    const body = await deletedTag('back');
    await store.registry.manifests.put(NS, parseReference('back'), body, OCI_MANIFEST, []);
    const { actions } = await store.scrub(false, { tags: true });
    expect(actions).toEqual([
      expect.objectContaining({ action: 'delete-tombstone', key: tombstone('back') }),
    ]);
    expect(await hasTombstone('back')).toBe(false);
    expect(await pull(store.registry, NS, 'back')).toBe(true);
  });

  it('keeps a tombstone written again between the plan and the repair', async () => {
    const body = await deletedTag('raced');
    await store.registry.manifests.put(NS, parseReference('raced'), body, OCI_MANIFEST, []);
    const context: ScrubContext = {
      metadata: store.metadata,
      blobs: store.blobs,
      registry: store.registry,
      locks: store.locks,
      logger: silentLogger,
      now: Date.now,
      options: {},
      fsRoots: store.fsRoots,
      walked: () => {},
    };
    const planned: ScrubAction[] = [];
    for await (const action of tagsCheck.plan(context)) planned.push(action);
    expect(planned.map((action) => action.action)).toEqual(['delete-tombstone']);
    // The tag is deleted again before the repair runs: its new tombstone is needed.
    await store.registry.manifests.delete(NS, parseReference('raced'));
    await planned[0]?.apply();
    expect(await hasTombstone('raced')).toBe(true);
  });
});
