import { mkOci, OciLayout } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

interface Index {
  mediaType: string;
  manifests: { digest: string; platform: { architecture: string; os: string } }[];
}

describe.skipIf(skipWithoutClients('podman')).each(deployments())(
  'podman against angos $label',
  (deployment) => {
    const r = useRegistry(deployment, ['podman']);
    const podman = (...args: string[]) => r.ok('podman', ...args);
    const imageId = async (name: string) =>
      (await podman('image', 'inspect', '--format', '{{.Id}}', name)).stdout.trim();

    /** A fresh single-platform image in podman's local storage; returns its config digest. */
    async function localImage(name: string, platform = 'linux/amd64'): Promise<string> {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', [platform], { seed: r.seed() });
      // `pull -q` prints the image ID; the name podman derives from the layout path is of no use.
      const id = (await podman('pull', '-q', `oci:${src.dir}:v1`)).stdout.trim();
      await podman('tag', id, name);
      return (await src.json<{ config: { digest: string } }>(digest)).config.digest;
    }

    it('pushes an image and pulls it back', async () => {
      const config = await localImage('localhost/e2e/pod:v1');
      await podman('push', '-q', '--tls-verify=false', 'localhost/e2e/pod:v1', r.image('t/pod', 'v1'));
      const served = await r.client.getManifest('t/pod', 'v1');
      expect(served.status).toBe(200);
      expect(JSON.parse(served.body.toString('utf8')).config.digest).toBe(config);

      await podman('rmi', '-a', '-f');
      await podman('pull', '-q', '--tls-verify=false', r.image('t/pod', 'v1'));
      // The image ID is the config digest: the same image came back.
      expect(`sha256:${await imageId(r.image('t/pod', 'v1'))}`).toBe(config);
      const repoDigests = (
        await podman('image', 'inspect', '--format', '{{json .RepoDigests}}', r.image('t/pod', 'v1'))
      ).stdout;
      expect(JSON.parse(repoDigests)).toContain(r.image('t/pod', served.digest!));
    });

    it('pushes a pulled image under another tag', async () => {
      await localImage('localhost/e2e/retag:v1');
      await podman('push', '-q', '--tls-verify=false', 'localhost/e2e/retag:v1', r.image('t/retag', 'v1'));
      await podman('rmi', '-a', '-f');
      await podman('pull', '-q', '--tls-verify=false', r.image('t/retag', 'v1'));
      await podman('tag', r.image('t/retag', 'v1'), r.image('t/retag', 'stable'));
      await podman('push', '-q', '--tls-verify=false', r.image('t/retag', 'stable'));

      expect((await r.client.tags('t/retag')).tags.sort()).toEqual(['stable', 'v1']);
      const [v1, stable] = await Promise.all([
        r.client.getManifest('t/retag', 'v1'),
        r.client.getManifest('t/retag', 'stable'),
      ]);
      expect(JSON.parse(stable.body.toString('utf8')).config).toEqual(
        JSON.parse(v1.body.toString('utf8')).config,
      );
    });

    it('builds and pushes a multi-platform manifest list with manifest push --all', async () => {
      const amd64 = await localImage('localhost/e2e/multi:amd64', 'linux/amd64');
      const arm64 = await localImage('localhost/e2e/multi:arm64', 'linux/arm64');
      await podman(
        'push',
        '-q',
        '--tls-verify=false',
        'localhost/e2e/multi:amd64',
        r.image('t/multi-parts', 'amd64'),
      );
      await podman(
        'push',
        '-q',
        '--tls-verify=false',
        'localhost/e2e/multi:arm64',
        r.image('t/multi-parts', 'arm64'),
      );

      await podman('manifest', 'create', 'localhost/e2e/list:v1');
      for (const arch of ['amd64', 'arm64']) {
        await podman(
          'manifest',
          'add',
          '--tls-verify=false',
          'localhost/e2e/list:v1',
          r.ref('t/multi-parts', arch),
        );
      }
      await podman(
        'manifest',
        'push',
        '--all',
        '--tls-verify=false',
        'localhost/e2e/list:v1',
        r.ref('t/list', 'v1'),
      );

      const served = await r.client.getManifest('t/list', 'v1');
      expect(served.status).toBe(200);
      const index = JSON.parse(served.body.toString('utf8')) as Index;
      expect(index.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
      for (const child of index.manifests) {
        const manifest = await r.client.getManifest('t/list', child.digest);
        expect(manifest.status).toBe(200);
        const config = JSON.parse(manifest.body.toString('utf8')).config.digest;
        expect(config).toBe(child.platform.architecture === 'amd64' ? amd64 : arm64);
      }

      // podman pulls the requested platform out of the list.
      await podman('rmi', '-a', '-f');
      await podman('pull', '-q', '--tls-verify=false', '--arch', 'arm64', r.image('t/list', 'v1'));
      expect(`sha256:${await imageId(r.image('t/list', 'v1'))}`).toBe(arm64);
    });
  },
);
