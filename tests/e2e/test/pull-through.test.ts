import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Distribution,
  mkOci,
  OciClient,
  OciLayout,
  pushLayout,
  type RedisServer,
  sha256,
  skipWithout,
  startDistribution,
  startRedisServer,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployments, skipWithoutClients, useRegistry } from './fixture.js';

/**
 * Real clients pulling through the pull-through cache of every deployment (`angos server`, and the
 * split one: gateway, registry-api and pull-through-cache; on fs and on S3) from a real CNCF
 * distribution upstream: a multi-platform index by tag and by digest, single platforms, and then
 * the same pulls once the upstream is stopped, served from the cache. The split deployments run
 * registry-api and pull-through-cache on one fs metadata directory: two writing processes, so they
 * share a Redis lock strategy (with the memory lock the second one is refused its instance lock).
 */

interface ImageIndex {
  manifests: { digest: string; platform: { architecture: string } }[];
}

const CLIENTS = ['skopeo', 'crane', 'podman'];

const skip =
  skipWithoutClients(...CLIENTS) ||
  skipWithout('pull-through tests against CNCF distribution', 'docker-registry', 'redis-server');

describe.skipIf(skip).each(deployments())('pull-through cache of angos $label', (deployment) => {
  let work = '';
  let upstream: Distribution;
  let redis: RedisServer | undefined;
  let source: OciLayout;
  let index = '';

  // Before useRegistry's own beforeAll: the registry's configuration names the upstream.
  beforeAll(async () => {
    work = join(tmpdir(), `angos-e2e-ptc-${randomUUID().slice(0, 8)}`);
    await mkdir(work);
    upstream = await startDistribution();
    source = new OciLayout(join(work, 'source'));
    index = await mkOci(source.dir, 'v1', ['linux/amd64', 'linux/arm64'], { seed: randomUUID(), fillMb: 4 });
    await pushLayout(new OciClient(upstream.url), source, 'team/multi', index, 'v1');
    if (deployment.mode === 'split') redis = await startRedisServer();
  });
  afterAll(async () => {
    await upstream?.stop();
    await redis?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const r = useRegistry(deployment, CLIENTS, {
    // Every pull of the tag asks the upstream (a HEAD): with it stopped, the fallback is exercised.
    config: () =>
      [
        '[repository."mirror"]',
        'upstream_tag_check_interval_secs = 0',
        '[[repository."mirror".upstream]]',
        `url = "${upstream.url}"`,
        ...(redis === undefined
          ? []
          : ['[metadata_store.fs.lock_strategy.redis]', `url = "${redis.url}"`, 'ttl = 10']),
      ].join('\n'),
  });
  const image = (reference: string) => r.image('mirror/team/multi', reference);

  /** What the source layout holds for `digest`: the manifests and blobs a full pull must bring. */
  async function expectSameImage(pulled: OciLayout, digest: string): Promise<void> {
    const closure = await source.closure(digest);
    expect(await pulled.closure(digest)).toEqual(closure);
    for (const blob of closure) expect(sha256(await pulled.blob(blob))).toBe(blob);
  }

  const skopeoPull = async (reference: string) => {
    const out = new OciLayout(r.path('skopeo'));
    await r.ok(
      'skopeo',
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${image(reference)}`,
      `oci:${out.dir}:v1`,
    );
    return out;
  };

  const arm64 = async () =>
    (await source.json<ImageIndex>(index)).manifests.find((m) => m.platform.architecture === 'arm64')!.digest;

  const cranePullArm64 = async () => {
    const out = r.path('crane');
    await r.ok(
      'crane',
      'pull',
      '--insecure',
      '--format',
      'oci',
      '--platform',
      'linux/arm64',
      image(index),
      out,
    );
    const platform = await arm64();
    expect(await new OciLayout(out).closure(platform)).toEqual(await source.closure(platform));
  };

  it('skopeo copies the whole index through the cache, by tag and by digest, with its digest kept', async () => {
    const byTag = await skopeoPull('v1');
    expect((await byTag.descriptor('v1')).digest).toBe(index);
    await expectSameImage(byTag, index);
    const byDigest = await skopeoPull(index);
    expect((await byDigest.descriptor('v1')).digest).toBe(index);
    await expectSameImage(byDigest, index);
  });

  it('crane resolves the tag to the index and pulls one platform by digest', async () => {
    expect((await r.ok('crane', 'digest', '--insecure', image('v1'))).stdout.trim()).toBe(index);
    await cranePullArm64();
  });

  it('podman pulls a single platform by tag', async () => {
    await r.ok('podman', 'pull', '--arch', 'arm64', image('v1'));
    const inspected = await r.ok('podman', 'image', 'inspect', '--format', '{{.Digest}}', image('v1'));
    expect(inspected.stdout.trim()).toBe(index);
  });

  it('refuses a push into the cache namespace with 405 UNSUPPORTED', async () => {
    const pushed = await r.attempt(
      'skopeo',
      'copy',
      '--dest-tls-verify=false',
      `oci:${source.dir}:v1`,
      `docker://${r.image('mirror/team/pushed', 'v1')}`,
    );
    expect(pushed.code).not.toBe(0);
    const put = await r.client.pushManifest(
      'mirror/team/pushed',
      'v1',
      await source.blob(index),
      'application/vnd.oci.image.index.v1+json',
    );
    expect(put.status).toBe(405);
    expect(put.text).toContain('UNSUPPORTED');
  });

  it("serves containerd's ?ns=<upstream host> mirror requests from the cache namespace", async () => {
    const host = new URL(upstream.url).host;
    const response = await fetch(`${r.angos.url}/v2/team/multi/manifests/v1?ns=${host}`, {
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      redirect: 'follow',
    });
    expect(response.status).toBe(200);
    expect(sha256(Buffer.from(await response.arrayBuffer()))).toBe(index);
  });

  it('keeps serving every cached pull once the upstream is stopped', async () => {
    await upstream.stop();
    // The tag is served from the cache, flagged: the upstream could not be asked.
    const tag = await fetch(`${r.angos.url}/v2/mirror/team/multi/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      redirect: 'manual',
    });
    expect(tag.headers.get('warning')).toMatch(/^110 /);
    const byTag = await skopeoPull('v1');
    expect((await byTag.descriptor('v1')).digest).toBe(index);
    await expectSameImage(byTag, index);
    await expectSameImage(await skopeoPull(index), index);
    expect((await r.ok('crane', 'digest', '--insecure', image('v1'))).stdout.trim()).toBe(index);
    await cranePullArm64();
  });
});
