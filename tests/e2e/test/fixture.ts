import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AngosInstance,
  type AngosMode,
  installCommand as aptInstallCommand,
  containersEnv,
  inCi,
  OciClient,
  RGW_PROGRAMS,
  type RunResult,
  run,
  runOk,
  type S3Endpoint,
  startAngos,
} from '@angos/test-support';
import { afterAll, beforeAll, beforeEach, inject } from 'vitest';
import { clientPath, installCommand, installed } from './clients.js';

/** Both process layouts. */
export const MODES: readonly AngosMode[] = ['server', 'split'];

/** Where a deployment keeps blobs and metadata. */
export type Storage = 'fs' | 's3' | 's3 blobs + fs metadata';

export interface Deployment {
  readonly mode: AngosMode;
  readonly storage: Storage;
  /** How test names show it. */
  readonly label: string;
  /** `--workers` of each process (default 1). */
  readonly workers?: number;
}

/**
 * Every deployment each client scenario runs against: both process layouts on fs, all-S3, and
 * the split storage set-up (blobs on S3, metadata on fs). On S3, blob and manifest GETs answer 307
 * to presigned URLs on the test's Ceph RGW, so clients follow redirects for real.
 */
export const DEPLOYMENTS: readonly Deployment[] = [
  { mode: 'server', storage: 'fs', label: 'server on fs' },
  { mode: 'split', storage: 'fs', label: 'split on fs' },
  { mode: 'server', storage: 's3', label: 'server on S3' },
  { mode: 'split', storage: 's3 blobs + fs metadata', label: 'split on S3 blobs + fs metadata' },
];

function s3Table(section: string, s3: S3Endpoint, prefix: string): string {
  return [
    `[${section}]`,
    `access_key_id = ${JSON.stringify(s3.accessKeyId)}`,
    `secret_key = ${JSON.stringify(s3.secretAccessKey)}`,
    `endpoint = ${JSON.stringify(s3.endpoint)}`,
    `bucket = ${JSON.stringify(s3.bucket)}`,
    `region = ${JSON.stringify(s3.region)}`,
    `key_prefix = ${JSON.stringify(prefix)}`,
  ].join('\n');
}

/** The storage tables of a deployment; '' for fs (startAngos writes its default fs table). */
function storageConfig(deployment: Deployment, work: string): string {
  if (deployment.storage === 'fs') return '';
  const s3 = inject('s3');
  if (!s3) throw new Error('no S3 server for this run (see the global setup)');
  const prefix = `e2e-${randomUUID().slice(0, 8)}/`;
  if (deployment.storage === 's3') return s3Table('blob_store.s3', s3, prefix);
  return `${s3Table('blob_store.s3', s3, prefix)}\n[metadata_store.fs]\nroot_dir = ${JSON.stringify(join(work, 'metadata'))}`;
}

/**
 * The deployments this run can start: all of them, except the S3 ones when no RGW could start
 * (which the global setup allows outside CI only).
 */
export function deployments(): Deployment[] {
  if (inject('s3') !== null) return [...DEPLOYMENTS];
  console.warn(`skipping the S3 deployments: Ceph RGW not installed (${aptInstallCommand(RGW_PROGRAMS)})`);
  return DEPLOYMENTS.filter((deployment) => deployment.storage === 'fs');
}

/**
 * Whether to skip the tests of a client: only when its binary is missing and CI is not set (the
 * warning names the install command). Under CI a missing client fails the suite's set-up.
 */
export function skipWithoutClients(...clients: string[]): boolean {
  const missing = clients.filter((name) => !installed(name));
  if (missing.length === 0 || inCi()) return false;
  console.warn(
    `skipping ${clients.join('+')} tests: ${missing.join(', ')} not installed (${howToInstall(missing)}; under CI=true they fail)`,
  );
  return true;
}

/**
 * Whether to skip tests that need root (a private dockerd): only when this process is not root
 * and CI is not set; under CI they run, and fail where root is missing.
 */
export function skipUnlessRoot(what: string): boolean {
  if (process.getuid?.() === 0 || inCi()) return false;
  console.warn(`skipping ${what} tests: they need root (under CI=true they fail)`);
  return true;
}

const howToInstall = (missing: readonly string[]): string =>
  [...new Set(missing.map(installCommand))].join(', ');

function requireClients(clients: readonly string[]): void {
  const missing = clients.filter((name) => !installed(name));
  if (missing.length > 0) {
    throw new Error(`client(s) not installed: ${missing.join(', ')} (${howToInstall(missing)})`);
  }
}

