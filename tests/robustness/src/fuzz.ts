/**
 * A seeded, bounded fuzz run over the HTTP API of a real `angos server`: thousands of malformed
 * and adversarial requests written byte by byte on raw sockets (so framing can be wrong too).
 * Every request must get a 4xx with an OCI error body (or a 2xx where the request happens to be
 * valid) — never a 5xx, a hang or a reset — the server must stay live, and nothing may be written
 * outside the storage root.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect as connectTls } from 'node:tls';
import { cliEntry, freePort, random } from '@angos/test-support';

export interface FuzzOptions {
  readonly requests: number;
  readonly seed: number;
  readonly storageToml?: (rootDir: string) => string;
}

export interface FuzzReport {
  requests: number;
  /** status → count */
  statuses: Record<string, number>;
  failures: string[];
}

/** One request as bytes, and whether the server owes it an answer (a cut-off body is owed none). */
export interface FuzzCase {
  readonly label: string;
  readonly bytes: Buffer;
  readonly answered: boolean;
}

const sha256 = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

// Where a traversal would land if a path ever escaped the storage root; checked after the run.
const ESCAPE = 'fuzz-escape';

const NAMES = [
  'f/img',
  'F/img',
  'f/../img',
  `f/../../../${ESCAPE}`,
  'f/%2e%2e/img',
  `%2e%2e/%2e%2e/${ESCAPE}`,
  'f%2Fimg',
  'f/img%00',
  'a'.repeat(300),
  'f//img',
  '_blobs',
  'f/img/',
  '.',
  'f/./img',
];
const REFERENCES = [
  'v1',
  'latest',
  '-bad',
  'a'.repeat(129),
  'sha256:abc',
  `sha256:${'A'.repeat(64)}`,
  `sha512:${'0'.repeat(64)}`,
  `md5:${'0'.repeat(32)}`,
  `sha256:${'0'.repeat(64)}`,
  '%2e%2e',
  `..%2f..%2f${ESCAPE}`,
  'v1%00',
  'x:y',
];
const PATHS = [
  (n: string, r: string) => `/v2/${n}/manifests/${r}`,
  (n: string, r: string) => `/v2/${n}/blobs/${r}`,
  (n: string) => `/v2/${n}/blobs/uploads/`,
  (n: string, r: string) => `/v2/${n}/blobs/uploads/${r}`,
  (n: string) => `/v2/${n}/blobs/uploads/3f1b9a2c-0000-4000-8000-000000000000`,
  (n: string) => `/v2/${n}/tags/list?n=-1`,
  (n: string) => `/v2/${n}/tags/list?n=abc&last=%00`,
  (n: string) => `/v2/${n}/tags/list?n=99999999999999999999`,
  (n: string, r: string) => `/v2/${n}/referrers/${r}?artifactType=%ff`,
  (n: string, r: string) => `/v2/${n}/blobs/uploads/?mount=${r}&from=../../${ESCAPE}`,
  (n: string, r: string) => `/v2/${n}/blobs/uploads/?digest=${r}`,
  () => '/v2/_catalog?n=0&last=zzz',
  () => '/v2/_ext/../../etc/passwd',
  () => '/../../etc/passwd',
  () => '/v2/',
];
const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'BREW'];
const HEADERS = [
  '',
  'Range: bytes=5-2\r\n',
  'Range: bytes=0-1,4-5\r\n',
  'Range: bytes=99999999999999999999-\r\n',
  'Range: bytes=-0\r\n',
  'Content-Range: 10-5\r\n',
  'Content-Range: 0-99999999999999999999\r\n',
  'Content-Range: bytes */*\r\n',
  'Content-Type: application/vnd.oci.image.index.v1+json; charset=%\r\n',
  'Content-Type: application/vnd.oci.image.manifest.v1+json\r\n',
  'Accept: ,,,;;;\r\n',
  `X-Big: ${'x'.repeat(17 * 1024)}\r\n`,
];
const BODIES = [
  '',
  '{',
  '{"schemaVersion":2}',
  JSON.stringify({ schemaVersion: 1, mediaType: 'application/vnd.oci.image.manifest.v1+json' }),
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('unknown'), size: 7 },
    layers: [],
  }),
  `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
  'x'.repeat(70_000),
];

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

export function request(
  method: string,
  path: string,
  headers: string,
  body: string,
  framing: string,
): FuzzCase {
  const length = Buffer.byteLength(body);
  const head = (contentLength: string) =>
    `${method} ${path} HTTP/1.1\r\nHost: fuzz\r\n${headers}${contentLength}Connection: close\r\n\r\n`;
  switch (framing) {
    case 'short': // says more than it sends, then stops writing: no answer is owed
      return {
        label: `${method} ${path} (cut off)`,
        bytes: Buffer.from(head(`Content-Length: ${length + 100}\r\n`) + body),
        answered: false,
      };
    case 'long': // sends more than it says: the rest is a malformed next request
      return {
        label: `${method} ${path} (overlong)`,
        bytes: Buffer.from(head(`Content-Length: ${Math.max(0, length - 1)}\r\n`) + body),
        answered: true,
      };
    case 'chunked':
      return {
        label: `${method} ${path} (chunked)`,
        bytes: Buffer.from(
          `${head('Transfer-Encoding: chunked\r\n')}${length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
        ),
        answered: true,
      };
    default:
      return {
        label: `${method} ${path}`,
        bytes: Buffer.from(head(`Content-Length: ${length}\r\n`) + body),
        answered: true,
      };
  }
}

