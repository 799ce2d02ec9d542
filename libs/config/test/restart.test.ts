import { describe, expect, it } from 'vitest';
import { type Config, parseConfig, restartRequiredChanges } from '../src/index.js';
import { S3_CONNECTION } from './helpers.js';

function config(server: string, rest = ''): Config {
  return parseConfig(`[server]\n${server}\n[blob_store.fs]\nroot_dir = "/d"\n${rest}`).config;
}

const ADDRESS = 'bind_address = "127.0.0.1"';
const TLS = '[server.tls]\nserver_certificate_bundle = "/c"\nserver_private_key = "/k"\n';
const TRACING = (rate: number) =>
  `[observability.tracing]\nendpoint = "http://127.0.0.1:4318"\nsampling_rate = ${rate}\n`;
const REDIS = (ttl: number) => `[metadata_store.fs.lock_strategy.redis]\nurl = "redis://r"\nttl = ${ttl}\n`;

describe('restartRequiredChanges', () => {
  it('is empty for hot-reloadable changes', () => {
    expect(
      restartRequiredChanges(
        config(ADDRESS),
        config(`${ADDRESS}\nquery_timeout = 10`, '[global]\nmax_blob_size = "1GiB"\n[ui]\nenabled = true\n'),
      ),
    ).toEqual([]);
  });

  it.each([
    ['server.bind_address', config(ADDRESS), config('bind_address = "0.0.0.0"')],
    ['server.port', config(ADDRESS), config(`${ADDRESS}\nport = 9000`)],
    ['server.workers', config(ADDRESS), config(`${ADDRESS}\nworkers = 2`)],
    ['server.tls', config(ADDRESS), config(ADDRESS, TLS)],
    ['server.tls', config(ADDRESS, TLS), config(ADDRESS)],
    ['observability.tracing.sampling_rate', config(ADDRESS, TRACING(0.1)), config(ADDRESS, TRACING(0.5))],
    ['observability.tracing', config(ADDRESS), config(ADDRESS, TRACING(0.5))],
    ['metadata_store.fs.lock_strategy', config(ADDRESS), config(ADDRESS, REDIS(10))],
    ['metadata_store.fs.lock_strategy', config(ADDRESS, REDIS(10)), config(ADDRESS, REDIS(20))],
    ['metadata_store', config(ADDRESS), config(ADDRESS, `[metadata_store.s3]\n${S3_CONNECTION}`)],
  ])('reports %s', (key, previous, next) => {
    expect(restartRequiredChanges(previous, next)).toEqual([key]);
  });

  it('does not report a TLS certificate path change (certificates reload live)', () => {
    const other = TLS.replace('/c', '/c2');
    expect(restartRequiredChanges(config(ADDRESS, TLS), config(ADDRESS, other))).toEqual([]);
  });

  it('reports a blob store backend change, and the metadata store that follows it', () => {
    const fs = config(ADDRESS);
    const s3 = parseConfig(`[server]\n${ADDRESS}\n[blob_store.s3]\n${S3_CONNECTION}`).config;
    expect(restartRequiredChanges(fs, s3)).toEqual(['blob_store', 'metadata_store']);
  });

  it('lists several keys in a stable order', () => {
    expect(restartRequiredChanges(config(ADDRESS), config('bind_address = "::"\nport = 1', TLS))).toEqual([
      'server.bind_address',
      'server.port',
      'server.tls',
    ]);
  });
});
