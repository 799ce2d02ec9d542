import { describe, expect, it } from 'vitest';
import { lockBackend, parseConfig } from '../src/index.js';
import { BASE, expectIssues, parseWith, S3_BASE, S3_CONNECTION } from './helpers.js';

const S3_META = `${S3_BASE}[metadata_store.s3]\n${S3_CONNECTION}`;

describe('lock_strategy string form', () => {
  it('accepts "memory" on both backends', () => {
    expect(
      parseWith('[metadata_store.fs]\nlock_strategy = "memory"\n').config.metadata_store.fs?.lock_strategy,
    ).toBe('memory');
    expect(parseConfig(`${S3_META}lock_strategy = "memory"\n`).config.metadata_store.s3?.lock_strategy).toBe(
      'memory',
    );
  });

  it('rejects bare "s3" and tells to use the table form', () => {
    expectIssues(`${S3_META}lock_strategy = "s3"\n`, [
      'metadata_store.s3.lock_strategy: the bare string "s3" is not supported; use the table form [metadata_store.s3.lock_strategy.s3] (an empty table accepts the defaults)',
    ]);
  });

  it('rejects bare "redis" and tells to use the table form', () => {
    expectIssues(`${BASE}[metadata_store.fs]\nlock_strategy = "redis"\n`, [
      'metadata_store.fs.lock_strategy: the bare string "redis" is not supported; use the table form [metadata_store.fs.lock_strategy.redis] with url and ttl',
    ]);
  });

  it('rejects "s3" on a filesystem metadata store', () => {
    expectIssues(`${BASE}[metadata_store.fs]\nlock_strategy = "s3"\n`, [
      'metadata_store.fs.lock_strategy: S3 locking is not supported for the filesystem metadata store; use "memory" or [metadata_store.fs.lock_strategy.redis]',
    ]);
  });

  it('rejects other values', () => {
    expectIssues(`${BASE}[metadata_store.fs]\nlock_strategy = "etcd"\n`, [
      'metadata_store.fs.lock_strategy: expected "memory" or a table [metadata_store.fs.lock_strategy.redis]',
    ]);
    expectIssues(`${S3_META}lock_strategy = 1\n`, [
      'metadata_store.s3.lock_strategy: expected "memory" or a table [metadata_store.s3.lock_strategy.s3] or [metadata_store.s3.lock_strategy.redis]',
    ]);
  });
});

describe('lock_strategy table form', () => {
  it('accepts [metadata_store.s3.lock_strategy.s3] with custom settings', () => {
    const { config } = parseConfig(
      `${S3_META}[metadata_store.s3.lock_strategy.s3]\nttl_secs = 30\nmax_retries = 100\nretry_delay_ms = 50\n`,
    );
    const strategy = config.metadata_store.s3!.lock_strategy;
    expect(lockBackend(strategy)).toBe('s3');
  });

  it('accepts Redis on either backend', () => {
    const redis = 'url = "rediss://cache.example.com:6380"\nttl = 10\nkey_prefix = "locks"\n';
    const fs = parseWith(`[metadata_store.fs.lock_strategy.redis]\n${redis}`).config.metadata_store.fs!;
    const s3 = parseConfig(`${S3_META}[metadata_store.s3.lock_strategy.redis]\n${redis}`).config
      .metadata_store.s3!;
    expect(fs.lock_strategy).toEqual(s3.lock_strategy);
    expect(lockBackend(fs.lock_strategy)).toBe('redis');
  });

  it('rejects an S3 lock on a filesystem metadata store', () => {
    expectIssues(`${BASE}[metadata_store.fs.lock_strategy.s3]\n`, [
      'metadata_store.fs.lock_strategy.s3: S3 locking is not supported for the filesystem metadata store; use "memory" or [metadata_store.fs.lock_strategy.redis]',
    ]);
  });

  it('rejects two strategies and an empty table', () => {
    expectIssues(
      `${S3_META}[metadata_store.s3.lock_strategy.s3]\n[metadata_store.s3.lock_strategy.redis]\nurl = "redis://r"\nttl = 1\n`,
      ['metadata_store.s3.lock_strategy: configure only one lock strategy (found s3 and redis)'],
    );
    expectIssues(`${S3_META}lock_strategy = {}\n`, [
      'metadata_store.s3.lock_strategy: expected "memory" or a table [metadata_store.s3.lock_strategy.s3] or [metadata_store.s3.lock_strategy.redis]',
    ]);
    expectIssues(`${BASE}[metadata_store.fs.lock_strategy.memory]\n`, [
      'metadata_store.fs.lock_strategy.memory: unknown option',
    ]);
  });

  it('requires url and ttl for Redis, and a non-zero ttl', () => {
    expectIssues(`${BASE}[metadata_store.fs.lock_strategy.redis]\n`, [
      'metadata_store.fs.lock_strategy.redis.url: required',
      'metadata_store.fs.lock_strategy.redis.ttl: required',
    ]);
    expectIssues(`${BASE}[metadata_store.fs.lock_strategy.redis]\nurl = "redis://r"\nttl = 0\n`, [
      'metadata_store.fs.lock_strategy.redis.ttl: must be greater than zero',
    ]);
  });
});

