import { parseConfig } from '@angos/config';
import { describe, expect, it } from 'vitest';
import { configOf } from '../src/config.js';
import { eventually } from '../src/eventually.js';
import { captureLogger } from '../src/log-capture.js';
import { s3Connection, s3Table, s3TestStores } from '../src/s3-test-stores.js';

const S3 = {
  endpoint: 'http://127.0.0.1:9000',
  region: 'us-east-1',
  bucket: 'test-bucket',
  accessKeyId: 'key "id"',
  secretAccessKey: 'secret',
};

describe('eventually', () => {
  it('resolves once the check holds', async () => {
    let calls = 0;
    await eventually(async () => ++calls === 3, { intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it('rejects naming what never came', async () => {
    await expect(eventually(() => false, { timeoutMs: 20, what: 'the fill' })).rejects.toThrow(
      'the fill not met in time',
    );
  });
});

describe('captureLogger', () => {
  it('reads back what the logger wrote, as text and as records, at its filter', async () => {
    const { logger, output, records } = captureLogger('info');
    logger.debug('hidden');
    logger.info('shown', { key: 'value' });
    await eventually(() => output() !== '');
    expect(records()).toEqual([expect.objectContaining({ message: 'shown', key: 'value' })]);
    expect(output()).not.toContain('hidden');
  });
});

describe('the S3 test set-up', () => {
  it('writes a configuration table that angos reads back as the endpoint and prefix', () => {
    const toml = `[server]\nbind_address = "127.0.0.1"\n${s3Table('blob_store.s3', S3, 'some/prefix', { region: 'eu' })}`;
    expect(parseConfig(toml).config.blob_store.s3).toMatchObject({
      access_key_id: 'key "id"',
      secret_key: 'secret',
      endpoint: S3.endpoint,
      bucket: S3.bucket,
      region: 'eu',
      key_prefix: 'some/prefix',
    });
  });

  it('gives both stores the same connection under the prefix', () => {
    const stores = s3TestStores(S3, 'p');
    expect(stores.blob).toMatchObject({ kind: 's3', ...s3Connection(S3, 'p') });
    expect(stores.metadata).toMatchObject({ kind: 's3', ...s3Connection(S3, 'p'), linkCacheTtlSecs: 0 });
  });

  it('configOf appends to the smallest valid configuration', () => {
    expect(configOf('[global]\nmax_concurrent_cache_jobs = 3\n').global.max_concurrent_cache_jobs).toBe(3);
  });
});
