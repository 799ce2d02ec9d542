import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Config, parseConfig } from '@angos/config';
import { createHttpServer } from '@angos/http';
import { JobQueue } from '@angos/jobs';
import { type LockManager, MemoryLockManager } from '@angos/lock';
import { createLogger, createMetrics, type Metrics, silentLogger } from '@angos/observability';
import { createRegistry, type Registry } from '@angos/registry';
import { type BlobStore, FsBlobStore, FsMetadataStore, type MetadataStore } from '@angos/storage';
import {
  DISTRIBUTION_USER,
  type Distribution,
  type Listening,
  listenOnFreePort,
  type MkOciOptions,
  mkOci,
  OciClient,
  OciLayout,
  pushLayout,
} from '@angos/test-support';
import { PullThroughCache } from '@angos/upstream';
import { buildPullThroughCache } from '../src/index.js';

/** The cache repository of the tests: `mirror/x` is `x` upstream. */
export const REPOSITORY = 'mirror';

/**
 * Generous on a loaded machine: a test holds an upstream body for as long as it needs (a dead
 * upstream is a closed port, refused at once, so this costs no test any time).
 */
export const TEST_TIMEOUTS = { responseMs: 60_000, idleMs: 60_000 };

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field
  json(): any;
}

/** One `[[repository."mirror".upstream]]` entry. */
export interface UpstreamEntry {
  readonly url: string;
  readonly auth?: 'none' | 'htpasswd' | 'token';
}

export function upstreamOf(
  distribution: Distribution,
  auth: 'none' | 'htpasswd' | 'token' = 'none',
): UpstreamEntry {
  return { url: distribution.url, auth };
}

export interface CacheOptions {
  readonly upstreams: readonly UpstreamEntry[];
  /** More `[repository."mirror"]` options (TOML lines). */
  readonly repositoryToml?: string;
  /** More top-level TOML. */
  readonly toml?: string;
  /** Stores and locks shared with another instance (replicas); fresh fs stores and memory locks otherwise. */
  readonly shared?: { blobs: BlobStore; metadata: MetadataStore; locks: LockManager };
}

/** Log records the engine wrote (JSON lines). */
export interface LogCapture {
  lines(): Array<{ level: string; message: string; [field: string]: unknown }>;
}

export interface TestCache {
  readonly url: string;
  readonly cache: PullThroughCache;
  readonly registry: Registry;
  readonly jobs: JobQueue;
  readonly metrics: Metrics;
  readonly config: Config;
  readonly logs: LogCapture;
  send(method: string, path: string, headers?: Record<string, string>): Promise<Reply>;
  close(): Promise<void>;
}

export function cacheToml(options: CacheOptions, rootDir: string): string {
  const lines = [
    '[server]',
    'bind_address = "127.0.0.1"',
    '[blob_store.fs]',
    `root_dir = "${rootDir}"`,
    options.toml ?? '',
    `[repository."${REPOSITORY}"]`,
    options.repositoryToml ?? '',
  ];
  for (const upstream of options.upstreams) {
    lines.push(`[[repository."${REPOSITORY}".upstream]]`, `url = "${upstream.url}"`);
    if ((upstream.auth ?? 'none') !== 'none') {
      lines.push(`username = "${DISTRIBUTION_USER.username}"`, `password = "${DISTRIBUTION_USER.password}"`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The engine and its HTTP service on 127.0.0.1, on fs storage in a temp dir (or the shared stores). */
export async function startCache(options: CacheOptions): Promise<TestCache> {
  const rootDir = await mkdtemp(join(tmpdir(), 'angos-ptc-'));
  const { config } = parseConfig(cacheToml(options, rootDir));
  const blobs = options.shared?.blobs ?? new FsBlobStore(rootDir, { syncToDisk: false });
  const metadata = options.shared?.metadata ?? new FsMetadataStore(rootDir, { syncToDisk: false });
  const locks = options.shared?.locks ?? new MemoryLockManager();
  const registry = createRegistry({ blobs, metadata, locks, config: () => config, logger: silentLogger });
  const jobs = new JobQueue({ store: metadata });
  const metrics = createMetrics({ defaultMetrics: false });
  const captured: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      captured.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line !== ''),
      );
      done();
    },
  });
  const logger = createLogger({ filter: 'info', format: 'json', destination });
  const cache = new PullThroughCache({
    registry,
    locks,
    jobs,
    config: () => config,
    logger,
    metrics,
    upstreamTimeouts: TEST_TIMEOUTS,
  });
  const handler = buildPullThroughCache({
    cache,
    config: () => config,
    logger: silentLogger,
    trust: { kind: 'in-process' },
  });
  const server: Server = createHttpServer(handler, { logger: silentLogger });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    cache,
    registry,
    jobs,
    metrics,
    config,
    logs: { lines: () => captured.map((line) => JSON.parse(line)) },
    send: (method, path, headers = {}) => send(url, method, path, headers),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cache.close();
      await rm(rootDir, { recursive: true, force: true });
    },
  };
}