describe('lock_strategy.s3 bounds', () => {
  const s3Lock = (body: string) => `${S3_META}[metadata_store.s3.lock_strategy.s3]\n${body}\n`;

  it.each([
    ['ttl_secs = 8', 'metadata_store.s3.lock_strategy.s3.ttl_secs: must be at least 9'],
    ['max_hold_secs = 9', 'metadata_store.s3.lock_strategy.s3.max_hold_secs: must be at least 10'],
    ['retry_delay_ms = 0', 'metadata_store.s3.lock_strategy.s3.retry_delay_ms: must be at least 1'],
    [
      'ttl_secs = 60\nmax_hold_secs = 59',
      'metadata_store.s3.lock_strategy.s3.max_hold_secs: must be at least ttl_secs (60)',
    ],
    ['max_attempts = 0', 'metadata_store.s3.lock_strategy.s3.max_attempts: must be at least 1'],
    [
      'operation_timeout_secs = 0',
      'metadata_store.s3.lock_strategy.s3.operation_timeout_secs: must be greater than zero',
    ],
    ['max_retries = -1', 'metadata_store.s3.lock_strategy.s3.max_retries: expected integer 0..4294967295'],
  ])('%s', (body, issue) => {
    expectIssues(s3Lock(body), [issue]);
  });

  it('accepts the boundary values', () => {
    const { config } = parseConfig(
      s3Lock(
        'ttl_secs = 10\nmax_hold_secs = 10\nretry_delay_ms = 1\noperation_attempt_timeout_secs = 1\nmax_attempts = 1',
      ),
    );
    expect(config.metadata_store.s3?.lock_strategy).toMatchObject({
      s3: { ttl_secs: 10, max_hold_secs: 10, retry_delay_ms: 1 },
    });
  });

  it('warns when attempt timeout × attempts reaches the heartbeat interval', () => {
    const { warnings } = parseConfig(s3Lock('ttl_secs = 9\nmax_hold_secs = 10'));
    expect(warnings).toEqual([
      {
        path: 'metadata_store.s3.lock_strategy.s3',
        message:
          'operation_attempt_timeout_secs × max_attempts (8s) is not below the heartbeat interval ttl_secs / 3 (3s); one stuck request can outlast a heartbeat',
      },
    ]);
    expect(parseConfig(s3Lock('')).warnings).toEqual([]);
  });

  it('warns about access_time_debounce_secs = 0 with the S3 lock', () => {
    const { warnings } = parseConfig(
      `${S3_META}access_time_debounce_secs = 0\n[metadata_store.s3.lock_strategy.s3]\n`,
    );
    expect(warnings.map((w) => w.path)).toEqual(['metadata_store.s3.access_time_debounce_secs']);
  });
});

describe('capabilities', () => {
  it('must grant the conditional writes lock_strategy.s3 needs when declared', () => {
    expectIssues(
      `${S3_META}[metadata_store.s3.capabilities]\nput_if_none_match = true\nput_if_match = false\n[metadata_store.s3.lock_strategy.s3]\n`,
      [
        'metadata_store.s3.capabilities.put_if_match: must be true for lock_strategy.s3 (or omit [capabilities] to probe at startup)',
      ],
    );
  });

  it('may all be false with the memory lock', () => {
    const { config } = parseConfig(
      `${S3_META}lock_strategy = "memory"\n[metadata_store.s3.capabilities]\nput_if_none_match = false\nput_if_match = false\ndelete_if_match = false\n`,
    );
    expect(config.metadata_store.s3?.capabilities).toEqual({
      put_if_none_match: false,
      put_if_match: false,
      delete_if_match: false,
    });
  });
});

describe('legacy [metadata_store.<backend>.redis]', () => {
  it('is read as lock_strategy.redis with a deprecation warning', () => {
    const { config, warnings } = parseWith('[metadata_store.fs.redis]\nurl = "redis://r"\nttl = 10\n');
    expect(config.metadata_store.fs?.lock_strategy).toEqual({
      redis: { url: 'redis://r', ttl: 10, max_retries: 100, retry_delay_ms: 10 },
    });
    expect(warnings).toEqual([
      { path: 'metadata_store.fs.redis', message: 'deprecated; use [metadata_store.fs.lock_strategy.redis]' },
    ]);
  });

  it('conflicts with an explicit lock_strategy', () => {
    expectIssues(
      `${S3_META}lock_strategy = "memory"\n[metadata_store.s3.redis]\nurl = "redis://r"\nttl = 10\n`,
      ['metadata_store.s3.redis: conflicts with lock_strategy; remove redis'],
    );
  });
});