/**
 * Where the other clients keep their configuration, all inside `work`: docker, oras, crane and
 * cosign read credentials from $DOCKER_CONFIG, regctl its hosts from $REGCTL_CONFIG, cosign its
 * TUF cache from $TUF_ROOT. The PATH puts the pinned Go clients first (clients.ts).
 */
function clientConfigEnv(work: string): NodeJS.ProcessEnv {
  return {
    PATH: clientPath(),
    DOCKER_CONFIG: join(work, 'docker-config'),
    REGCTL_CONFIG: join(work, 'regctl', 'config.json'),
    TUF_ROOT: join(work, 'sigstore'),
  };
}

export interface Registry {
  angos: AngosInstance;
  client: OciClient;
  /** Environment for the clients (containersEnv, clientConfigEnv), confined to this suite's directory. */
  env: NodeJS.ProcessEnv;
  /** `docker://127.0.0.1:<port>/<repo>:<tag>` (or `@<digest>` when the reference is a digest). */
  ref(repo: string, reference: string): string;
  /** `127.0.0.1:<port>/<repo>:<tag>`, the form podman and buildah take. */
  image(repo: string, reference: string): string;
  /** A new, not yet existing path inside this suite's directory. */
  path(name: string): string;
  /**
   * A seed no earlier test used: new content, new digests (skopeo as root keeps a blob-info cache
   * and skips or mounts blobs it has seen before).
   */
  seed(): string;
  /** Runs a client with this suite's environment; rejects with its output unless it succeeds. */
  ok(cmd: string, ...args: string[]): Promise<RunResult>;
  /** Like `ok`, in the working directory `cwd` (oras names files after the paths it is given). */
  okIn(cwd: string, cmd: string, ...args: string[]): Promise<RunResult>;
  /** Runs a client with this suite's environment and returns the result whatever the status. */
  attempt(cmd: string, ...args: string[]): Promise<RunResult>;
}

export interface RegistryOptions {
  /**
   * More configuration, read when the registry starts (in the suite's beforeAll, after the
   * beforeAll hooks declared before `useRegistry`): a pull-through upstream started by one of those.
   */
  readonly config?: () => string;
  /** More environment for the registry processes (`OTEL_*`). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Starts Angos in `mode` for the enclosing describe block, with a scratch directory and a client
 * environment; prints the registry's log when a test fails; stops everything afterwards.
 */
export function useRegistry(
  deployment: Deployment,
  clients: readonly string[],
  options: RegistryOptions = {},
): Registry {
  const { mode } = deployment;
  let work = '';
  let counter = 0;
  const registry = {} as Registry;
  beforeAll(async () => {
    requireClients(clients);
    // Lowercase on purpose: podman names an image pulled from `oci:<dir>` after the path.
    work = join(tmpdir(), `angos-e2e-${mode}-${randomUUID().slice(0, 8)}`);
    await mkdir(work);
    // Debug logs: what a failing test prints (see beforeEach) should show the requests.
    const angos = await startAngos({
      mode,
      config: [storageConfig(deployment, work), options.config?.() ?? ''].join('\n'),
      env: { RUST_LOG: 'debug', ...options.env },
      workers: deployment.workers,
    });
    const env = {
      ...(await containersEnv(join(work, 'containers'), { insecureRegistries: [angos.host] })),
      ...clientConfigEnv(work),
    };
    const ref = (repo: string, reference: string) =>
      `${angos.host}/${repo}${reference.includes(':') ? '@' : ':'}${reference}`;
    Object.assign(registry, {
      angos,
      client: new OciClient(angos.url),
      env,
      ref: (repo: string, reference: string) => `docker://${ref(repo, reference)}`,
      image: ref,
      path: (name: string) => join(work, `${++counter}-${name}`),
      seed: () => randomUUID(),
      ok: (cmd: string, ...args: string[]) => runOk(cmd, args, { env, timeoutMs: 45_000 }),
      okIn: (cwd: string, cmd: string, ...args: string[]) =>
        runOk(cmd, args, { env, cwd, timeoutMs: 45_000 }),
      attempt: (cmd: string, ...args: string[]) => run(cmd, args, { env, timeoutMs: 45_000 }),
    } satisfies Registry);
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      const logs = registry.angos?.logs() ?? '';
      console.error(`angos ${deployment.label} log (last 20000 characters):\n${logs.slice(-20_000)}`);
    });
  });
  afterAll(async () => {
    await registry.angos?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });
  return registry;
}
