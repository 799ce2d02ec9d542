/**
 * The crash loop: push images (monolithic and chunked uploads, then manifests by tag) while the
 * registry is SIGKILLed at random moments; after each restart, check that every tag the registry
 * acknowledged with 201 still returns the same manifest and every blob it references hashes to its
 * digest, and that no interrupted upload left a partial blob readable.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry, freePort, random } from '@angos/test-support';

export interface CrashLoopOptions {
  /** How many times the registry is killed. */
  readonly kills: number;
  /** Seed of the kill timing and content sizes, so a failure replays. */
  readonly seed: number;
  /** Concurrent pushers. */
  readonly workers?: number;
  /** Extra TOML for the registry (storage section); default fs with sync_to_disk = true in a temp dir. */
  readonly storageToml?: (rootDir: string) => string;
  readonly log?: (line: string) => void;
  /** Keep the temp dir (config and fs storage) when the run fails (default true; the suite says false). */
  readonly keepOnFailure?: boolean;
  /**
   * The delete-heavy mix: pushers share base layers in one namespace (skipping the upload when a
   * HEAD finds the layer, as real clients do) while a retention-style deleter removes all but the
   * newest images, and garbage collection runs every second with a one-second grace period.
   */
  readonly deletes?: boolean;
  /** `angos server --workers`: serving threads of the registry killed (default 1). */
  readonly serverWorkers?: number;
}

export interface CrashLoopReport {
  kills: number;
  acknowledged: number;
  checked: number;
  lost: string[];
  partialReadable: string[];
  /** Requests the restarted registry did not answer within 30 s. */
  hung: string[];
  /** Delete-heavy mix: manifests deleted, and pushes refused (4xx) because a shared layer was reclaimed. */
  deleted: number;
  refused: number;
}

interface Acknowledged {
  namespace: string;
  tag: string;
  digest: string;
  blobs: string[];
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function send(
  base: string,
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string | number> = {},
  { fresh = false }: { fresh?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // What arrived before a timeout, so a hang report tells a stalled body from a missing answer.
    let received = 'nothing';
    let bodyBytes = 0;
    const req = request(
      `${base}${path}`,
      {
        method,
        headers: { ...headers, ...(body ? { 'Content-Length': body.length } : {}) },
        ...(fresh ? { agent: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        received = `${res.statusCode} with Content-Length ${res.headers['content-length']}, body so far`;
        res.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          bodyBytes += chunk.length;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () =>
      req.destroy(
        new Error(
          `no answer in 30 s: ${method} ${path}: received ${received}${received === 'nothing' ? '' : ` ${bodyBytes} bytes`}`,
        ),
      ),
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * A GET that follows one 307 to storage (S3 presigned URLs, `enable_*_redirect`): the registry's
 * own headers (Docker-Content-Digest), the storage's status and bytes.
 */
async function getFollowing(
  base: string,
  path: string,
  headers: Record<string, string | number> = {},
): Promise<Reply> {
  const first = await send(base, 'GET', path, undefined, headers);
  const target = first.headers.location;
  if (first.status !== 307 || typeof target !== 'string') return first;
  const stored = await send('', 'GET', new URL(target, base).href);
  return { status: stored.status, headers: { ...stored.headers, ...first.headers }, body: stored.body };
}

function location(reply: Reply): string {
  const value = String(reply.headers.location);
  return value.startsWith('http') ? new URL(value).pathname + new URL(value).search : value;
}

function withDigest(path: string, digest: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}digest=${digest}`;
}

/** A push the registry answered with a 4xx: not acknowledged, and the registry is alive. */
class Refused extends Error {}

class Pusher {
  readonly acknowledged: Acknowledged[] = [];
  /** Layers whose upload was started but never acknowledged: they must not be readable unless complete. */
  readonly interrupted = new Map<string, string>();
  #counter = 0;

  constructor(
    private readonly id: number,
    private readonly next: () => number,
    /** Base layers shared by every pusher (delete-heavy mix), each pushed only when a HEAD misses it. */
    private readonly sharedLayers?: readonly Buffer[],
  ) {}

  async pushImage(base: string): Promise<void> {
    const namespace = this.sharedLayers ? 'crash/shared' : `crash/w${this.id}`;
    const tag = `w${this.id}t${this.#counter++}`;
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: randomBytes(8).toString('hex') }),
    );
    const layer = randomBytes(1024 + Math.floor(this.next() * 2 * 1024 * 1024));
    const configDigest = sha256(config);
    const layerDigest = sha256(layer);
    this.interrupted.set(layerDigest, namespace);
    // The shared layer first, as clients check every layer before uploading: the longer the
    // window between its HEAD and the manifest PUT, the more deletes can race it.
    const shared = this.sharedLayers?.[Math.floor(this.next() * this.sharedLayers.length)];
    if (shared) await this.#pushUnlessPresent(base, namespace, shared);
    // Config: monolithic, in one POST.
    const mono = await send(base, 'POST', `/v2/${namespace}/blobs/uploads/?digest=${configDigest}`, config);
    if (mono.status !== 201) throw new Error(`monolithic upload: ${mono.status}`);
    // Layer: chunked, PATCHes with Content-Range, then PUT.
    let path = location(await send(base, 'POST', `/v2/${namespace}/blobs/uploads/`));
    const chunk = 256 * 1024;
    for (let start = 0; start < layer.length; start += chunk) {
      const end = Math.min(start + chunk, layer.length) - 1;
      const patched = await send(base, 'PATCH', path, layer.subarray(start, end + 1), {
        'Content-Range': `${start}-${end}`,
      });
      if (patched.status !== 202) throw new Error(`patch: ${patched.status}`);
      path = location(patched);
    }
    const put = await send(base, 'PUT', withDigest(path, layerDigest));
    if (put.status !== 201) throw new Error(`complete: ${put.status}`);
    const layers = [{ digest: layerDigest, size: layer.length }];
    if (shared) layers.unshift({ digest: sha256(shared), size: shared.length });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: configDigest,
          size: config.length,
        },
        layers: layers.map((entry) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...entry })),
      }),
    );
    const pushed = await send(base, 'PUT', `/v2/${namespace}/manifests/${tag}`, manifest, {
      'Content-Type': OCI_MANIFEST,
    });
    this.interrupted.delete(layerDigest);
    // A shared layer reclaimed between the HEAD and the PUT: the registry must refuse, never accept.
    if (pushed.status >= 400 && pushed.status < 500) throw new Refused(`manifest: ${pushed.status}`);
    if (pushed.status !== 201) throw new Error(`manifest: ${pushed.status}`);
    // Only a 201 is an acknowledgement: from here on, the image must survive anything.
    this.acknowledged.push({
      namespace,
      tag,
      digest: sha256(manifest),
      blobs: [configDigest, ...layers.map((entry) => entry.digest)],
    });
  }

  /** What docker, podman and skopeo do: HEAD the layer, upload it only when the registry lacks it. */
  async #pushUnlessPresent(base: string, namespace: string, layer: Buffer): Promise<void> {
    const digest = sha256(layer);
    if ((await send(base, 'HEAD', `/v2/${namespace}/blobs/${digest}`)).status === 200) return;
    const put = await send(base, 'POST', `/v2/${namespace}/blobs/uploads/?digest=${digest}`, layer);
    if (put.status !== 201) throw new Error(`shared layer upload: ${put.status}`);
  }
}

