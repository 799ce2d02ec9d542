/**
 * Replication between real registries: two Angos instances that are each other's downstream
 * (active-active, filesystem storage, each draining its replication queue in-process): A one
 * `angos server`, B split into gateway and registry-api; and CNCF distribution (Debian's
 * `docker-registry`, Basic auth, under a path prefix) as a one-way downstream of A.
 */
import { randomBytes } from 'node:crypto';
import {
  type AngosInstance,
  DISTRIBUTION_USER,
  type Distribution,
  freePort,
  OciClient,
  skipWithout,
  startAngos,
  startDistribution,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_HASH, ALICE_HASH } from './identities.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; throws with `what` when `timeoutMs` passes. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`not in time: ${what}`);
}

/** Pushes a small image (a config and a layer unique to `label`) and returns its digest. */
async function pushImage(client: OciClient, repo: string, tag: string, label: string): Promise<string> {
  const config = Buffer.from(JSON.stringify({ label, architecture: 'amd64', os: 'linux' }));
  const layer = randomBytes(4096);
  const configDigest = await client.pushBlob(repo, config);
  const layerDigest = await client.pushBlob(repo, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length },
    ],
  });
  const pushed = await client.pushManifest(repo, tag, manifest, OCI_MANIFEST);
  expect(pushed.status, pushed.text).toBe(201);
  return pushed.digest as string;
}

async function digestOf(client: OciClient, repo: string, tag: string): Promise<string | null> {
  const response = await client.request('HEAD', `/v2/${repo}/manifests/${tag}`, {
    headers: { accept: OCI_MANIFEST },
  });
  await response.arrayBuffer();
  return response.status === 200 ? response.headers.get('docker-content-digest') : null;
}

/** Every blob of the manifest `digest` names is readable on `client` (content before manifest). */
async function holdsContent(client: OciClient, repo: string, digest: string): Promise<boolean> {
  const manifest = await client.getManifest(repo, digest);
  if (manifest.status !== 200) return false;
  const parsed = JSON.parse(manifest.body.toString('utf8')) as {
    config: { digest: string };
    layers: Array<{ digest: string }>;
  };
  for (const blob of [parsed.config, ...parsed.layers]) {
    if ((await client.headBlob(repo, blob.digest)) !== 200) return false;
  }
  return true;
}

interface Peer {
  readonly name: string;
  readonly url: string;
  readonly mode?: string;
  readonly username?: string;
  readonly password?: string;
}

function peerConfig(peers: readonly Peer[]) {
  const downstreams = peers.map((peer) =>
    [
      '[[repository."nginx".downstream]]',
      ...Object.entries(peer).map(([key, value]) => `${key} = ${JSON.stringify(value)}`),
    ].join('\n'),
  );
  return [
    '[repository."nginx"]',
    '[repository."nginx".access_policy]\ndefault = "allow"',
    ...downstreams,
  ].join('\n\n');
}

