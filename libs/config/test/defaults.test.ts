import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/index.js';
import { BASE, parseWith, S3_BASE, S3_CONNECTION } from './helpers.js';

describe('documented defaults', () => {
  it('fills every section of a minimal configuration', () => {
    const { config, warnings } = parseConfig(BASE);
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      server: {
        bind_address: '127.0.0.1',
        port: 8000,
        query_timeout: 3600,
        query_timeout_grace_period: 60,
      },
      global: {
        max_concurrent_requests: 64,
        max_concurrent_cache_jobs: 4,
        max_concurrent_replication_jobs: 4,
        max_manifest_size: 5 * 1024 * 1024,
        max_blob_size: 100 * 1024 ** 3,
        update_pull_time: false,
        enable_blob_redirect: true,
        enable_manifest_redirect: true,
        immutable_tags: false,
        immutable_tags_exclusions: [],
        allow_missing_manifest_references: true,
        event_webhooks: [],
        access_policy: { default: 'deny', rules: [] },
        retention_policy: { rules: [] },
      },
      cache: {},
      blob_store: { fs: { root_dir: '/var/lib/angos', sync_to_disk: false } },
      metadata_store: { fs: { root_dir: '/var/lib/angos', sync_to_disk: false, lock_strategy: 'memory' } },
      auth: {
        identity: {},
        oidc: {},
        webhook: {},
        password_verify_concurrency: 2,
        password_verify_queue: 100,
        failed_auth_limit: 10,
        failed_auth_window_secs: 60,
      },
      repository: {},
      event_webhook: {},
      observability: {},
      ui: { enabled: false, name: 'Angos' },
      services: {},
      gc: { grace_period_secs: 3600, interval_secs: 3600 },
    });
    // Optional options stay absent rather than present-and-undefined.
    expect(Object.hasOwn(config.global, 'job_queue')).toBe(false);
    expect(Object.hasOwn(config.server, 'tls')).toBe(false);
  });

  it('fills the S3 blob store defaults', () => {
    const { config } = parseConfig(S3_BASE);
    expect(config.blob_store.s3).toEqual({
      access_key_id: 'key',
      secret_key: 'secret',
      endpoint: 'http://127.0.0.1:9000',
      bucket: 'registry',
      region: 'us-east-1',
      max_attempts: 3,
      operation_timeout_secs: 900,
      operation_attempt_timeout_secs: 300,
      multipart_part_size: 50 * 1024 * 1024,
      multipart_copy_threshold: 5_000_000_000,
      multipart_copy_chunk_size: 100_000_000,
      multipart_copy_jobs: 4,
      multipart_uniform_parts: false,
    });
  });

  it('fills [global.job_queue], policies and lock tables when they are present but empty', () => {
    const { config } = parseConfig(`${S3_BASE}
[global.job_queue]
[metadata_store.s3]
${S3_CONNECTION}
[metadata_store.s3.lock_strategy.s3]
`);
    expect(config.global.job_queue).toEqual({
      pending_refresh_interval_secs: 15,
      pending_ready_horizon_secs: 600,
    });
    expect(config.metadata_store.s3?.lock_strategy).toEqual({
      s3: {
        ttl_secs: 30,
        max_retries: 100,
        retry_delay_ms: 50,
        max_hold_secs: 300,
        operation_timeout_secs: 15,
        operation_attempt_timeout_secs: 4,
        max_attempts: 2,
      },
    });
    expect(config.metadata_store.s3?.link_cache_ttl).toBe(30);
    expect(config.metadata_store.s3?.access_time_debounce_secs).toBe(60);
  });

  it('fills the Redis lock defaults', () => {
    const { config } = parseWith(`
[metadata_store.fs.lock_strategy.redis]
url = "redis://127.0.0.1:6379"
ttl = 10
`);
    expect(config.metadata_store.fs?.lock_strategy).toEqual({
      redis: { url: 'redis://127.0.0.1:6379', ttl: 10, max_retries: 100, retry_delay_ms: 10 },
    });
  });

  it('fills the OIDC defaults per provider', () => {
    const { config } = parseWith(`
[auth.oidc.github-actions]
provider = "github"

[auth.oidc.corp]
provider = "generic"
issuer = "https://id.example.com"
`);
    expect(config.auth.oidc['github-actions']).toEqual({
      provider: 'github',
      issuer: 'https://token.actions.githubusercontent.com',
      jwks_uri: 'https://token.actions.githubusercontent.com/.well-known/jwks',
      jwks_refresh_interval: 3600,
      clock_skew_tolerance: 60,
      allowed_algorithms: ['RS256'],
    });
    expect(config.auth.oidc.corp).toEqual({
      provider: 'generic',
      issuer: 'https://id.example.com',
      jwks_refresh_interval: 3600,
      clock_skew_tolerance: 60,
      allowed_algorithms: ['RS256'],
    });
  });

  it('fills webhook, repository, upstream and downstream defaults', () => {
    const { config } = parseWith(`
[auth.webhook.authz]
url = "https://authz.example.com/check"
timeout_ms = 500

[event_webhook.audit]
url = "https://audit.example.com/hook"
policy = "async"
events = ["manifest.push"]

[repository."docker-io"]
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"

[[repository."docker-io".downstream]]
name = "mirror"
url = "http://127.0.0.1:8001/team"
`);
    expect(config.auth.webhook.authz).toEqual({
      url: 'https://authz.example.com/check',
      timeout_ms: 500,
      forward_headers: [],
      cache_ttl: 60,
    });
    expect(config.event_webhook.audit).toEqual({
      url: 'https://audit.example.com/hook',
      policy: 'async',
      events: ['manifest.push'],
      timeout_ms: 5000,
      max_retries: 0,
    });
    expect(config.repository['docker-io']).toEqual({
      upstream: [{ url: 'https://registry-1.docker.io', max_redirect: 5 }],
      upstream_tag_check_interval_secs: 60,
      downstream: [
        {
          name: 'mirror',
          url: 'http://127.0.0.1:8001/team',
          mode: 'event+reconcile',
          namespace_filter: [],
          max_concurrent_pushes: 4,
          prune: false,
          max_redirect: 5,
        },
      ],
    });
  });

  it('leaves repository overrides absent so the global values apply', () => {
    const { config } = parseWith('[repository."team"]\n');
    const team = config.repository.team!;
    expect(team.immutable_tags).toBeUndefined();
    expect(team.immutable_tags_exclusions).toBeUndefined();
    expect(team.access_policy).toBeUndefined();
    expect(team.retention_policy).toBeUndefined();
  });

  it('fills repository policies like the global ones when given', () => {
    const { config } = parseWith(`
[repository."team".access_policy]
rules = ["identity.username != ''"]
[repository."team".retention_policy]
`);
    expect(config.repository.team?.access_policy).toEqual({
      default: 'deny',
      rules: ["identity.username != ''"],
    });
    expect(config.repository.team?.retention_policy).toEqual({ rules: [] });
  });
});