/**
 * Retention-style deletes: keeps the newest `keep` images of the shared namespace and deletes
 * the older ones by digest, oldest first. Each image is checked just before its delete, since
 * an image broken while it exists would otherwise leave the expected set unnoticed. An image
 * leaves that set when its DELETE is sent: a kill may land before or after the registry acts on it.
 */
async function deleteOldImages(
  base: string,
  pushers: readonly Pusher[],
  report: CrashLoopReport,
  keep: number,
): Promise<void> {
  const all = pushers.flatMap((pusher) => pusher.acknowledged.map((image) => ({ pusher, image })));
  for (const { pusher, image } of all.slice(0, Math.max(0, all.length - keep))) {
    report.checked++;
    await verifyImage(base, image, report);
    pusher.acknowledged.splice(pusher.acknowledged.indexOf(image), 1);
    report.deleted++;
    await send(base, 'DELETE', `/v2/${image.namespace}/manifests/${image.digest}`);
  }
}

async function startRegistry(configPath: string, port: number, serverWorkers: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      cliEntry(),
      '-c',
      configPath,
      'server',
      '--listen',
      `127.0.0.1:${port}`,
      '--workers',
      String(serverWorkers),
    ],
    {
      stdio: 'ignore',
      env: { ...process.env, RUST_LOG: 'error' },
    },
  );
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error('registry exited during startup');
    try {
      if ((await send(`http://127.0.0.1:${port}`, 'GET', '/v2/')).status === 200) return child;
    } catch {
      // not yet listening
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error('registry not ready after 20 s');
}

/**
 * Checks the images acknowledged from index `from` of each pusher on (all of them with 0), and
 * every interrupted upload. A request that gets no answer is reported in `hung`, and the check
 * goes on with the next one.
 */
async function verify(
  base: string,
  pushers: readonly Pusher[],
  from: readonly number[],
  report: CrashLoopReport,
): Promise<void> {
  for (const [index, pusher] of pushers.entries()) {
    for (const image of pusher.acknowledged.slice(from[index] ?? 0)) {
      report.checked++;
      await reportingHangs(base, report, `acknowledged ${image.namespace}:${image.tag}`, '/v2/', () =>
        verifyImage(base, image, report),
      );
    }
    for (const [digest, namespace] of pusher.interrupted) {
      const path = `/v2/${namespace}/blobs/${digest}`;
      await reportingHangs(base, report, `interrupted ${namespace}@${digest}`, path, async () => {
        const got = await getFollowing(base, path);
        if (got.status === 200 && sha256(got.body) !== digest)
          report.partialReadable.push(`${namespace}@${digest}`);
      });
    }
  }
}

