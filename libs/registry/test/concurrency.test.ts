import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { parseDigest, parseReference } from '@angos/oci';
import { createStores } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { createRegistry, type Registry } from '../src/index.js';

function newRegistry(): Registry {
  const { config } = parseConfig(
    '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n',
  );
  return createRegistry({
    ...createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } }),
    locks: new MemoryLockManager(),
    config: () => config,
    logger: silentLogger,
  });
}

function digestOf(data: string) {
  return parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
}

async function upload(registry: Registry, namespace: string, data: string) {
  const id = await registry.uploads.start(namespace);
  await registry.uploads.complete(namespace, id, digestOf(data), Readable.from([Buffer.from(data)]), {});
  return digestOf(data);
}

function manifestFor(config: string, layer: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${digestOf(config).hex}`,
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: `sha256:${digestOf(layer).hex}`,
          size: layer.length,
        },
      ],
    }),
  );
}

describe('registry core under concurrency', () => {
  it('completes concurrent uploads of the same content in many namespaces', async () => {
    const registry = newRegistry();
    const namespaces = Array.from({ length: 12 }, (_, i) => `team/app${i}`);
    await Promise.all(namespaces.map((namespace) => upload(registry, namespace, 'shared layer bytes')));
    for (const namespace of namespaces) {
      expect(await registry.blobs.stat(namespace, digestOf('shared layer bytes'))).toEqual({ size: 18 });
    }
  });

  it('keeps a tag consistent when many pushes race for it', async () => {
    const registry = newRegistry();
    await upload(registry, 't/img', 'cfg');
    const layers = Array.from({ length: 10 }, (_, i) => `layer ${i}`);
    await Promise.all(layers.map((layer) => upload(registry, 't/img', layer)));
    const pushed = await Promise.all(
      layers.map((layer) =>
        registry.manifests.put(
          't/img',
          parseReference('latest'),
          manifestFor('cfg', layer),
          'application/vnd.oci.image.manifest.v1+json',
          [],
        ),
      ),
    );
    const winner = await registry.manifests.get('t/img', parseReference('latest'));
    expect(pushed.map((p) => p.digest.hex)).toContain(winner.digest.hex);
  });

  it('never reclaims bytes that a concurrent upload just committed', async () => {
    const registry = newRegistry();
    for (let round = 0; round < 20; round++) {
      const data = `round ${round}`;
      await upload(registry, 'a/img', data);
      // Namespace a lets go of the blob while namespace b uploads the same bytes.
      const [, digest] = await Promise.all([
        registry.blobs.delete('a/img', digestOf(data)),
        upload(registry, 'b/img', data),
      ]);
      const chunks: Buffer[] = [];
      const collect = new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(Buffer.from(chunk));
          done();
        },
      });
      await (await registry.blobs.open('b/img', digest)).copyTo(collect);
      expect(Buffer.concat(chunks).toString()).toBe(data);
    }
  });
});
