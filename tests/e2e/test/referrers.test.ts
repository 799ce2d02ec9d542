import { sha256 } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { deployments, useRegistry } from './fixture.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY_CONFIG = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256('{}'), size: 2 };

interface ReferrersIndex {
  mediaType: string;
  manifests: { digest: string; artifactType?: string; annotations?: Record<string, string> }[];
}

/**
 * None of skopeo, podman and buildah pushes an artifact with a `subject`, so this goes over HTTP, the
 * way an `oras attach` or `cosign attach` would.
 */
describe.each(deployments())('referrers against angos $label', (deployment) => {
  const r = useRegistry(deployment, []);

  async function pushImage(repo: string, seed: string): Promise<{ digest: string; size: number }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
    const layer = Buffer.from(`layer ${seed}`);
    await r.client.pushBlob(repo, config);
    await r.client.pushBlob(repo, layer);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length },
      ],
    });
    const pushed = await r.client.pushManifest(repo, 'v1', manifest, OCI_MANIFEST);
    expect(pushed.status).toBe(201);
    expect(pushed.digest).toBe(sha256(manifest));
    return { digest: sha256(manifest), size: Buffer.byteLength(manifest) };
  }

  async function attach(repo: string, subject: { digest: string; size: number }, artifactType: string) {
    await r.client.pushBlob(repo, Buffer.from('{}'));
    const payload = Buffer.from(`${artifactType} for ${subject.digest}`);
    await r.client.pushBlob(repo, payload);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: EMPTY_CONFIG,
      layers: [{ mediaType: 'text/plain', digest: sha256(payload), size: payload.length }],
      subject: { mediaType: OCI_MANIFEST, ...subject },
      annotations: { 'org.example.kind': artifactType },
    });
    const pushed = await r.client.pushManifest(repo, sha256(manifest), manifest, OCI_MANIFEST);
    expect(pushed.status).toBe(201);
    // A registry that indexes referrers says so with OCI-Subject.
    expect(pushed.subject).toBe(subject.digest);
    return sha256(manifest);
  }

  it('lists the artifacts attached to an image, filtered by artifactType', async () => {
    const image = await pushImage('t/signed', r.seed());
    const signature = await attach('t/signed', image, 'application/vnd.example.signature');
    const sbom = await attach('t/signed', image, 'application/vnd.example.sbom');

    const all = await r.client.referrers('t/signed', image.digest);
    expect(all.status).toBe(200);
    const index = all.body as ReferrersIndex;
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => m.digest).sort()).toEqual([signature, sbom].sort());
    expect(index.manifests.find((m) => m.digest === sbom)).toMatchObject({
      artifactType: 'application/vnd.example.sbom',
      annotations: { 'org.example.kind': 'application/vnd.example.sbom' },
    });

    const filtered = await r.client.referrers('t/signed', image.digest, 'application/vnd.example.signature');
    expect((filtered.body as ReferrersIndex).manifests.map((m) => m.digest)).toEqual([signature]);

    const none = await r.client.referrers('t/signed', sha256(`nothing ${r.seed()}`));
    expect(none.status).toBe(200);
    expect((none.body as ReferrersIndex).manifests).toEqual([]);
  });
});
