/**
 * Several `angos server` processes on shared storage behave as one registry: fs + the Redis lock,
 * and S3 (Ceph RGW) + the S3 lock. Every instance takes writes at the same time; afterwards every
 * instance agrees on every tag, everything acknowledged is readable, nothing dangles in storage,
 * and the locks of an instance killed mid-request are recovered after their TTL.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import {
  cliEntry,
  freePort,
  OciClient,
  type S3Endpoint,
  sha256,
  skipWithout,
  skipWithoutS3,
  startRedisServer,
  startS3TestServer,
} from '@angos/test-support';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// --- processes ---------------------------------------------------------------------------------

const spawned = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of spawned) child.kill('SIGKILL');
});

function track(child: ChildProcess): ChildProcess {
  spawned.add(child);
  child.once('exit', () => spawned.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

interface Instance {
  readonly name: string;
  readonly url: string;
  readonly client: OciClient;
  readonly child: ChildProcess;
  logs(): string;
}

/** `angos server` on a port of its own; `workers` serving threads (all of them listening before it returns). */
async function startInstance(name: string, configPath: string, workers = 1): Promise<Instance> {
  const port = await freePort();
  const args = ['-c', configPath, 'server', '--listen', `127.0.0.1:${port}`, '--workers', String(workers)];
  const child = track(
    spawn(process.execPath, [cliEntry(), ...args], {
      env: { ...process.env, RUST_LOG: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-50_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`instance ${name} exited at startup:\n${output}`);
    if (Date.now() > deadline) throw new Error(`instance ${name} did not answer:\n${output}`);
    const status = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.arrayBuffer().then(() => r.status))
      .catch(() => undefined);
    const allListening = workers === 1 || output.includes('"serving threads started"');
    if (status !== undefined && status < 500 && allListening) break;
    await sleep(100);
  }
  return { name, url, client: new OciClient(url), child, logs: () => output };
}

// --- shared storage as a list of keys ------------------------------------------------------------

/** The registry's storage seen as keys (`_blobs/…`, `<ns>/_manifests/…`), blob and metadata together. */
interface StorageView {
  keys(): Promise<string[]>;
  read(key: string): Promise<string>;
}

function fsView(root: string): StorageView {
  return {
    async keys() {
      const entries = await readdir(root, { recursive: true, withFileTypes: true });
      return entries.filter((e) => e.isFile()).map((e) => relative(root, join(e.parentPath, e.name)));
    },
    read: (key) => readFile(join(root, key), 'utf8'),
  };
}

async function s3Request(s3: S3Endpoint, path: string): Promise<string> {
  const { stdout } = await execFileAsync('curl', [
    '-sS',
    '--fail',
    '--max-time',
    '10',
    '--aws-sigv4',
    `aws:amz:${s3.region}:s3`,
    '--user',
    `${s3.accessKeyId}:${s3.secretAccessKey}`,
    '-H',
    'x-amz-content-sha256: UNSIGNED-PAYLOAD',
    `${s3.endpoint}/${s3.bucket}/${path}`,
  ]);
  return stdout;
}

/** Keys under the blob and metadata prefixes of one bucket, without their prefixes. */
function s3View(s3: S3Endpoint, prefixes: readonly string[]): StorageView {
  return {
    async keys() {
      const keys: string[] = [];
      for (const prefix of prefixes) {
        let token: string | undefined;
        do {
          const query = `?list-type=2&max-keys=1000&prefix=${encodeURIComponent(`${prefix}/`)}${
            token ? `&continuation-token=${encodeURIComponent(token)}` : ''
          }`;
          const xml = await s3Request(s3, query);
          for (const [, key] of xml.matchAll(/<Key>([^<]+)<\/Key>/g))
            keys.push(key!.slice(prefix.length + 1));
          token = /<IsTruncated>true<\/IsTruncated>/.test(xml)
            ? /<NextContinuationToken>([^<]+)</.exec(xml)?.[1]
            : undefined;
        } while (token);
      }
      return keys;
    },
    async read(key) {
      for (const prefix of prefixes) {
        try {
          return await s3Request(s3, `${prefix}/${key}`);
        } catch {
          // not under this prefix
        }
      }
      throw new Error(`no object ${key}`);
    },
  };
}

/**
 * What must hold in storage once every request has been answered: every tag names a stored
 * revision, every revision and layer grant names stored bytes, every stored blob is in the blob
 * index and every index entry names stored bytes, no upload session and no lock is left.
 */
async function danglingProblems(storage: StorageView): Promise<string[]> {
  const keys = await storage.keys();
  const present = new Set(keys);
  // Blobs and index entries by hex, whatever the directory layout (flat or fanned out).
  const stored = new Set<string>();
  const indexed = new Map<string, string>();
  for (const key of keys) {
    const blob = /^_blobs\/sha256\/(?:[0-9a-f]{2}\/)?([0-9a-f]{64})$/.exec(key);
    if (blob) stored.add(blob[1]!);
    const entry = /^_blob_index\/sha256\/(?:[0-9a-f]{2}\/)?([0-9a-f]{64})$/.exec(key);
    if (entry) indexed.set(entry[1]!, key);
  }
  const problems: string[] = [];
  for (const key of keys) {
    const tag = /^(.+)\/_manifests\/tags\/[^/]+\/link$/.exec(key);
    if (tag) {
      const digest = (JSON.parse(await storage.read(key)) as { digest: string }).digest;
      const revision = `${tag[1]}/_manifests/revisions/${digest.replace(':', '/')}/link`;
      if (!present.has(revision)) problems.push(`${key} -> missing ${revision}`);
    }
    const linked = /^.+\/_(?:manifests\/revisions|layers)\/sha256\/([0-9a-f]{64})\/link$/.exec(key);
    if (linked && !stored.has(linked[1]!)) problems.push(`${key} -> missing bytes`);
    if (/\/_uploads\//.test(key)) problems.push(`upload left: ${key}`);
    if (key.startsWith('_locks/')) problems.push(`lock left: ${key}`);
  }
  for (const hex of stored) if (!indexed.has(hex)) problems.push(`blob ${hex} not in the blob index`);
  for (const [hex, key] of indexed) {
    // An entry whose holders are all gone waits for garbage collection; it still has its bytes.
    if (!stored.has(hex)) problems.push(`${key} -> missing bytes`);
  }
  return problems;
}

/** One garbage-collection pass over the cluster's storage, as the scrub CronJob runs it. */
async function collectGarbage(configPath: string): Promise<void> {
  await execFileAsync(process.execPath, [cliEntry(), '-c', configPath, 'scrub', '--blobs'], {
    timeout: 60_000,
    env: { ...process.env, RUST_LOG: 'warn' },
  });
}

// --- images --------------------------------------------------------------------------------------

interface Image {
  readonly manifest: string;
  readonly digest: string;
  readonly blobs: ReadonlyMap<string, Buffer>;
}

function makeImage(sharedLayers: readonly Buffer[] = []): Image {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }),
  );
  const layers = [...sharedLayers, randomBytes(2048)];
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(config),
      size: config.length,
    },
    layers: layers.map((layer) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: sha256(layer),
      size: layer.length,
    })),
  });
  const blobs = new Map([config, ...layers].map((data) => [sha256(data), data]));
  return { manifest, digest: sha256(manifest), blobs };
}

