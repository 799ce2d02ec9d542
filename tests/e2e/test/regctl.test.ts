import { writeFile } from 'node:fs/promises';
import { mkOci, OciLayout, sha256 } from '@angos/test-support';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

interface ImageIndex {
  manifests: { digest: string; platform: { architecture: string } }[];
}

interface ArtifactList {
  descriptors: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
}

const SBOM_TYPE = 'application/vnd.example.sbom.v1+json';

describe.skipIf(skipWithoutClients('regctl')).each(deployments())(
  'regctl against angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['regctl']);
    const regctl = (...args: string[]) => r.ok('regctl', ...args);
    const out = async (...args: string[]) => (await regctl(...args)).stdout.trim();

    // regctl speaks plain HTTP to a host only when its own config says so ($REGCTL_CONFIG, the
    // suite's directory).
    beforeAll(async () => {
      await regctl('registry', 'set', '--tls', 'disabled', r.angos.host);
    });

    /** Copies a fresh two-platform index from an OCI layout (regctl's ocidir://) into `repo`. */
    async function pushIndex(repo: string, tag: string): Promise<{ src: OciLayout; digest: string }> {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, tag, ['linux/amd64', 'linux/arm64'], { seed: r.seed() });
      await regctl('image', 'copy', `ocidir://${src.dir}:${tag}`, r.image(repo, tag));
      return { src, digest };
    }

    it('copies images, lists and deletes tags', async () => {
      const { src, digest } = await pushIndex('t/regctl-src', 'v1');
      expect(await out('image', 'digest', r.image('t/regctl-src', 'v1'))).toBe(digest);

      // Registry to registry, every platform; then one platform only, under another tag.
      await regctl('image', 'copy', r.image('t/regctl-src', 'v1'), r.image('t/regctl-dst', 'v1'));
      await regctl('image', 'copy', r.image('t/regctl-src', 'v1'), r.image('t/regctl-dst', 'v2'));
      expect(await out('image', 'digest', r.image('t/regctl-dst', 'v1'))).toBe(digest);
      const index = await src.json<ImageIndex>(digest);
      for (const { digest: child } of index.manifests) {
        const served = await r.client.getManifest('t/regctl-dst', child);
        expect(served.body.equals(await src.blob(child))).toBe(true);
      }
      const arm64 = index.manifests.find((m) => m.platform.architecture === 'arm64')!.digest;
      await regctl(
        'image',
        'copy',
        '--platform',
        'linux/arm64',
        r.image('t/regctl-src', 'v1'),
        r.image('t/regctl-dst', 'arm64'),
      );
      expect(await out('image', 'digest', r.image('t/regctl-dst', 'arm64'))).toBe(arm64);

      const repo = `${r.angos.host}/t/regctl-dst`;
      expect((await out('tag', 'ls', repo)).split('\n').sort()).toEqual(['arm64', 'v1', 'v2']);
      await regctl('tag', 'delete', r.image('t/regctl-dst', 'v2'));
      expect((await out('tag', 'ls', repo)).split('\n').sort()).toEqual(['arm64', 'v1']);
      // Deleting a tag leaves the manifest and the other tags pointing at it.
      expect(await out('image', 'digest', r.image('t/regctl-dst', 'v1'))).toBe(digest);
      expect((await r.client.getManifest('t/regctl-dst', 'v2')).status).toBe(404);
    });

    it('puts artifacts on an image and lists them as referrers', async () => {
      const { digest } = await pushIndex('t/regctl-art', 'v1');
      const sbom = r.path('sbom.json');
      const content = `{"sbom":"${r.seed()}"}`;
      await writeFile(sbom, content);
      await regctl(
        'artifact',
        'put',
        '--artifact-type',
        SBOM_TYPE,
        '--file',
        sbom,
        '--file-media-type',
        'application/json',
        '--annotation',
        'org.example.kind=sbom',
        '--subject',
        r.image('t/regctl-art', 'v1'),
      );
      // A standalone artifact, under a tag of its own.
      const notes = r.path('notes.txt');
      await writeFile(notes, 'release notes');
      await regctl(
        'artifact',
        'put',
        '--artifact-type',
        'application/vnd.example.notes',
        '--file',
        notes,
        '--file-media-type',
        'text/plain',
        r.image('t/regctl-art', 'notes'),
      );
      expect(await out('artifact', 'get', r.image('t/regctl-art', 'notes'))).toBe('release notes');

      const list = async (...filter: string[]): Promise<ArtifactList> =>
        JSON.parse(
          await out('artifact', 'list', ...filter, '--format', '{{json .}}', r.image('t/regctl-art', 'v1')),
        );
      const listed = await list();
      expect(listed.descriptors).toHaveLength(1);
      const [referrer] = listed.descriptors;
      expect(referrer).toMatchObject({
        artifactType: SBOM_TYPE,
        annotations: { 'org.example.kind': 'sbom' },
      });
      expect((await list('--filter-artifact-type', 'application/vnd.example.other')).descriptors).toEqual([]);

      // The registry's own referrers answer agrees, and the artifact's file comes back.
      const referrers = await r.client.referrers('t/regctl-art', digest);
      expect(referrers.status).toBe(200);
      expect(referrers.body).toMatchObject({
        manifests: [{ digest: referrer!.digest, artifactType: SBOM_TYPE }],
      });
      const fetched = await out('artifact', 'get', r.image('t/regctl-art', referrer!.digest));
      expect(sha256(fetched)).toBe(sha256(content));

      // An image copy with --referrers brings the artifact along, found again by the referrers API.
      await regctl(
        'image',
        'copy',
        '--referrers',
        r.image('t/regctl-art', 'v1'),
        r.image('t/regctl-art-copy', 'v1'),
      );
      const copied = await r.client.referrers('t/regctl-art-copy', digest);
      expect(copied.body).toMatchObject({
        manifests: [{ digest: referrer!.digest, artifactType: SBOM_TYPE }],
      });
    });
  },
);