function generate(next: () => number): FuzzCase {
  const method = pick(next, METHODS);
  const path = pick(next, PATHS)(pick(next, NAMES), pick(next, REFERENCES));
  const body = method === 'GET' || method === 'HEAD' ? '' : pick(next, BODIES);
  const framing = pick(next, ['plain', 'plain', 'plain', 'chunked', 'short', 'long']);
  return request(method, path, pick(next, HEADERS), body, framing);
}

/**
 * Writes one case on a new connection (TLS with `tls`, e.g. to present a client certificate);
 * returns the status, or what went wrong.
 */
export function exchange(
  port: number,
  fuzzCase: FuzzCase,
  tls?: ConnectionOptions,
): Promise<{ status?: number; body?: string; problem?: string }> {
  return new Promise((resolve) => {
    const socket =
      tls === undefined
        ? connect(port, '127.0.0.1')
        : connectTls({ ...tls, port, host: '127.0.0.1', rejectUnauthorized: false });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ problem: 'no answer within 10 s' });
    }, 10_000);
    socket.on(tls === undefined ? 'connect' : 'secureConnect', () => {
      socket.write(fuzzCase.bytes);
      if (!fuzzCase.answered) {
        // Give up on the request mid-body, as a client that dies would.
        setTimeout(() => socket.destroy(), 20);
      }
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!fuzzCase.answered) return;
      clearTimeout(timer);
      resolve({ problem: `connection error ${error.code ?? error.message}` });
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      if (!fuzzCase.answered) return resolve({});
      if (!status) return resolve({ problem: 'connection closed without a response' });
      resolve({ status: Number(status), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/**
 * Starts `angos server` and waits until GET /v2/ answers `readyStatus` (over TLS with `tls`).
 */
export async function startServer(
  configPath: string,
  port: number,
  cwd: string,
  { readyStatus = 200, tls }: { readyStatus?: number; tls?: ConnectionOptions } = {},
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [cliEntry(), '-c', configPath, 'server', '--listen', `127.0.0.1:${port}`],
    {
      cwd,
      stdio: 'ignore',
      env: { ...process.env, RUST_LOG: 'error' },
    },
  );
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const reply = await exchange(port, request('GET', '/v2/', '', '', 'plain'), tls);
    if (reply.status === readyStatus) return child;
    if (child.exitCode !== null) throw new Error('registry exited during startup');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error('registry not ready after 20 s');
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export async function fuzz(options: FuzzOptions): Promise<FuzzReport> {
  const next = random(options.seed);
  // The sandbox nests the storage root three levels deep, so `../../..` escapes land inside it.
  const sandbox = await mkdtemp(join(tmpdir(), 'angos-fuzz-'));
  const cwd = join(sandbox, 'a', 'b');
  const rootDir = join(cwd, 'data');
  await mkdir(rootDir, { recursive: true });
  const configPath = join(sandbox, 'config.toml');
  const storage = options.storageToml?.(rootDir) ?? `[blob_store.fs]\nroot_dir = "${rootDir}"\n`;
  await writeFile(
    configPath,
    `[server]\nbind_address = "127.0.0.1"\n[global]\nmax_manifest_size = "64KiB"\n[global.access_policy]\ndefault = "allow"\n${storage}`,
  );
  const port = await freePort();
  const report: FuzzReport = { requests: 0, statuses: {}, failures: [] };
  const server = await startServer(configPath, port, cwd);
  try {
    for (let i = 0; i < options.requests; i++) {
      const fuzzCase = generate(next);
      const reply = await exchange(port, fuzzCase);
      report.requests++;
      const key = reply.status === undefined ? 'none' : String(reply.status);
      report.statuses[key] = (report.statuses[key] ?? 0) + 1;
      const where = `#${i} ${fuzzCase.label.slice(0, 160)}`;
      if (reply.problem) report.failures.push(`${where}: ${reply.problem}`);
      else if (reply.status !== undefined && reply.status >= 500)
        report.failures.push(`${where}: ${reply.status}`);
      else if (
        reply.status !== undefined &&
        reply.status >= 400 &&
        !fuzzCase.label.startsWith('HEAD') &&
        !reply.body?.includes('"errors"')
      ) {
        report.failures.push(`${where}: ${reply.status} without an OCI error body`);
      }
      if (server.exitCode !== null) {
        report.failures.push(`${where}: the registry exited`);
        break;
      }
    }
    const alive = await exchange(port, request('GET', '/v2/', '', '', 'plain'));
    if (alive.status !== 200)
      report.failures.push(`after the run: GET /v2/ answered ${alive.status ?? alive.problem}`);
    for (const dir of [sandbox, join(sandbox, 'a'), cwd]) {
      if (await exists(join(dir, ESCAPE)))
        report.failures.push(`a file escaped the storage root: ${join(dir, ESCAPE)}`);
    }
    const outside = (await readdir(cwd)).filter((entry) => entry !== 'data');
    if (outside.length > 0) report.failures.push(`written beside the storage root: ${outside.join(', ')}`);
    return report;
  } finally {
    server.kill('SIGKILL');
    await rm(sandbox, { recursive: true, force: true });
  }
}
