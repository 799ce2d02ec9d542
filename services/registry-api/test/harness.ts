import { createHash, randomUUID } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuth } from '@angos/auth';
import { type Config, parseConfig, type S3ConnectionConfig } from '@angos/config';
import { createHttpServer, type RequestContext, setContext } from '@angos/http';
import { JobQueue } from '@angos/jobs';
import { type LockManager, MemoryLockManager } from '@angos/lock';
import { createMetrics, silentLogger } from '@angos/observability';
import { createRegistry, type GcReport } from '@angos/registry';
import {
  type BlobBackendOptions,
  type MetadataBackendOptions,
  NotFoundError,
  type OpenedStores,
  openStores,
  type S3ConnectionOptions,
} from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import { type S3Endpoint, s3Connection, s3Table, wipeBucket } from '@angos/test-support';
import { inject } from 'vitest';
import { buildRegistryApi, type Trust } from '../src/index.js';

export type { Trust };

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The 307 answer, when the registry redirected this GET to the storage and `send` followed it. */
  redirect?: Reply;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field by the assertions
  json(): any;
}

/** Where a test registry keeps blobs and metadata. */
export interface Backend {
  readonly name: string;
  readonly blob: 'fs' | 's3';
  readonly metadata: 'fs' | 's3';
}

export const FS: Backend = { name: 'fs', blob: 'fs', metadata: 'fs' };

/** The set-ups the HTTP suite runs on: fs, all-S3 (metadata defaulting to the blob store) and both splits. */
export const BACKENDS: readonly Backend[] = [
  FS,
  { name: 's3', blob: 's3', metadata: 's3' },
  { name: 's3 blobs, fs metadata', blob: 's3', metadata: 'fs' },
  { name: 'fs blobs, s3 metadata', blob: 'fs', metadata: 's3' },
];

/** The S3 server of this run (test/s3-global-setup.ts); null when none could start outside CI. */
export const s3Server: S3Endpoint | null = inject('s3');

export function usesS3(backend: Backend): boolean {
  return backend.blob === 's3' || backend.metadata === 's3';
}

export interface Api {
  url: string;
  rootDir: string;
  backend: Backend;
  /** The job queues behind the jobs API (on the registry's metadata store), to seed jobs. */
  jobs: JobQueue;
  /** The registry's locks (a test's job runner takes them as a worker would). */
  locks: LockManager;
  /** Hex digests of the blobs in the blob store: files under rootDir on fs, objects on S3. */
  blobHexes(): Promise<string[]>;
  /** Whether the metadata store holds `key`: a file under rootDir on fs, an object on S3. */
  hasMetadata(key: string): Promise<boolean>;
  /** One garbage collection pass of the registry behind the API (`angos server` runs them periodically). */
  collectGarbage(options: { gracePeriodMs: number; now?: () => number }): Promise<GcReport>;
  /** A raw request: the path is sent exactly as given (no URL normalisation). */
  send(
    method: string,
    path: string,
    options?: {
      headers?: Record<string, string | number>;
      body?: Buffer | string | Iterable<Buffer> | AsyncIterable<Buffer>;
    },
  ): Promise<Reply>;
  close(): Promise<void>;
}

/** The `[blob_store]` / `[metadata_store]` tables of a backend: a temp dir, or a fresh key prefix of the test bucket. */
function storageToml(backend: Backend, rootDir: string, keyPrefix: string): string {
  const s3 = (section: string) => {
    if (!s3Server) throw new Error('no S3 server for this run');
    return s3Table(section, s3Server, keyPrefix);
  };
  const blob = backend.blob === 'fs' ? `[blob_store.fs]\nroot_dir = "${rootDir}"\n` : s3('blob_store.s3');
  // All-S3 leaves [metadata_store] out: it defaults to the blob store's bucket and prefix.
  if (backend.metadata === backend.blob) return blob;
  const metadata =
    backend.metadata === 'fs' ? `[metadata_store.fs]\nroot_dir = "${rootDir}"\n` : s3('metadata_store.s3');
  return blob + metadata;
}

