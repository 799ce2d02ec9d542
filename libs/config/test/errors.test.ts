import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/index.js';
import { ARGON2ID_HASH, BASE, expectIssues, issuesOf, parseWith, S3_BASE, S3_CONNECTION } from './helpers.js';

describe('ConfigError', () => {
  it('collects every issue, not just the first, and lists them one per line', () => {
    let caught: unknown;
    try {
      parseConfig(`
[server]
bind_address = "127.0.0.1"
port = "8000"

[global]
foo = 1
max_blob_size = 0

[blob_store.fs]
root_dir = "/d"
`);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.issues).toEqual([
      { path: 'server.port', message: 'expected integer 0..65535' },
      { path: 'global.foo', message: 'unknown option' },
      { path: 'global.max_blob_size', message: 'must be greater than zero' },
    ]);
    expect(error.message).toBe(
      [
        'server.port: expected integer 0..65535',
        'global.foo: unknown option',
        'global.max_blob_size: must be greater than zero',
      ].join('\n'),
    );
  });

  it('names line and column of a TOML syntax error', () => {
    let caught: unknown;
    try {
      parseConfig('[server]\nbind_address = "127.0.0.1"\nport = = 8000\n', 'deploy/config.toml');
    } catch (error) {
      caught = error;
    }
    const error = caught as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.source).toBe('deploy/config.toml');
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({ path: 'deploy/config.toml', line: 3, column: 8 });
    expect(error.message).toBe('deploy/config.toml: syntax error at line 3, column 8: invalid value');
  });

  it('reports a redefined table as a syntax error', () => {
    expect(issuesOf('[server]\nbind_address = "a"\n[server]\nport = 1\n')).toEqual([
      'config: syntax error at line 3, column 2: trying to redefine an already defined table or value',
    ]);
  });
});

describe('required options and sections', () => {
  it('requires [server] and a blob store', () => {
    expectIssues('', ['server: required', 'blob_store: required']);
  });

  it('requires server.bind_address', () => {
    expectIssues('[server]\n[blob_store.fs]\nroot_dir = "/d"\n', ['server.bind_address: required']);
  });

  it('names the array index of a missing key', () => {
    expectIssues(`${BASE}[[repository."team".upstream]]\nmax_redirect = 1\n`, [
      'repository."team".upstream[0].url: required',
    ]);
  });

  it('requires every S3 connection option', () => {
    expectIssues('[server]\nbind_address = "a"\n[blob_store.s3]\nbucket = "b"\n', [
      'blob_store.s3.access_key_id: required',
      'blob_store.s3.secret_key: required',
      'blob_store.s3.endpoint: required',
      'blob_store.s3.region: required',
    ]);
  });

  it('requires the tracing options when [observability.tracing] is present', () => {
    expectIssues(`${BASE}[observability.tracing]\n`, [
      'observability.tracing.endpoint: required',
      'observability.tracing.sampling_rate: required',
    ]);
  });

  it('requires both TLS files', () => {
    expectIssues(`${BASE}[server.tls]\nclient_ca_bundle = "/ca.pem"\n`, [
      'server.tls.server_certificate_bundle: required',
      'server.tls.server_private_key: required',
    ]);
  });
});

