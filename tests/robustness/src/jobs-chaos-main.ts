#!/usr/bin/env node
/**
 * `pnpm chaos [--jobs N] [--kills K] [--seed S] [--backends fs-redis,s3-s3,s3-redis] [--restart-redis] [--restart-rgw]`:
 * the long form of the job queue chaos run: N jobs (1,000) drained by 3 worker processes, each
 * SIGKILLed K times (20), on every backend named. It starts redis-server and a Ceph RGW (or uses
 * ANGOS_TEST_S3_ENDPOINT) as the backends need. --restart-redis restarts Redis (every lock lost)
 * and --restart-rgw restarts radosgw (2 s down, data kept) a third of the way in.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type RedisServer,
  type S3TestServer,
  startRedisServer,
  startS3TestServer,
} from '@angos/test-support';
import type { JobLockSpec, JobStoreSpec } from './jobs-backend.js';
import { type JobsChaosOptions, type JobsChaosReport, jobsChaos, problems, summarize } from './jobs-chaos.js';

const BACKENDS = ['fs-redis', 's3-s3', 's3-redis'] as const;
type Backend = (typeof BACKENDS)[number];

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    kills: { type: 'string', default: '20' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    backends: { type: 'string', default: BACKENDS.join(',') },
    'restart-redis': { type: 'boolean', default: false },
    'restart-rgw': { type: 'boolean', default: false },
  },
});
const backends = (values.backends ?? '').split(',') as Backend[];
const unknown = backends.filter((name) => !BACKENDS.includes(name));
if (unknown.length > 0)
  throw new Error(`unknown backends ${unknown.join(', ')}; known: ${BACKENDS.join(', ')}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

let redis: RedisServer | undefined;
let s3: S3TestServer | undefined;

const storeOutage = (store: JobStoreSpec) => values['restart-rgw'] === true && store.kind === 's3';

/** --restart-redis and --restart-rgw: a third of the way in, restart what the backend uses. */
function midRunFor(lock: JobLockSpec, store: JobStoreSpec): JobsChaosOptions['midRun'] {
  const actions: (() => Promise<void>)[] = [];
  if (values['restart-redis'] && lock.kind === 'redis')
    actions.push(() => (redis as RedisServer).restart(1000));
  if (values['restart-rgw'] && (store.kind === 's3' || lock.kind === 's3')) {
    const restart = s3?.restartGateway;
    if (restart === undefined) throw new Error('--restart-rgw needs the Ceph RGW this command starts');
    actions.push(() => restart(2000));
  }
  if (actions.length === 0) return undefined;
  return {
    afterStarts: Math.floor(Number(values.jobs) / 3),
    action: async () => {
      for (const action of actions) await action();
    },
    storeOutage: storeOutage(store),
  };
}
const reports: JobsChaosReport[] = [];
try {
  if (backends.some((name) => name.endsWith('redis'))) redis = await startRedisServer();
  if (backends.some((name) => name.startsWith('s3'))) {
    log('starting Ceph RGW');
    s3 = await startS3TestServer();
  }
  for (const backend of backends) {
    const dir = await mkdtemp(join(tmpdir(), 'angos-chaos-store-'));
    const keyPrefix = `chaos-${randomUUID()}`;
    const store: JobStoreSpec =
      backend === 'fs-redis'
        ? { kind: 'fs', rootDir: dir }
        : { kind: 's3', s3: s3 as S3TestServer, keyPrefix };
    const lock: JobLockSpec =
      backend === 's3-s3'
        ? { kind: 's3', s3: s3 as S3TestServer, keyPrefix, ttlSecs: 3 }
        : { kind: 'redis', url: (redis as RedisServer).url, keyPrefix, ttlSecs: 2 };
    try {
      const report = await jobsChaos({
        jobs: Number(values.jobs),
        killsPerWorker: Number(values.kills),
        seed: Number(values.seed),
        store,
        lock,
        drainTimeoutMs: 30 * 60_000,
        midRun: midRunFor(lock, store),
        log,
      });
      reports.push(report);
      process.stdout.write(`seed ${values.seed}: ${summarize(report)}\n`);
      for (const line of problems(report, { storeOutage: storeOutage(store) }))
        process.stdout.write(`  ${line}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
} finally {
  await redis?.stop();
  await s3?.stop();
}
const failed = reports.some(
  (report) =>
    problems(report, { storeOutage: values['restart-rgw'] && report.backend.startsWith('s3') }).length > 0,
);
process.exit(failed || reports.length < backends.length ? 1 : 0);
