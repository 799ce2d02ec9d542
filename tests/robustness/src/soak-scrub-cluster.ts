/**
 * The registries the scrub soak runs against, one per setup of issue 2.5's "safe online" item:
 * - `fs-memory`: one `angos server` on a directory with the default memory lock, scrub a second
 *   process beside it: the single-node setup that scrubs online. The memory lock excludes within
 *   one process only, so each repairing `angos scrub` hands its run to the server (services/cli
 *   scrub-handoff.ts), which runs it over its own registry, link cache and locks;
 * - `fs-single`: the same with the Redis lock: scrub runs in its own process, taking Redis locks;
 * - `fs-redis`: two `angos server` replicas on one directory with the Redis lock (a real
 *   redis-server), scrub taking the same Redis locks;
 * - `s3`: two replicas on S3 (Ceph RGW) with the S3 lock.
 * Every setup has the same retention rule (the 3 most recently pushed tags of each namespace) and
 * a short gc grace period, so retention deletes and garbage collection race the pushes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cliEntry,
  freePort,
  OutputTail,
  type RedisServer,
  startRedisServer,
  terminate,
  track,
} from '@angos/test-support';
import type { S3Location } from './s3-toml.js';

export const SCRUB_SOAK_SETUPS = ['fs-memory', 'fs-single', 'fs-redis', 's3'] as const;
export type ScrubSoakSetup = (typeof SCRUB_SOAK_SETUPS)[number];

export interface ClusterOptions {
  readonly setup: ScrubSoakSetup;
  /** Required for `s3`. */
  readonly s3?: S3Location | undefined;
  /** `[gc] grace_period_secs`: also how long retention spares a fresh push. */
  readonly gracePeriodSecs: number;
  /** Tags retention keeps per namespace: `top_pushed(keep)`. */
  readonly keep: number;
}

export interface Replica {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  readonly output: OutputTail;
  /** Scrub runs handed off to this replica (its `scrub handed off` log lines). */
  handoffs(): number;
}

export interface Cluster {
  readonly replicas: readonly Replica[];
  /** The configuration every replica and every scrub run reads. */
  readonly configPath: string;
  /** Replicas that exited while they should be serving. */
  dead(): string[];
  /** The tail of every replica's output, for a failure report. */
  logs(): string;
  /** Stops every replica, Redis, and removes the working directory. */
  stop(): Promise<void>;
}

const REDIS_LOCK_TTL_SECS = 5;
const S3_LOCK_TTL_SECS = 9;

function commonConfig(options: ClusterOptions): string {
  return [
    '[server]',
    'bind_address = "127.0.0.1"',
    '',
    '[global]',
    // With the default (true), a push slower than the grace period is acknowledged over a layer
    // gc reclaimed meanwhile (the content "stays unreadable until it is pushed"): with a 2 s grace
    // on a loaded machine that is every slow push. Refused instead, the soak judges the protocol.
    'allow_missing_manifest_references = false',
    '',
    '[global.access_policy]',
    'default = "allow"',
    '',
    '[global.retention_policy]',
    `rules = ["top_pushed(${options.keep})"]`,
    '',
    // The servers collect nothing themselves: every retention delete and gc pass is scrub's.
    '[gc]',
    `grace_period_secs = ${options.gracePeriodSecs}`,
    'interval_secs = 0',
    '',
  ].join('\n');
}

function fsConfig(root: string, lock: string): string {
  return [
    '[blob_store.fs]',
    `root_dir = ${JSON.stringify(root)}`,
    '',
    '[metadata_store.fs]',
    `root_dir = ${JSON.stringify(root)}`,
    lock,
  ].join('\n');
}

function s3Config(s3: S3Location): string {
  // Blobs and metadata under prefixes of their own, fresh per run, in the shared test bucket.
  const run = `soak-scrub-${randomUUID().slice(0, 8)}`;
  const connection = (prefix: string) =>
    [
      `access_key_id = ${JSON.stringify(s3.accessKeyId)}`,
      `secret_key = ${JSON.stringify(s3.secretAccessKey)}`,
      `endpoint = ${JSON.stringify(s3.endpoint)}`,
      `bucket = ${JSON.stringify(s3.bucket)}`,
      `region = ${JSON.stringify(s3.region)}`,
      `key_prefix = ${JSON.stringify(`${run}/${prefix}`)}`,
    ].join('\n');
  return [
    '[blob_store.s3]',
    connection('blobs'),
    '',
    '[metadata_store.s3]',
    connection('meta'),
    '',
    '[metadata_store.s3.lock_strategy.s3]',
    `ttl_secs = ${S3_LOCK_TTL_SECS}`,
    'max_retries = 1000',
    '',
  ].join('\n');
}

async function startReplica(name: string, configPath: string): Promise<Replica> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [cliEntry(), '-c', configPath, 'server', '--listen', `127.0.0.1:${port}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  track(child);
  const output = new OutputTail(16 * 1024 * 1024);
  let handoffs = 0;
  let partial = '';
  const watch = (chunk: Buffer) => {
    output.write(chunk);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.includes('"message":"scrub handed off"')) handoffs++;
  };
  child.stdout!.on('data', watch);
  child.stderr!.on('data', watch);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`replica ${name} exited at startup:\n${output}`);
    if (Date.now() > deadline) {
      await terminate(child);
      throw new Error(`replica ${name} did not answer in 60 s:\n${output}`);
    }
    const status = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) })
      .then(async (reply) => {
        await reply.arrayBuffer();
        return reply.status;
      })
      .catch(() => undefined);
    if (status !== undefined && status < 500) return { name, url, child, output, handoffs: () => handoffs };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const work = await mkdtemp(join(tmpdir(), `angos-soak-scrub-${options.setup}-`));
  const configPath = join(work, 'config.toml');
  const root = join(work, 'data');
  let redis: RedisServer | undefined;
  const replicas: Replica[] = [];
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await Promise.all(replicas.map((replica) => terminate(replica.child)));
    await redis?.stop();
    await rm(work, { recursive: true, force: true });
  };
  try {
    let storage: string;
    let count: number;
    switch (options.setup) {
      case 'fs-memory':
        // No lock strategy: the default memory lock.
        storage = fsConfig(root, '');
        count = 1;
        break;
      case 'fs-single':
      case 'fs-redis':
        redis = await startRedisServer();
        storage = fsConfig(
          root,
          [
            '',
            '[metadata_store.fs.lock_strategy.redis]',
            `url = "${redis.url}"`,
            `ttl = ${REDIS_LOCK_TTL_SECS}`,
            'key_prefix = "soak-scrub"',
            '',
          ].join('\n'),
        );
        count = options.setup === 'fs-single' ? 1 : 2;
        break;
      case 's3':
        if (!options.s3) throw new Error('the s3 setup needs an S3 server');
        storage = s3Config(options.s3);
        count = 2;
        break;
    }
    await writeFile(configPath, `${commonConfig(options)}\n${storage}`);
    for (let index = 0; index < count; index++)
      replicas.push(await startReplica(String.fromCharCode(97 + index), configPath));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    replicas,
    configPath,
    dead: () =>
      stopping
        ? []
        : replicas
            .filter((replica) => replica.child.exitCode !== null || replica.child.signalCode !== null)
            .map((replica) => replica.name),
    logs: () => replicas.map((replica) => `--- replica ${replica.name}\n${replica.output}`).join('\n'),
    stop,
  };
}