/** A request; a 307 to the storage (enable_blob_redirect) is followed as clients do, and noted. */
export async function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const reply = await sendOnce(base, method, path, headers);
  const location = reply.headers.location;
  if (reply.status !== 307 || typeof location !== 'string') return reply;
  const followed = await fetch(location, { method, headers });
  const body = Buffer.from(await followed.arrayBuffer());
  return {
    status: followed.status,
    headers: { ...Object.fromEntries(followed.headers), 'x-test-redirected': 'true' },
    body,
    json: () => JSON.parse(body.toString('utf8')),
  };
}

function sendOnce(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        if (!res.complete) {
          reject(new Error(`response of ${method} ${path} cut short`));
          return;
        }
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: () => JSON.parse(body.toString('utf8')),
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

export interface SeededImage {
  readonly layout: OciLayout;
  /** The tagged manifest (or index). */
  readonly digest: string;
  /** Image manifests by platform (`linux/amd64`), with their config and layer digests. */
  readonly images: ReadonlyMap<string, { digest: string; blobs: string[] }>;
  remove(): Promise<void>;
}

interface Document {
  manifests?: { digest: string; platform?: { os: string; architecture: string } }[];
  config?: { digest: string };
  layers?: { digest: string }[];
}

/** Pushes a deterministic image (mkOci) to `repository` of a distribution, under `tag`. */
export async function seedImage(
  upstream: Distribution,
  repository: string,
  tag: string,
  platforms: readonly string[] = ['linux/amd64'],
  options: MkOciOptions = {},
): Promise<SeededImage> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-ptc-layout-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const digest = await mkOci(dir, tag, platforms, { seed: `${repository}-${tag}`, ...options });
    const layout = new OciLayout(dir);
    await pushLayout(
      new OciClient(upstream.url, upstream.pushHeaders(repository)),
      layout,
      repository,
      digest,
      tag,
    );
    const images = new Map<string, { digest: string; blobs: string[] }>();
    const top = await layout.json<Document>(digest);
    const entries = top.manifests ?? [{ digest, platform: { os: 'linux', architecture: 'amd64' } }];
    for (const entry of entries) {
      const image = await layout.json<Document>(entry.digest);
      const platform = entry.platform ? `${entry.platform.os}/${entry.platform.architecture}` : 'linux/amd64';
      images.set(platform, {
        digest: entry.digest,
        blobs: [image.config!.digest, ...(image.layers ?? []).map((layer) => layer.digest)],
      });
    }
    return { layout, digest, images, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** GET requests of the distribution's access log for `path` (e.g. `/v2/library/x/blobs/<digest>`). */
export function accessLogCount(upstream: Distribution, method: string, path: string): number {
  const needle = `"${method} ${path} `;
  return upstream
    .output()
    .split('\n')
    .filter((line) => line.includes(needle)).length;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * A proxy in front of an upstream that forwards every request, unless `intercept` answers it
 * itself (returns true). `hold` makes blob bodies stop after their first `afterBytes` bytes until
 * released: a fill then stays in progress for as long as a test needs.
 */
export interface TestProxy extends Listening {
  intercept: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Holds blob bodies (only those of `digest`, when given) after `afterBytes` bytes. With `start`,
   * such a blob's GET reaches the upstream only once `start` resolves: every client a test sends
   * meanwhile has joined the fill before its first byte.
   */
  hold(afterBytes: number, digest?: string, start?: Promise<void>): { release(): void };
}

export async function startProxy(target: string): Promise<TestProxy> {
  let held:
    | { afterBytes: number; digest: string | undefined; released: Promise<void>; start: Promise<void> }
    | undefined;
  const proxy = {
    intercept: (_req: IncomingMessage, _res: ServerResponse) => false,
  };
  const server = createServer((req, res) => {
    if (proxy.intercept(req, res)) return;
    const url = req.url ?? '';
    const hold =
      req.method === 'GET' &&
      /\/blobs\/sha256:/.test(url) &&
      (held?.digest === undefined || url.endsWith(held.digest))
        ? held
        : undefined;
    if (hold !== undefined) {
      void hold.start.then(() => forwardTo(req, res, hold));
      return;
    }
    forwardTo(req, res, hold);
  });
  const forwardTo = (req: IncomingMessage, res: ServerResponse, hold: typeof held) => {
    const forward = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (hold === undefined) {
          answer.pipe(res);
          return;
        }
        void (async () => {
          let sent = 0;
          for await (const chunk of answer) {
            const data = chunk as Buffer;
            if (sent < hold.afterBytes && sent + data.length >= hold.afterBytes) {
              const first = data.subarray(0, hold.afterBytes - sent);
              res.write(first);
              sent += first.length;
              await hold.released;
              res.write(data.subarray(first.length));
              sent += data.length - first.length;
            } else {
              res.write(data);
              sent += data.length;
            }
          }
          res.end();
        })().catch(() => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  };
  const listening = await listenOnFreePort(server);
  return Object.assign(proxy, listening, {
    hold(afterBytes: number, digest?: string, start: Promise<void> = Promise.resolve()) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      held = { afterBytes, digest, released, start };
      return {
        release: () => {
          held = undefined;
          release();
        },
      };
    },
  });
}

/** A metric's value in the Prometheus text (0 when the series is absent). */
export async function metricValue(cache: TestCache, series: string): Promise<number> {
  const line = (await cache.metrics.render()).body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
