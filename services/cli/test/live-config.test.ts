import { parseConfig } from '@angos/config';
import { describe, expect, it } from 'vitest';
import { createLiveConfig, retainKeys } from '../src/index.js';

const load = (text: string) => parseConfig(text).config;

const before = load(`
[server]
bind_address = "127.0.0.1"
port = 8000
[blob_store.fs]
root_dir = "/var/a"
[global.access_policy]
default = "deny"
`);

const after = load(`
[server]
bind_address = "0.0.0.0"
port = 9000
query_timeout = 10
[blob_store.fs]
root_dir = "/var/b"
[global.access_policy]
default = "allow"
`);

describe('retainKeys', () => {
  it('keeps restart-only values and takes everything else', () => {
    const merged = retainKeys(before, after, ['server.port', 'server.bind_address']);
    expect(merged.server.port).toBe(8000);
    expect(merged.server.bind_address).toBe('127.0.0.1');
    expect(merged.server.query_timeout).toBe(10);
    expect(merged.global.access_policy.default).toBe('allow');
    expect(merged.blob_store.fs?.root_dir).toBe('/var/b');
    // The reloaded object itself is left untouched.
    expect(after.server.port).toBe(9000);
  });

  it('restores a whole section and removes what the old one did not have', () => {
    const withTls = structuredClone(after);
    withTls.server.tls = { server_certificate_bundle: 'a.pem', server_private_key: 'a.key' };
    const merged = retainKeys(before, withTls, ['server.tls', 'blob_store']);
    expect(merged.server.tls).toBeUndefined();
    expect(merged.blob_store).toEqual(before.blob_store);
  });

  it('returns the reloaded configuration as is when nothing needs a restart', () => {
    expect(retainKeys(before, after, [])).toBe(after);
  });
});

describe('createLiveConfig', () => {
  it('serves the initial configuration, then each applied reload', () => {
    const live = createLiveConfig(before);
    expect(live.get()).toBe(before);
    live.apply(after, ['server.port']);
    expect(live.get().global.access_policy.default).toBe('allow');
    expect(live.get().server.port).toBe(8000);
  });
});
