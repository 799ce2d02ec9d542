import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { OciLayout } from './oci-layout.js';
import { runOk } from './run.js';

interface ImageManifest {
  config: { digest: string };
  layers: { digest: string }[];
}

const blobPath = (digest: string): string => {
  const [algorithm, hex] = digest.split(':');
  return `blobs/${algorithm}/${hex}`;
};

/**
 * Writes `out`, a `docker save` archive of the image manifest `digest` of `layout`, tagged
 * `repoTag`, for `docker load` (Docker 20.10 loads no OCI archive). The archive's manifest.json
 * names the layout's own config and layer blobs (docker load takes gzip layers as they are), so
 * the loaded image's ID is the layout's config digest. Deterministic: same layout, same bytes.
 */
export async function writeDockerArchive(
  layout: OciLayout,
  digest: string,
  repoTag: string,
  out: string,
): Promise<void> {
  const manifest = await layout.json<ImageManifest>(digest);
  const staging = await mkdtemp(join(dirname(out), '.docker-archive-'));
  try {
    const layers = manifest.layers.map((layer) => blobPath(layer.digest));
    const config = blobPath(manifest.config.digest);
    await writeFile(
      join(staging, 'manifest.json'),
      JSON.stringify([{ Config: config, RepoTags: [repoTag], Layers: layers }]),
    );
    const stable = [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--format=ustar',
    ];
    await runOk('tar', [
      '-cf',
      out,
      ...stable,
      '-C',
      staging,
      'manifest.json',
      '-C',
      layout.dir,
      ...new Set([config, ...layers]),
    ]);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
