import { Writable } from 'node:stream';
import { parseReference } from '@angos/oci';
import { describe, expect, it } from 'vitest';
import { digestOf, manifestOf, memoryRegistry, upload } from './support.js';

describe('registry core under concurrency', () => {
  it('completes concurrent uploads of the same content in many namespaces', async () => {
    const registry = memoryRegistry();
    const namespaces = Array.from({ length: 12 }, (_, i) => `team/app${i}`);
    await Promise.all(namespaces.map((namespace) => upload(registry, namespace, 'shared layer bytes')));
    for (const namespace of namespaces) {
      expect(await registry.blobs.stat(namespace, digestOf('shared layer bytes'))).toEqual({ size: 18 });
    }
  });

  it('keeps a tag consistent when many pushes race for it', async () => {
    const registry = memoryRegistry();
    await upload(registry, 't/img', 'cfg');
    const layers = Array.from({ length: 10 }, (_, i) => `layer ${i}`);
    await Promise.all(layers.map((layer) => upload(registry, 't/img', layer)));
    const pushed = await Promise.all(
      layers.map((layer) =>
        registry.manifests.put(
          't/img',
          parseReference('latest'),
          manifestOf('cfg', [layer]),
          'application/vnd.oci.image.manifest.v1+json',
          [],
        ),
      ),
    );
    const winner = await registry.manifests.get('t/img', parseReference('latest'));
    expect(pushed.map((p) => p.digest.hex)).toContain(winner.digest.hex);
  });

  it('never reclaims bytes that a concurrent upload just committed', async () => {
    const registry = memoryRegistry();
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
