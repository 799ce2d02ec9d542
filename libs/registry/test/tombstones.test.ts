import { formatDigest, OciError, parseReference } from '@angos/oci';
import { keyFor } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { listNamespaces } from '../src/catalog.js';
import type { Registry } from '../src/index.js';
import {
  isPath,
  manifestOf,
  OCI_MANIFEST,
  type StoreKind,
  s3Server,
  settle,
  type TestRegistry,
  testRegistry,
  upload,
} from './support.js';

/**
 * Tag tombstones: a deleted tag keeps its delete's time, so last-writer-wins decides a replicated
 * push that finds no tag against that delete. Without it, a push made before a delete on another
 * peer but arriving after it sets the tag again, and the peers diverge.
 */

const NS = 'team/app';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const v = parseReference('v');

/** A manifest over a config unique to `label`, its blobs uploaded to `registry`. */
async function image(registry: Registry, label: string): Promise<Buffer> {
  await upload(registry, NS, `config ${label}`);
  return manifestOf(`config ${label}`, []);
}

function push(registry: Registry, body: Buffer, sourceTimestampMs?: number) {
  return registry.manifests.put(
    NS,
    v,
    body,
    OCI_MANIFEST,
    [],
    sourceTimestampMs === undefined ? {} : { sourceTimestampMs },
  );
}

/** The digest the tag names, or undefined without the tag. */
async function tagDigest(registry: Registry): Promise<string | undefined> {
  try {
    return formatDigest((await registry.manifests.resolve(NS, v)).digest);
  } catch (error) {
    if (error instanceof OciError && error.kind === 'MANIFEST_UNKNOWN') return undefined;
    throw error;
  }
}

