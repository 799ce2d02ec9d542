import { mkOci, OciLayout, sha256 } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

interface ImageManifest {
  config: { digest: string };
  layers: { digest: string }[];
}

interface ImageIndex {
  manifests: { digest: string; platform: { architecture: string } }[];
}

describe.skipIf(skipWithoutClients('skopeo')).each(deployments())(
  'skopeo against angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['skopeo']);
    const push = (src: OciLayout, tag: string, dest: string, ...flags: string[]) =>
      r.ok('skopeo', 'copy', '--dest-tls-verify=false', ...flags, `oci:${src.dir}:${tag}`, dest);
    const pull = (src: string, out: OciLayout, tag: string, ...flags: string[]) =>
      r.ok('skopeo', 'copy', '--src-tls-verify=false', ...flags, src, `oci:${out.dir}:${tag}`);

    /** Pulled and pushed layouts hold the same image: same digests, byte-identical blobs. */
    async function expectSameImage(pulled: OciLayout, source: OciLayout, digest: string): Promise<void> {
      const closure = await source.closure(digest);
      expect(await pulled.closure(digest)).toEqual(closure);
      for (const blob of closure) expect(sha256(await pulled.blob(blob))).toBe(blob);
    }

    it('pushes an image and pulls back the same manifest and blobs', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed(), fillMb: 24 });
      await push(src, 'v1', r.ref('t/img', 'v1'));

      const out = new OciLayout(r.path('out'));
      await pull(r.ref('t/img', 'v1'), out, 'v1');
      expect((await out.descriptor('v1')).digest).toBe(digest);
      await expectSameImage(out, src, digest);

      const served = await r.client.getManifest('t/img', 'v1');
      expect(served).toMatchObject({
        status: 200,
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
      });
      expect(served.body.equals(await src.blob(digest))).toBe(true);
    });

    it('copies a multi-platform index with --all and keeps its digest', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'multi', ['linux/amd64', 'linux/arm64'], { seed: r.seed() });
      await push(src, 'multi', r.ref('t/multi', 'v1'), '--all');

      const out = new OciLayout(r.path('out'));
      await pull(r.ref('t/multi', 'v1'), out, 'v1', '--all');
      expect((await out.descriptor('v1')).digest).toBe(digest);
      await expectSameImage(out, src, digest);

      // Without --all, skopeo resolves the index to one platform and pulls that manifest.
      const amd64 = (await src.json<ImageIndex>(digest)).manifests.find(
        (m) => m.platform.architecture === 'amd64',
      );
      const single = new OciLayout(r.path('single'));
      await r.ok(
        'skopeo',
        '--override-arch',
        'amd64',
        '--override-os',
        'linux',
        'copy',
        '--src-tls-verify=false',
        r.ref('t/multi', 'v1'),
        `oci:${single.dir}:v1`,
      );
      expect((await single.descriptor('v1')).digest).toBe(amd64!.digest);
    });

    it('inspects an image, raw and parsed', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/arm64'], { seed: r.seed() });
      await push(src, 'v1', r.ref('t/inspect', 'v1'));
      const manifest = await src.json<ImageManifest>(digest);

      const raw = await r.ok('skopeo', 'inspect', '--tls-verify=false', '--raw', r.ref('t/inspect', 'v1'));
      expect(raw.stdout).toBe((await src.blob(digest)).toString('utf8'));

      const parsed = JSON.parse(
        (await r.ok('skopeo', 'inspect', '--tls-verify=false', r.ref('t/inspect', 'v1'))).stdout,
      );
      expect(parsed).toMatchObject({
        Digest: digest,
        Architecture: 'arm64',
        Os: 'linux',
        RepoTags: ['v1'],
        Layers: manifest.layers.map((l) => l.digest),
      });

      const config = await r.ok(
        'skopeo',
        'inspect',
        '--tls-verify=false',
        '--config',
        '--raw',
        r.ref('t/inspect', 'v1'),
      );
      expect(sha256(config.stdout)).toBe(manifest.config.digest);
    });

    it('lists every tag of a repository', async () => {
      const src = new OciLayout(r.path('src'));
      await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed() });
      await mkOci(src.dir, 'v2', ['linux/amd64'], { seed: r.seed() });
      const tags = ['1.0', 'latest', 'v1', 'v2'];
      for (const tag of tags) await push(src, tag.startsWith('v2') ? 'v2' : 'v1', r.ref('t/tags', tag));

      const listed = JSON.parse(
        (await r.ok('skopeo', 'list-tags', '--tls-verify=false', `docker://${r.angos.host}/t/tags`)).stdout,
      );
      expect(listed.Repository).toBe(`${r.angos.host}/t/tags`);
      expect([...listed.Tags].sort()).toEqual(tags);
    });

    it('deletes a manifest by digest, after which it cannot be pulled', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed() });
      await push(src, 'v1', r.ref('t/delete', 'v1'));
      await pull(r.ref('t/delete', digest), new OciLayout(r.path('before')), 'v1');

      await r.ok('skopeo', 'delete', '--tls-verify=false', r.ref('t/delete', digest));

      const byDigest = await r.attempt(
        'skopeo',
        'copy',
        '--src-tls-verify=false',
        r.ref('t/delete', digest),
        `oci:${r.path('after')}:v1`,
      );
      expect(byDigest.code).not.toBe(0);
      expect(byDigest.stderr).toMatch(/manifest unknown|not found/i);
      expect((await r.client.getManifest('t/delete', digest)).status).toBe(404);
      // The tag pointed at the deleted manifest, so it resolves to nothing either.
      expect((await r.client.getManifest('t/delete', 'v1')).status).toBe(404);
    });

    it('keeps an uncompressed layer as it is with --preserve-digests', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed(), compress: 'none' });

      // Without the flag skopeo compresses the layer on push: another layer, another manifest.
      // (First, while skopeo's blob-info cache does not yet know the plain layer is in the registry.)
      await push(src, 'v1', r.ref('t/plain-gz', 'v1'));
      const gzipped = await r.client.getManifest('t/plain-gz', 'v1');
      expect(gzipped.status).toBe(200);
      expect(gzipped.digest).not.toBe(digest);

      await push(src, 'v1', r.ref('t/plain', 'v1'), '--preserve-digests');
      const served = await r.client.getManifest('t/plain', 'v1');
      expect(served.digest).toBe(digest);
      const out = new OciLayout(r.path('out'));
      await pull(r.ref('t/plain', 'v1'), out, 'v1', '--preserve-digests');
      await expectSameImage(out, src, digest);
    });

    it('pushes the same image into a second namespace', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed(), fillMb: 2 });
      await push(src, 'v1', r.ref('team-a/app', 'v1'));
      await push(src, 'v1', r.ref('team-b/app', 'v1')); // skopeo mounts from team-a, or uploads again

      const out = new OciLayout(r.path('out'));
      await pull(r.ref('team-b/app', 'v1'), out, 'v1');
      await expectSameImage(out, src, digest);
      for (const blob of await src.closure(digest)) {
        if (blob === digest) continue;
        expect(await r.client.headBlob('team-b/app', blob)).toBe(200);
        expect(await r.client.headBlob('team-a/app', blob)).toBe(200);
      }
    });

    it('takes concurrent pushes of the same new image', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64', 'linux/arm64'], {
        seed: r.seed(),
        fillMb: 4,
      });
      const tags = ['a', 'b', 'c'];
      // Same blobs, same repository, at the same time: uploads race to commit each blob.
      await Promise.all(tags.map((tag) => push(src, 'v1', r.ref('t/race', tag), '--all')));

      for (const tag of tags) {
        const out = new OciLayout(r.path(`out-${tag}`));
        await pull(r.ref('t/race', tag), out, tag, '--all');
        expect((await out.descriptor(tag)).digest).toBe(digest);
        await expectSameImage(out, src, digest);
      }
    });
  },
);
