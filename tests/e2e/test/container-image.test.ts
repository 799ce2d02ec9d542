import { type ChildProcess, spawn } from 'node:child_process';
import { chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, OutputTail, repoRoot, runOk, terminate, track } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipUnlessRoot, skipWithoutClients, useRegistry } from './fixture.js';
import { ADMIN_HASH } from './identities.js';

/**
 * The container image (scripts/build-image.sh, docs/container-image.md): built with buildah from
 * scratch, pushed to a running `angos server` (the registry hosts its own image), pulled back with
 * skopeo, its configuration checked, and its layers unpacked into a root filesystem that then runs
 * `angos server` the way a container runtime would: chrooted as user 65532, the root filesystem
 * read-only, /var/lib/angos and /tmp the only writable mounts, the configuration at
 * /etc/angos/config.toml. The runtimes here cannot start containers (podman's crun is refused its
 * rlimits and cgroups in this sandbox), so a private mount namespace plays that part; it needs root,
 * which CI has. Without root only `angos --version` runs, through the image's own dynamic loader.
 */

const MAX_COMPRESSED_BYTES = 80 * 1024 * 1024;
const OCI_KEYS = ['source', 'revision', 'version', 'licenses', 'created', 'title', 'description'];

interface Descriptor {
  digest: string;
  size: number;
}
interface ImageManifest {
  config: Descriptor;
  layers: Descriptor[];
}
interface ImageConfig {
  os: string;
  architecture: string;
  config: {
    User?: string;
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Env?: string[];
    Labels?: Record<string, string>;
  };
}

const blobPath = (layout: string, digest: string) => join(layout, 'blobs', ...digest.split(':'));
const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;

