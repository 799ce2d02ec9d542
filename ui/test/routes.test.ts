import { describe, expect, it } from 'vitest';
import { href, parseLocation } from '../src/lib/routes.js';

describe('parseLocation', () => {
  it('reads the fixed pages', () => {
    expect(parseLocation('/', '')).toEqual({ page: 'tree' });
    expect(parseLocation('/search', '?q=app')).toEqual({ page: 'search', q: 'app' });
    expect(parseLocation('/uploads', '?ns=team/app')).toEqual({ page: 'uploads', namespace: 'team/app' });
    expect(parseLocation('/uploads/', '')).toEqual({ page: 'uploads', namespace: '' });
    expect(parseLocation('/jobs', '?queue=cache').page).toBe('jobs');
  });

  it('takes every component of a namespace with slashes', () => {
    const route = parseLocation('/n/team/sub/app', '?tab=revisions');
    expect(route.page).toBe('namespace');
    if (route.page !== 'namespace') return;
    expect(route.namespace).toBe('team/sub/app');
    expect(route.params.get('tab')).toBe('revisions');
  });

  it('tells a manifest from a namespace with a component named m', () => {
    expect(parseLocation('/n/team/app/m/sha256:abc', '')).toEqual({
      page: 'manifest',
      namespace: 'team/app',
      digest: 'sha256:abc',
    });
    const namespace = parseLocation('/n/team/m', '');
    expect(namespace.page === 'namespace' && namespace.namespace).toBe('team/m');
    const deeper = parseLocation('/n/m/m/sha256:abc', '');
    expect(deeper).toEqual({ page: 'manifest', namespace: 'm', digest: 'sha256:abc' });
  });

  it('decodes what the browser percent-encoded', () => {
    expect(parseLocation('/n/app/m/sha256%3Aabc', '')).toEqual({
      page: 'manifest',
      namespace: 'app',
      digest: 'sha256:abc',
    });
  });

  it('answers not-found for anything else', () => {
    expect(parseLocation('/nope', '').page).toBe('not-found');
    expect(parseLocation('/n/', '').page).toBe('not-found');
  });

  it('round-trips the links it builds', () => {
    const manifest = href.manifest('a/b', 'sha256:00');
    expect(parseLocation(manifest, '')).toEqual({ page: 'manifest', namespace: 'a/b', digest: 'sha256:00' });
    const [path, search] = href.namespace('a/b', { tab: 'revisions', last: 'sha256:1' }).split('?');
    const route = parseLocation(path ?? '', `?${search}`);
    expect(route.page === 'namespace' && route.params.get('last')).toBe('sha256:1');
    expect(href.search('a b')).toBe('/search?q=a+b');
    expect(href.uploads('x/y')).toBe('/uploads?ns=x%2Fy');
  });
});
