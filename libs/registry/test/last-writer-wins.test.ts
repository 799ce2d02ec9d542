import { Readable } from 'node:stream';
import { formatDigest, OciError, parseReference } from '@angos/oci';
import { describe, expect, it } from 'vitest';
import type { Registry } from '../src/index.js';
import { digestOf, memoryRegistry } from './support.js';

/**
 * Receiver side of replication: a manifest push or delete that carries the author's time
 * (X-Angos-Source-Timestamp, parsed by registry-api) is decided by last-writer-wins against the
 * tag's own time, which the tag link records.
 */

/** Uploads a config blob unique to `label` and returns a manifest over it. */
async function manifest(registry: Registry, namespace: string, label: string): Promise<Buffer> {
  const config = `config ${label}`;
  const id = await registry.uploads.start(namespace);
  await registry.uploads.complete(namespace, id, digestOf(config), Readable.from([Buffer.from(config)]), {});
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: formatDigest(digestOf(config)),
        size: config.length,
      },
      layers: [],
    }),
  );
}

const MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');

async function push(registry: Registry, body: Buffer, sourceTimestampMs?: number) {
  return registry.manifests.put(
    'team/app',
    parseReference('v1'),
    body,
    MEDIA_TYPE,
    [],
    sourceTimestampMs === undefined ? {} : { sourceTimestampMs },
  );
}

async function tagState(registry: Registry) {
  const info = await registry.manifests.resolve('team/app', parseReference('v1'));
  const time = await registry.manifests.tagTime('team/app', 'v1');
  return { digest: formatDigest(info.digest), time };
}

async function superseded(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OciError) return `${error.status} ${error.code}`;
    throw error;
  }
  return 'accepted';
}

describe('last-writer-wins on replicated writes', () => {
  it('stores the source timestamp as the tag time', async () => {
    const registry = memoryRegistry();
    const pushed = await push(registry, await manifest(registry, 'team/app', 'a'), T0);
    expect(pushed.changed).toBe(true);
    expect(await tagState(registry)).toEqual({
      digest: formatDigest(pushed.digest),
      time: new Date(T0).toISOString(),
    });
  });

  it('refuses an older write with 409 REPLICATION_SUPERSEDED and keeps the newer tag', async () => {
    const registry = memoryRegistry();
    const newer = await push(registry, await manifest(registry, 'team/app', 'new'), T0 + 1000);
    const older = await manifest(registry, 'team/app', 'old');
    expect(await superseded(push(registry, older, T0))).toBe('409 REPLICATION_SUPERSEDED');
    expect((await tagState(registry)).digest).toBe(formatDigest(newer.digest));
  });

  it('lets a newer write replace an older tag', async () => {
    const registry = memoryRegistry();
    await push(registry, await manifest(registry, 'team/app', 'old'), T0);
    const newer = await push(registry, await manifest(registry, 'team/app', 'new'), T0 + 1);
    expect(newer.changed).toBe(true);
    expect(await tagState(registry)).toEqual({
      digest: formatDigest(newer.digest),
      time: new Date(T0 + 1).toISOString(),
    });
  });

  it('on equal times the larger digest wins, whichever arrives first', async () => {
    for (const order of [0, 1]) {
      const registry = memoryRegistry();
      const bodies = [await manifest(registry, 'team/app', 'x'), await manifest(registry, 'team/app', 'y')];
      const digests = bodies.map((body) => formatDigest(digestOf(body.toString('utf8'))));
      const larger = digests[0]! > digests[1]! ? 0 : 1;
      const first = order === 0 ? larger : 1 - larger;
      await push(registry, bodies[first]!, T0);
      const second = push(registry, bodies[1 - first]!, T0);
      if (first === larger) expect(await superseded(second)).toBe('409 REPLICATION_SUPERSEDED');
      else await second;
      expect((await tagState(registry)).digest).toBe(digests[larger]);
    }
  });

  it('a replayed write (same digest, same time) changes nothing', async () => {
    const registry = memoryRegistry();
    const body = await manifest(registry, 'team/app', 'a');
    await push(registry, body, T0);
    const again = await push(registry, body, T0);
    expect(again.changed).toBe(false);
    expect((await tagState(registry)).time).toBe(new Date(T0).toISOString());
  });

  it('clamps a timestamp in the future to now', async () => {
    const registry = memoryRegistry();
    const before = Date.now();
    await push(registry, await manifest(registry, 'team/app', 'a'), Date.now() + 3_600_000);
    const time = Date.parse((await tagState(registry)).time!);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(Date.now());
    // A later local push is therefore never beaten by the forward-dated one.
    const local = await push(registry, await manifest(registry, 'team/app', 'b'));
    expect((await tagState(registry)).digest).toBe(formatDigest(local.digest));
  });

  it('a push without a timestamp is an ordinary push: it always moves the tag', async () => {
    const registry = memoryRegistry();
    await push(registry, await manifest(registry, 'team/app', 'a'), Date.now());
    const local = await push(registry, await manifest(registry, 'team/app', 'b'));
    expect(local.changed).toBe(true);
    expect((await tagState(registry)).digest).toBe(formatDigest(local.digest));
  });

  it('a replicated tag delete older than the tag is refused; a newer one deletes', async () => {
    const registry = memoryRegistry();
    await push(registry, await manifest(registry, 'team/app', 'a'), T0 + 1000);
    const tag = parseReference('v1');
    expect(await superseded(registry.manifests.delete('team/app', tag, { sourceTimestampMs: T0 }))).toBe(
      '409 REPLICATION_SUPERSEDED',
    );
    expect(await registry.manifests.delete('team/app', tag, { sourceTimestampMs: T0 + 1000 })).toBe(
      'deleted',
    );
    expect(await superseded(registry.manifests.resolve('team/app', tag))).toBe('404 MANIFEST_UNKNOWN');
  });

  it('a replicated manifest delete is refused while a newer tag points at it', async () => {
    const registry = memoryRegistry();
    const pushed = await push(registry, await manifest(registry, 'team/app', 'a'), T0 + 1000);
    const byDigest = parseReference(formatDigest(pushed.digest));
    expect(await superseded(registry.manifests.delete('team/app', byDigest, { sourceTimestampMs: T0 }))).toBe(
      '409 REPLICATION_SUPERSEDED',
    );
    expect((await tagState(registry)).digest).toBe(formatDigest(pushed.digest));
    expect(await registry.manifests.delete('team/app', byDigest, { sourceTimestampMs: T0 + 2000 })).toBe(
      'deleted',
    );
  });
});
