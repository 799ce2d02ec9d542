import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mkOci, OciLayout, sha256 } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

interface ArtifactManifest {
  artifactType?: string;
  config: { mediaType: string };
  layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
  subject?: { digest: string };
  annotations?: Record<string, string>;
}

interface Discovered {
  digest: string;
  referrers: { digest: string; artifactType: string; annotations?: Record<string, string> }[];
}

const SBOM_TYPE = 'application/vnd.example.sbom.v1+json';
const SIGNATURE_TYPE = 'application/vnd.example.signature.v1';

describe.skipIf(skipWithoutClients('oras')).each(deployments())('oras against angos $label', (deployment) => {
  const r = useRegistry(deployment, ['oras']);
  const oras = (...args: string[]) => r.ok('oras', ...args);
  const ref = (repo: string, reference: string) => r.image(repo, reference);

  /** A new directory holding one file (oras runs in it: it names layers after the paths it is given). */
  async function file(name: string, content: string): Promise<string> {
    const dir = r.path('files');
    await mkdir(dir);
    await writeFile(join(dir, name), content);
    return dir;
  }

  it('pushes an artifact with an artifactType and pulls the same files back', async () => {
    const content = `{"sbom":"${r.seed()}"}\n`;
    const dir = await file('sbom.json', content);
    const pushed = await r.okIn(
      dir,
      'oras',
      'push',
      '--plain-http',
      '--artifact-type',
      SBOM_TYPE,
      '--annotation',
      'org.example.kind=sbom',
      '--format',
      'json',
      ref('t/artifact', 'v1'),
      'sbom.json:application/json',
    );
    const digest = JSON.parse(pushed.stdout).digest as string;

    // The registry serves the manifest oras wrote: artifactType, the empty config, one layer.
    const served = await r.client.getManifest('t/artifact', 'v1');
    expect(served).toMatchObject({ status: 200, digest });
    const manifest = JSON.parse(served.body.toString('utf8')) as ArtifactManifest;
    expect(manifest).toMatchObject({
      artifactType: SBOM_TYPE,
      config: { mediaType: 'application/vnd.oci.empty.v1+json' },
      annotations: { 'org.example.kind': 'sbom' },
    });
    expect(manifest.layers).toEqual([
      expect.objectContaining({
        mediaType: 'application/json',
        digest: sha256(content),
        annotations: { 'org.opencontainers.image.title': 'sbom.json' },
      }),
    ]);

    const out = r.path('out');
    await oras('pull', '--plain-http', '-o', out, ref('t/artifact', 'v1'));
    expect(await readFile(join(out, 'sbom.json'), 'utf8')).toBe(content);
    const fetched = await oras('manifest', 'fetch', '--plain-http', '--descriptor', ref('t/artifact', 'v1'));
    expect(JSON.parse(fetched.stdout)).toMatchObject({
      digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
    });
  });

  it('attaches artifacts to an image and discovers them over the referrers API', async () => {
    const src = new OciLayout(r.path('src'));
    const image = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed() });
    await oras('cp', '--from-oci-layout', '--to-plain-http', `${src.dir}:v1`, ref('t/attached', 'v1'));
    expect((await r.client.getManifest('t/attached', 'v1')).digest).toBe(image);

    const attach = async (artifactType: string, name: string, content: string): Promise<string> => {
      const dir = await file(name, content);
      const attached = await r.okIn(
        dir,
        'oras',
        'attach',
        '--plain-http',
        // The referrers API only, no fallback to the tag scheme.
        '--distribution-spec',
        'v1.1-referrers-api',
        '--artifact-type',
        artifactType,
        '--format',
        'json',
        ref('t/attached', 'v1'),
        name,
      );
      return JSON.parse(attached.stdout).digest as string;
    };
    const sbom = await attach(SBOM_TYPE, 'sbom.json', `{"for":"${image}"}`);
    const signature = await attach(SIGNATURE_TYPE, 'sig.txt', `signed ${image}`);

    const served = JSON.parse((await r.client.getManifest('t/attached', signature)).body.toString('utf8'));
    expect(served).toMatchObject({ artifactType: SIGNATURE_TYPE, subject: { digest: image } });

    const discover = async (...filter: string[]): Promise<Discovered> =>
      JSON.parse(
        (
          await oras(
            'discover',
            '--plain-http',
            '--distribution-spec',
            'v1.1-referrers-api',
            '--format',
            'json',
            ...filter,
            ref('t/attached', 'v1'),
          )
        ).stdout,
      );
    const all = await discover();
    expect(all.digest).toBe(image);
    expect(all.referrers.map((d) => [d.digest, d.artifactType]).sort()).toEqual(
      [
        [sbom, SBOM_TYPE],
        [signature, SIGNATURE_TYPE],
      ].sort(),
    );
    // The artifactType filter reaches the registry as ?artifactType=.
    const signatures = await discover('--artifact-type', SIGNATURE_TYPE);
    expect(signatures.referrers.map((d) => d.digest)).toEqual([signature]);

    // No referrers tag (sha256-<hex>) was written: the API answered.
    const { tags } = await r.client.tags('t/attached');
    expect(tags).toEqual(['v1']);

    // oras pulls a referrer by its digest.
    const out = r.path('out');
    await oras('pull', '--plain-http', '-o', out, ref('t/attached', signature));
    expect(await readFile(join(out, 'sig.txt'), 'utf8')).toBe(`signed ${image}`);
  });
});
