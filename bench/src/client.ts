import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const MiB = 1024 * 1024;

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request; the body may be a stream. The response body is collected unless `discard`. */
export function send(
  url: string,
  method: string,
  options: {
    headers?: Record<string, string | number>;
    body?: Buffer | string | Readable;
    discard?: boolean;
    /** Another agent (for example one bound to its own source address). */
    agent?: Agent;
    /** The source address to connect from (any 127.0.0.0/8 address reaches a loopback server). */
    localAddress?: string;
    /** Called when the first byte of the response body arrives. */
    onFirstByte?: () => void;
  } = {},
): Promise<Reply & { bytes: number }> {
  return new Promise((resolve, reject) => {
    const settings = {
      method,
      agent: options.agent ?? agent,
      headers: options.headers ?? {},
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    };
    const req = request(url, settings, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        // A redirect's body is not the blob.
        if (bytes === 0 && (res.statusCode ?? 0) < 300) options.onFirstByte?.();
        bytes += chunk.length;
        if (!options.discard) chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), bytes }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = options.body;
    if (body instanceof Readable) {
      pipeline(body, req).catch(reject);
    } else {
      req.end(body);
    }
  });
}

function expectStatus(reply: Reply, status: number, what: string): void {
  if (reply.status !== status)
    throw new Error(`${what}: HTTP ${reply.status} ${reply.body.toString().slice(0, 200)}`);
}

function absolute(base: string, location: string | string[] | undefined): string {
  const value = String(location);
  return value.startsWith('http') ? value : `${base}${value}`;
}

/** A file of incompressible bytes and its digest, made once and reused across runs. */
export async function dataFile(
  path: string,
  size: number,
): Promise<{ path: string; size: number; digest: string }> {
  const digestPath = `${path}.sha256`;
  try {
    await access(digestPath);
    if ((await stat(path)).size === size)
      return { path, size, digest: (await readFile(digestPath, 'utf8')).trim() };
  } catch {
    // make it
  }
  const hash = createHash('sha256');
  async function* chunks() {
    for (let written = 0; written < size; written += MiB) {
      const chunk = randomBytes(Math.min(MiB, size - written));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path));
  const digest = `sha256:${hash.digest('hex')}`;
  await writeFile(digestPath, digest);
  return { path, size, digest };
}

async function startUpload(base: string, namespace: string): Promise<string> {
  const started = await send(`${base}/v2/${namespace}/blobs/uploads/`, 'POST', {
    headers: { 'Content-Length': 0 },
  });
  expectStatus(started, 202, 'start upload');
  return absolute(base, started.headers.location);
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`;
}

/** POST, then one PUT carrying the whole blob (what clients call a monolithic upload). */
export async function pushMonolithic(
  base: string,
  namespace: string,
  file: { path: string; size: number; digest: string },
): Promise<void> {
  const location = await startUpload(base, namespace);
  const done = await send(withDigest(location, file.digest), 'PUT', {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': file.size },
    body: createReadStream(file.path, { highWaterMark: MiB }),
  });
  expectStatus(done, 201, 'monolithic upload');
}

/** POST, PATCH after PATCH of `chunkSize` bytes with Content-Range, then an empty PUT. */
export async function pushChunked(
  base: string,
  namespace: string,
  file: { path: string; size: number; digest: string },
  chunkSize: number,
): Promise<void> {
  let location = await startUpload(base, namespace);
  for (let start = 0; start < file.size; start += chunkSize) {
    const end = Math.min(start + chunkSize, file.size) - 1;
    const patched = await send(location, 'PATCH', {
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Length': end - start + 1,
        'Content-Range': `${start}-${end}`,
      },
      body: createReadStream(file.path, { start, end, highWaterMark: MiB }),
    });
    expectStatus(patched, 202, 'chunk');
    location = absolute(base, patched.headers.location);
  }
  expectStatus(
    await send(withDigest(location, file.digest), 'PUT', { headers: { 'Content-Length': 0 } }),
    201,
    'complete',
  );
}

/**
 * GETs a blob, counting bytes; follows a redirect to the storage (S3) as clients do.
 * `onFirstByte` is called when the first byte of the blob arrives.
 */
export async function pullBlob(
  base: string,
  namespace: string,
  digest: string,
  headers: Record<string, string> = {},
  onFirstByte?: () => void,
): Promise<number> {
  const options = { discard: true, ...(onFirstByte === undefined ? {} : { onFirstByte }) };
  let reply = await send(`${base}/v2/${namespace}/blobs/${digest}`, 'GET', { ...options, headers });
  if (reply.status === 307) reply = await send(absolute(base, reply.headers.location), 'GET', options);
  expectStatus(reply, 200, 'pull');
  return reply.bytes;
}

export async function pushSmallBlob(base: string, namespace: string, data: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const location = await startUpload(base, namespace);
  const done = await send(withDigest(location, digest), 'PUT', {
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
    body: data,
  });
  expectStatus(done, 201, 'blob upload');
  return digest;
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Pushes a config, one layer of `layerBytes` random bytes and a manifest; returns the manifest body. */
export async function pushImage(
  base: string,
  namespace: string,
  tag: string,
  layerBytes: number,
): Promise<string> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', tag, nonce: randomBytes(8).toString('hex') }),
  );
  const layer = randomBytes(layerBytes);
  const configDigest = await pushSmallBlob(base, namespace, config);
  const layerDigest = await pushSmallBlob(base, namespace, layer);
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
  await putManifest(base, namespace, tag, manifest);
  return manifest;
}

export async function putManifest(
  base: string,
  namespace: string,
  reference: string,
  manifest: string,
): Promise<void> {
  const reply = await send(`${base}/v2/${namespace}/manifests/${reference}`, 'PUT', {
    headers: { 'Content-Type': OCI_MANIFEST, 'Content-Length': Buffer.byteLength(manifest) },
    body: manifest,
  });
  expectStatus(reply, 201, 'manifest');
}

/** Walks every page of a tag list with `n`; returns the number of tags seen. */
export async function listAllTags(base: string, namespace: string, n: number): Promise<number> {
  let next: string | undefined = `/v2/${namespace}/tags/list?n=${n}`;
  let seen = 0;
  while (next) {
    const reply = await send(`${base}${next}`, 'GET');
    expectStatus(reply, 200, 'tag list');
    seen += (JSON.parse(reply.body.toString()) as { tags: string[] }).tags.length;
    const link = reply.headers.link;
    next = typeof link === 'string' ? /<([^>]+)>/.exec(link)?.[1] : undefined;
  }
  return seen;
}

/** Runs `work` for each item with at most `limit` in flight. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}