describe.skipIf(skipWithout('replication to CNCF distribution', 'docker-registry'))(
  'replication: angos A ⇄ angos B, and A → distribution (Basic auth, path prefix)',
  () => {
    let a: AngosInstance;
    let b: AngosInstance;
    let distribution: Distribution;
    let clientA: OciClient;
    let clientB: OciClient;
    let clientD: OciClient;

    beforeAll(async () => {
      distribution = await startDistribution({ auth: 'htpasswd' });
      const portA = await freePort();
      const portB = await freePort();
      const urlA = `http://127.0.0.1:${portA}`;
      const urlB = `http://127.0.0.1:${portB}`;
      [a, b] = await Promise.all([
        startAngos({
          mode: 'server',
          port: portA,
          config: peerConfig([
            { name: 'instance-b', url: urlB },
            // A path URL: nginx/<x> lands as mirror/<x>.
            {
              name: 'distribution',
              url: `${distribution.url}/mirror`,
              mode: 'event-only',
              ...DISTRIBUTION_USER,
            },
          ]),
        }),
        // B split (gateway + registry-api): the honoured source timestamp crosses the signed hop.
        startAngos({ mode: 'split', port: portB, config: peerConfig([{ name: 'instance-a', url: urlA }]) }),
      ]);
      clientA = new OciClient(a.url);
      clientB = new OciClient(b.url);
      const { username, password } = DISTRIBUTION_USER;
      clientD = new OciClient(distribution.url, {
        authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
      });
    }, 90_000);

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop(), distribution?.stop()]);
    });

    it('a push to A appears on B, and on distribution under the path prefix, content first', async () => {
      const digest = await pushImage(clientA, 'nginx/app', 'v1', 'first');
      await eventually('v1 on B', async () => (await digestOf(clientB, 'nginx/app', 'v1')) === digest);
      await eventually(
        'v1 on distribution',
        async () => (await digestOf(clientD, 'mirror/app', 'v1')) === digest,
      );
      expect(await holdsContent(clientB, 'nginx/app', digest)).toBe(true);
      expect(await holdsContent(clientD, 'mirror/app', digest)).toBe(true);
      // B forwarded it back to A as a no-op: A still holds the same tag at the same digest.
      expect(await digestOf(clientA, 'nginx/app', 'v1')).toBe(digest);
      // Counted once each job has finished (just after the downstream answered).
      const expected = [
        /^angos_replication_push_total\{downstream="instance-b",outcome="pushed"\} [1-9]/m,
        /^angos_replication_push_total\{downstream="distribution",outcome="pushed"\} [1-9]/m,
        /^angos_replication_last_success_timestamp_seconds\{downstream="instance-b"\} \d/m,
      ];
      await eventually('replication metrics on A', async () => {
        const metrics = await (await fetch(`${a.url}/metrics`)).text();
        return expected.every((pattern) => pattern.test(metrics));
      });
    });

    it('a delete on B disappears on A and stays gone', async () => {
      const digest = await pushImage(clientB, 'nginx/app', 'gone', 'to delete');
      await eventually('gone on A', async () => (await digestOf(clientA, 'nginx/app', 'gone')) === digest);
      expect(await clientB.deleteManifest('nginx/app', 'gone')).toBe(202);
      await eventually('deleted on A', async () => (await digestOf(clientA, 'nginx/app', 'gone')) === null);
      // Give any echo time to come back; it must not resurrect the tag on either side.
      await sleep(3000);
      expect(await digestOf(clientA, 'nginx/app', 'gone')).toBeNull();
      expect(await digestOf(clientB, 'nginx/app', 'gone')).toBeNull();
    });

    it('a push older than a delete that reaches the deleting peer after it is refused: the tag stays gone on both', async () => {
      // Both hold `undone`; then A's write of it (at t1) is still on its way to B when B deletes
      // the tag (at t2 > t1), and B's delete reaches A first. A's push is sent here as A's job
      // sends it: content first, then the manifest dated t1.
      const digest = await pushImage(clientA, 'nginx/app', 'undone', 'before the delete');
      await eventually(
        'undone on B',
        async () => (await digestOf(clientB, 'nginx/app', 'undone')) === digest,
      );
      const t1 = new Date().toISOString();
      await sleep(10);
      expect(await clientB.deleteManifest('nginx/app', 'undone')).toBe(202);
      await eventually('deleted on A', async () => (await digestOf(clientA, 'nginx/app', 'undone')) === null);
      const configBytes = Buffer.from(JSON.stringify({ label: 'from A at t1' }));
      const config = await clientB.pushBlob('nginx/app', configBytes);
      const late = await clientB.request('PUT', '/v2/nginx/app/manifests/undone', {
        headers: { 'content-type': OCI_MANIFEST, 'x-angos-source-timestamp': t1 },
        body: Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: {
              mediaType: 'application/vnd.oci.image.config.v1+json',
              digest: config,
              size: configBytes.length,
            },
            layers: [],
          }),
        ),
      });
      const text = await late.text();
      expect(late.status, text).toBe(409);
      expect(JSON.parse(text).errors[0].code).toBe('REPLICATION_SUPERSEDED');
      // Nothing was forwarded either: both peers agree the tag is gone, and it stays gone.
      await sleep(2000);
      expect(await digestOf(clientA, 'nginx/app', 'undone')).toBeNull();
      expect(await digestOf(clientB, 'nginx/app', 'undone')).toBeNull();
    });

    it('concurrent pushes of one tag converge on both peers to the later write', async () => {
      // A's write first, B's strictly later: whatever order replication delivers them in, the
      // later one (B's) must win on both.
      const first = await pushImage(clientA, 'nginx/app', 'race', 'from A');
      await sleep(20);
      const later = await pushImage(clientB, 'nginx/app', 'race', 'from B');
      expect(later).not.toBe(first);
      await eventually(
        'both peers on the later write',
        async () =>
          (await digestOf(clientA, 'nginx/app', 'race')) === later &&
          (await digestOf(clientB, 'nginx/app', 'race')) === later,
      );
      // Settled: nothing flips it back.
      await sleep(3000);
      expect(await digestOf(clientA, 'nginx/app', 'race')).toBe(later);
      expect(await digestOf(clientB, 'nginx/app', 'race')).toBe(later);
    });
  },
);

