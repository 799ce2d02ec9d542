import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseConfig } from '@angos/config';
import { createMetrics, silentLogger } from '@angos/observability';
import { type RedisServer, skipWithout, startRedisServer } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../src/errors.js';
import { createLocks } from '../src/open-storage.js';

const BASE = '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/tmp/angos-unused"\n';

const run = promisify(execFile);

let redis: RedisServer;
const pttl = async (key: string) =>
  Number((await run('redis-cli', ['-p', String(redis.port), 'PTTL', key])).stdout.trim());

const skipRedis = skipWithout('the Redis lock test', 'redis-server', 'redis-cli');

beforeAll(async () => {
  if (!skipRedis) redis = await startRedisServer();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

function deps() {
  return { logger: silentLogger, metrics: createMetrics({ defaultMetrics: false }) };
}

describe('createLocks', () => {
  it('builds the in-memory lock by default, counted under backend="memory"', async () => {
    const { config } = parseConfig(BASE);
    const d = deps();
    const locks = await createLocks(config, d);
    expect(locks.backend).toBe('memory');
    await locks.withLocks(['k'], async () => {});
    expect((await d.metrics.render()).body).toContain(
      'lock_acquisitions_total{backend="memory",result="success"} 1',
    );
    await locks.close();
  });

  it.skipIf(skipRedis)(
    'builds the Redis lock from [metadata_store.fs.lock_strategy.redis], with its key_prefix and ttl',
    async () => {
      const { config } = parseConfig(
        `${BASE}[metadata_store.fs.lock_strategy.redis]\nurl = "${redis.url}"\nttl = 4\nkey_prefix = "cli-test"\n`,
      );
      const d = deps();
      const locks = await createLocks(config, d);
      try {
        expect(locks.backend).toBe('redis');
        await locks.withLocks(['tag:ns:latest'], async () => {
          const ttl = await pttl('cli-test:tag:ns:latest');
          expect(ttl).toBeGreaterThan(3000);
          expect(ttl).toBeLessThanOrEqual(4000);
        });
        expect((await d.metrics.render()).body).toContain(
          'lock_acquisitions_total{backend="redis",result="success"} 1',
        );
      } finally {
        await locks.close();
      }
    },
  );

  it('refuses to start, naming the key, when the S3 lock cannot check its provider', async () => {
    const { config } = parseConfig(`${BASE}[metadata_store.s3]
access_key_id = "a"
secret_key = "b"
endpoint = "http://127.0.0.1:1"
bucket = "locks"
region = "us-east-1"
[metadata_store.s3.lock_strategy.s3]
operation_attempt_timeout_secs = 1
max_attempts = 1
`);
    const error = await createLocks(config, deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).message).toMatch(
      /^metadata_store\.s3\.lock_strategy\.s3: S3 lock check failed/,
    );
  });
});
