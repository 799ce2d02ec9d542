/**
 * The soak: a bounded mixed load (monolithic and chunked pushes, pulls, HEADs, tag lists, deletes,
 * and upload sessions abandoned half-way) against a real `angos server` for a fixed time, while
 * the server's open file descriptors, resident memory and upload session directories are sampled.
 * After warm-up, fds and RSS must stay within a stated bound of their warm baseline, and the
 * session directories left must be exactly the abandoned ones (plus those in flight): a finished
 * or cancelled session leaves nothing behind, and abandoned ones do not pin memory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { angosLauncher, freePort, random } from '@angos/test-support';

export interface SoakOptions {
  /** How long the load runs. */
  readonly seconds: number;
  readonly seed: number;
  /** Concurrent clients (default 4); each keeps at most one connection open. */
  readonly workers?: number;
  /** Part of the run before the baseline is taken (default a quarter, at least 3 s). */
  readonly warmupSeconds?: number;
  readonly sampleEveryMs?: number;
  /** Allowed growth of open fds over the warm baseline (default 20). */
  readonly fdSlack?: number;
  /** Allowed growth of RSS over the warm baseline, in bytes (default 64 MiB). */
  readonly rssSlackBytes?: number;
  /** Storage section; default fs in a temp dir (session dirs are only counted on fs). */
  readonly storageToml?: (rootDir: string) => string;
  readonly log?: (line: string) => void;
  /** `angos server --workers`: serving threads of the registry under load (default 1). */
  readonly serverWorkers?: number;
}

export interface SoakSample {
  readonly atMs: number;
  readonly fds: number;
  readonly rssBytes: number;
  /** Upload session directories in storage; undefined when storage is not fs. */
  readonly sessions: number | undefined;
}