describe('replication: X-Angos-Source-Timestamp is honoured for identities allowed to replicate only', () => {
  let angos: AngosInstance;
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });
  const replicator = () => new OciClient(angos.url, basic('admin', 'admin-secret'));
  const alice = () => new OciClient(angos.url, basic('alice', 'alice-secret'));

  beforeAll(async () => {
    angos = await startAngos({
      mode: 'split', // the gateway decides, registry-api applies: across the signed hop
      config: [
        `[auth.identity.admin]\nusername = "admin"\npassword = "${ADMIN_HASH}"`,
        `[auth.identity.alice]\nusername = "alice"\npassword = "${ALICE_HASH}"`,
        '[global.access_policy]',
        'default = "deny"',
        'rules = [',
        '  "has(identity.username) && request.action != \'replicate\'",',
        '  "has(identity.username) && identity.username == \'admin\'",',
        ']',
      ].join('\n'),
    });
  });

  afterAll(async () => {
    await angos?.stop();
  });

  /** Pushes `label`'s image to team/app:`tag` as `client`, with the header when `at` is given. */
  async function push(client: OciClient, tag: string, label: string, at?: string) {
    const config = Buffer.from(JSON.stringify({ label }));
    const configDigest = await client.pushBlob('team/app', config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: config.length,
      },
      layers: [],
    });
    const response = await client.request('PUT', `/v2/team/app/manifests/${tag}`, {
      headers: {
        'content-type': OCI_MANIFEST,
        ...(at === undefined ? {} : { 'x-angos-source-timestamp': at }),
      },
      body: Buffer.from(manifest),
    });
    const text = await response.text();
    return { status: response.status, text };
  }

  it('an ordinary pusher cannot backdate a tag: its header is ignored', async () => {
    // Honoured, alice's write would be dated 2000 and the replicator's 2020 write would win.
    expect((await push(alice(), 'backdated', 'alice', '2000-01-01T00:00:00.000Z')).status).toBe(201);
    const late = await push(replicator(), 'backdated', 'replicator', '2020-01-01T00:00:00.000Z');
    expect(late.status, late.text).toBe(409);
    expect(JSON.parse(late.text).errors[0].code).toBe('REPLICATION_SUPERSEDED');
  });

  it('the replicator timestamp decides: an older replicated write loses, a newer one wins', async () => {
    expect((await push(replicator(), 'dated', 'one', '2020-01-01T00:00:00.000Z')).status).toBe(201);
    const older = await push(replicator(), 'dated', 'two', '2019-01-01T00:00:00.000Z');
    expect(older.status, older.text).toBe(409);
    expect((await push(replicator(), 'dated', 'three', '2021-01-01T00:00:00.000Z')).status).toBe(201);
    // An ordinary push is dated now and always moves the tag.
    expect((await push(alice(), 'dated', 'four')).status).toBe(201);
  });

  it('a malformed timestamp means no last-writer-wins', async () => {
    expect((await push(replicator(), 'loose', 'one', '2030-01-01T00:00:00.000Z')).status).toBe(201);
    expect((await push(replicator(), 'loose', 'two', 'yesterday')).status).toBe(201);
  });
});

describe('replication: a ring A → B → C → A has no loop', () => {
  const instances: AngosInstance[] = [];

  beforeAll(async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const names = ['a', 'b', 'c'];
    instances.push(
      ...(await Promise.all(
        ports.map((port, i) => {
          const next = (i + 1) % ports.length;
          return startAngos({
            mode: 'server',
            port,
            config: peerConfig([{ name: names[next] as string, url: `http://127.0.0.1:${ports[next]}` }]),
          });
        }),
      )),
    );
  }, 90_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
  });

  /** `angos_replication_push_total` series of one instance, as `downstream/outcome value`. */
  async function pushCounts(instance: AngosInstance): Promise<string[]> {
    const metrics = await (await fetch(`${instance.url}/metrics`)).text();
    return [
      ...metrics.matchAll(/^angos_replication_push_total\{downstream="(\w+)",outcome="(\w+)"\} (\d+)/gm),
    ].map((match) => `${match[1]}/${match[2]} ${match[3]}`);
  }

  it('each change crosses each edge once, and the edge back to its origin as one no-op', async () => {
    const [a, b, c] = instances as [AngosInstance, AngosInstance, AngosInstance];
    const digest = await pushImage(new OciClient(a.url), 'nginx/ring', 'v1', 'ring');
    await eventually('C answered back to A', async () => (await pushCounts(c)).length > 0);
    expect(await digestOf(new OciClient(b.url), 'nginx/ring', 'v1')).toBe(digest);
    expect(await digestOf(new OciClient(c.url), 'nginx/ring', 'v1')).toBe(digest);
    // Give a loop, if there were one, time to go round again.
    await sleep(3000);
    expect(await pushCounts(a)).toEqual(['b/pushed 1']);
    expect(await pushCounts(b)).toEqual(['c/pushed 1']);
    expect(await pushCounts(c)).toEqual(['a/converged 1']);
  });
});