describe('unknown keys', () => {
  it.each([
    ['top level', `${BASE}[bogus]\nx = 1\n`, 'bogus: unknown option'],
    ['in [global]', `${BASE}[global]\nfoo = 1\n`, 'global.foo: unknown option'],
    [
      'in [server.tls]',
      `${BASE}[server.tls]\nserver_certificate_bundle = "/c"\nserver_private_key = "/k"\ncert = "/x"\n`,
      'server.tls.cert: unknown option',
    ],
    ['in [blob_store]', `${BASE}[blob_store.gcs]\n`, 'blob_store.gcs: unknown option'],
    [
      'in a lock table',
      `${BASE}[metadata_store.fs.lock_strategy.redis]\nurl = "redis://r"\nttl = 1\nttl_secs = 2\n`,
      'metadata_store.fs.lock_strategy.redis.ttl_secs: unknown option',
    ],
    [
      'in a named table',
      `${BASE}[auth.identity.alice]\nusername = "alice"\npassword = "${ARGON2ID_HASH}"\nrole = "admin"\n`,
      'auth.identity.alice.role: unknown option',
    ],
    [
      'in an array of tables',
      `${BASE}[[repository."team".upstream]]\nurl = "https://r.example.com"\ntoken = "x"\n`,
      'repository."team".upstream[0].token: unknown option',
    ],
    [
      'in a repository policy',
      `${BASE}[repository."team".retention_policy]\nkeep = 3\n`,
      'repository."team".retention_policy.keep: unknown option',
    ],
    [
      'in [services]',
      `${BASE}[services]\ngateway_url = "http://x"\n`,
      'services.gateway_url: unknown option',
    ],
  ])('%s', (_where, text, issue) => {
    expectIssues(text, [issue]);
  });

  it('quotes keys that are not bare identifiers', () => {
    expectIssues(`${BASE}[global]\n"max blob" = 1\n`, ['global."max blob": unknown option']);
  });

  it('hints when a blob-store-only option appears in [metadata_store.s3]', () => {
    expectIssues(`${S3_BASE}[metadata_store.s3]\n${S3_CONNECTION}multipart_part_size = "50MiB"\n`, [
      'metadata_store.s3.multipart_part_size: unknown option (multipart settings apply to [blob_store.s3] only)',
    ]);
  });
});

describe('type errors', () => {
  it.each([
    ['server.port', 'port = 70000', 'expected integer 0..65535'],
    ['server.port', 'port = -1', 'expected integer 0..65535'],
    ['server.port', 'port = 80.5', 'expected integer 0..65535'],
    ['server.port', 'port = "80"', 'expected integer 0..65535'],
    ['server.query_timeout', 'query_timeout = 9007199254740992', 'expected integer 0..9007199254740991'],
    ['server.query_timeout', 'query_timeout = 99999999999999999999', 'expected integer 0..9007199254740991'],
  ])('%s: %s', (path, line, message) => {
    expectIssues(`[server]\nbind_address = "127.0.0.1"\n${line}\n[blob_store.fs]\nroot_dir = "/d"\n`, [
      `${path}: ${message}`,
    ]);
  });

  it.each([
    ['update_pull_time = "yes"', 'global.update_pull_time: expected boolean'],
    ['authorization_webhook = 1', 'global.authorization_webhook: expected string'],
    ['event_webhooks = "hook"', 'global.event_webhooks: expected array of strings'],
    ['event_webhooks = [1]', 'global.event_webhooks[0]: expected string'],
    [
      'max_concurrent_cache_jobs = 2.5',
      'global.max_concurrent_cache_jobs: expected integer 0..9007199254740991',
    ],
    ['access_policy = "allow"', 'global.access_policy: expected table'],
    ['job_queue = 1', 'global.job_queue: expected table'],
  ])('[global] %s', (line, issue) => {
    expectIssues(`${BASE}[global]\n${line}\n`, [issue]);
  });

  it('rejects a bind_address that is neither an address nor a host name', () => {
    expectIssues('[server]\nbind_address = "not an address"\n[blob_store.fs]\nroot_dir = "/d"\n', [
      'server.bind_address: expected an IP address or host name',
    ]);
  });

  it('rejects sampling rates outside 0.0..1.0', () => {
    expectIssues(
      `${BASE}[observability.tracing]\nendpoint = "http://127.0.0.1:4318"\nsampling_rate = 1.5\n`,
      ['observability.tracing.sampling_rate: expected number 0.0..1.0'],
    );
  });

  it('rejects dates where strings are expected', () => {
    expectIssues(`${BASE}[ui]\nname = 1979-05-27\n`, ['ui.name: expected string']);
  });

  it('rejects access_policy.default values other than allow and deny', () => {
    expectIssues(`${BASE}[global.access_policy]\ndefault = "permit"\n`, [
      'global.access_policy.default: expected "allow" or "deny"',
    ]);
  });

  it('rejects default_allow together with default', () => {
    expectIssues(`${BASE}[global.access_policy]\ndefault = "deny"\ndefault_allow = true\n`, [
      'global.access_policy.default_allow: conflicts with default; remove default_allow',
    ]);
  });

  it('rejects empty CEL rules', () => {
    expectIssues(`${BASE}[global.access_policy]\nrules = ["true", " "]\n`, [
      'global.access_policy.rules[1]: must not be empty',
    ]);
  });

  it('rejects URLs with the wrong scheme', () => {
    expectIssues(`${BASE}[cache.redis]\nurl = "http://127.0.0.1:6379"\n`, [
      'cache.redis.url: expected redis or rediss URL',
    ]);
    expectIssues(`${BASE}[event_webhook.x]\nurl = "ftp://x"\npolicy = "async"\nevents = ["blob.push"]\n`, [
      'event_webhook.x.url: expected http or https URL',
    ]);
    expectIssues(`${BASE}[auth.webhook.x]\nurl = "not a url"\ntimeout_ms = 1\n`, [
      'auth.webhook.x.url: expected http or https URL',
    ]);
  });
});

