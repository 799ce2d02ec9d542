import { describe, expect, it } from 'vitest';
import { hasPullThroughRepositories, isPullThroughNamespace, mirrorNamespace } from '../src/index.js';
import { BASE, expectIssues, parseWith } from './helpers.js';

describe('pull-through repository options', () => {
  it('checks a mutable tag upstream at most once a minute and serves stale tags without limit by default', () => {
    const { config } = parseWith(`
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
`);
    const repository = config.repository['docker-io']!;
    expect(repository.upstream_tag_check_interval_secs).toBe(60);
    expect(repository.upstream_stale_tag_window_secs).toBeUndefined();
  });

  it('reads both options', () => {
    const { config } = parseWith(`
[repository."docker-io"]
upstream_tag_check_interval_secs = 0
upstream_stale_tag_window_secs = 86400
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
`);
    expect(config.repository['docker-io']).toMatchObject({
      upstream_tag_check_interval_secs: 0,
      upstream_stale_tag_window_secs: 86400,
    });
  });

  it('refuses values that are not whole seconds, naming the key', () => {
    expectIssues(
      `${BASE}[repository."docker-io"]\nupstream_tag_check_interval_secs = -1\nupstream_stale_tag_window_secs = "1h"\n`,
      [
        'repository."docker-io".upstream_tag_check_interval_secs: expected integer 0..9007199254740991',
        'repository."docker-io".upstream_stale_tag_window_secs: expected integer 0..9007199254740991',
      ],
    );
  });

  it('reads [services] pull_through_cache_url, which needs internal_token', () => {
    const { config } = parseWith(`
[services]
pull_through_cache_url = "http://127.0.0.1:8003"
internal_token = "0123456789abcdef0123"
`);
    expect(config.services.pull_through_cache_url).toBe('http://127.0.0.1:8003');
    expectIssues(`${BASE}[services]\npull_through_cache_url = "http://127.0.0.1:8003"\n`, [
      'services.internal_token: required when pull_through_cache_url is set',
    ]);
    expectIssues(
      `${BASE}[services]\npull_through_cache_url = "127.0.0.1:8003"\ninternal_token = "0123456789abcdef"\n`,
      ['services.pull_through_cache_url: expected http or https URL'],
    );
  });
});

describe('isPullThroughNamespace', () => {
  const { config } = parseWith(`
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
[repository."team"]
immutable_tags = true
`);

  it('is true for the repository key and every namespace below it, only where upstreams are configured', () => {
    expect(isPullThroughNamespace(config, 'docker-io')).toBe(true);
    expect(isPullThroughNamespace(config, 'docker-io/library/alpine')).toBe(true);
    expect(isPullThroughNamespace(config, 'docker-iox/alpine')).toBe(false);
    expect(isPullThroughNamespace(config, 'team/app')).toBe(false);
    expect(isPullThroughNamespace(config, 'other')).toBe(false);
    expect(hasPullThroughRepositories(config)).toBe(true);
    expect(hasPullThroughRepositories(parseWith('').config)).toBe(false);
  });
});

describe('mirrorNamespace (containerd ?ns=)', () => {
  const { config } = parseWith(`
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
[[repository."gh".upstream]]
url = "https://ghcr.io/acme"
[[repository."quay".upstream]]
url = "https://mirror.example.com"
[[repository."quay".upstream]]
url = "https://quay.io"
[[repository."local".upstream]]
url = "http://127.0.0.1:5000"
`);

  it('maps a bare-host upstream under the repository key; docker.io is registry-1.docker.io', () => {
    expect(mirrorNamespace(config, 'docker.io', 'library/alpine')).toBe('docker-io/library/alpine');
    expect(mirrorNamespace(config, 'registry-1.docker.io', 'library/alpine')).toBe(
      'docker-io/library/alpine',
    );
    expect(mirrorNamespace(config, 'Index.Docker.IO:443', 'library/alpine')).toBe('docker-io/library/alpine');
    expect(mirrorNamespace(config, '127.0.0.1:5000', 'x/y')).toBe('local/x/y');
  });

  it('reads a path URL backwards: only names under its path belong to the repository', () => {
    expect(mirrorNamespace(config, 'ghcr.io', 'acme/app')).toBe('gh/app');
    expect(mirrorNamespace(config, 'ghcr.io', 'acme')).toBe('gh');
    expect(mirrorNamespace(config, 'ghcr.io', 'other/app')).toBeUndefined();
    expect(mirrorNamespace(config, 'ghcr.io', 'acmecorp/app')).toBeUndefined();
  });

  it('keeps a name already under a repository mirroring the host (override_path set-ups)', () => {
    expect(mirrorNamespace(config, 'docker.io', 'docker-io/library/alpine')).toBe('docker-io/library/alpine');
    expect(mirrorNamespace(config, 'ghcr.io', 'gh/app')).toBe('gh/app');
    expect(mirrorNamespace(config, 'ghcr.io', 'docker-io/x')).toBeUndefined();
  });

  it('matches the first upstream only, and nothing for unknown or malformed hosts', () => {
    expect(mirrorNamespace(config, 'quay.io', 'x')).toBeUndefined();
    expect(mirrorNamespace(config, 'mirror.example.com', 'x')).toBe('quay/x');
    expect(mirrorNamespace(config, '127.0.0.1:5001', 'x')).toBeUndefined();
    expect(mirrorNamespace(config, 'docker.io/evil', 'x')).toBeUndefined();
    expect(mirrorNamespace(config, 'user@docker.io', 'x')).toBeUndefined();
    expect(mirrorNamespace(config, '', 'x')).toBeUndefined();
  });
});
