import { mkOci, OciLayout } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

interface ImageIndex {
  mediaType: string;
  manifests: { digest: string; platform: { architecture: string; os: string } }[];
}

interface ImageManifest {
  config: { digest: string };
  layers: { digest: string }[];
  annotations?: Record<string, string>;
}

describe.skipIf(skipWithoutClients('crane')).each(deployments())(
  'crane against angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['crane']);
    const crane = (...args: string[]) => r.ok('crane', '--insecure', ...args);
    const out = async (...args: string[]) => (await crane(...args)).stdout.trim();

    /** Pushes a fresh two-platform index from an OCI layout; returns the layout and its digest. */
    async function pushIndex(repo: string, tag: string): Promise<{ src: OciLayout; digest: string }> {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, tag, ['linux/amd64', 'linux/arm64'], { seed: r.seed() });
      await crane('push', src.dir, r.image(repo, tag));
      return { src, digest };
    }

    it('copies a multi-platform index, digests and lists it', async () => {
      const { src, digest } = await pushIndex('t/crane-src', 'v1');
      expect(await out('digest', r.image('t/crane-src', 'v1'))).toBe(digest);

      await crane('copy', r.image('t/crane-src', 'v1'), r.image('t/crane-dst', 'v1'));
      await crane('tag', r.image('t/crane-dst', 'v1'), 'latest');
      // The index and every platform's manifest arrive unchanged.
      expect(await out('digest', r.image('t/crane-dst', 'v1'))).toBe(digest);
      const index = await src.json<ImageIndex>(digest);
      for (const { digest: child, platform } of index.manifests) {
        const platformFlag = `${platform.os}/${platform.architecture}`;
        expect(await out('digest', '--platform', platformFlag, r.image('t/crane-dst', 'v1'))).toBe(child);
        const served = await r.client.getManifest('t/crane-dst', child);
        expect(served.body.equals(await src.blob(child))).toBe(true);
        for (const layer of (await src.json<ImageManifest>(child)).layers) {
          expect(await r.client.headBlob('t/crane-dst', layer.digest)).toBe(200);
        }
      }
      const raw = (await crane('manifest', r.image('t/crane-dst', 'latest'))).stdout;
      expect(Buffer.from(raw).equals(await src.blob(digest))).toBe(true);

      expect((await out('ls', `${r.angos.host}/t/crane-dst`).then((s) => s.split('\n'))).sort()).toEqual([
        'latest',
        'v1',
      ]);
      // `crane catalog` lists both repositories (the registry's /v2/_catalog).
      const catalog = (await out('catalog', r.angos.host)).split('\n');
      expect(catalog).toEqual(expect.arrayContaining(['t/crane-src', 't/crane-dst']));
    });

    it('mutates an image (label and annotation), pushes it and deletes it', async () => {
      const { src, digest } = await pushIndex('t/crane-mutate', 'v1');
      const index = await src.json<ImageIndex>(digest);
      const arm64 = index.manifests.find((m) => m.platform.architecture === 'arm64')!.digest;

      const mutated = await out(
        'mutate',
        '--label',
        'org.example.built-by=crane',
        '--annotation',
        'org.example.note=mutated',
        '--tag',
        r.image('t/crane-mutate', 'labelled'),
        r.image('t/crane-mutate', arm64),
      );
      // crane prints the reference by digest of what it pushed.
      const newDigest = mutated.split('@')[1]!;
      expect(newDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(newDigest).not.toBe(arm64);
      expect(await out('digest', r.image('t/crane-mutate', 'labelled'))).toBe(newDigest);

      const manifest = JSON.parse(
        await out('manifest', r.image('t/crane-mutate', 'labelled')),
      ) as ImageManifest;
      expect(manifest.annotations).toMatchObject({ 'org.example.note': 'mutated' });
      // Same layers, new config carrying the label.
      const original = await src.json<ImageManifest>(arm64);
      expect(manifest.layers.map((l) => l.digest)).toEqual(original.layers.map((l) => l.digest));
      const config = JSON.parse(await out('config', r.image('t/crane-mutate', 'labelled')));
      expect(config.config.Labels).toMatchObject({ 'org.example.built-by': 'crane' });
      expect(config.architecture).toBe('arm64');

      await crane('delete', r.image('t/crane-mutate', newDigest));
      expect((await r.client.getManifest('t/crane-mutate', newDigest)).status).toBe(404);
      expect((await r.client.getManifest('t/crane-mutate', 'labelled')).status).toBe(404);
      const gone = await r.attempt('crane', '--insecure', 'digest', r.image('t/crane-mutate', 'labelled'));
      expect(gone.code).not.toBe(0);
      expect(gone.stderr).toMatch(/MANIFEST_UNKNOWN/);
      // The index it came from is untouched.
      expect(await out('digest', r.image('t/crane-mutate', 'v1'))).toBe(digest);
      expect(await out('ls', `${r.angos.host}/t/crane-mutate`)).toBe('v1');
    });
  },
);