describe('zero and bounds', () => {
  it.each([
    ['[server]', 'query_timeout = 0', 'server.query_timeout: must be greater than zero'],
    [
      '[server]',
      'query_timeout_grace_period = 0',
      'server.query_timeout_grace_period: must be greater than zero',
    ],
    ['[global]', 'max_manifest_size = 0', 'global.max_manifest_size: must be greater than zero'],
    ['[global]', 'max_blob_size = "0MiB"', 'global.max_blob_size: must be greater than zero'],
    ['[global]', 'max_concurrent_cache_jobs = 0', 'global.max_concurrent_cache_jobs: must be at least 1'],
    [
      '[global]',
      'max_concurrent_replication_jobs = 0',
      'global.max_concurrent_replication_jobs: must be greater than zero',
    ],
    ['[global]', 'max_concurrent_requests = 0', 'global.max_concurrent_requests: must be at least 1'],
    [
      '[global.job_queue]',
      'pending_refresh_interval_secs = 4',
      'global.job_queue.pending_refresh_interval_secs: must be at least 5',
    ],
    [
      '[auth]',
      'password_verify_concurrency = 0',
      'auth.password_verify_concurrency: must be greater than zero',
    ],
    [
      '[auth]',
      'password_verify_concurrency = 256',
      'auth.password_verify_concurrency: expected integer 0..255',
    ],
    ['[auth]', 'failed_auth_window_secs = 0', 'auth.failed_auth_window_secs: must be greater than zero'],
    ['[auth]', 'failed_auth_limit = -1', 'auth.failed_auth_limit: expected integer 0..4294967295'],
  ])('%s %s', (table, line, issue) => {
    const text =
      table === '[server]'
        ? `[server]\nbind_address = "127.0.0.1"\n${line}\n[blob_store.fs]\nroot_dir = "/d"\n`
        : `${BASE}${table}\n${line}\n`;
    const issues = issuesOf(text).filter((i) => !i.startsWith('global.job_queue: requires'));
    expect(issues).toEqual([issue]);
  });

  it('accepts a zero failed_auth_limit (no limit) and password_verify_queue (no waiting)', () => {
    const { config } = parseWith('[auth]\nfailed_auth_limit = 0\npassword_verify_queue = 0\n');
    expect(config.auth.failed_auth_limit).toBe(0);
    expect(config.auth.password_verify_queue).toBe(0);
  });

  it('accepts the smallest allowed values', () => {
    const { config } = parseWith(`
[global]
max_concurrent_cache_jobs = 1
max_concurrent_replication_jobs = 1
max_manifest_size = 1
[metadata_store.fs.lock_strategy.redis]
url = "redis://127.0.0.1"
ttl = 1
[global.job_queue]
pending_refresh_interval_secs = 5
`);
    expect(config.global.job_queue?.pending_refresh_interval_secs).toBe(5);
    expect(config.global.max_manifest_size).toBe(1);
  });

  it.each([
    ['multipart_part_size = "4MiB"', 'blob_store.s3.multipart_part_size: must be at least 5MiB'],
    ['multipart_copy_chunk_size = "6GiB"', 'blob_store.s3.multipart_copy_chunk_size: must be at most 5GiB'],
    ['multipart_copy_threshold = 0', 'blob_store.s3.multipart_copy_threshold: must be greater than zero'],
    ['multipart_copy_jobs = 0', 'blob_store.s3.multipart_copy_jobs: must be at least 1'],
    ['max_attempts = 0', 'blob_store.s3.max_attempts: must be at least 1'],
    ['max_attempts = 4294967296', 'blob_store.s3.max_attempts: expected integer 0..4294967295'],
    ['operation_timeout_secs = 0', 'blob_store.s3.operation_timeout_secs: must be greater than zero'],
    ['endpoint2 = 1', 'blob_store.s3.endpoint2: unknown option'],
  ])('[blob_store.s3] %s', (line, issue) => {
    expectIssues(`${S3_BASE}${line}\n`, [issue]);
  });

  it('rejects max_redirect above u8', () => {
    expectIssues(
      `${BASE}[[repository."team".upstream]]\nurl = "https://r.example.com"\nmax_redirect = 256\n`,
      ['repository."team".upstream[0].max_redirect: expected integer 0..255'],
    );
  });

  it('rejects max_concurrent_pushes = 0', () => {
    expectIssues(
      `${BASE}[[repository."team".downstream]]\nname = "d"\nurl = "http://d.example.com"\nmax_concurrent_pushes = 0\n`,
      ['repository."team".downstream[0].max_concurrent_pushes: must be at least 1'],
    );
  });
});

