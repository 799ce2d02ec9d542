import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RedisServer, startRedisServer } from '@angos/test-support';
import { afterAll, afterEach, beforeAll } from 'vitest';

export const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `angos …` to completion (killed after `timeoutMs`). */
export function runAngos(
  args: readonly string[],
  options: {
    input?: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    /** Another copy of dist/main.js to run. */
    main?: string;
  } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.main ?? MAIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, RUST_LOG: 'warn', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}

export interface LongRunning {
  readonly child: ChildProcess;
  output(): string;
  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();

/** Starts a long-running `angos …`; `stopAll()` in afterEach guarantees nothing is left behind. */
export function startAngos(args: readonly string[], env: NodeJS.ProcessEnv = {}): LongRunning {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return {
    child,
    output: () => output,
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return code;
    },
  };
}

export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `url` until it answers with any status (or the process dies / time runs out). */
export async function waitForHttp(url: string, process: LongRunning, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.child.exitCode !== null) {
      throw new Error(`angos exited with ${process.child.exitCode}:\n${process.output()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`${url} did not answer in ${timeoutMs} ms:\n${process.output()}`);
}

export interface Workspace {
  readonly dir: string;
  readonly configPath: string;
  writeConfig(text: string): Promise<void>;
  remove(): Promise<void>;
}

/**
 * The workspace of a test file: made before its tests, removed after them; every process a test
 * spawned is killed after it. Returns a getter (the workspace exists once the tests run).
 */
export function useWorkspace(): () => Workspace {
  let ws: Workspace | undefined;
  beforeAll(async () => {
    ws = await workspace();
  });
  afterEach(() => killAll());
  afterAll(async () => {
    await ws?.remove();
  });
  return () => {
    if (ws === undefined) throw new Error('useWorkspace(): no workspace outside the tests');
    return ws;
  };
}

/**
 * A redis-server for the tests of the enclosing describe (skip it with `skipWithout(…,
 * 'redis-server')`): started before them, stopped after them. Returns a getter.
 */
export function useRedisServer(): () => RedisServer {
  let redis: RedisServer | undefined;
  beforeAll(async () => {
    redis = await startRedisServer();
  }, 30_000);
  afterAll(async () => {
    await redis?.stop();
  });
  return () => {
    if (redis === undefined) throw new Error('useRedisServer(): no redis-server outside the tests');
    return redis;
  };
}

export async function workspace(): Promise<Workspace> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-cli-'));
  const configPath = join(dir, 'config.toml');
  return {
    dir,
    configPath,
    writeConfig: (text) => writeFile(configPath, text),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A minimal valid configuration for a server on 127.0.0.1:`port` storing under `dir`. */
export function baseConfig(dir: string, port: number, extra = ''): string {
  return [
    '[server]',
    'bind_address = "127.0.0.1"',
    `port = ${port}`,
    '',
    '[blob_store.fs]',
    `root_dir = ${JSON.stringify(join(dir, 'data'))}`,
    '',
    extra,
  ].join('\n');
}

/** The JSON log records in a process's output (other lines, such as usage text, are skipped). */
export function logRecords(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Waits until the output holds a log record matching `match` (or the process dies / time runs out). */
export async function waitForRecord(
  process: LongRunning,
  match: (record: Record<string, unknown>) => boolean,
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = logRecords(process.output()).find(match);
    if (found !== undefined) return found;
    if (process.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no matching log record:\n${process.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** An OCI image manifest of a config blob and no layers, with `annotations` to tell rounds apart. */
export function configOnlyManifest(
  config: { digest: string; size: number },
  annotations?: Record<string, string>,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [],
      ...(annotations && { annotations }),
    }),
  );
}

/** One request on a connection of its own (no keep-alive agent). */
export function fresh(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
