import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { angosLauncher, freePort, type S3Endpoint, startRedisServer } from '@angos/test-support';

/**
 * The identity angos subjects are configured with (`[auth.identity.bench]`), for the scenarios
 * that log in. The hash has the parameters `angos argon` uses (m=19456, t=2): a check costs what
 * it costs in production. Other scenarios send no credentials and never check a password.
 */
export const BENCH_USER = {
  username: 'bench',
  password: 'secret',
  hash: '$argon2id$v=19$m=19456,t=2,p=1$6surVjzDIpEmx03OUZEePg$dJEa9+zw5wGXxCt/ynjsLXtDgufz3DcbA6K5mjGEn2Q',
} as const;

/** A registry under test: where it listens and which processes to measure. */
export interface Subject {
  readonly name: string;
  readonly url: string;
  readonly host: string;
  readonly pids: readonly number[];
  /** The angos subjects' configuration file (for `angos scrub` beside them). */
  readonly configPath?: string;
  stop(): Promise<void>;
}

export type SubjectName = 'angos' | 'angos-split' | 'angos-s3' | 'distribution' | 'distribution-s3';

export const SUBJECT_NAMES: readonly SubjectName[] = [
  'angos',
  'angos-split',
  'angos-s3',
  'distribution',
  'distribution-s3',
];

/** The subjects whose store is the run's Ceph RGW. */
export const S3_SUBJECTS: readonly SubjectName[] = ['angos-s3', 'distribution-s3'];

/** The ratio columns of the tables: angos over distribution on the same kind of store. */
export const RATIO_PAIRS: ReadonlyArray<readonly [SubjectName, SubjectName]> = [
  ['angos', 'distribution'],
  ['angos-s3', 'distribution-s3'],
];

/** `s3` gives the Ceph RGW of the run, started once and shared with the job queue scenario. */
export async function startSubject(name: SubjectName, s3: () => Promise<S3Endpoint>): Promise<Subject> {
  switch (name) {
    case 'angos':
      return startAngos('fs');
    case 'angos-split':
      return startAngos('split');
    case 'angos-s3':
      return startAngos(await s3());
    case 'distribution':
      return startDistribution();
    case 'distribution-s3':
      return startDistribution({ s3: await s3() });
  }
}