describe('blob store choice', () => {
  it('rejects an empty [blob_store]', () => {
    expectIssues('[server]\nbind_address = "a"\n[blob_store]\n', [
      'blob_store: expected [blob_store.fs] or [blob_store.s3]',
    ]);
  });

  it('rejects both backends, and still reports their own problems', () => {
    expectIssues(`${BASE}[blob_store.s3]\nbucket = "b"\n`, [
      'blob_store: configure only one of [blob_store.fs] or [blob_store.s3]',
      'blob_store.s3.access_key_id: required',
      'blob_store.s3.secret_key: required',
      'blob_store.s3.endpoint: required',
      'blob_store.s3.region: required',
    ]);
  });

  it('rejects both metadata backends', () => {
    expectIssues(`${BASE}[metadata_store.fs]\n[metadata_store.s3]\n${S3_CONNECTION}`, [
      'metadata_store: configure only one of [metadata_store.fs] or [metadata_store.s3]',
    ]);
  });

  it('requires metadata_store.fs.root_dir when the blob store is S3', () => {
    expectIssues(`${S3_BASE}[metadata_store.fs]\nsync_to_disk = true\n`, [
      'metadata_store.fs.root_dir: required when the blob store is not [blob_store.fs]',
    ]);
  });
});

describe('repositories', () => {
  it('rejects overlapping keys', () => {
    expectIssues(`${BASE}[repository."team"]\n[repository."team/app"]\n[repository."teamster"]\n`, [
      'repository."team/app": overlaps with repository."team"; repository keys must not be namespace prefixes of each other',
    ]);
  });

  it('reports overlaps even when an entry has other problems', () => {
    expectIssues(`${BASE}[repository."a/b"]\nimmutable_tags = 1\n[repository."a"]\n`, [
      'repository."a/b".immutable_tags: expected boolean',
      'repository."a/b": overlaps with repository."a"; repository keys must not be namespace prefixes of each other',
    ]);
  });

  it.each(['Team', 'team/', '/team', 'team//app', '-team', 'te am', 'team__-app', ''])(
    'rejects the invalid namespace %j',
    (key) => {
      expect(issuesOf(`${BASE}[repository.${JSON.stringify(key)}]\n`)).toEqual([
        `repository.${JSON.stringify(key)}: not a valid namespace (expected e.g. "team" or "team/app")`,
      ]);
    },
  );

  it.each(['team', 'team/app', 'a.b_c__d--e/f0', 'docker-io', 'x'])('accepts the namespace %j', (key) => {
    expect(Object.keys(parseWith(`[repository.${JSON.stringify(key)}]\n`).config.repository)).toEqual([key]);
  });

  it('compiles regexes at load and names the bad one', () => {
    const issues = issuesOf(`${BASE}
[global]
immutable_tags_exclusions = ["^latest$", "v[0-9"]
[repository."team"]
immutable_tags_exclusions = ["("]
[[repository."team".downstream]]
name = "d"
url = "http://d.example.com"
namespace_filter = ["*bad"]
[event_webhook.x]
url = "https://x.example.com"
policy = "async"
events = ["blob.push"]
repository_filter = ["a)"]
`);
    expect(issues.map((issue) => issue.slice(0, issue.indexOf(': invalid regex: ')))).toEqual([
      'global.immutable_tags_exclusions[1]',
      'repository."team".immutable_tags_exclusions[0]',
      'repository."team".downstream[0].namespace_filter[0]',
      'event_webhook.x.repository_filter[0]',
    ]);
  });

  it('rejects an upstream URL path that is not a namespace, and query strings', () => {
    expectIssues(
      `${BASE}
[[repository."team".upstream]]
url = "https://r.example.com/Team"
[[repository."team".upstream]]
url = "https://r.example.com/?x=1"
`,
      [
        'repository."team".upstream[0].url: path "Team" is not a valid namespace',
        'repository."team".upstream[1].url: must not have a query string or fragment',
      ],
    );
  });

  it('rejects an unknown downstream mode and names the choices', () => {
    expectIssues(
      `${BASE}[[repository."team".downstream]]\nname = "d"\nurl = "http://d.example.com"\nmode = "event"\n`,
      ['repository."team".downstream[0].mode: expected "event+reconcile", "event-only" or "reconcile-only"'],
    );
  });

  it.each(['event+reconcile', 'event-only', 'reconcile-only'])('accepts downstream mode %j', (mode) => {
    const { config } = parseWith(
      `[[repository."team".downstream]]\nname = "d"\nurl = "http://d.example.com"\nmode = "${mode}"\n`,
    );
    expect(config.repository.team?.downstream[0]?.mode).toBe(mode);
  });

  it('rejects duplicate downstream names', () => {
    expectIssues(
      `${BASE}
[[repository."team".downstream]]
name = "d"
url = "http://a.example.com"
[[repository."team".downstream]]
name = "d"
url = "http://b.example.com"
`,
      ['repository."team".downstream[1].name: duplicate downstream name "d"'],
    );
  });

  it.each(['upstream', 'downstream'])('requires client certificate and key together on %s', (kind) => {
    const name = kind === 'downstream' ? 'name = "d"\n' : '';
    expectIssues(
      `${BASE}[[repository."team".${kind}]]\n${name}url = "https://r.example.com"\nclient_certificate = "/c.pem"\n`,
      [`repository."team".${kind}[0].client_private_key: required when client_certificate is set`],
    );
    expectIssues(
      `${BASE}[[repository."team".${kind}]]\n${name}url = "https://r.example.com"\nclient_private_key = "/k.pem"\n`,
      [`repository."team".${kind}[0].client_certificate: required when client_private_key is set`],
    );
    expectIssues(
      `${BASE}[[repository."team".${kind}]]\n${name}url = "https://r.example.com"\nusername = "u"\n`,
      [`repository."team".${kind}[0].password: required when username is set`],
    );
  });
});