describe('metadata_store resolution', () => {
  it('mirrors a filesystem blob store, including sync_to_disk', () => {
    const { config } = parseConfig(`
[server]
bind_address = "0.0.0.0"
[blob_store.fs]
root_dir = "/data"
sync_to_disk = true
`);
    expect(config.metadata_store).toEqual({
      fs: { root_dir: '/data', sync_to_disk: true, lock_strategy: 'memory' },
    });
  });

  it('mirrors an S3 blob store with the connection options only', () => {
    const { config } = parseConfig(
      `${S3_BASE}key_prefix = "blobs/"\nmax_attempts = 5\nmultipart_copy_jobs = 8\n`,
    );
    expect(config.metadata_store).toEqual({
      s3: {
        access_key_id: 'key',
        secret_key: 'secret',
        endpoint: 'http://127.0.0.1:9000',
        bucket: 'registry',
        region: 'us-east-1',
        key_prefix: 'blobs/',
        max_attempts: 5,
        operation_timeout_secs: 900,
        operation_attempt_timeout_secs: 300,
        link_cache_ttl: 30,
        access_time_debounce_secs: 60,
        lock_strategy: 'memory',
      },
    });
  });

  it('uses the blob store root_dir when [metadata_store.fs] leaves it out', () => {
    const { config } = parseWith(`
[metadata_store.fs]
sync_to_disk = true
`);
    expect(config.metadata_store.fs).toEqual({
      root_dir: '/var/lib/angos',
      sync_to_disk: true,
      lock_strategy: 'memory',
    });
  });

  it('keeps an explicit metadata store of another backend', () => {
    const { config } = parseConfig(`${S3_BASE}
[metadata_store.fs]
root_dir = "/meta"
`);
    expect(config.metadata_store.fs?.root_dir).toBe('/meta');
    expect(config.blob_store.s3?.bucket).toBe('registry');
  });
});

