import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

interface Manifest {
  config: { digest: string };
  layers: { digest: string; mediaType: string }[];
}

describe.skipIf(skipWithoutClients('buildah')).each(deployments())(
  'buildah against angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['buildah']);
    const buildah = (...args: string[]) => r.ok('buildah', ...args);

    it('builds an image from scratch, pushes it, and pulls it back to build on', async () => {
      const files = r.path('files');
      await mkdir(files);
      const greeting = `hello ${r.seed()}\n`;
      await writeFile(join(files, 'greeting.txt'), greeting);

      const container = (await buildah('from', 'scratch')).stdout.trim();
      await buildah('copy', container, join(files, 'greeting.txt'), '/greeting.txt');
      await buildah('config', '--cmd', '/greeting.txt', '--label', 'e2e=angos', container);
      const imageId = (await buildah('commit', '-q', container, 'localhost/e2e/built:v1')).stdout.trim();
      await buildah('push', '-q', '--tls-verify=false', 'localhost/e2e/built:v1', r.ref('t/built', 'v1'));

      // What the registry serves is the image buildah built: its config, and a layer with the file.
      const served = await r.client.getManifest('t/built', 'v1');
      expect(served.status).toBe(200);
      const manifest = JSON.parse(served.body.toString('utf8')) as Manifest;
      expect(manifest.config.digest).toBe(`sha256:${imageId}`);
      expect(manifest.layers).toHaveLength(1);
      const layer = await r.client.getBlob('t/built', manifest.layers[0]!.digest);
      expect(layer.status).toBe(200);
      const unpacked = r.path('unpacked');
      await mkdir(unpacked);
      await writeFile(`${unpacked}.tar`, layer.body);
      await runOk('tar', ['-xf', `${unpacked}.tar`, '-C', unpacked]);
      expect(await readFile(join(unpacked, 'greeting.txt'), 'utf8')).toBe(greeting);

      // Pull it back into a fresh store and build a second image on top of it.
      await buildah('rm', '-a');
      await buildah('rmi', '-a', '-f');
      const derived = (await buildah('from', '--tls-verify=false', r.image('t/built', 'v1'))).stdout.trim();
      const inspect = JSON.parse((await buildah('inspect', derived)).stdout);
      expect(inspect.FromImageID).toBe(imageId);
      expect(inspect.OCIv1.config.Labels).toMatchObject({ e2e: 'angos' });
      await buildah('config', '--label', 'stage=derived', derived);
      await buildah('commit', '-q', derived, 'localhost/e2e/derived:v1');
      await buildah('push', '-q', '--tls-verify=false', 'localhost/e2e/derived:v1', r.ref('t/derived', 'v1'));
      const derivedManifest = JSON.parse(
        (await r.client.getManifest('t/derived', 'v1')).body.toString(),
      ) as Manifest;
      // The base layer is reused as it is: same digest, now also readable in the second repository.
      expect(derivedManifest.layers[0]!.digest).toBe(manifest.layers[0]!.digest);
      expect(await r.client.headBlob('t/derived', manifest.layers[0]!.digest)).toBe(200);
    });
  },
);