describe('webhooks', () => {
  const webhook = (extra: string) =>
    `${BASE}[auth.webhook.authz]\nurl = "https://authz.example.com"\ntimeout_ms = 100\n${extra}`;

  it('requires client_certificate_bundle and client_private_key together', () => {
    expectIssues(webhook('client_certificate_bundle = "/c.pem"\n'), [
      'auth.webhook.authz.client_private_key: required when client_certificate_bundle is set',
    ]);
    expectIssues(webhook('client_private_key = "/k.pem"\n'), [
      'auth.webhook.authz.client_certificate_bundle: required when client_private_key is set',
    ]);
    const { config } = parseConfig(
      webhook('client_certificate_bundle = "/c.pem"\nclient_private_key = "/k.pem"\n'),
    );
    expect(config.auth.webhook.authz?.client_private_key).toBe('/k.pem');
  });

  it('accepts basic_auth as a sub-table, and rejects it with bearer_token', () => {
    const { config } = parseConfig(
      webhook('[auth.webhook.authz.basic_auth]\nusername = "u"\npassword = "p"\n'),
    );
    expect(config.auth.webhook.authz?.basic_auth).toEqual({ username: 'u', password: 'p' });
    expectIssues(webhook('bearer_token = "t"\nbasic_auth = { username = "u", password = "p" }\n'), [
      'auth.webhook.authz.basic_auth: cannot be combined with bearer_token; choose one',
    ]);
  });

  it('validates forward_headers', () => {
    expectIssues(webhook('forward_headers = ["X-Request-Id", "bad header"]\n'), [
      'auth.webhook.authz.forward_headers[1]: invalid HTTP header name',
    ]);
  });

  it('requires url and timeout_ms', () => {
    expectIssues(`${BASE}[auth.webhook.authz]\n`, [
      'auth.webhook.authz.url: required',
      'auth.webhook.authz.timeout_ms: required',
    ]);
  });

  it('validates event webhooks: policy, events, empty token', () => {
    expectIssues(
      `${BASE}[event_webhook.x]\nurl = "https://x.example.com"\npolicy = "sometimes"\nevents = []\ntoken = ""\n`,
      [
        'event_webhook.x.policy: expected "required", "optional" or "async"',
        'event_webhook.x.events: must list at least one event type',
        'event_webhook.x.token: must not be empty',
      ],
    );
    expectIssues(
      `${BASE}[event_webhook.x]\nurl = "https://x.example.com"\npolicy = "required"\nevents = ["image.push"]\n`,
      [
        'event_webhook.x.events[0]: expected "manifest.push", "manifest.pull", "manifest.delete", "blob.push", "blob.pull", "tag.create" or "tag.delete"',
      ],
    );
  });

  it('rejects references to undefined webhooks', () => {
    expectIssues(
      `${BASE}
[global]
authorization_webhook = "authz"
event_webhooks = ["audit"]
[repository."team"]
authorization_webhook = "other"
event_webhooks = ["audit", "nope"]
[event_webhook.audit]
url = "https://audit.example.com"
policy = "async"
events = ["blob.push"]
`,
      [
        'global.authorization_webhook: unknown webhook "authz" (no [auth.webhook.authz])',
        'repository."team".authorization_webhook: unknown webhook "other" (no [auth.webhook.other])',
        'repository."team".event_webhooks[1]: unknown event webhook "nope" (no [event_webhook.nope])',
      ],
    );
  });

  it('lets a repository opt out of the global authorization webhook with ""', () => {
    const { config } = parseWith('[repository."team"]\nauthorization_webhook = ""\n');
    expect(config.repository.team?.authorization_webhook).toBe('');
  });
});

