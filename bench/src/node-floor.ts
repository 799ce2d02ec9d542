/**
 * The least a registry on Node can be, for `pnpm bench-threads` to measure Node's own floor beside
 * `angos server`: node:http on N threads sharing one port (`reusePort`; one thread serves on the
 * main thread, as `angos server --workers 1` does, and N > 1 are worker threads of one process, as
 * angos runs them), started with the Node flags the `angos` launcher ships with. It answers what
 * the benchmark asks and nothing more:
 *
 *   POST /v2/<name>/blobs/uploads/      a session: 202 and its Location
 *   PUT  <location>?digest=<digest>     the body hashed into a file as it streams; 201, or 400 on a
 *                                       digest mismatch
 *   GET  /v2/<name>/blobs/<digest>      the file, read into one reused buffer per request
 *   PUT  /v2/<name>/manifests/<tag>     kept as a file
 *   GET  /v2/<name>/manifests/<tag>     read from that file
 *
 * No authentication, validation, locks, metrics, logs, caches or configuration: what memory and CPU
 * it takes under the benchmark's load, a registry written for Node takes at least.
 *
 * Usage: node node-floor.js <port> <directory> <threads>. It imports nothing but Node's own
 * modules, so that it loads nothing a registry would not, and scripts/bench-bundle.sh copies it
 * beside the bundled benchmark as it is.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { isMainThread, Worker } from 'node:worker_threads';

const READ_BUFFER_BYTES = 1024 * 1024;

const [port, directory, threads] = process.argv.slice(2);
const count = Number(threads);
if (!port || !directory || !Number.isInteger(count) || count < 1)
  throw new Error('usage: node-floor.js <port> <directory> <threads>');
if (isMainThread && count > 1) {
  // As angos: the main thread serves nothing; each thread binds the port itself.
  for (let i = 0; i < count; i++) new Worker(new URL(import.meta.url), { argv: process.argv.slice(2) });
} else {
  await Promise.all(
    ['blobs', 'uploads', 'manifests'].map((dir) => mkdir(join(directory, dir), { recursive: true })),
  );
  const server = createServer((request, response) => {
    route(directory, request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500).end(String(error));
      else response.destroy();
    });
  });
  server.listen({ host: '127.0.0.1', port: Number(port), reusePort: true });
}

async function route(directory: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://floor');
  const { pathname } = url;
  const blob = /^\/v2\/.+\/blobs\/sha256:([0-9a-f]{64})$/.exec(pathname);
  const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(pathname);
  const upload = /^\/upload\/([0-9a-f-]{36})$/.exec(pathname);
  if (pathname === '/v2/') return void response.writeHead(200).end('{}');
  if (request.method === 'POST' && /^\/v2\/.+\/blobs\/uploads\/$/.test(pathname))
    return void response.writeHead(202, { location: `/upload/${randomUUID()}`, 'content-length': 0 }).end();
  if (request.method === 'PUT' && upload) return receiveBlob(directory, upload[1]!, url, request, response);
  if ((request.method === 'GET' || request.method === 'HEAD') && blob)
    return sendBlob(join(directory, 'blobs', blob[1]!), request.method === 'HEAD', response);
  if (manifest) {
    const path = join(directory, 'manifests', encodeURIComponent(`${manifest[1]}:${manifest[2]}`));
    if (request.method === 'PUT') {
      const pieces: Buffer[] = [];
      for await (const piece of request as AsyncIterable<Buffer>) pieces.push(piece);
      const body = Buffer.concat(pieces);
      await writeFile(path, body);
      return void response.writeHead(201, { 'content-length': 0 }).end();
    }
    const body = await readFile(path).catch(() => undefined);
    if (body === undefined) return void response.writeHead(404).end();
    const { mediaType } = JSON.parse(body.toString()) as { mediaType?: string };
    return void response
      .writeHead(200, {
        'content-type': mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': `sha256:${createHash('sha256').update(body).digest('hex')}`,
        'content-length': body.length,
      })
      .end(body);
  }
  response.writeHead(404).end();
}

async function receiveBlob(
  directory: string,
  session: string,
  url: URL,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const digest = url.searchParams.get('digest') ?? '';
  const temporary = join(directory, 'uploads', session);
  const file = await open(temporary, 'wx');
  const hash = createHash('sha256');
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      hash.update(chunk);
      await file.write(chunk);
      // As angos does with a request body's chunks (libs/storage streaming.ts): freed once written.
      if (chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength)
        (chunk.buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer }).transfer(0);
    }
  } finally {
    await file.close();
  }
  if (digest !== `sha256:${hash.digest('hex')}`) return void response.writeHead(400).end();
  await rename(temporary, join(directory, 'blobs', digest.slice('sha256:'.length)));
  response.writeHead(201, { location: `${url.pathname}`, 'content-length': 0 }).end();
}

async function sendBlob(path: string, headOnly: boolean, response: ServerResponse): Promise<void> {
  const size = await stat(path).then(
    (found) => found.size,
    () => undefined,
  );
  if (size === undefined) return void response.writeHead(404).end();
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  if (headOnly) return void response.end();
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafeSlow(Math.max(1, Math.min(size, READ_BUFFER_BYTES)));
    for (let position = 0; position < size; ) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - position), position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const piece = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
      // The buffer is read into again only once the socket has taken this piece.
      await new Promise<void>((resolve, reject) =>
        response.write(piece, (error) => (error ? reject(error) : resolve())),
      );
    }
    response.end();
  } finally {
    await file.close();
  }
}