function connection(s3: S3ConnectionConfig): S3ConnectionOptions {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    accessKeyId: s3.access_key_id,
    secretAccessKey: s3.secret_key,
    keyPrefix: s3.key_prefix,
    maxAttempts: s3.max_attempts,
    operationTimeoutSecs: s3.operation_timeout_secs,
    operationAttemptTimeoutSecs: s3.operation_attempt_timeout_secs,
  };
}

/** The stores a configuration names (as `angos server` builds them). */
function storesOptions(config: Config): { blob: BlobBackendOptions; metadata: MetadataBackendOptions } {
  const { blob_store: blob, metadata_store: metadata } = config;
  const caps = metadata.s3?.capabilities;
  return {
    blob: blob.fs
      ? { kind: 'fs', rootDir: blob.fs.root_dir, syncToDisk: false }
      : {
          kind: 's3',
          ...connection(blob.s3),
          multipartPartSize: blob.s3.multipart_part_size,
          multipartCopyThreshold: blob.s3.multipart_copy_threshold,
          multipartCopyChunkSize: blob.s3.multipart_copy_chunk_size,
          multipartCopyJobs: blob.s3.multipart_copy_jobs,
          multipartUniformParts: blob.s3.multipart_uniform_parts,
        },
    metadata: metadata.fs
      ? { kind: 'fs', rootDir: metadata.fs.root_dir, syncToDisk: false }
      : {
          kind: 's3',
          ...connection(metadata.s3),
          linkCacheTtlSecs: metadata.s3.link_cache_ttl,
          accessTimeDebounceSecs: metadata.s3.access_time_debounce_secs,
          capabilities: caps && {
            putIfNoneMatch: caps.put_if_none_match,
            putIfMatch: caps.put_if_match,
            deleteIfMatch: caps.delete_if_match,
          },
        },
  };
}

/** Removes every object and multipart upload under a key prefix of the test bucket. */
async function wipeS3Prefix(keyPrefix: string): Promise<void> {
  if (s3Server) await wipeBucket(new S3Bucket(s3Connection(s3Server, keyPrefix)));
}

/**
 * Starts registry-api on 127.0.0.1, in this process, on the given backend:
 * fs storage in a temp dir, S3 under a fresh key prefix of the test bucket.
 */
