import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/oci-client.js';
import { mkOci, OciLayout } from '../src/oci-layout.js';

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
});