async function push(client: OciClient, repo: string, reference: string, image: Image): Promise<void> {
  for (const data of image.blobs.values()) await client.pushBlob(repo, data);
  const pushed = await client.pushManifest(
    repo,
    reference,
    image.manifest,
    'application/vnd.oci.image.manifest.v1+json',
  );
  if (pushed.status !== 201)
    throw new Error(`push ${repo}:${reference}: HTTP ${pushed.status} ${pushed.text}`);
  expect(pushed.digest).toBe(image.digest);
}

async function expectReadable(client: OciClient, repo: string, image: Image): Promise<void> {
  const manifest = await client.getManifest(repo, image.digest);
  expect(manifest.status, `${client.baseUrl} ${repo}@${image.digest}`).toBe(200);
  expect(manifest.body.toString()).toBe(image.manifest);
  for (const [digest, data] of image.blobs) {
    const fetched = await client.getBlob(repo, digest);
    expect(fetched.status, `${client.baseUrl} ${repo} blob ${digest}`).toBe(200);
    expect(fetched.body.equals(data)).toBe(true);
  }
}

/** The digest of what a tag names, from the bytes (an S3 redirect answers without Docker-Content-Digest). */
async function tagDigest(client: OciClient, repo: string, tag: string): Promise<string | null> {
  const fetched = await client.getManifest(repo, tag);
  return fetched.status === 200 ? sha256(fetched.body) : null;
}