async function reportingHangs(
  base: string,
  report: CrashLoopReport,
  what: string,
  path: string,
  check: () => Promise<void>,
) {
  const startedAt = Date.now();
  try {
    await check();
  } catch (error) {
    // Tells a stuck server from a stuck connection: the same request again, on a new connection.
    const again = await send(base, 'GET', path, undefined, {}, { fresh: true }).then(
      (reply) => `${reply.status}`,
      (retryError: unknown) => String(retryError),
    );
    report.hung.push(
      `${what}: ${String(error)} (after ${Date.now() - startedAt} ms; again on a new connection: ${again})`,
    );
  }
}

async function verifyImage(base: string, image: Acknowledged, report: CrashLoopReport): Promise<void> {
  const where = `${image.namespace}:${image.tag}`;
  const manifest = await getFollowing(base, `/v2/${image.namespace}/manifests/${image.tag}`, {
    Accept: OCI_MANIFEST,
  });
  if (
    manifest.status !== 200 ||
    manifest.headers['docker-content-digest'] !== image.digest ||
    sha256(manifest.body) !== image.digest
  ) {
    report.lost.push(`${where} manifest: ${manifest.status}`);
    return;
  }
  for (const blob of image.blobs) {
    const got = await getFollowing(base, `/v2/${image.namespace}/blobs/${blob}`);
    if (got.status !== 200 || sha256(got.body) !== blob)
      report.lost.push(`${where} blob ${blob}: ${got.status}`);
  }
}

export async function crashLoop(options: CrashLoopOptions): Promise<CrashLoopReport> {
  const log = options.log ?? (() => undefined);
  const next = random(options.seed);
  const dir = await mkdtemp(join(tmpdir(), 'angos-crashloop-'));
  const rootDir = join(dir, 'data');
  const configPath = join(dir, 'config.toml');
  const storage =
    options.storageToml?.(rootDir) ?? `[blob_store.fs]\nroot_dir = "${rootDir}"\nsync_to_disk = true\n`;
  // The delete-heavy mix collects garbage as eagerly as the protocol allows. With a 1 s grace
  // period a slow push can outlive its own uploads' grants: it must then be refused, not accepted
  // as a push of missing references (which the default allows, by design).
  const gc = options.deletes
    ? '[gc]\ngrace_period_secs = 1\ninterval_secs = 1\n[global]\nallow_missing_manifest_references = false\n'
    : '';
  await writeFile(
    configPath,
    `[server]\nbind_address = "127.0.0.1"\n${gc}[global.access_policy]\ndefault = "allow"\n${storage}`,
  );
  const sharedLayers = options.deletes
    ? Array.from({ length: 2 }, () => randomBytes(1024 + Math.floor(next() * 256 * 1024)))
    : undefined;
  const pushers = Array.from({ length: options.workers ?? 4 }, (_, i) => new Pusher(i, next, sharedLayers));
  const report: CrashLoopReport = {
    kills: 0,
    acknowledged: 0,
    checked: 0,
    lost: [],
    partialReadable: [],
    hung: [],
    deleted: 0,
    refused: 0,
  };
  // Each restart checks what was acknowledged since the previous one; the last checks everything.
  let checkedUpTo = pushers.map(() => 0);
  let registry: ChildProcess | undefined;
  try {
    for (let round = 0; round < options.kills; round++) {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      registry = await startRegistry(configPath, port, options.serverWorkers ?? 1);
      await verify(base, pushers, checkedUpTo, report);
      checkedUpTo = pushers.map((pusher) => pusher.acknowledged.length);
      let running = true;
      const workers = pushers.map(async (pusher) => {
        while (running) {
          try {
            await pusher.pushImage(base);
          } catch (error) {
            if (error instanceof Refused) {
              report.refused++;
              continue;
            }
            // The registry died under us: expected; that image was not acknowledged.
            return;
          }
        }
      });
      if (options.deletes) {
        workers.push(
          (async () => {
            while (running) {
              await deleteOldImages(base, pushers, report, 1).catch(() => undefined);
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          })(),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200 + next() * 1800));
      registry.kill('SIGKILL');
      running = false;
      await Promise.all(workers);
      await new Promise<void>((resolve) =>
        registry!.exitCode !== null || registry!.signalCode !== null
          ? resolve()
          : registry!.once('exit', () => resolve()),
      );
      report.kills++;
      log(
        `kill ${report.kills}: ${pushers.reduce((n, p) => n + p.acknowledged.length, 0)} acknowledged so far`,
      );
    }
    const port = await freePort();
    registry = await startRegistry(configPath, port, options.serverWorkers ?? 1);
    // Give garbage collection time to reclaim all it may (grace 1 s, a pass every second).
    if (options.deletes) await new Promise((resolve) => setTimeout(resolve, 3500));
    await verify(
      `http://127.0.0.1:${port}`,
      pushers,
      pushers.map(() => 0),
      report,
    );
    report.acknowledged = pushers.reduce((n, p) => n + p.acknowledged.length, 0);
    return report;
  } finally {
    registry?.kill('SIGKILL');
    const failed = report.lost.length + report.partialReadable.length + report.hung.length > 0;
    // A failing run keeps its storage for inspection (unless asked not to).
    if (failed && options.keepOnFailure !== false) log(`storage kept for inspection: ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}
