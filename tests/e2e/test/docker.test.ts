import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AngosInstance,
  type Dockerd,
  mkOci,
  OciLayout,
  pushLayout,
  type RunResult,
  run,
  runOk,
  startAngos,
  startDockerd,
  writeDockerArchive,
} from '@angos/test-support';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clientPath } from './clients.js';
import { deployments, MODES, skipUnlessRoot, skipWithoutClients, useRegistry } from './fixture.js';
import { ADMIN_HASH } from './identities.js';

interface Manifest {
  config?: { digest: string };
  manifests?: { digest: string; platform: { architecture: string; os: string } }[];
}

/** The digest `docker push` reports: "<tag>: digest: sha256:… size: …". */
const pushedDigest = (result: RunResult): string => {
  const found = /digest: (sha256:[0-9a-f]{64})/.exec(result.stdout);
  if (!found) throw new Error(`no digest in docker push output:\n${result.stdout}`);
  return found[1]!;
};

/**
 * Docker (Debian's docker.io, dockerd 20.10) against Angos: one private daemon for the file
 * (startDockerd), images loaded from `docker save` archives written from the deterministic OCI
 * layouts (there is no internet to pull from), pushed to and pulled from 127.0.0.1, which docker
 * reaches over plain HTTP by default.
 */
describe.skipIf(skipWithoutClients('dockerd', 'docker') || skipUnlessRoot('docker'))('docker', () => {
  let daemon: Dockerd;
  let work = '';
  let counter = 0;
  const path = (name: string) => join(work, `${++counter}-${name}`);

  beforeAll(async () => {
    work = join(tmpdir(), `angos-e2e-docker-${randomUUID().slice(0, 8)}`);
    await mkdir(work);
    daemon = await startDockerd({ dir: join(work, 'dockerd'), env: { ...process.env, PATH: clientPath() } });
  }, 90_000);
  afterAll(async () => {
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  /** `env` talking to this file's daemon; its own DOCKER_CONFIG (credentials) when it has one. */
  const dockerEnv = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
    ...env,
    DOCKER_HOST: daemon.env.DOCKER_HOST,
    DOCKER_CONFIG: env['DOCKER_CONFIG'] ?? daemon.env.DOCKER_CONFIG,
  });
  const docker = (env: NodeJS.ProcessEnv, args: string[], input?: string) =>
    runOk('docker', args, {
      env: dockerEnv(env),
      timeoutMs: 90_000,
      ...(input === undefined ? {} : { input }),
    });
  const tryDocker = (env: NodeJS.ProcessEnv, args: string[], input?: string) =>
    run('docker', args, {
      env: dockerEnv(env),
      timeoutMs: 90_000,
      ...(input === undefined ? {} : { input }),
    });

  /** A fresh image loaded into the daemon as `name`; returns its config digest (the image ID). */
  async function loadImage(env: NodeJS.ProcessEnv, name: string, platform = 'linux/amd64'): Promise<string> {
    const src = new OciLayout(path('src'));
    const digest = await mkOci(src.dir, 'v1', [platform], { seed: randomUUID(), fillMb: 1 });
    const archive = path('image.tar');
    await writeDockerArchive(src, digest, name, archive);
    const loaded = await docker(env, ['load', '-i', archive]);
    expect(loaded.stdout).toContain(`Loaded image: ${name}`);
    return (await src.json<Manifest>(digest)).config!.digest;
  }

  const imageId = async (env: NodeJS.ProcessEnv, ref: string) =>
    (await docker(env, ['image', 'inspect', '--format', '{{.Id}}', ref])).stdout.trim();

  describe.each(deployments())('docker against angos $label', (deployment) => {
    const r = useRegistry(deployment, ['dockerd', 'docker']);
    beforeEach(({ onTestFailed }) => {
      onTestFailed(() =>
        console.error(`dockerd log (last 10000 characters):\n${daemon.logs().slice(-10_000)}`),
      );
    });

    it('pushes an image loaded from a tarball and pulls it back', async () => {
      const id = await loadImage(r.env, 'e2e/loaded:v1');
      await docker(r.env, ['tag', 'e2e/loaded:v1', r.image('t/docker', 'v1')]);
      const digest = pushedDigest(await docker(r.env, ['push', r.image('t/docker', 'v1')]));

      // Docker pushes a Docker v2 manifest with the same config: the same image.
      const served = await r.client.getManifest('t/docker', 'v1');
      expect(served).toMatchObject({
        status: 200,
        digest,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      });
      expect(JSON.parse(served.body.toString('utf8')).config.digest).toBe(id);
      // Into a second repository: docker knows where the layers are and mounts them from there.
      await docker(r.env, ['tag', 'e2e/loaded:v1', r.image('t/docker-copy', 'v1')]);
      const copied = await docker(r.env, ['push', r.image('t/docker-copy', 'v1')]);
      expect(copied.stdout).toMatch(/Mounted from t\/docker/);
      expect(pushedDigest(copied)).toBe(digest);

      await docker(r.env, ['rmi', '-f', id]);
      const pulled = await docker(r.env, ['pull', r.image('t/docker', 'v1')]);
      expect(pulled.stdout).toContain(`Digest: ${digest}`);
      expect(await imageId(r.env, r.image('t/docker', 'v1'))).toBe(id);
      // By digest too, and the image records where it came from.
      await docker(r.env, ['pull', r.image('t/docker', digest)]);
      const repoDigests = JSON.parse(
        (await docker(r.env, ['image', 'inspect', '--format', '{{json .RepoDigests}}', id])).stdout,
      );
      expect(repoDigests).toContain(r.image('t/docker', digest));
      await docker(r.env, ['rmi', '-f', id]);
    });

    it('pulls one platform of a multi-platform index with --platform', async () => {
      const src = new OciLayout(r.path('src'));
      const digest = await mkOci(src.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed: r.seed() });
      await pushLayout(r.client, src, 't/docker-multi', digest, 'v1');
      const index = await src.json<Manifest>(digest);

      for (const { digest: child, platform } of index.manifests!) {
        const config = (await src.json<Manifest>(child)).config!.digest;
        const pulled = await docker(r.env, [
          'pull',
          '--platform',
          `${platform.os}/${platform.architecture}`,
          r.image('t/docker-multi', 'v1'),
        ]);
        // Docker reports the digest it resolved: the index's.
        expect(pulled.stdout).toContain(`Digest: ${digest}`);
        expect(await imageId(r.env, r.image('t/docker-multi', 'v1'))).toBe(config);
        const arch = await docker(r.env, [
          'image',
          'inspect',
          '--format',
          '{{.Os}}/{{.Architecture}}',
          config,
        ]);
        expect(arch.stdout.trim()).toBe(`${platform.os}/${platform.architecture}`);
        await docker(r.env, ['rmi', '-f', config]);
      }
    });

    it('pushes a Docker manifest list with docker manifest and pulls each platform from it', async () => {
      const platforms = ['linux/amd64', 'linux/arm64'];
      const images = [];
      for (const platform of platforms) {
        const arch = platform.split('/')[1]!;
        const name = r.image('t/docker-list', arch);
        const id = await loadImage(r.env, name, platform);
        const digest = pushedDigest(await docker(r.env, ['push', name]));
        images.push({ platform, name, id, digest });
      }
      const list = r.image('t/docker-list', 'v1');
      await docker(r.env, ['manifest', 'create', '--insecure', list, ...images.map((i) => i.name)]);
      const pushed = await docker(r.env, ['manifest', 'push', '--insecure', '--purge', list]);
      const listDigest = /sha256:[0-9a-f]{64}/.exec(pushed.stdout)![0];

      const served = await r.client.getManifest('t/docker-list', 'v1');
      expect(served).toMatchObject({
        status: 200,
        digest: listDigest,
        mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      });
      const manifests = JSON.parse(served.body.toString('utf8')).manifests as Manifest['manifests'];
      expect(manifests!.map((m) => m.digest).sort()).toEqual(images.map((i) => i.digest).sort());

      for (const image of images) await docker(r.env, ['rmi', '-f', image.id]);
      for (const image of images) {
        await docker(r.env, ['pull', '--platform', image.platform, list]);
        expect(await imageId(r.env, list)).toBe(image.id);
      }
      for (const image of images) await docker(r.env, ['rmi', '-f', image.id]);
    });
  });

  describe.each(MODES)('docker login to angos %s with basic auth', (mode) => {
    let angos: AngosInstance;
    let env: NodeJS.ProcessEnv;
    beforeAll(async () => {
      angos = await startAngos({
        mode,
        env: { RUST_LOG: 'debug' },
        config: [
          '[auth.identity.admin]',
          'username = "admin"',
          `password = "${ADMIN_HASH}"`,
          '',
          '[global.access_policy]',
          'default = "deny"',
          `rules = ["has(identity.username) && identity.username == 'admin'"]`,
        ].join('\n'),
      });
      // The client config (credentials) of this block alone.
      env = { ...process.env, PATH: clientPath(), DOCKER_CONFIG: path('docker-config') };
    });
    afterAll(async () => {
      await angos?.stop();
    });
    beforeEach(({ onTestFailed }) => {
      onTestFailed(() => console.error(`angos ${mode} log:\n${angos?.logs().slice(-20_000) ?? ''}`));
    });

    it('logs in, pushes and pulls; refuses a wrong password and anonymous pushes', async () => {
      const ref = `${angos.host}/t/login:v1`;
      const id = await loadImage(env, ref);

      const anonymous = await tryDocker(env, ['push', ref]);
      expect(anonymous.code).not.toBe(0);
      expect(`${anonymous.stdout}${anonymous.stderr}`).toMatch(/no basic auth credentials|unauthorized/i);

      const login = (password: string) =>
        tryDocker(env, ['login', '-u', 'admin', '--password-stdin', angos.host], `${password}\n`);
      const wrong = await login('wrong-password');
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/unauthorized|incorrect username or password/i);

      const ok = await login('admin-secret');
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('Login Succeeded');
      const digest = pushedDigest(await docker(env, ['push', ref]));
      await docker(env, ['rmi', '-f', id]);
      await docker(env, ['pull', `${angos.host}/t/login@${digest}`]);
      expect(await imageId(env, `${angos.host}/t/login@${digest}`)).toBe(id);

      await docker(env, ['logout', angos.host]);
      const afterLogout = await tryDocker(env, ['pull', ref]);
      expect(afterLogout.code).not.toBe(0);
      await docker(env, ['rmi', '-f', id]);
    });
  });
});