/** `<status> <code>` of a refused call, or `accepted`. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OciError) return `${error.status} ${error.code}`;
    throw error;
  }
  return 'accepted';
}

const iso = (ms: number) => new Date(ms).toISOString();

const KINDS: readonly StoreKind[] = s3Server ? ['memory', 'fs', 's3'] : ['memory', 'fs'];

describe.each(KINDS)('tag tombstones on %s storage', (kind) => {
  const open: TestRegistry[] = [];
  async function peer(): Promise<TestRegistry> {
    const opened = await testRegistry(kind);
    open.push(opened);
    return opened;
  }
  afterEach(async () => {
    for (const opened of open.splice(0)) await opened.close();
  });

  it('a delete on B that reaches A before the older push of A reaches B stays deleted on both', async () => {
    const a = (await peer()).registry;
    const b = (await peer()).registry;
    // Both hold v; A moves it at T1 (its job to B still pending), B deletes it at T2 > T1.
    for (const registry of [a, b]) await push(registry, await image(registry, 'base'), T0);
    const fromA = await push(a, await image(a, 'new'), T0 + 1000);
    await image(b, 'new'); // the job's blob uploads, ahead of its manifest
    await b.manifests.delete(NS, v, { deletedAtMs: T0 + 2000 });
    expect(await b.manifests.tagDeletedAt(NS, 'v')).toBe(iso(T0 + 2000));
    // B's delete reaches A: A's tag is older, so it goes.
    expect(await a.manifests.delete(NS, v, { sourceTimestampMs: T0 + 2000 })).toBe('deleted');
    // A's push job reaches B: B has no v, but its delete is later than the push.
    expect(await outcome(push(b, await image(b, 'new'), T0 + 1000))).toBe('409 REPLICATION_SUPERSEDED');
    expect(await tagDigest(a)).toBeUndefined();
    expect(await tagDigest(b)).toBeUndefined();
    expect(fromA.changed).toBe(true);
  });

  it('on equal times the delete wins; a later push sets the tag again', async () => {
    const { registry } = await peer();
    const body = await image(registry, 'a');
    await push(registry, body, T0);
    await registry.manifests.delete(NS, v, { sourceTimestampMs: T0 + 1000 });
    expect(await outcome(push(registry, body, T0 + 1000))).toBe('409 REPLICATION_SUPERSEDED');
    expect(await tagDigest(registry)).toBeUndefined();
    const later = await push(registry, body, T0 + 1001);
    expect(later.changed).toBe(true);
    expect(await tagDigest(registry)).toBe(formatDigest(later.digest));
  });

  it('an ordinary push after a delete sets the tag, and its old tombstone blocks nothing', async () => {
    const { registry } = await peer();
    await push(registry, await image(registry, 'a'), T0);
    await registry.manifests.delete(NS, v, { sourceTimestampMs: T0 + 5000 });
    // An ordinary push is dated now: it always wins.
    const local = await push(registry, await image(registry, 'b'));
    expect(await tagDigest(registry)).toBe(formatDigest(local.digest));
    // The tag's own time decides now, not the tombstone: a replicated push later than the tag moves it.
    // A source time in the future is applied as now: past the local push's millisecond, or the
    // two would tie and their digests decide.
    await settle(2);
    const replicated = await push(registry, await image(registry, 'c'), Date.now() + 1);
    expect(replicated.changed).toBe(true);
    expect(await tagDigest(registry)).toBe(formatDigest(replicated.digest));
  });

  it('a replicated delete of a tag absent here is recorded: the older push it supersedes is refused', async () => {
    const { registry } = await peer();
    expect(await registry.manifests.delete(NS, v, { sourceTimestampMs: T0 + 1000 })).toBe('deleted');
    expect(await registry.manifests.tagDeletedAt(NS, 'v')).toBe(iso(T0 + 1000));
    // The same delete again, or an older one, changes nothing: MANIFEST_UNKNOWN, tombstone kept.
    for (const at of [T0 + 1000, T0]) {
      expect(await outcome(registry.manifests.delete(NS, v, { sourceTimestampMs: at }))).toBe(
        '404 MANIFEST_UNKNOWN',
      );
    }
    expect(await registry.manifests.tagDeletedAt(NS, 'v')).toBe(iso(T0 + 1000));
    const body = await image(registry, 'a');
    expect(await outcome(push(registry, body, T0))).toBe('409 REPLICATION_SUPERSEDED');
    expect(await tagDigest(registry)).toBeUndefined();
    // A later delete moves the tombstone on.
    expect(await registry.manifests.delete(NS, v, { sourceTimestampMs: T0 + 3000 })).toBe('deleted');
    expect(await outcome(push(registry, body, T0 + 2000))).toBe('409 REPLICATION_SUPERSEDED');
    // An ordinary delete of an absent tag is a plain 404 and records nothing.
    expect(await outcome(registry.manifests.delete(NS, parseReference('w')))).toBe('404 MANIFEST_UNKNOWN');
    expect(await registry.manifests.tagDeletedAt(NS, 'w')).toBeUndefined();
  });

  it('a manifest delete leaves a tombstone for each tag it removes', async () => {
    const { registry } = await peer();
    const body = await image(registry, 'a');
    const pushed = await push(registry, body, T0);
    await registry.manifests.put(NS, parseReference('w'), body, OCI_MANIFEST, [], { sourceTimestampMs: T0 });
    const byDigest = parseReference(formatDigest(pushed.digest));
    expect(await registry.manifests.delete(NS, byDigest, { sourceTimestampMs: T0 + 1000 })).toBe('deleted');
    for (const tag of ['v', 'w']) expect(await registry.manifests.tagDeletedAt(NS, tag)).toBe(iso(T0 + 1000));
    expect(await outcome(push(registry, body, T0 + 500))).toBe('409 REPLICATION_SUPERSEDED');
    // A retention-style delete (no source time) is dated now.
    const again = await push(registry, body);
    const before = Date.now();
    await registry.manifests.delete(NS, parseReference(formatDigest(again.digest)));
    expect(Date.parse((await registry.manifests.tagDeletedAt(NS, 'v'))!)).toBeGreaterThanOrEqual(before);
  });

  it('writes the tombstone before it removes the tag link, under the tag lock', async () => {
    const t = await peer();
    const { registry, metadata, locks } = t;
    await push(registry, await image(registry, 'a'), T0);
    const linkPath = keyFor({ kind: 'tagLink', namespace: NS, tag: 'v' });
    const tombstonePath = keyFor({ kind: 'tagTombstone', namespace: NS, tag: 'v' });
    // Stopped just before the link goes (where a crash would leave things): the tag still stands
    // and its tombstone is already there.
    const pause = metadata.pause('delete', isPath(linkPath), { before: true });
    const deleting = registry.manifests.delete(NS, v, { deletedAtMs: T0 + 1000 });
    await pause.reached;
    expect(locks.requested).toContain(`tag:${NS}:v`);
    expect(await tagDigest(registry)).toBeDefined();
    expect(await registry.manifests.tagDeletedAt(NS, 'v')).toBe(iso(T0 + 1000));
    pause.release();
    await deleting;
    expect(await tagDigest(registry)).toBeUndefined();
    const writes = metadata.calls.filter(
      (call) => /^(put|delete) /.test(call) && (call.endsWith(linkPath) || call.endsWith(tombstonePath)),
    );
    expect(writes.slice(-2)).toEqual([`put ${tombstonePath}`, `delete ${linkPath}`]);
    await settle();
  });

  it('tombstones stay out of tag listings and the catalog', async () => {
    const { registry, metadata } = await peer();
    const body = await image(registry, 'a');
    await push(registry, body, T0);
    await registry.manifests.put(NS, parseReference('keep'), body, OCI_MANIFEST, []);
    await registry.manifests.delete(NS, v);
    expect((await registry.manifests.listTags(NS, {})).tags).toEqual(['keep']);
    await registry.manifests.delete(NS, parseReference('keep'));
    expect((await registry.manifests.listTags(NS, {})).tags).toEqual([]);
    await registry.manifests.delete(NS, parseReference(formatDigest((await push(registry, body)).digest)));
    expect(await listNamespaces(metadata.store, {})).toEqual({ namespaces: [], more: false });
  });
});