export async function startApi(
  extraToml = '',
  trust: Trust = { kind: 'in-process' },
  /** What the gateway would have judged readable for mounts (in-process trust only). */
  mountAllowedFrom: readonly string[] = [],
  backend: Backend = FS,
  /** The registry's locks (memory by default); the caller closes any other. */
  locks: LockManager = new MemoryLockManager(),
  /** Where fs storage goes (created, and removed again by close): a fresh temp dir by default. */
  storeDir?: string,
  /** More of what the gateway would have decided (in-process trust only): a caller's policy identity. */
  contextFor: (req: IncomingMessage) => Partial<RequestContext> = () => ({}),
): Promise<Api> {
  const rootDir = storeDir ?? (await mkdtemp(join(tmpdir(), 'angos-api-')));
  if (storeDir !== undefined) await mkdir(storeDir, { recursive: true });
  const keyPrefix = `angos-api-test/${randomUUID()}`;
  const toml = `[server]\nbind_address = "127.0.0.1"\n${storageToml(backend, rootDir, keyPrefix)}${extraToml}`;
  const { config } = parseConfig(toml);
  const stores: OpenedStores = await openStores(storesOptions(config));
  const registry = createRegistry({
    blobs: stores.blobs,
    metadata: stores.metadata,
    locks,
    config: () => config,
    logger: silentLogger,
  });
  const jobs = new JobQueue({ store: stores.metadata });
  const auth = createAuth({
    config: () => config,
    logger: silentLogger,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  const handler = buildRegistryApi({
    registry,
    jobs,
    config: () => config,
    logger: silentLogger,
    trust,
    auth,
    version: '0.0.0-test',
  });
  const server: Server = createHttpServer(
    (req, res) => {
      if (trust.kind === 'in-process')
        setContext(req, { clientIp: '127.0.0.1', mountAllowedFrom, ...contextFor(req) });
      return handler(req, res);
    },
    { logger: silentLogger },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    rootDir,
    backend,
    jobs,
    locks,
    async blobHexes() {
      if (backend.blob === 'fs') {
        // `_blobs/sha256/<hex[0:2]>/<hex>`: the files two levels down.
        const entries = await readdir(join(rootDir, '_blobs', 'sha256'), {
          recursive: true,
          withFileTypes: true,
        }).catch(() => []);
        return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
      }
      const hexes: string[] = [];
      for await (const digest of stores.blobs.listBlobs()) hexes.push(digest.hex);
      return hexes;
    },
    async hasMetadata(key) {
      if (backend.metadata === 'fs') {
        return access(join(rootDir, key)).then(
          () => true,
          () => false,
        );
      }
      return stores.metadata.get(key).then(
        () => true,
        (error: unknown) => {
          if (error instanceof NotFoundError) return false;
          throw error;
        },
      );
    },
    collectGarbage: (options) => registry.collectGarbage(options),
    send: (method, path, options = {}) => send(port, method, path, options),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await auth.close();
      await stores.close();
      await rm(rootDir, { recursive: true, force: true });
      if (usesS3(backend)) await wipeS3Prefix(keyPrefix);
    },
  };
}

type SendOptions = {
  headers?: Record<string, string | number>;
  body?: Buffer | string | Iterable<Buffer> | AsyncIterable<Buffer>;
};

/**
 * Sends a request; a GET that the registry redirects (307) to the storage is
 * followed, as clients do, with the same headers (Range included). The final
 * reply keeps the 307 as `redirect`.
 */
async function send(port: number, method: string, path: string, options: SendOptions): Promise<Reply> {
  const reply = await sendTo(new URL(`http://127.0.0.1:${port}`), method, path, options);
  const location = reply.headers.location;
  if (method !== 'GET' || reply.status !== 307 || typeof location !== 'string') return reply;
  const target = new URL(location);
  const followed = await sendTo(target, 'GET', `${target.pathname}${target.search}`, {
    headers: options.headers ?? {},
  });
  return { ...followed, redirect: reply };
}

function sendTo(origin: URL, method: string, path: string, options: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target = {
      host: origin.hostname,
      port: Number(origin.port),
      method,
      path,
      headers: options.headers ?? {},
    };
    const req = request(target, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: () => JSON.parse(body.toString()),
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', reject);
    const body = options.body;
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      req.end(body);
    } else if (Symbol.asyncIterator in body) {
      // Streamed as the test produces it: the test may act between chunks.
      void (async () => {
        for await (const chunk of body) req.write(chunk);
        req.end();
      })().catch((error: unknown) => req.destroy(error as Error));
    } else {
      for (const chunk of body) req.write(chunk);
      req.end();
    }
  });
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const ALL_MANIFEST_TYPES = [
  OCI_MANIFEST,
  OCI_INDEX,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Uploads a blob monolithically; returns its digest. */
export async function pushBlob(api: Api, namespace: string, data: Buffer | string): Promise<string> {
  const digest = sha256(data);
  const reply = await api.send('POST', `/v2/${namespace}/blobs/uploads/?digest=${digest}`, {
    body: data,
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  if (reply.status !== 201) throw new Error(`push blob: ${reply.status} ${reply.body}`);
  return digest;
}

/** Pushes a config + one layer + an image manifest; returns the manifest and its parts. */
export async function pushImage(
  api: Api,
  namespace: string,
  tag: string,
  seed = tag,
  extra: Record<string, unknown> = {},
): Promise<{ digest: string; body: string; config: string; layer: string }> {
  const configBody = JSON.stringify({ architecture: 'amd64', os: 'linux', seed });
  const layerBody = `layer of ${seed}`;
  const config = await pushBlob(api, namespace, configBody);
  const layer = await pushBlob(api, namespace, layerBody);
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: config,
      size: configBody.length,
    },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerBody.length }],
    ...extra,
  });
  const reply = await api.send('PUT', `/v2/${namespace}/manifests/${tag}`, {
    body,
    headers: { 'Content-Type': OCI_MANIFEST },
  });
  if (reply.status !== 201) throw new Error(`push manifest: ${reply.status} ${reply.body}`);
  return { digest: sha256(body), body, config, layer };
}
