import { describe, expect, it } from 'vitest';
import { parseConfig, UNSUPPORTED_FEATURES, unsupportedFeatures } from '../src/index.js';
import { ARGON2ID_HASH, BASE, parseWith, S3_BASE, S3_CONNECTION } from './helpers.js';

describe('unsupportedFeatures', () => {
  it('is empty for the local filesystem registry with an allow-all policy', () => {
    const { config } = parseWith(`
[global]
immutable_tags = true
immutable_tags_exclusions = ["^latest$"]
[global.access_policy]
default = "allow"
[repository."team"]
immutable_tags = false
[services]
registry_api_url = "http://127.0.0.1:8001"
internal_token = "0123456789abcdef"
`);
    expect(unsupportedFeatures(config)).toEqual([]);
  });

  it('lists every turned-on feature by key', () => {
    const { config } = parseConfig(`
[server]
bind_address = "0.0.0.0"
[server.tls]
server_certificate_bundle = "/tls/server.crt"
server_private_key = "/tls/server.key"

[global]
authorization_webhook = "authz"
event_webhooks = ["audit"]
[global.job_queue]
[global.access_policy]
rules = ["identity.username != ''"]
[global.retention_policy]
rules = ["image.pushed_at < now() - days(30)"]

[cache.redis]
url = "redis://127.0.0.1:6379"

[blob_store.s3]
${S3_CONNECTION}
[metadata_store.fs]
root_dir = "/meta"
[metadata_store.fs.lock_strategy.redis]
url = "redis://127.0.0.1:6379"
ttl = 10

[auth.identity.alice]
username = "alice"
password = "${ARGON2ID_HASH}"
[auth.oidc.github]
provider = "github"
[auth.webhook.authz]
url = "https://authz.example.com"
timeout_ms = 100

[repository."docker-io"]
authorization_webhook = "authz"
event_webhooks = ["audit"]
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
[repository."x"]
[[repository."x".downstream]]
name = "mirror"
url = "http://mirror.example.com"
[repository."x".access_policy]
rules = ["true"]
[repository."x".retention_policy]
rules = ["true"]

[event_webhook.audit]
url = "https://audit.example.com"
policy = "async"
events = ["manifest.push"]

[observability.tracing]
endpoint = "http://127.0.0.1:4318"
sampling_rate = 0.1

[ui]
enabled = true
`);
    expect(unsupportedFeatures(config)).toEqual([
      'global.event_webhooks',
      'repository."docker-io".event_webhooks',
      'event_webhook.audit',
      'observability.tracing',
    ]);
  });

  it('supports pull-through caches (repository upstreams)', () => {
    const { config } = parseWith(`
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
`);
    expect(unsupportedFeatures(config)).toEqual([]);
  });

  it('supports S3 blob and metadata stores and every lock strategy', () => {
    const { config } = parseConfig(
      `${S3_BASE}[metadata_store.s3]\n${S3_CONNECTION}[metadata_store.s3.lock_strategy.s3]\n`,
    );
    expect(unsupportedFeatures(config)).toEqual([]);
    const redis = parseConfig(
      `${S3_BASE}[metadata_store.s3]\n${S3_CONNECTION}[metadata_store.s3.lock_strategy.redis]\nurl = "redis://127.0.0.1:6379"\nttl = 10\n`,
    );
    expect(unsupportedFeatures(redis.config)).toEqual([]);
    expect(UNSUPPORTED_FEATURES.filter((feature) => feature.includes('lock_strategy'))).toEqual([]);
    expect(unsupportedFeatures(parseConfig(S3_BASE).config)).toEqual([]);
    expect(UNSUPPORTED_FEATURES).not.toContain('blob_store.s3');
    expect(UNSUPPORTED_FEATURES).not.toContain('metadata_store.s3');
  });

  it('does not count empty policies, empty webhook lists or a disabled UI', () => {
    const { config } = parseConfig(`${BASE}
[global.access_policy]
rules = []
[repository."team"]
authorization_webhook = ""
event_webhooks = []
[repository."team".access_policy]
default = "allow"
[ui]
enabled = false
name = "Mine"
`);
    expect(unsupportedFeatures(config)).toEqual([]);
  });

  it('supports retention rules (compiled and checked by @angos/scrub)', () => {
    const { config } = parseConfig(
      `${BASE}[global.retention_policy]\nrules = ["true"]\n[repository."x".retention_policy]\nrules = ["true"]\n`,
    );
    expect(unsupportedFeatures(config)).toEqual([]);
  });

  it('keeps one row per feature', () => {
    expect(new Set(UNSUPPORTED_FEATURES).size).toBe(UNSUPPORTED_FEATURES.length);
  });

  it('supports TLS, the token cache, authentication, access policy rules and authorization webhooks', () => {
    const { config } = parseConfig(`
[server]
bind_address = "0.0.0.0"
[server.tls]
server_certificate_bundle = "/tls/server.crt"
server_private_key = "/tls/server.key"
client_ca_bundle = "/tls/ca.crt"
[global]
authorization_webhook = "authz"
[global.access_policy]
rules = ["identity.username != ''"]
[cache.redis]
url = "redis://127.0.0.1:6379"
[blob_store.fs]
root_dir = "/data"
[auth.identity.alice]
username = "alice"
password = "${ARGON2ID_HASH}"
[auth.oidc.github]
provider = "github"
[auth.webhook.authz]
url = "https://authz.example.com"
timeout_ms = 100
[repository."x"]
authorization_webhook = "authz"
[repository."x".access_policy]
rules = ["true"]
`);
    expect(unsupportedFeatures(config)).toEqual([]);
    for (const feature of [
      'server.tls',
      'cache.redis',
      'auth.identity.<name>',
      'auth.oidc.<name>',
      'auth.webhook.<name>',
    ]) {
      expect(UNSUPPORTED_FEATURES).not.toContain(feature);
    }
  });
});