describe('auth', () => {
  it('requires provider on OIDC tables and issuer for generic providers', () => {
    expectIssues(`${BASE}[auth.oidc.x]\n`, ['auth.oidc.x.provider: required ("github" or "generic")']);
    expectIssues(`${BASE}[auth.oidc.x]\nprovider = "gitlab"\n`, [
      'auth.oidc.x.provider: expected "github" or "generic"',
    ]);
    expectIssues(`${BASE}[auth.oidc.x]\nprovider = "generic"\n`, ['auth.oidc.x.issuer: required']);
  });

  it('validates allowed_algorithms', () => {
    expectIssues(`${BASE}[auth.oidc.x]\nprovider = "github"\nallowed_algorithms = ["none"]\n`, [
      'auth.oidc.x.allowed_algorithms[0]: expected "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512" or "EdDSA"',
    ]);
    expectIssues(`${BASE}[auth.oidc.x]\nprovider = "github"\nallowed_algorithms = []\n`, [
      'auth.oidc.x.allowed_algorithms: must list at least one algorithm',
    ]);
  });

  it('rejects an invalid Argon2 hash, naming the key', () => {
    expectIssues(
      `${BASE}[auth.identity.admin]\nusername = "admin"\npassword = "$argon2id$v=19$m=19456,t=2,p=1$..."\n`,
      [
        'auth.identity.admin.password: invalid Argon2 hash: expected a PHC string such as $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>; generate one with `angos argon`',
      ],
    );
    expectIssues(`${BASE}[auth.identity.admin]\nusername = "admin"\npassword = "hunter2"\n`, [
      'auth.identity.admin.password: invalid Argon2 hash: expected a PHC string such as $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>; generate one with `angos argon`',
    ]);
  });

  it('rejects duplicate usernames and usernames with a colon', () => {
    expectIssues(
      `${BASE}
[auth.identity.a]
username = "alice"
password = "${ARGON2ID_HASH}"
[auth.identity.b]
username = "alice"
password = "${ARGON2ID_HASH}"
`,
      ['auth.identity.b.username: duplicates the username of auth.identity.a'],
    );
    expectIssues(`${BASE}[auth.identity.c]\nusername = "c:d"\npassword = "${ARGON2ID_HASH}"\n`, [
      'auth.identity.c.username: must not contain ":"',
    ]);
  });
});