describe('redirect fallback', () => {
  it.each([
    ['', true, true],
    ['enable_redirect = false', false, false],
    ['enable_redirect = false\nenable_blob_redirect = true', true, false],
    ['enable_redirect = true\nenable_manifest_redirect = false', true, false],
    ['enable_blob_redirect = false', false, true],
  ])('[global] %j → blob %s, manifest %s', (body, blob, manifest) => {
    const { config } = parseWith(`[global]\n${body}\n`);
    expect(config.global.enable_blob_redirect).toBe(blob);
    expect(config.global.enable_manifest_redirect).toBe(manifest);
  });

  it('warns that enable_redirect is deprecated', () => {
    const { warnings } = parseWith('[global]\nenable_redirect = false\n');
    expect(warnings).toEqual([
      {
        path: 'global.enable_redirect',
        message: 'deprecated; use enable_blob_redirect and enable_manifest_redirect',
      },
    ]);
  });
});

describe('legacy access_policy.default_allow', () => {
  it.each([
    [true, 'allow'],
    [false, 'deny'],
  ])('default_allow = %s means default = %j, with a deprecation warning', (allow, expected) => {
    const { config, warnings } = parseWith(`[global.access_policy]\ndefault_allow = ${allow}\n`);
    expect(config.global.access_policy.default).toBe(expected);
    expect(warnings).toEqual([
      {
        path: 'global.access_policy.default_allow',
        message: 'deprecated; use default = "allow" or default = "deny"',
      },
    ]);
  });

  it('also works in a repository policy', () => {
    const { config, warnings } = parseWith('[repository."team".access_policy]\ndefault_allow = true\n');
    expect(config.repository.team?.access_policy?.default).toBe('allow');
    expect(warnings.map((w) => w.path)).toEqual(['repository."team".access_policy.default_allow']);
  });
});

describe('values', () => {
  it('turns integers into numbers and keeps explicit values', () => {
    const { config } = parseConfig(`
[server]
bind_address = "::1"
port = 0
query_timeout = 9007199254740991

[blob_store.fs]
root_dir = "./data"

[observability.tracing]
endpoint = "http://127.0.0.1:4318"
sampling_rate = 1
`);
    expect(config.server.port).toBe(0);
    expect(config.server.query_timeout).toBe(Number.MAX_SAFE_INTEGER);
    expect(config.observability.tracing).toEqual({ endpoint: 'http://127.0.0.1:4318', sampling_rate: 1 });
    expect(config.blob_store.fs?.root_dir).toBe('./data');
  });

  it('accepts host names and IPv6 addresses as bind_address', () => {
    for (const address of ['localhost', '0.0.0.0', '::', 'registry.internal']) {
      const { config } = parseConfig(
        `[server]\nbind_address = "${address}"\n[blob_store.fs]\nroot_dir = "/d"\n`,
      );
      expect(config.server.bind_address).toBe(address);
    }
  });

  it('accepts a repository named like an Object.prototype member', () => {
    const { config } = parseWith('[repository."constructor"]\nimmutable_tags = true\n');
    expect(Object.hasOwn(config.repository, 'constructor')).toBe(true);
    const name: string = 'constructor';
    expect(config.repository[name]?.immutable_tags).toBe(true);
  });
});