async function metricsText(instance: Instance): Promise<string> {
  const response = await fetch(`${instance.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return response.text();
}

// --- the scenarios, for each shared backend -------------------------------------------------------

interface Cluster {
  readonly instances: Instance[];
  /** The configuration every instance runs (and `scrub --blobs` reads). */
  readonly configPath: string;
  readonly storage: StorageView;
  /** The lock backend's name on /metrics. */
  readonly lockBackend: 'redis' | 's3' | 'memory';
  /** Locks still present in the lock backend. */
  lockLeftovers(): Promise<string[]>;
}

function describeCluster(
  name: string,
  skip: boolean,
  setup: () => Promise<{ cluster: Cluster; teardown(): Promise<void> }>,
  /** Whether an instance can be killed alone (not a serving thread: the process is the unit). */
  options: { readonly killable: boolean } = { killable: true },
) {
  describe.skipIf(skip)(name, () => {
    let cluster: Cluster;
    let teardown: (() => Promise<void>) | undefined;
    const instances = () => cluster.instances;

    beforeAll(async () => {
      ({ cluster, teardown } = await setup());
    }, 120_000);
    afterAll(async () => {
      await teardown?.();
    }, 60_000);
    beforeEach(({ onTestFailed }) => {
      onTestFailed(() => {
        for (const instance of cluster?.instances ?? []) {
          console.error(`--- ${instance.name} (last 8000 characters)\n${instance.logs().slice(-8000)}`);
        }
      });
    });

    it('takes concurrent pushes of one tag from every instance, and all agree on the winner', async () => {
      const base = randomBytes(4096); // the same layer uploaded by every instance at once
      const pushed: Image[] = [];
      for (let round = 0; round < 3; round++) {
        const images = instances().map(() => makeImage([base]));
        pushed.push(...images);
        await Promise.all(
          images.map((image, i) => push(instances()[i]!.client, 'race/app', 'latest', image)),
        );
      }
      const seen = await Promise.all(
        instances().map((instance) => tagDigest(instance.client, 'race/app', 'latest')),
      );
      expect(new Set(seen).size).toBe(1);
      expect(pushed.map((image) => image.digest)).toContain(seen[0]);
      for (const instance of instances()) {
        for (const image of pushed) await expectReadable(instance.client, 'race/app', image);
      }
    });

    it('lets exactly one of concurrent pushes to a new immutable tag win, on every instance', async () => {
      for (let round = 0; round < 4; round++) {
        const tag = `v${round}`;
        const images = instances().map(() => makeImage());
        for (const [i, image] of images.entries()) {
          for (const data of image.blobs.values()) await instances()[i]!.client.pushBlob('frozen/app', data);
        }
        const results = await Promise.all(
          images.map((image, i) =>
            instances()[i]!.client.pushManifest(
              'frozen/app',
              tag,
              image.manifest,
              'application/vnd.oci.image.manifest.v1+json',
            ),
          ),
        );
        const winners = results.filter((result) => result.status === 201);
        expect(winners, JSON.stringify(results.map((r) => [r.status, r.text]))).toHaveLength(1);
        for (const result of results) {
          if (result.status !== 201) expect(result.status).toBe(409); // TAG_IMMUTABLE
        }
        for (const instance of instances()) {
          expect(await tagDigest(instance.client, 'frozen/app', tag)).toBe(winners[0]!.digest);
        }
      }
    });

    it('takes many tags from every instance at once, and every instance lists them all', async () => {
      const tags = new Map<string, Image>();
      await Promise.all(
        instances().map(async (instance, i) => {
          await Promise.all(
            Array.from({ length: 8 }, async (_, j) => {
              const image = makeImage();
              tags.set(`t-${i}-${j}`, image);
              await push(instance.client, 'many/app', `t-${i}-${j}`, image);
            }),
          );
        }),
      );
      const expected = [...tags.keys()].sort();
      for (const instance of instances()) {
        expect((await instance.client.tags('many/app')).tags).toEqual(expected);
        for (const [tag, image] of tags)
          expect(await tagDigest(instance.client, 'many/app', tag)).toBe(image.digest);
      }
    });

    it('takes 48 manifests sharing layers from 12 clients at once, refusing none, and all agree', async () => {
      const shared = Array.from({ length: 3 }, () => randomBytes(4096));
      const clients = Array.from({ length: 12 }, (_, i) => instances()[i % instances().length]!.client);
      const pushed = new Map<string, Image>();
      await Promise.all(
        clients.map(async (client, i) => {
          for (let j = 0; j < 4; j++) {
            const image = makeImage([shared[(i + j) % shared.length]!, shared[(i + j + 1) % shared.length]!]);
            pushed.set(`c${i}-m${j}`, image);
            await push(client, 'fanin/app', `c${i}-m${j}`, image);
          }
        }),
      );
      expect(pushed.size).toBe(48);
      const expected = [...pushed.keys()].sort();
      for (const instance of instances()) {
        expect((await instance.client.tags('fanin/app')).tags).toEqual(expected);
        for (const [tag, image] of pushed)
          expect(await tagDigest(instance.client, 'fanin/app', tag)).toBe(image.digest);
      }
      for (const image of [...pushed.values()].slice(0, 4))
        await expectReadable(instances()[0]!.client, 'fanin/app', image);
    });

    it('shares a layer across namespaces under concurrent pushes and deletes, and reclaims it with the last', async () => {
      const shared = randomBytes(8192);
      const layer = sha256(shared);
      const namespaces = Array.from({ length: 6 }, (_, i) => `layers/ns${i}`);
      const images = namespaces.map(() => makeImage([shared]));
      await Promise.all(
        namespaces.map((ns, i) => push(instances()[i % instances().length]!.client, ns, 'v1', images[i]!)),
      );
      // Half the namespaces drop their image while more namespaces push the same layer.
      const later = Array.from({ length: 3 }, (_, i) => `layers/late${i}`);
      const laterImages = later.map(() => makeImage([shared]));
      const statuses = await Promise.all([
        ...namespaces
          .slice(0, 3)
          .map((ns, i) =>
            instances()[(i + 1) % instances().length]!.client.deleteManifest(ns, images[i]!.digest),
          ),
        ...later.map((ns, i) =>
          push(instances()[i % instances().length]!.client, ns, 'v1', laterImages[i]!).then(() => 201),
        ),
      ]);
      expect(statuses.slice(0, 3)).toEqual([202, 202, 202]);
      for (const instance of instances()) {
        for (const [i, ns] of namespaces.entries()) {
          if (i < 3) expect((await instance.client.getManifest(ns, images[i]!.digest)).status).toBe(404);
          else await expectReadable(instance.client, ns, images[i]!);
        }
        for (const [i, ns] of later.entries()) await expectReadable(instance.client, ns, laterImages[i]!);
      }
      // The last manifests go, from every instance at once: the layer's bytes go with them.
      const rest = [
        ...namespaces.slice(3).map((ns, i) => [ns, images[i + 3]!] as const),
        ...later.map((ns, i) => [ns, laterImages[i]!] as const),
      ];
      const deleted = await Promise.all(
        rest.map(([ns, image], i) =>
          instances()[i % instances().length]!.client.deleteManifest(ns, image.digest),
        ),
      );
      expect(deleted.every((status) => status === 202)).toBe(true);
      // Deletes reclaim nothing themselves: the layer stays until garbage collection runs.
      for (const [ns] of rest) expect(await instances()[0]!.client.headBlob(ns, layer)).toBe(200);
      // One pass revokes the orphaned grants, the next reclaims the bytes no one holds any more.
      await collectGarbage(cluster.configPath);
      await collectGarbage(cluster.configPath);
      for (const instance of instances()) {
        for (const [ns] of rest) expect(await instance.client.headBlob(ns, layer)).toBe(404);
      }
      const keys = await cluster.storage.keys();
      expect(keys.filter((key) => key.includes(layer.slice(7)))).toEqual([]);
    });

    it('keeps every instance in agreement while tags are deleted and pushed at once', async () => {
      const before = Array.from({ length: 9 }, () => makeImage());
      await Promise.all(
        before.map((image, i) =>
          push(instances()[i % instances().length]!.client, 'churn/app', `t${i}`, image),
        ),
      );
      const added = Array.from({ length: 3 }, () => makeImage());
      const [a, b, c] = [instances()[0]!, instances()[1]!, instances()[2 % instances().length]!];
      await Promise.all([
        ...[0, 1, 2].map(async (i) => expect(await a.client.deleteManifest('churn/app', `t${i}`)).toBe(202)),
        ...[3, 4, 5].map(async (i) =>
          expect(await b.client.deleteManifest('churn/app', before[i]!.digest)).toBe(202),
        ),
        ...added.map((image, i) => push(c.client, 'churn/app', `t${9 + i}`, image)),
        // Moves a tag while another instance deletes the image it pointed to.
        push(b.client, 'churn/app', 't6', added[0]!),
        (async () => expect(await a.client.deleteManifest('churn/app', before[6]!.digest)).toBe(202))(),
      ]);
      const expected = ['t10', 't11', 't6', 't7', 't8', 't9'];
      for (const instance of instances()) {
        expect((await instance.client.tags('churn/app')).tags).toEqual(expected);
        expect(await tagDigest(instance.client, 'churn/app', 't6')).toBe(added[0]!.digest);
        for (const i of [0, 1, 2, 3, 4, 5])
          expect(await tagDigest(instance.client, 'churn/app', `t${i}`)).toBeNull();
        expect((await instance.client.getManifest('churn/app', before[6]!.digest)).status).toBe(404);
        await expectReadable(instance.client, 'churn/app', before[7]!);
      }
    });

    it('leaves nothing dangling in storage and no lock behind, and reports lock metrics', async () => {
      expect(await danglingProblems(cluster.storage)).toEqual([]);
      expect(await cluster.lockLeftovers()).toEqual([]);
      for (const instance of instances()) {
        const text = await metricsText(instance);
        expect(text).toMatch(
          new RegExp(
            `^lock_acquisitions_total\\{backend="${cluster.lockBackend}",result="success"\\} [1-9]`,
            'm',
          ),
        );
        expect(text).toContain('# TYPE lock_acquisition_duration_ms histogram');
      }
    });

    it.skipIf(!options.killable)(
      'holds no lock while a PATCH streams, so an instance killed mid-chunk blocks no other',
      async () => {
        const [survivor, victim] = [instances()[0]!, instances().at(-1)!];
        const start = await victim.client.request('POST', '/v2/crash/app/blobs/uploads/');
        await start.arrayBuffer();
        expect(start.status).toBe(202);
        const location = new URL(start.headers.get('location')!, victim.url);
        // A chunk that never ends.
        let sent = false;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (!sent) {
              sent = true;
              controller.enqueue(randomBytes(1024));
            }
            return new Promise(() => {});
          },
        });
        const hanging = fetch(location, {
          method: 'PATCH',
          headers: { 'content-type': 'application/octet-stream' },
          body,
          duplex: 'half',
        } as RequestInit).catch(() => undefined);
        // The session's lock guards its transitions only: once the PATCH has claimed the session,
        // no lock is held while its body streams (a lock held that long would lapse: S3 max_hold_secs).
        await sleep(200);
        const deadline = Date.now() + 10_000;
        while ((await cluster.lockLeftovers()).length > 0) {
          if (Date.now() > deadline) throw new Error('a lock is held while the PATCH body streams');
          await sleep(100);
        }
        await stopProcess(victim.child, 'SIGKILL');
        await hanging;
        cluster.instances.pop();

        // Another instance ends the session at once: no lock of the dead instance to wait for.
        const cancel = await survivor.client.request(
          'DELETE',
          new URL(location.pathname, survivor.url).toString(),
        );
        await cancel.arrayBuffer();
        expect(cancel.status).toBe(204);
        expect(await cluster.lockLeftovers()).toEqual([]);
        expect(await danglingProblems(cluster.storage)).toEqual([]);
      },
    );
  });
}

// --- fs + Redis ----------------------------------------------------------------------------------

const REDIS_TTL_SECS = 3;

/** test-support's throwaway redis-server, with redis-cli to look at the lock keys. */
async function startRedis() {
  const server = await startRedisServer();
  const cli = async (...args: string[]) =>
    (await execFileAsync('redis-cli', ['-p', String(server.port), ...args], { timeout: 5000 })).stdout.trim();
  return { ...server, cli };
}

/**
 * What every cluster's configuration starts with: open access, one repository with immutable tags,
 * and garbage collection left to the tests (`scrub --blobs`), with no grace period: the harshest
 * setting for a push that races it.
 */
const CLUSTER_CONFIG = `[server]
bind_address = "127.0.0.1"

[gc]
grace_period_secs = 0
interval_secs = 0

[global.access_policy]
default = "allow"

[repository."frozen"]
immutable_tags = true
`;

describeCluster(
  'three instances on one fs root with the Redis lock',
  skipWithout('the Redis cluster tests', 'redis-server', 'redis-cli'),
  async () => {
    const redis = await startRedis();
    const work = await mkdtemp(join(tmpdir(), 'angos-multi-fs-'));
    const root = join(work, 'data');
    const configPath = join(work, 'config.toml');
    await writeFile(
      configPath,
      `${CLUSTER_CONFIG}
[blob_store.fs]
root_dir = ${JSON.stringify(root)}

[metadata_store.fs]
root_dir = ${JSON.stringify(root)}

[metadata_store.fs.lock_strategy.redis]
url = "${redis.url}"
ttl = ${REDIS_TTL_SECS}
key_prefix = "angos-locks"
`,
    );
    const instances = await Promise.all(['a', 'b', 'c'].map((name) => startInstance(name, configPath)));
    return {
      cluster: {
        instances,
        configPath,
        storage: fsView(root),
        lockBackend: 'redis',
        lockLeftovers: async () =>
          (await redis.cli('--raw', 'KEYS', 'angos-locks:*')).split('\n').filter(Boolean),
      },
      async teardown() {
        await Promise.all(instances.map((instance) => stopProcess(instance.child)));
        await redis.stop();
        await rm(work, { recursive: true, force: true });
      },
    };
  },
);

// --- one process, three serving threads, the memory lock ---------------------------------------

describeCluster(
  'one server of three serving threads on one fs root with the memory lock',
  false,
  async () => {
    const work = await mkdtemp(join(tmpdir(), 'angos-multi-threads-'));
    const root = join(work, 'data');
    const configPath = join(work, 'config.toml');
    await writeFile(configPath, `${CLUSTER_CONFIG}\n[blob_store.fs]\nroot_dir = ${JSON.stringify(root)}\n`);
    const server = await startInstance('threads', configPath, 3);
    // Three clients of the one port: their connections spread over the threads (SO_REUSEPORT).
    const instances = ['a', 'b', 'c'].map((name) => ({ ...server, name, client: new OciClient(server.url) }));
    const storage = fsView(root);
    return {
      cluster: {
        instances,
        configPath,
        storage: {
          ...storage,
          // The instance lock's directory (pid files, the scrub hand-off socket) is not registry data.
          keys: async () => (await storage.keys()).filter((key) => !key.startsWith('.angos-instance-lock/')),
        },
        lockBackend: 'memory',
        // The lock table lives in the server's main thread: nothing to find in storage.
        lockLeftovers: async () => [],
      },
      async teardown() {
        await stopProcess(server.child);
        await rm(work, { recursive: true, force: true });
      },
    };
  },
  { killable: false },
);

// --- S3 + the S3 lock ----------------------------------------------------------------------------

const S3_TTL_SECS = 9;

describeCluster(
  'three instances on S3 (Ceph RGW) with the S3 lock',
  skipWithoutS3('the S3 cluster tests'),
  async () => {
    const s3 = await startS3TestServer();
    const work = await mkdtemp(join(tmpdir(), 'angos-multi-s3-'));
    const configPath = join(work, 'config.toml');
    const connection = (prefix: string) => `access_key_id = "${s3.accessKeyId}"
secret_key = "${s3.secretAccessKey}"
endpoint = "${s3.endpoint}"
bucket = "${s3.bucket}"
region = "${s3.region}"
key_prefix = "${prefix}"`;
    await writeFile(
      configPath,
      `${CLUSTER_CONFIG}
[blob_store.s3]
${connection('blobs')}

[metadata_store.s3]
${connection('meta')}
# Instances must see each other's tag moves at once for the agreement checks (default: 30 s).
link_cache_ttl = 0

[metadata_store.s3.lock_strategy.s3]
ttl_secs = ${S3_TTL_SECS}
max_hold_secs = 60
max_retries = 1000
operation_attempt_timeout_secs = 1
`,
    );
    const instances: Instance[] = [];
    try {
      for (const name of ['a', 'b', 'c']) instances.push(await startInstance(name, configPath));
    } catch (error) {
      await Promise.all(instances.map((instance) => stopProcess(instance.child)));
      await s3.stop();
      throw error;
    }
    const storage = s3View(s3, ['blobs', 'meta']);
    return {
      cluster: {
        instances,
        configPath,
        storage,
        lockBackend: 's3',
        lockLeftovers: async () => (await storage.keys()).filter((key) => key.startsWith('_locks/')),
      },
      async teardown() {
        await Promise.all(instances.map((instance) => stopProcess(instance.child)));
        await s3.stop();
        await rm(work, { recursive: true, force: true });
      },
    };
  },
);
