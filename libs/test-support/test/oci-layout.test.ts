import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/oci-client.js';
import { mkOci, OciLayout } from '../src/oci-layout.js';
import { runOk } from '../src/run.js';

describe('mkOci and OciLayout', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'test-support-oci-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes one image manifest for one platform, with every blob in the layout', async () => {
    const layout = new OciLayout(join(dir, 'single'));
    const digest = await mkOci(layout.dir, 'v1', ['linux/amd64'], { seed: 'a' });
    const descriptor = await layout.descriptor('v1');
    expect(descriptor).toMatchObject({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    const closure = await layout.closure(digest);
    expect(closure).toHaveLength(3); // manifest, config, layer
    for (const d of closure) expect(sha256(await layout.blob(d))).toBe(d);
  });

  it('writes an image index for several platforms', async () => {
    const layout = new OciLayout(join(dir, 'multi'));
    const digest = await mkOci(layout.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed: 'a' });
    const index = await layout.json<{
      mediaType: string;
      manifests: { platform: { architecture: string } }[];
    }>(digest);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    expect(await layout.closure(digest)).toHaveLength(7);
  });

  it('gives new digests for a new seed and the same for the same seed', async () => {
    const first = await mkOci(join(dir, 'seed1'), 'v1', undefined, { seed: 'one', fillMb: 1 });
    const again = await mkOci(join(dir, 'seed2'), 'v1', undefined, { seed: 'one', fillMb: 1 });
    const other = await mkOci(join(dir, 'seed3'), 'v1', undefined, { seed: 'two', fillMb: 1 });
    expect(again).toBe(first);
    expect(other).not.toBe(first);
  });

  it('writes an uncompressed layer when asked', async () => {
    const layout = new OciLayout(join(dir, 'plain'));
    const digest = await mkOci(layout.dir, 'v1', undefined, { compress: 'none' });
    const manifest = await layout.json<{ layers: { mediaType: string }[] }>(digest);
    expect(manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
  });

  it('writes Docker v2 media types when asked, a manifest list for several platforms', async () => {
    const layout = new OciLayout(join(dir, 'docker'));
    const digest = await mkOci(layout.dir, 'v1', ['linux/amd64', 'linux/arm/v7'], { mediaTypes: 'docker' });
    const list = await layout.json<{ mediaType: string; manifests: { digest: string; platform: object }[] }>(
      digest,
    );
    expect(list.mediaType).toBe('application/vnd.docker.distribution.manifest.list.v2+json');
    expect(list.manifests[1]!.platform).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    const manifest = await layout.json<{
      mediaType: string;
      config: { mediaType: string };
      layers: { mediaType: string }[];
    }>(list.manifests[0]!.digest);
    expect(manifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(manifest.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
  });

  it('writes a layer that tar reads, holding hello.txt and the fill file of the size asked', async () => {
    const layout = new OciLayout(join(dir, 'tar'));
    const digest = await mkOci(layout.dir, 'v1', undefined, { fillMb: 1, compress: 'none' });
    const manifest = await layout.json<{ layers: { digest: string }[] }>(digest);
    const layer = join(layout.dir, 'blobs', 'sha256', manifest.layers[0]!.digest.slice('sha256:'.length));
    const listed = await runOk('tar', ['-tvf', layer]);
    expect(listed.stdout).toMatch(/ 0\/0 +\d+ 1970-01-01 00:00 hello\.txt\n/);
    expect(listed.stdout).toMatch(/ 0\/0 +1048576 1970-01-01 00:00 random\.bin\n/);
  });

  it('keeps other tags when adding one, and replaces a tag of the same name', async () => {
    const layout = new OciLayout(join(dir, 'tags'));
    await mkOci(layout.dir, 'a', undefined, { seed: '1' });
    await mkOci(layout.dir, 'b', undefined, { seed: '2' });
    const replaced = await mkOci(layout.dir, 'a', undefined, { seed: '3' });
    const tags = (await layout.index()).manifests.map(
      (d) => d.annotations?.['org.opencontainers.image.ref.name'],
    );
    expect(tags).toEqual(['b', 'a']);
    expect((await layout.descriptor('a')).digest).toBe(replaced);
  });
});