describe('[global.job_queue] lock requirement', () => {
  it('rejects the durable queue with the in-process memory lock', () => {
    expectIssues(`${BASE}[global.job_queue]\n`, [
      'global.job_queue: requires a shared lock strategy ([metadata_store.fs.lock_strategy.redis]); the in-process "memory" lock cannot coordinate worker processes. Remove [global.job_queue] to drain jobs in-process instead',
    ]);
    expectIssues(`${S3_BASE}[global.job_queue]\n`, [
      'global.job_queue: requires a shared lock strategy ([metadata_store.s3.lock_strategy.s3] or [metadata_store.s3.lock_strategy.redis]); the in-process "memory" lock cannot coordinate worker processes. Remove [global.job_queue] to drain jobs in-process instead',
    ]);
  });

  it('accepts it with an S3 lock', () => {
    const { config } = parseConfig(
      `${S3_BASE}[global.job_queue]\n[metadata_store.s3]\n${S3_CONNECTION}[metadata_store.s3.lock_strategy.s3]\n`,
    );
    expect(config.global.job_queue).toBeDefined();
  });
});

describe('[services]', () => {
  it('parses registry_api_url and internal_token', () => {
    const { config, warnings } = parseWith(
      '[services]\nregistry_api_url = "http://127.0.0.1:8001"\ninternal_token = "0123456789abcdef0123"\n',
    );
    expect(config.services).toEqual({
      registry_api_url: 'http://127.0.0.1:8001',
      internal_token: '0123456789abcdef0123',
    });
    expect(warnings).toEqual([]);
  });

  it('rejects an empty token, a bad URL, and a URL without a token', () => {
    expectIssues(`${BASE}[services]\ninternal_token = ""\n`, ['services.internal_token: must not be empty']);
    expectIssues(
      `${BASE}[services]\nregistry_api_url = "127.0.0.1:8001"\ninternal_token = "0123456789abcdef"\n`,
      ['services.registry_api_url: expected http or https URL'],
    );
    expectIssues(`${BASE}[services]\nregistry_api_url = "http://127.0.0.1:8001"\n`, [
      'services.internal_token: required when registry_api_url is set',
    ]);
  });

  it('warns about a short token', () => {
    const { warnings } = parseWith('[services]\ninternal_token = "short"\n');
    expect(warnings).toEqual([
      { path: 'services.internal_token', message: 'shorter than 16 characters; use a long random secret' },
    ]);
  });
});

describe('[gc]', () => {
  it('parses the grace period and the interval', () => {
    const { config } = parseWith('[gc]\ngrace_period_secs = 600\ninterval_secs = 0\n');
    expect(config.gc).toEqual({ grace_period_secs: 600, interval_secs: 0 });
  });

  it('rejects negative, fractional and unknown values, naming the key', () => {
    expectIssues(`${BASE}[gc]\ngrace_period_secs = -1\n`, [
      'gc.grace_period_secs: expected integer 0..9007199254740991',
    ]);
    expectIssues(`${BASE}[gc]\ninterval_secs = 1.5\n`, [
      'gc.interval_secs: expected integer 0..9007199254740991',
    ]);
    expectIssues(`${BASE}[gc]\ngrace = 1\n`, ['gc.grace: unknown option']);
  });
});

