import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@angos/config';
import { createHttpServer, setContext } from '@angos/http';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { createRegistry } from '@angos/registry';
import { createStores } from '@angos/storage';
import { buildRegistryApi, type Trust } from '../src/index.js';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field by the assertions
  json(): any;
}

export interface Api {
  url: string;
  rootDir: string;
  /** A raw request: the path is sent exactly as given (no URL normalisation). */
  send(
    method: string,
    path: string,
    options?: { headers?: Record<string, string | number>; body?: Buffer | string | Iterable<Buffer> },
  ): Promise<Reply>;
  close(): Promise<void>;
}

/** Starts registry-api on fs storage in a temp dir, on 127.0.0.1, in this process. */
export async function startApi(
  extraToml = '',
  trust: Trust = { kind: 'in-process' },
  /** What the gateway would have judged readable for mounts (in-process trust only). */
  mountAllowedFrom: readonly string[] = [],
): Promise<Api> {
  const rootDir = await mkdtemp(join(tmpdir(), 'angos-api-'));
  const toml = `[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "${rootDir}"\n${extraToml}`;
  const { config } = parseConfig(toml);
  const stores = createStores({
    blob: { kind: 'fs', rootDir, syncToDisk: false },
    metadata: { kind: 'fs', rootDir, syncToDisk: false },
  });
  const registry = createRegistry({
    ...stores,
    locks: new MemoryLockManager(),
    config: () => config,
    logger: silentLogger,
  });
  const handler = buildRegistryApi({ registry, config: () => config, logger: silentLogger, trust });
  const server: Server = createHttpServer(
    (req, res) => {
      if (trust.kind === 'in-process') setContext(req, { clientIp: '127.0.0.1', mountAllowedFrom });
      return handler(req, res);
    },
    { requestTimeoutSecs: 60, logger: silentLogger },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    rootDir,
    send: (method, path, options = {}) => send(port, method, path, options),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(rootDir, { recursive: true, force: true });
    },
  };
}

function send(
  port: number,
  method: string,
  path: string,
  options: { headers?: Record<string, string | number>; body?: Buffer | string | Iterable<Buffer> },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: options.headers ?? {} }, (res) => {
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
