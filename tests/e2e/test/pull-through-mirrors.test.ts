import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AngosInstance,
  type Distribution,
  type Dockerd,
  mkOci,
  OciClient,
  OciLayout,
  pushLayout,
  runOk,
  skipWithout,
  startAngos,
  startDistribution,
  startDockerd,
} from '@angos/test-support';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clientPath } from './clients.js';
import { skipUnlessRoot, skipWithoutClients } from './fixture.js';

/**
 * Angos as the Docker Hub mirror of docker (`registry-mirrors`) and of containerd (hosts.toml,
 * whose requests carry `?ns=docker.io`), as docs/pull-through-cache.md sets them up. There is no
 * internet here: "Docker Hub" is a CNCF distribution on 127.0.0.1, configured as the upstream of
 * the repositories, and a pull that succeeds can only have come through the mirror (the clients'
 * fallback, registry-1.docker.io, cannot be reached).
 */

interface ImageIndex {
  manifests: { digest: string; platform: { architecture: string } }[];
}

const skip =
  skipWithoutClients('dockerd', 'docker', 'ctr') ||
  skipUnlessRoot('docker and containerd mirror') ||
  skipWithout('pull-through mirror tests against CNCF distribution', 'docker-registry');

describe.skipIf(skip)('angos as the Docker Hub mirror of docker and containerd', () => {
  let work: string;
  let upstream: Distribution;
  let angos: AngosInstance;
  let daemon: Dockerd;
  let source: OciLayout;
  let index: string;
  const env = () => ({ ...process.env, PATH: clientPath(), ...daemon.env });

  beforeAll(async () => {
    work = join(tmpdir(), `angos-e2e-mirror-${randomUUID().slice(0, 8)}`);
    await mkdir(work);
    upstream = await startDistribution();
    source = new OciLayout(join(work, 'source'));
    index = await mkOci(source.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed: randomUUID(), fillMb: 1 });
    // Docker Hub's name of an official image.
    await pushLayout(new OciClient(upstream.url), source, 'library/multi', index, 'v1');
    // And of an organisation's image, which only the docker-io repository covers.
    await pushLayout(new OciClient(upstream.url), source, 'acme/multi', index, 'v1');
    angos = await startAngos({
      mode: 'server',
      config: [
        // docker asks the mirror for Docker Hub's own names: one repository per Docker Hub namespace.
        '[[repository."library".upstream]]',
        `url = "${upstream.url}/library"`,
        // containerd names the registry in ?ns=: one repository for all of it.
        '[[repository."docker-io".upstream]]',
        `url = "${upstream.url}"`,
        '',
      ].join('\n'),
      env: { RUST_LOG: 'info' },
    });
    daemon = await startDockerd({
      dir: join(work, 'dockerd'),
      env: { ...process.env, PATH: clientPath() },
      registryMirrors: [angos.url],
    });
  }, 120_000);

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      console.error(`angos log (last 10000 characters):\n${angos?.logs().slice(-10_000)}`);
      console.error(`dockerd log (last 10000 characters):\n${daemon?.logs().slice(-10_000)}`);
    });
  });

  afterAll(async () => {
    await daemon?.stop();
    await angos?.stop();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  }, 60_000);

  const platform = async (architecture: string) =>
    (await source.json<ImageIndex>(index)).manifests.find((m) => m.platform.architecture === architecture)!
      .digest;

  it('docker pulls an official image through registry-mirrors, by tag and by digest', async () => {
    const pulled = await runOk('docker', ['pull', '--platform', 'linux/arm64', 'multi:v1'], {
      env: env(),
      timeoutMs: 90_000,
    });
    expect(pulled.stdout).toContain(`Digest: ${index}`);
    // By digest too: the other platform's manifest (docker 20.10 cannot point the index digest,
    // already pulled for arm64, at a second image: "Cannot overwrite digest").
    const amd64 = await platform('amd64');
    const byDigest = await runOk('docker', ['pull', `multi@${amd64}`], { env: env(), timeoutMs: 90_000 });
    expect(byDigest.stdout).toContain(`Digest: ${amd64}`);
    // Cached under the repository named after Docker Hub's namespace.
    const client = new OciClient(angos.url);
    expect((await client.getManifest('library/multi', await platform('arm64'))).status).toBe(200);
    expect((await client.getManifest('library/multi', amd64)).status).toBe(200);
  });

  it('ctr pulls through hosts.toml, its ?ns=<registry> mapped to the repository mirroring it', async () => {
    // "Docker Hub" is 127.0.0.1:<port> here: containerd names it in ?ns=, and docker-io, the
    // repository whose first upstream is on that host and covers acme/…, serves it.
    const registry = new URL(upstream.url).host;
    const hostsDir = join(work, 'certs.d');
    await mkdir(join(hostsDir, registry), { recursive: true });
    await writeFile(
      join(hostsDir, registry, 'hosts.toml'),
      `server = "${upstream.url}"\n\n[host."${angos.url}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const ctr = (...args: string[]) =>
      runOk('ctr', ['-a', daemon.containerdSocket, '-n', 'angos-e2e', ...args], {
        env: env(),
        timeoutMs: 90_000,
      });
    await ctr('images', 'pull', '--hosts-dir', hostsDir, '--all-platforms', `${registry}/acme/multi:v1`);
    expect((await ctr('images', 'ls')).stdout).toContain(index);
    // containerd falls back to `server` when the mirror fails; the cache proves the mirror served it:
    // with the upstream gone, docker-io/acme/multi holds the index and both platforms.
    await upstream.stop();
    const client = new OciClient(angos.url);
    expect((await client.getManifest('docker-io/acme/multi', index)).status).toBe(200);
    expect((await client.getManifest('docker-io/acme/multi', await platform('amd64'))).status).toBe(200);
    expect((await client.getManifest('docker-io/acme/multi', await platform('arm64'))).status).toBe(200);
  });
});
