import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AngosInstance,
  containersEnv,
  type Distribution,
  mkOci,
  OciClient,
  OciLayout,
  pushLayout,
  runOk,
  sha256,
  skipWithout,
  startAngos,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clientPath } from './clients.js';
import { MODES, skipWithoutClients } from './fixture.js';

/**
 * Real clients pulling through the pull-through cache of `angos server` and of the split
 * deployment (gateway, registry-api, pull-through-cache), from a real CNCF distribution upstream:
 * a multi-platform index by tag and by digest, single platforms, and then the same pulls once the
 * upstream is stopped, served from the cache.
 */

interface ImageIndex {
  manifests: { digest: string; platform: { architecture: string } }[];
}

const skip =
  skipWithoutClients('skopeo', 'crane', 'podman') ||
  skipWithout('pull-through tests against CNCF distribution', 'docker-registry');

describe.skipIf(skip).each(MODES)('pull-through cache of angos %s', (mode) => {
  let work: string;
  let upstream: Distribution;
  let angos: AngosInstance;
  let env: NodeJS.ProcessEnv;
  let source: OciLayout;
  let index: string;
  let counter = 0;
  const path = (name: string) => join(work, `${++counter}-${name}`);
  const ok = (cmd: string, ...args: string[]) => runOk(cmd, args, { env, timeoutMs: 60_000 });
  const ref = (reference: string) =>
    `${angos.host}/mirror/team/multi${reference.includes(':') ? '@' : ':'}${reference}`;

  beforeAll(async () => {
    work = join(tmpdir(), `angos-e2e-ptc-${mode}-${randomUUID().slice(0, 8)}`);
    await mkdir(work);
    upstream = await startDistribution();
    source = new OciLayout(join(work, 'source'));
    index = await mkOci(source.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed: randomUUID(), fillMb: 4 });
    await pushLayout(new OciClient(upstream.url), source, 'team/multi', index, 'v1');
    angos = await startAngos({
      mode,
      // Every pull of the tag asks the upstream (a HEAD): with it stopped, the fallback is exercised.
      config: `[repository."mirror"]\nupstream_tag_check_interval_secs = 0\n[[repository."mirror".upstream]]\nurl = "${upstream.url}"\n`,
      env: { RUST_LOG: 'debug' },
    });
    env = {
      ...(await containersEnv(join(work, 'containers'), { insecureRegistries: [angos.host] })),
      PATH: clientPath(),
      DOCKER_CONFIG: join(work, 'docker-config'),
    };
  });

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      console.error(`angos ${mode} log (last 20000 characters):\n${angos?.logs().slice(-20_000)}`);
    });
  });

  afterAll(async () => {
    await angos?.stop();
    await upstream?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** What the source layout holds for `digest`: the manifests and blobs a full pull must bring. */
  async function expectSameImage(pulled: OciLayout, digest: string): Promise<void> {
    const closure = await source.closure(digest);
    expect(await pulled.closure(digest)).toEqual(closure);
    for (const blob of closure) expect(sha256(await pulled.blob(blob))).toBe(blob);
  }

  const skopeoPull = async (reference: string) => {
    const out = new OciLayout(path('skopeo'));
    await ok(
      'skopeo',
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${ref(reference)}`,
      `oci:${out.dir}:v1`,
    );
    return out;
  };

  const arm64 = async () =>
    (await source.json<ImageIndex>(index)).manifests.find((m) => m.platform.architecture === 'arm64')!.digest;

  it('skopeo copies the whole index through the cache, by tag and by digest, with its digest kept', async () => {
    const byTag = await skopeoPull('v1');
    expect((await byTag.descriptor('v1')).digest).toBe(index);
    await expectSameImage(byTag, index);
    const byDigest = await skopeoPull(index);
    expect((await byDigest.descriptor('v1')).digest).toBe(index);
    await expectSameImage(byDigest, index);
  });

  it('crane resolves the tag to the index and pulls one platform by digest', async () => {
    const digest = await ok('crane', 'digest', '--insecure', ref('v1'));
    expect(digest.stdout.trim()).toBe(index);
    const out = path('crane');
    await ok('crane', 'pull', '--insecure', '--format', 'oci', '--platform', 'linux/arm64', ref(index), out);
    const pulled = new OciLayout(out);
    const platform = await arm64();
    expect(await pulled.closure(platform)).toEqual(await source.closure(platform));
  });

  it('podman pulls a single platform by tag', async () => {
    await ok('podman', 'pull', '--arch', 'arm64', ref('v1'));
    const inspected = await ok('podman', 'image', 'inspect', '--format', '{{.Digest}}', ref('v1'));
    expect(inspected.stdout.trim()).toBe(index);
  });

  it('refuses a push into the cache namespace with 405 UNSUPPORTED', async () => {
    const result = await runOk(
      'skopeo',
      [
        'copy',
        '--dest-tls-verify=false',
        `oci:${source.dir}:v1`,
        `docker://${angos.host}/mirror/team/pushed:v1`,
      ],
      {
        env,
        timeoutMs: 60_000,
      },
    ).then(
      () => undefined,
      (error: unknown) => String(error),
    );
    expect(result).toMatch(/405|unsupported|pull-through/i);
  });

  it("serves containerd's ?ns=<upstream host> mirror requests from the cache namespace", async () => {
    const host = new URL(upstream.url).host;
    const response = await fetch(`${angos.url}/v2/team/multi/manifests/v1?ns=${host}`, {
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-content-digest')).toBe(index);
  });

  it('keeps serving every cached pull once the upstream is stopped', async () => {
    await upstream.stop();
    // The tag is served from the cache, flagged: the upstream could not be asked.
    const tag = await fetch(`${angos.url}/v2/mirror/team/multi/manifests/v1`, {
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    });
    expect(tag.status).toBe(200);
    expect(tag.headers.get('docker-content-digest')).toBe(index);
    expect(tag.headers.get('warning')).toMatch(/^110 /);
    const byTag = await skopeoPull('v1');
    expect((await byTag.descriptor('v1')).digest).toBe(index);
    await expectSameImage(byTag, index);
    const byDigest = await skopeoPull(index);
    await expectSameImage(byDigest, index);
    expect((await ok('crane', 'digest', '--insecure', ref('v1'))).stdout.trim()).toBe(index);
    const out = path('crane-down');
    await ok('crane', 'pull', '--insecure', '--format', 'oci', '--platform', 'linux/arm64', ref(index), out);
    const platform = await arm64();
    expect(await new OciLayout(out).closure(platform)).toEqual(await source.closure(platform));
  });
});
