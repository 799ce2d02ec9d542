import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A real S3 server for tests (`@angos/storage/s3-test-server`): a throw-away
 * single-node Ceph RGW started with the shared `start-s3.sh` (which installs
 * Ceph from Debian's packages on first use). No vitest here: test set-ups of
 * any package, and benchmarks, use it.
 */

/** Where tests find the server; plain data, so vitest can hand it from global set-up to test files. */
export interface S3Endpoint {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface S3TestServer extends S3Endpoint {
  stop(): Promise<void>;
}

/** start-s3.sh uses PORT for S3 and the nine ports above it for Ceph's own daemons. */
const PORTS_PER_SERVER = 10;
const START_ATTEMPTS = 4;
/** A first start installs Ceph with apt; later starts take about two seconds. */
const START_TIMEOUT_MS = 15 * 60_000;

/** The shared tools directory: ANGOS_SHARED_TOOLS, or `../shared/tools` beside the repository. */
export function sharedToolsDir(): string {
  const fromEnv = process.env['ANGOS_SHARED_TOOLS'];
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('pnpm-workspace.yaml not found above @angos/storage');
    dir = parent;
  }
  return resolve(dir, '..', 'shared', 'tools');
}

/**
 * An S3 server for this test run: the one `ANGOS_TEST_S3_ENDPOINT` names
 * (left running; bucket and keys default to start-s3.sh's), or a new RGW on
 * a free range of ports, stopped by `stop()`.
 */
export async function startS3TestServer(): Promise<S3TestServer> {
  const external = process.env['ANGOS_TEST_S3_ENDPOINT'];
  if (external) {
    return {
      endpoint: external,
      region: process.env['ANGOS_TEST_S3_REGION'] ?? 'us-east-1',
      bucket: process.env['ANGOS_TEST_S3_BUCKET'] ?? 'test-bucket',
      accessKeyId: process.env['ANGOS_TEST_S3_ACCESS_KEY'] ?? 'CEPHTESTACCESSKEY000',
      secretAccessKey: process.env['ANGOS_TEST_S3_SECRET_KEY'] ?? 'cephtestsecretkey0000000000000000000000',
      stop: async () => {},
    };
  }
  const script = join(sharedToolsDir(), 'start-s3.sh');
  if (!existsSync(script)) throw new Error(`${script} not found (set ANGOS_SHARED_TOOLS)`);
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePortRange(PORTS_PER_SERVER);
    try {
      return await startOn(script, port);
    } catch (error) {
      // Another process may have taken one of the ports in between: try another range.
      lastError = error;
    }
  }
  throw lastError;
}

/**
 * For a test run's global set-up: the server, or null when it cannot start and
 * this is not CI (the S3 suites then skip, saying why). Under CI (`CI` set and
 * not `false`/`0`) a server that cannot start fails the run.
 */
export async function startS3ForTests(
  warn: (message: string) => void = console.warn,
): Promise<S3TestServer | null> {
  try {
    return await startS3TestServer();
  } catch (error) {
    const ci = process.env['CI'];
    if (ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0') throw error;
    warn(`S3 tests skipped: no S3 server (${error instanceof Error ? error.message : String(error)})`);
    return null;
  }
}

async function startOn(script: string, port: number): Promise<S3TestServer> {
  const dataDir = join(tmpdir(), `angos-s3-${process.pid}-${port}`);
  const env = { ...process.env, S3_DATA_DIR: dataDir };
  const output = await runScript(script, [String(port)], env, START_TIMEOUT_MS);
  const vars = new Map<string, string>();
  for (const line of output.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) vars.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  const need = (name: string) => {
    const value = vars.get(name);
    if (value === undefined) throw new Error(`start-s3.sh printed no ${name}`);
    return value;
  };
  return {
    endpoint: need('S3_ENDPOINT'),
    region: vars.get('S3_REGION') ?? 'us-east-1',
    bucket: need('S3_BUCKET'),
    accessKeyId: need('S3_ACCESS_KEY'),
    secretAccessKey: need('S3_SECRET_KEY'),
    stop: async () => {
      await runScript(script, ['stop', String(port)], env, 60_000);
    },
  };
}

/** Runs the script; resolves with its stdout, rejects with the tail of its stderr. */
function runScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn('bash', [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveRun(stdout);
      else
        reject(new Error(`start-s3.sh ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stderr}`));
    });
  });
}

/** The first port of `count` consecutive ports that are free on 127.0.0.1 right now. */
async function freePortRange(count: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) free = await isFree(port);
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}