export async function waitReady(url: string, children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (children.some((child) => child.exitCode !== null)) throw new Error(`${url}: process exited`);
    try {
      const reply = await fetch(`${url}/v2/`);
      if (reply.status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url}: not ready after 20 s`);
}

function launch(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  stdout?: number,
): ChildProcess {
  // Logs are discarded: a benchmark measures, it does not debug (RUST_LOG=warn keeps angos quiet).
  // `stdout`, a file descriptor, keeps what a process writes there (distribution's access log).
  const discard = process.env.BENCH_DEBUG ? 'inherit' : 'ignore';
  return spawn(command, args, {
    stdio: ['ignore', stdout ?? discard, discard],
    env: { ...env, RUST_LOG: 'warn' },
  });
}

async function stopAll(children: ChildProcess[], dir: string, after?: () => Promise<void>): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  await after?.();
  await rm(dir, { recursive: true, force: true });
}

type Deployment = 'fs' | 'split' | S3Endpoint;

/** What the pull-through cache scenario adds to a subject. */
export interface AngosExtras {
  /** More TOML: the repositories with upstreams. */
  readonly toml?: string;
  /**
   * Split only: `angos pull-through-cache` beside registry-api, the gateway routing the cache
   * namespaces to it. Both write the fs metadata, so they share a Redis lock (a redis-server the
   * subject starts and stops; it is not among the measured processes).
   */
  readonly pullThroughCache?: boolean;
  /**
   * fs only: `[global.job_queue]`, so the server only queues its replication jobs, and an
   * `angos worker --queue replication` beside it runs them (measured with the subject). They
   * share a Redis lock, as the job queue requires (a redis-server the subject starts and stops).
   */
  readonly replicationWorker?: boolean;
  /** `angos server --workers`: serving threads (default: the service's own, one per CPU it may use). */
  readonly workers?: number;
  /**
   * A store written beforehand (the scale scenario seeds one): the fs root directory, or the key
   * prefix on the S3 bucket, instead of a fresh one. The subject leaves it in place when it stops.
   */
  readonly store?: { readonly rootDir: string } | { readonly keyPrefix: string };
}

/** `[blob_store.*]`: the fs root under `dir`, or the S3 bucket (metadata goes along with the blob store). */
function storageSection(deployment: Deployment, dir: string, store: AngosExtras['store']): string {
  if (typeof deployment === 'string') {
    const rootDir = store !== undefined && 'rootDir' in store ? store.rootDir : join(dir, 'data');
    return `[blob_store.fs]\nroot_dir = "${rootDir}"`;
  }
  const keyPrefix = store !== undefined && 'keyPrefix' in store ? store.keyPrefix : `bench-${Date.now()}`;
  return [
    '[blob_store.s3]',
    `endpoint = "${deployment.endpoint}"`,
    `region = "${deployment.region}"`,
    `bucket = "${deployment.bucket}"`,
    `access_key_id = "${deployment.accessKeyId}"`,
    `secret_key = "${deployment.secretAccessKey}"`,
    `key_prefix = "${keyPrefix}"`,
  ].join('\n');
}

export async function startAngos(deployment: Deployment, extras: AngosExtras = {}): Promise<Subject> {
  const split = deployment === 'split';
  const withCacheService = split && extras.pullThroughCache === true;
  const withWorker = deployment === 'fs' && extras.replicationWorker === true;
  const dir = await mkdtemp(join(tmpdir(), 'angos-bench-'));
  const port = await freePort();
  const apiPort = await freePort();
  const cachePort = await freePort();
  const token = randomBytes(24).toString('hex');
  const workerPort = await freePort();
  const redis = withCacheService || withWorker ? await startRedisServer() : undefined;
  // The `angos` command as users run it, with the Node flags it ships with.
  const angos = angosLauncher();
  const children: ChildProcess[] = [];
  const stop = () => stopAll(children, dir, redis?.stop);
  try {
    const config = join(dir, 'config.toml');
    await writeFile(
      config,
      [
        `[server]\nbind_address = "127.0.0.1"\nport = ${port}`,
        storageSection(deployment, dir, extras.store),
        redis
          ? `[metadata_store.fs]\nroot_dir = "${join(dir, 'data')}"\n[metadata_store.fs.lock_strategy.redis]\nurl = "${redis.url}"\nttl = 10`
          : '',
        '[global.access_policy]\ndefault = "allow"',
        `[auth.identity.bench]\nusername = "${BENCH_USER.username}"\npassword = "${BENCH_USER.hash}"`,
        split
          ? `[services]\nregistry_api_url = "http://127.0.0.1:${apiPort}"\ninternal_token = "${token}"`
          : '',
        withCacheService ? `pull_through_cache_url = "http://127.0.0.1:${cachePort}"` : '',
        withWorker ? '[global.job_queue]\npending_refresh_interval_secs = 5' : '',
        extras.toml ?? '',
      ].join('\n'),
    );
    if (split) {
      children.push(launch(angos, ['-c', config, 'registry-api', '--listen', `127.0.0.1:${apiPort}`]));
      await waitForPort(apiPort);
      if (withCacheService) {
        children.push(
          launch(angos, ['-c', config, 'pull-through-cache', '--listen', `127.0.0.1:${cachePort}`]),
        );
        await waitForPort(cachePort);
      }
      children.push(launch(angos, ['-c', config, 'gateway']));
    } else {
      const workers = extras.workers === undefined ? [] : ['--workers', String(extras.workers)];
      children.push(launch(angos, ['-c', config, 'server', ...workers]));
    }
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url, children);
    if (withWorker) {
      const listen = `127.0.0.1:${workerPort}`;
      children.push(launch(angos, ['-c', config, 'worker', '--queue', 'replication', '--listen', listen]));
      await waitForPort(workerPort);
    }
    return {
      name: split ? 'angos-split' : typeof deployment === 'string' ? 'angos' : 'angos-s3',
      url,
      host: `127.0.0.1:${port}`,
      pids: children.map((child) => child.pid!),
      configPath: config,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`port ${port}: not listening after 20 s`);
}

export interface DistributionOptions {
  /** `proxy: remoteurl:`: distribution's pull-through mode, in front of this registry. */
  readonly proxyOf?: string;
  /** Appends the access log (distribution writes it to stdout) to this file, to count requests. */
  readonly accessLogPath?: string;
  /** The s3 storage driver on this bucket (the run's RGW, beside angos-s3) instead of the filesystem. */
  readonly s3?: S3Endpoint;
  /**
   * `rootdirectory`: a directory written beforehand (fs), or the key prefix on the bucket (s3;
   * default `distribution-bench-<time>`, apart from angos-s3's `bench-<time>`). A given one is
   * left in place when the subject stops.
   */
  readonly rootDirectory?: string;
}

/**
 * distribution's s3 driver (2.8) on an S3-compatible endpoint: `regionendpoint` also switches it
 * to path-style requests (what RGW on 127.0.0.1 needs; 2.8 has no `forcepathstyle` key), and its
 * scheme (http) wins over `secure`. Blob GETs are redirected to a presigned RGW URL (the default:
 * `redirect.disable` is false), as angos-s3 redirects them (`enable_blob_redirect`, default true).
 */
function distributionS3Storage(s3: S3Endpoint, rootDirectory: string): string[] {
  return [
    '  s3:',
    `    accesskey: ${s3.accessKeyId}`,
    `    secretkey: ${s3.secretAccessKey}`,
    `    region: ${s3.region}`,
    `    regionendpoint: ${s3.endpoint}`,
    `    bucket: ${s3.bucket}`,
    `    rootdirectory: /${rootDirectory}`,
    '    secure: false',
    '    v4auth: true',
  ];
}

/** CNCF distribution 2.8 (Debian's docker-registry) on fs (or `options.s3`), configured as plainly as possible. */
export async function startDistribution(options: DistributionOptions = {}): Promise<Subject> {
  const dir = await mkdtemp(join(tmpdir(), 'distribution-bench-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  const storage =
    options.s3 === undefined
      ? ['  filesystem:', `    rootdirectory: ${options.rootDirectory ?? join(dir, 'data')}`]
      : distributionS3Storage(options.s3, options.rootDirectory ?? `distribution-bench-${Date.now()}`);
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      `    disabled: ${options.accessLogPath === undefined}`,
      'storage:',
      ...storage,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(options.proxyOf === undefined ? [] : ['proxy:', `  remoteurl: ${options.proxyOf}`]),
      '',
    ].join('\n'),
  );
  // It reads REGISTRY_* variables as configuration overrides, and its AWS SDK reads AWS_* (an
  // AWS_CA_BUNDLE makes the s3 driver panic at start: its HTTP transport cannot take one); the
  // configuration file says everything, so keep the environment out.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_') && !key.startsWith('AWS_')),
  );
  const accessLog = options.accessLogPath === undefined ? undefined : await open(options.accessLogPath, 'a');
  const children = [launch('docker-registry', ['serve', config], env, accessLog?.fd)];
  // The child has its own copy of the descriptor.
  await accessLog?.close();
  return readySubject(options.s3 === undefined ? 'distribution' : 'distribution-s3', port, children, dir);
}

/** The subject of one server's `children` on `port`, once it answers; stopped (and `dir` removed) if it does not. */
async function readySubject(
  name: string,
  port: number,
  children: ChildProcess[],
  dir: string,
): Promise<Subject> {
  const stop = () => stopAll(children, dir);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, children);
  } catch (error) {
    await stop();
    throw error;
  }
  return { name, url, host: `127.0.0.1:${port}`, pids: children.map((c) => c.pid!), stop };
}

/**
 * The Node flags of the `angos` launcher (services/cli/bin/angos) and of services/cli/src/heap-growth.ts,
 * given to the Node floor so that it differs from angos by the registry's code alone.
 */
const ANGOS_NODE_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=100'];

/**
 * The bare node:http server of node-floor.ts on `threads` threads: what Node itself takes under the
 * same load (bench-threads). Run by the benchmark's own Node.
 */
export async function startNodeFloor(threads: number): Promise<Subject> {
  const dir = await mkdtemp(join(tmpdir(), 'node-floor-bench-'));
  const port = await freePort();
  const script = fileURLToPath(new URL('./node-floor.js', import.meta.url));
  const children = [
    launch(process.execPath, [...ANGOS_NODE_FLAGS, script, String(port), dir, String(threads)]),
  ];
  return readySubject('node-floor', port, children, dir);
}