export interface SoakReport {
  operations: Record<string, number>;
  /** Sessions started and never completed nor cancelled, on purpose. */
  abandoned: number;
  /** Requests answered with a 5xx or not at all. */
  errors: string[];
  samples: SoakSample[];
  baseline: SoakSample | undefined;
  peak: { fds: number; rssBytes: number };
  /** Broken bounds, each with the figure that broke it. */
  violations: string[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const NAMESPACES = 6;
const TAGS_PER_NAMESPACE = 12;
const MIB = 1024 * 1024;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

class Client {
  readonly #agent: Agent;

  constructor(
    readonly base: string,
    maxSockets: number,
  ) {
    // Keep-alive with a fixed pool: the server's fd count then reflects its own files, not ours.
    this.#agent = new Agent({ keepAlive: true, maxSockets });
  }

  send(
    method: string,
    path: string,
    body?: Buffer,
    headers: Record<string, string | number> = {},
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        path.startsWith('http') ? path : `${this.base}${path}`,
        {
          method,
          agent: this.#agent,
          headers: { ...headers, ...(body ? { 'Content-Length': body.length } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`no answer in 30 s: ${method} ${path}`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function location(reply: Reply): string {
  const value = String(reply.headers.location);
  return value.startsWith('http') ? new URL(value).pathname + new URL(value).search : value;
}

/** One client's share of the load: picks an operation at random, checks the answer is not a 5xx. */
class Worker {
  constructor(
    private readonly client: Client,
    private readonly next: () => number,
    private readonly report: SoakReport,
  ) {}

  async step(): Promise<void> {
    const roll = this.next();
    const namespace = `soak/n${Math.floor(this.next() * NAMESPACES)}`;
    const tag = `t${Math.floor(this.next() * TAGS_PER_NAMESPACE)}`;
    const operation =
      roll < 0.25
        ? 'push'
        : roll < 0.45
          ? 'pull'
          : roll < 0.55
            ? 'head'
            : roll < 0.65
              ? 'tags'
              : roll < 0.75
                ? 'delete'
                : roll < 0.85
                  ? 'cancel'
                  : 'abandon';
    this.report.operations[operation] = (this.report.operations[operation] ?? 0) + 1;
    switch (operation) {
      case 'push':
        return this.#push(namespace, tag);
      case 'pull':
        return this.#pull(namespace, tag);
      case 'head': {
        this.#check('HEAD manifest', await this.client.send('HEAD', `/v2/${namespace}/manifests/${tag}`));
        return;
      }
      case 'tags':
        this.#check('tag list', await this.client.send('GET', `/v2/${namespace}/tags/list?n=5`));
        return;
      case 'delete':
        this.#check('DELETE tag', await this.client.send('DELETE', `/v2/${namespace}/manifests/${tag}`));
        return;
      case 'cancel': {
        const path = await this.#startSession(namespace);
        await this.#patch(path, randomBytes(4096), 0);
        this.#check('DELETE upload', await this.client.send('DELETE', path));
        return;
      }
      default: {
        // Starts a session, sends a chunk, and never comes back: the session stays in storage.
        const path = await this.#startSession(namespace);
        if (this.next() < 0.5) await this.#patch(path, randomBytes(1024 + Math.floor(this.next() * 8192)), 0);
        this.report.abandoned++;
      }
    }
  }

  async #push(namespace: string, tag: string): Promise<void> {
    const config = Buffer.from(JSON.stringify({ os: 'linux', nonce: randomBytes(8).toString('hex') }));
    const layer = randomBytes(1024 + Math.floor(this.next() * 256 * 1024));
    const configDigest = sha256(config);
    const layerDigest = sha256(layer);
    this.#check(
      'monolithic upload',
      await this.client.send('POST', `/v2/${namespace}/blobs/uploads/?digest=${configDigest}`, config),
    );
    let path = await this.#startSession(namespace);
    const chunk = 64 * 1024;
    for (let start = 0; start < layer.length; start += chunk) {
      path = await this.#patch(path, layer.subarray(start, Math.min(start + chunk, layer.length)), start);
    }
    const separator = path.includes('?') ? '&' : '?';
    this.#check('complete upload', await this.client.send('PUT', `${path}${separator}digest=${layerDigest}`));
    const manifest = Buffer.from(
      JSON.stringify({
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
      }),
    );
    this.#check(
      'PUT manifest',
      await this.client.send('PUT', `/v2/${namespace}/manifests/${tag}`, manifest, {
        'Content-Type': OCI_MANIFEST,
      }),
    );
  }

  async #pull(namespace: string, tag: string): Promise<void> {
    const manifest = await this.#getFollowing(`/v2/${namespace}/manifests/${tag}`, { Accept: OCI_MANIFEST });
    this.#check('GET manifest', manifest);
    if (manifest.status !== 200) return;
    const { layers } = JSON.parse(manifest.body.toString('utf8')) as { layers: { digest: string }[] };
    for (const { digest } of layers) {
      // A concurrent delete may have taken it (404); a 200 must carry the right bytes.
      const blob = await this.#getFollowing(`/v2/${namespace}/blobs/${digest}`);
      this.#check('GET blob', blob);
      if (blob.status === 200 && sha256(blob.body) !== digest)
        this.report.errors.push(`GET blob ${digest}: bytes do not hash to the digest`);
    }
  }

  /** Follows one 307 to storage (S3 presigned URLs), as a client pulling from S3 would. */
  async #getFollowing(path: string, headers: Record<string, string> = {}): Promise<Reply> {
    const first = await this.client.send('GET', path, undefined, headers);
    const target = first.headers.location;
    if (first.status !== 307 || typeof target !== 'string') return first;
    return this.client.send('GET', new URL(target, this.client.base).href);
  }

  async #startSession(namespace: string): Promise<string> {
    const started = await this.client.send('POST', `/v2/${namespace}/blobs/uploads/`);
    this.#check('POST upload', started);
    return location(started);
  }

  async #patch(path: string, data: Buffer, start: number): Promise<string> {
    const patched = await this.client.send('PATCH', path, data, {
      'Content-Range': `${start}-${start + data.length - 1}`,
    });
    this.#check('PATCH upload', patched);
    return location(patched);
  }

  #check(what: string, reply: Reply): void {
    if (reply.status >= 500)
      this.report.errors.push(`${what}: ${reply.status} ${reply.body.toString('utf8', 0, 200)}`);
  }
}

async function startServer(configPath: string, port: number, serverWorkers: number): Promise<ChildProcess> {
  // The shipped launcher, with the Node flags production runs with: memory is what this measures.
  const listen = ['--listen', `127.0.0.1:${port}`, '--workers', String(serverWorkers)];
  const child = spawn(angosLauncher(), ['-c', configPath, 'server', ...listen], {
    stdio: 'ignore',
  });
  const probe = new Client(`http://127.0.0.1:${port}`, 1);
  try {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error('registry exited during startup');
      try {
        if ((await probe.send('GET', '/v2/')).status === 200) return child;
      } catch {
        // not yet listening
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    probe.close();
  }
  child.kill('SIGKILL');
  throw new Error('registry not ready after 20 s');
}

/** Upload session directories under `<root>/<namespace…>/_uploads/`, found by walking the tree. */
async function countSessions(dir: string): Promise<number> {
  let entries: { name: string; isDirectory(): boolean }[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let count = 0;
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('_blob')) continue;
    const path = join(dir, entry.name);
    if (entry.name === '_uploads') count += (await readdir(path)).length;
    else if (!entry.name.startsWith('_')) count += await countSessions(path);
  }
  return count;
}

