import { describe, expect, it } from 'vitest';
import { downstreamNamespace, remoteNamespace } from '../src/namespace.js';

describe('remoteNamespace (upstream url mapping, and downstream path URLs)', () => {
  it('a bare host drops the repository key', () => {
    expect(remoteNamespace('https://registry-1.docker.io', 'docker-io', 'docker-io/library/nginx')).toBe(
      'library/nginx',
    );
    expect(remoteNamespace('http://host:8000/', 'mirror', 'mirror/x')).toBe('x');
  });

  it('a path URL puts its path in place of the key', () => {
    expect(remoteNamespace('https://ghcr.io/team', 'ghcr', 'ghcr/app/api')).toBe('team/app/api');
    expect(remoteNamespace('https://host/org/team/', 'local/ns', 'local/ns/x')).toBe('org/team/x');
  });

  it('the repository root maps to the key for a bare host and to the path for a path URL', () => {
    expect(remoteNamespace('https://host', 'busybox', 'busybox')).toBe('busybox');
    expect(remoteNamespace('https://host/library/busybox', 'busybox', 'busybox')).toBe('library/busybox');
  });

  it('refuses a namespace outside the repository', () => {
    expect(() => remoteNamespace('https://host', 'team', 'teamster/x')).toThrow(/not under repository/);
    expect(() => remoteNamespace('https://host', 'team', 'other')).toThrow(/not under repository/);
  });
});

describe('downstreamNamespace (downstream url mapping)', () => {
  it('a bare host mirrors the namespace verbatim, so peers hold the same names', () => {
    expect(downstreamNamespace('http://angos-b:8000', 'nginx', 'nginx/app')).toBe('nginx/app');
    expect(downstreamNamespace('http://angos-b:8000/', 'nginx', 'nginx')).toBe('nginx');
  });

  it('a path URL replaces the repository prefix', () => {
    expect(downstreamNamespace('http://host:8000/team-a', 'team', 'team/app')).toBe('team-a/app');
    expect(downstreamNamespace('http://host:8000/team-a', 'team', 'team')).toBe('team-a');
  });

  it('refuses a namespace outside the repository', () => {
    expect(() => downstreamNamespace('http://host', 'team', 'teamster/x')).toThrow(/not under repository/);
  });
});
