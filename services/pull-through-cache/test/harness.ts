import { mkdtemp, rm } from 'node:fs/promises';
import { type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, parseConfig } from '@angos/config';
import { createEventDispatcher } from '@angos/events';
import { createHttpServer } from '@angos/http';
import { JobQueue } from '@angos/jobs';
import { type LockManager, MemoryLockManager } from '@angos/lock';
import { createMetrics, type Metrics, silentLogger } from '@angos/observability';
import { createRegistry, type Registry } from '@angos/registry';
import { type BlobStore, FsBlobStore, FsMetadataStore, type MetadataStore } from '@angos/storage';
import { captureLogger, DISTRIBUTION_USER, type Distribution } from '@angos/test-support';
import { PullThroughCache } from '@angos/upstream';
import { buildPullThroughCache } from '../src/index.js';

export {
  MANIFEST_ACCEPT,
  type SeededImage,
  seedImage,
  startProxy,
  type TestProxy,
} from '@angos/test-support';

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
  /** Emit pull events to the configured event webhooks, as `angos server` does. */
  readonly events?: boolean;
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
  const { logger, records } = captureLogger('info');
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
    events: options.events
      ? createEventDispatcher({
          config: () => config,
          enqueue: (...args) => jobs.enqueue(...args),
          logger: silentLogger,
        })
      : undefined,
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
    logs: { lines: () => records() as ReturnType<LogCapture['lines']> },
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

/** A streaming GET: the response, once its headers are in. */
export function open(url: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent: false }, resolve);
    req.on('error', reject);
    req.end();
  });
}

/** GET requests of the distribution's access log for `path` (e.g. `/v2/library/x/blobs/<digest>`). */
export function accessLogCount(upstream: Distribution, method: string, path: string): number {
  const needle = `"${method} ${path} `;
  return upstream
    .output()
    .split('\n')
    .filter((line) => line.includes(needle)).length;
}

/** A metric's value in the Prometheus text (0 when the series is absent). */
export async function metricValue(cache: TestCache, series: string): Promise<number> {
  const line = (await cache.metrics.render()).body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}