describe.skipIf(skipWithoutClients('buildah', 'skopeo'))('the angos container image', () => {
  const r = useRegistry({ mode: 'server', storage: 'fs', label: 'server on fs' }, ['buildah', 'skopeo']);
  const root = repoRoot();
  let version = '';
  let report = { id: '', revision: '', compressedBytes: 0 };
  let layout = '';
  let manifest: ImageManifest;
  let rootfs = '';

  beforeAll(async () => {
    version = (await readJson<{ version: string }>(join(root, 'services/cli/package.json'))).version;
    const reportFile = r.path('report.json');
    // The build runs in this suite's own image store (r.env), like the clients.
    await runOk('bash', ['scripts/build-image.sh', 'localhost/angos/angos:e2e'], {
      cwd: root,
      env: { ...process.env, ...r.env, ANGOS_IMAGE_REPORT: reportFile },
      timeoutMs: 240_000,
    });
    report = await readJson(reportFile);
  }, 300_000);

  it('builds under the size limit and round-trips through the registry it contains', async () => {
    expect(report.compressedBytes).toBeGreaterThan(0);
    expect(report.compressedBytes).toBeLessThan(MAX_COMPRESSED_BYTES);
    // Tagged as the chart expects it (the package version) and by revision.
    for (const tag of [version, report.revision]) {
      await r.ok(
        'buildah',
        'push',
        '-q',
        '--tls-verify=false',
        'localhost/angos/angos:e2e',
        r.ref('angos/angos', tag),
      );
    }
    layout = r.path('pulled');
    await r.ok(
      'skopeo',
      'copy',
      '-q',
      '--src-tls-verify=false',
      r.ref('angos/angos', version),
      `oci:${layout}:angos`,
    );

    const index = await readJson<{ manifests: Descriptor[] }>(join(layout, 'index.json'));
    manifest = await readJson<ImageManifest>(blobPath(layout, index.manifests[0]!.digest));
    // What came back is what was built: the same configuration, and the size the build reported.
    expect(manifest.config.digest).toBe(`sha256:${report.id}`);
    expect(manifest.layers.reduce((sum, layer) => sum + layer.size, 0)).toBeLessThan(MAX_COMPRESSED_BYTES);
    const config = await readJson<ImageConfig>(blobPath(layout, manifest.config.digest));
    expect(config.os).toBe('linux');
    expect(config.config.User).toBe('65532:65532');
    expect(config.config.Entrypoint).toEqual(['/usr/local/bin/angos']);
    expect(config.config.Cmd).toEqual(['server']);
    expect(config.config.WorkingDir).toBe('/var/lib/angos');
    expect(config.config.Env).toContain('NODE_ENV=production');
    const labels = config.config.Labels ?? {};
    for (const key of OCI_KEYS) expect(labels[`org.opencontainers.image.${key}`], key).toBeTruthy();
    expect(labels['org.opencontainers.image.version']).toBe(version);
    expect(labels['org.opencontainers.image.revision']).toBe(report.revision);
    expect(labels['org.opencontainers.image.licenses']).toBe('Apache-2.0');

    // The Containerfile builds the same layout for docker and podman users (not built here: its
    // base images are on registries these machines cannot reach); its settings must not drift.
    const containerfile = await readFile(join(root, 'Containerfile'), 'utf8');
    for (const line of [
      `ARG VERSION=${version}`,
      `USER ${config.config.User}`,
      `WORKDIR ${config.config.WorkingDir}`,
      `ENTRYPOINT ${JSON.stringify(config.config.Entrypoint)}`,
      `CMD ${JSON.stringify(config.config.Cmd)}`,
    ]) {
      expect(containerfile.split('\n'), line).toContain(line);
    }

    rootfs = r.path('rootfs');
    await mkdir(rootfs);
    for (const layer of manifest.layers) {
      await runOk('tar', ['-xzf', blobPath(layout, layer.digest), '-C', rootfs, '--numeric-owner']);
    }
    // No shell, nothing but the runtime, the app and what they need.
    expect((await readdir(rootfs)).sort()).toEqual(['etc', 'lib', 'lib64', 'tmp', 'usr', 'var']);
    await expect(stat(join(rootfs, 'bin/sh'))).rejects.toThrow();
    expect((await stat(join(rootfs, 'var/lib/angos'))).uid).toBe(65532);
    expect(await readFile(join(rootfs, 'etc/passwd'), 'utf8')).toContain(':65532:65532:');
    expect((await stat(join(rootfs, 'etc/ssl/certs/ca-certificates.crt'))).size).toBeGreaterThan(0);
    // The image's node, through the image's own dynamic loader and libraries, not this machine's.
    const { stdout } = await runOk(join(rootfs, 'lib64/ld-linux-x86-64.so.2'), [
      '--library-path',
      join(rootfs, 'lib/x86_64-linux-gnu'),
      join(rootfs, 'usr/local/bin/node'),
      join(rootfs, 'usr/local/bin/angos'),
      '--version',
    ]);
    expect(stdout).toContain(`angos ${version} (commit ${labels['org.opencontainers.image.revision']})`);
  });

  describe.skipIf(skipUnlessRoot('container image run'))('run as a container would, as root', () => {
    let server: ChildProcess | undefined;
    const output = new OutputTail();
    afterAll(async () => {
      if (server) await terminate(server);
    });

    it('serves pushes and pulls as user 65532 on a read-only root filesystem', async ({ onTestFailed }) => {
      expect(rootfs, 'the round-trip test unpacked the image').not.toBe('');
      onTestFailed(() => console.error(`angos in the image:\n${output.toString()}`));
      const data = r.path('var-lib-angos');
      const etc = r.path('etc-angos');
      await mkdir(data);
      await chown(data, 65532, 65532);
      await mkdir(etc);
      const port = await freePort();
      // Argon2 (a native binding) and a CEL rule (cel-js): the packages the bundle keeps beside it.
      await writeFile(
        join(etc, 'config.toml'),
        [
          '[server]',
          'bind_address = "127.0.0.1"',
          `port = ${port}`,
          '[blob_store.fs]',
          'root_dir = "/var/lib/angos/data"',
          '[auth.identity.admin]',
          'username = "admin"',
          `password = "${ADMIN_HASH}"`,
          '[global.access_policy]',
          'default = "deny"',
          `rules = ["identity.username == 'admin'", "request.action == 'ui-asset'"]`,
          '[ui]',
          'enabled = true',
          '',
        ].join('\n'),
      );
      for (const dir of ['proc', 'dev']) await mkdir(join(rootfs, dir));
      const script = [
        'set -e',
        'R="$1"',
        'mount --bind "$R" "$R"',
        'mount --rbind /proc "$R/proc"',
        'mount --rbind /dev "$R/dev"',
        'mount --bind "$2" "$R/var/lib/angos"',
        'mount --bind "$3" "$R/etc/angos"',
        'mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"',
        'mount -o remount,bind,ro "$R"',
        'shift 3',
        'exec chroot --userspec=65532:65532 "$R" /usr/local/bin/angos "$@"',
      ].join('\n');
      const args = ['-c', '/etc/angos/config.toml', 'server'];
      server = spawn(
        'unshare',
        ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', rootfs, data, etc, ...args],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } },
      );
      track(server);
      server.stdout?.on('data', (chunk: Buffer) => output.write(chunk));
      server.stderr?.on('data', (chunk: Buffer) => output.write(chunk));

      const url = `http://127.0.0.1:${port}/v2/`;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const status = await fetch(url).then(
          (res) => res.status,
          () => 0,
        );
        if (status === 401) break;
        if (server.exitCode !== null || Date.now() > deadline) {
          throw new Error(`angos in the image did not start (last status ${status})`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }

      // The image pushes itself into the registry it runs, then is read back by digest.
      const target = `docker://127.0.0.1:${port}/self/angos:${version}`;
      const creds = ['--creds', 'admin:admin-secret'];
      await r.ok(
        'skopeo',
        'copy',
        '-q',
        '--dest-tls-verify=false',
        '--dest-creds',
        'admin:admin-secret',
        `oci:${layout}:angos`,
        target,
      );
      const raw = await r.ok('skopeo', 'inspect', '--raw', '--tls-verify=false', ...creds, target);
      const served = JSON.parse(raw.stdout) as ImageManifest;
      expect(served.config.digest).toBe(manifest.config.digest);
      expect(served.layers.map((layer) => layer.digest)).toEqual(
        manifest.layers.map((layer) => layer.digest),
      );
      // Without the password the policy denies it: the identity check ran in the image.
      const anonymous = await r.attempt(
        'skopeo',
        'inspect',
        '--raw',
        '--tls-verify=false',
        '--no-creds',
        target,
      );
      expect(anonymous.code).not.toBe(0);
      // The web UI's files, from the image's /usr/local/lib/angos/ui, and the probes.
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<div id="app"');
      for (const probe of ['/healthz', '/readyz']) {
        expect((await fetch(`http://127.0.0.1:${port}${probe}`)).status, probe).toBe(200);
      }
      // Everything it wrote is under the mounted /var/lib/angos.
      expect((await readdir(data)).length).toBeGreaterThan(0);
    });
  });
});