describe('[auth.oidc] transport and audience', () => {
  it('requires https for issuer and jwks_uri, except on a loopback address', () => {
    const generic = (issuer: string, jwks = '') =>
      `[auth.oidc.sso]\nprovider = "generic"\nissuer = "${issuer}"\nrequired_audience = "angos"\n${jwks}`;
    const insecure = 'expected https URL (http only on a loopback address)';
    expectIssues(`${BASE}${generic('http://sso.example.com')}`, [`auth.oidc.sso.issuer: ${insecure}`]);
    expectIssues(`${BASE}${generic('https://sso.example.com', 'jwks_uri = "http://10.0.0.5/keys"\n')}`, [
      `auth.oidc.sso.jwks_uri: ${insecure}`,
    ]);
    expectIssues(
      `${BASE}[auth.oidc.gh]\nprovider = "github"\nrequired_audience = "r"\nissuer = "http://gh.example"\n`,
      [`auth.oidc.gh.issuer: ${insecure}`],
    );
    for (const local of ['http://127.0.0.1:8080', 'http://localhost:9000/realm', 'http://[::1]:7000']) {
      expect(parseWith(generic(local)).config.auth.oidc['sso']).toMatchObject({ issuer: local });
    }
  });

  it('warns about a github provider without required_audience, saying what it accepts', () => {
    const { warnings } = parseWith('[auth.oidc.gh]\nprovider = "github"\n');
    expect(warnings).toEqual([
      {
        path: 'auth.oidc.gh.required_audience',
        message:
          'not set: any GitHub Actions token is accepted, whatever audience it was minted for; set the audience your workflows request',
      },
    ]);
    expect(parseWith('[auth.oidc.gh]\nprovider = "github"\nrequired_audience = "r"\n').warnings).toEqual([]);
  });
});

describe('[cache.redis] hmac_key', () => {
  const redis = (hmac = '') => `[cache.redis]\nurl = "redis://127.0.0.1:6379"\n${hmac}`;
  const oidc = '[auth.oidc.sso]\nprovider = "generic"\nissuer = "https://sso.example.com"\n';
  const webhook = (ttl = '') =>
    `[auth.webhook.w]\nurl = "https://authz.example.com"\ntimeout_ms = 500\n${ttl}`;

  it('parses the key; refuses an empty one and warns about a short one', () => {
    const key = '0123456789abcdef0123';
    const { config, warnings } = parseWith(`${redis(`hmac_key = "${key}"\n`)}${oidc}${webhook()}`);
    expect(config.cache.redis).toEqual({ url: 'redis://127.0.0.1:6379', hmac_key: key });
    expect(warnings).toEqual([]);
    expectIssues(`${BASE}${redis('hmac_key = ""\n')}`, ['cache.redis.hmac_key: must not be empty']);
    expect(parseWith(redis('hmac_key = "short"\n')).warnings).toEqual([
      { path: 'cache.redis.hmac_key', message: 'shorter than 16 characters; use a long random secret' },
    ]);
  });

  it('warns, naming the key, when Redis would have shared security material without it', () => {
    const advice = 'set the same long random secret on every replica to share them (openssl rand -hex 32)';
    expect(parseWith(`${redis()}${oidc}${webhook()}`).warnings).toEqual([
      {
        path: 'cache.redis.hmac_key',
        message: `not set: OIDC signing keys and authorization webhook decisions are cached in each process only, not shared through Redis; ${advice}`,
      },
    ]);
    expect(parseWith(`${redis()}${webhook()}`).warnings).toEqual([
      {
        path: 'cache.redis.hmac_key',
        message: `not set: authorization webhook decisions are cached in each process only, not shared through Redis; ${advice}`,
      },
    ]);
    // Nothing to cache: a webhook that does not cache, no OIDC provider.
    expect(parseWith(`${redis()}${webhook('cache_ttl = 0\n')}`).warnings).toEqual([]);
    expect(parseWith(redis()).warnings).toEqual([]);
  });
});