async function sample(pid: number, startedAt: number, rootDir: string | undefined): Promise<SoakSample> {
  const fds = (await readdir(`/proc/${pid}/fd`)).length;
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const rssKib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return {
    atMs: Date.now() - startedAt,
    fds,
    rssBytes: rssKib * 1024,
    sessions: rootDir === undefined ? undefined : await countSessions(rootDir),
  };
}

export async function soak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const workers = options.workers ?? 4;
  const warmupMs = (options.warmupSeconds ?? Math.max(3, options.seconds / 4)) * 1000;
  const fdSlack = options.fdSlack ?? 20;
  const rssSlack = options.rssSlackBytes ?? 64 * MIB;
  const next = random(options.seed);
  const dir = await mkdtemp(join(tmpdir(), 'angos-soak-'));
  const rootDir = join(dir, 'data');
  const configPath = join(dir, 'config.toml');
  const storage = options.storageToml?.(rootDir) ?? `[blob_store.fs]\nroot_dir = "${rootDir}"\n`;
  await writeFile(
    configPath,
    `[server]\nbind_address = "127.0.0.1"\n[global.access_policy]\ndefault = "allow"\n${storage}`,
  );
  const report: SoakReport = {
    operations: {},
    abandoned: 0,
    errors: [],
    samples: [],
    baseline: undefined,
    peak: { fds: 0, rssBytes: 0 },
    violations: [],
  };
  const port = await freePort();
  const server = await startServer(configPath, port, options.serverWorkers ?? 1);
  const client = new Client(`http://127.0.0.1:${port}`, workers);
  const pid = server.pid!;
  const countedRoot = options.storageToml ? undefined : rootDir;
  const startedAt = Date.now();
  const endsAt = startedAt + options.seconds * 1000;
  try {
    const load = Array.from({ length: workers }, async () => {
      const worker = new Worker(client, next, report);
      while (Date.now() < endsAt && server.exitCode === null) {
        try {
          await worker.step();
        } catch (error) {
          report.errors.push(String(error));
          if (report.errors.length > 50) return;
        }
      }
    });
    const sampler = (async () => {
      while (Date.now() < endsAt && server.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, options.sampleEveryMs ?? 2000));
        const taken = await sample(pid, startedAt, countedRoot);
        report.samples.push(taken);
        log(
          `t=${(taken.atMs / 1000).toFixed(0)}s fds=${taken.fds} rss=${(taken.rssBytes / MIB).toFixed(1)}MiB sessions=${taken.sessions ?? '-'} abandoned=${report.abandoned}`,
        );
      }
    })();
    await Promise.all([...load, sampler]);
    if (server.exitCode !== null) report.violations.push(`the registry exited (${server.exitCode})`);
    // Idle connections closed, a moment for the server to notice: the final figures.
    client.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const final = await sample(pid, startedAt, countedRoot);
    report.samples.push(final);
    judge(report, warmupMs, fdSlack, rssSlack, workers);
    return report;
  } finally {
    client.close();
    server.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

/** The baseline is the first sample after warm-up; every later sample must keep within the slack. */
function judge(
  report: SoakReport,
  warmupMs: number,
  fdSlack: number,
  rssSlack: number,
  workers: number,
): void {
  for (const taken of report.samples) {
    report.peak.fds = Math.max(report.peak.fds, taken.fds);
    report.peak.rssBytes = Math.max(report.peak.rssBytes, taken.rssBytes);
  }
  const warm = report.samples.filter((taken) => taken.atMs >= warmupMs);
  const baseline = warm[0];
  report.baseline = baseline;
  if (!baseline || warm.length < 2) {
    report.violations.push(`too few samples after warm-up (${warm.length}): run longer`);
    return;
  }
  for (const taken of warm) {
    if (taken.fds > baseline.fds + fdSlack)
      report.violations.push(`t=${taken.atMs}ms: ${taken.fds} fds > baseline ${baseline.fds} + ${fdSlack}`);
    if (taken.rssBytes > baseline.rssBytes + rssSlack)
      report.violations.push(
        `t=${taken.atMs}ms: RSS ${(taken.rssBytes / MIB).toFixed(1)} MiB > baseline ${(baseline.rssBytes / MIB).toFixed(1)} MiB + ${rssSlack / MIB} MiB`,
      );
  }
  // Finished and cancelled sessions leave no directory; only the abandoned ones stay.
  const last = report.samples.at(-1)!;
  if (last.sessions !== undefined && last.sessions > report.abandoned + workers)
    report.violations.push(
      `${last.sessions} upload session dirs left > ${report.abandoned} abandoned + ${workers} in flight`,
    );
}
