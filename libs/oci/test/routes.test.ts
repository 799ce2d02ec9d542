import { describe, expect, it } from 'vitest';
import {
  type Action,
  actionFor,
  allowedMethods,
  isValidNamespace,
  parseRoute,
  type Route,
} from '../src/index.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('parseRoute', () => {
  it.each<[string, Route]>([
    ['/v2/', { kind: 'apiVersion' }],
    ['/v2', { kind: 'apiVersion' }],
    ['/v2/_catalog', { kind: 'catalog' }],
    ['/v2/_ext', { kind: 'extension', path: '' }],
    ['/v2/_ext/', { kind: 'extension', path: '' }],
    ['/v2/_ext/jobs/replication', { kind: 'extension', path: 'jobs/replication' }],
    ['/v2/_ext/jobs/pending', { kind: 'pendingJobs' }],
    ['/v2/_ext/jobs/failed', { kind: 'failedJobs' }],
    ['/v2/_ext/jobs/pending/cache/j-1', { kind: 'pendingJob', queue: 'cache', id: 'j-1' }],
    ['/v2/_ext/jobs/failed/cache/j-1', { kind: 'failedJob', queue: 'cache', id: 'j-1' }],
    ['/v2/_ext/jobs/failed/cache/j-1/retry', { kind: 'failedJobRetry', queue: 'cache', id: 'j-1' }],
    // Anything else under /v2/_ext/ names no endpoint.
    ['/v2/_ext/jobs', { kind: 'extension', path: 'jobs' }],
    ['/v2/_ext/jobs/pending/', { kind: 'extension', path: 'jobs/pending/' }],
    ['/v2/_ext/jobs/pending/cache', { kind: 'extension', path: 'jobs/pending/cache' }],
    ['/v2/_ext/jobs/pending/cache/', { kind: 'extension', path: 'jobs/pending/cache/' }],
    ['/v2/_ext/jobs/pending//j-1', { kind: 'extension', path: 'jobs/pending//j-1' }],
    ['/v2/_ext/jobs/pending/cache/j-1/retry', { kind: 'extension', path: 'jobs/pending/cache/j-1/retry' }],
    ['/v2/_ext/jobs/failed/cache/j-1/retry/x', { kind: 'extension', path: 'jobs/failed/cache/j-1/retry/x' }],
    ['/v2/_ext/jobs/failed/cache/j-1/undo', { kind: 'extension', path: 'jobs/failed/cache/j-1/undo' }],
    ['/v2/_ext/other/pending', { kind: 'extension', path: 'other/pending' }],
    ['/v2/alpine/tags/list', { kind: 'tags', namespace: 'alpine' }],
    ['/v2/library/alpine/tags/list', { kind: 'tags', namespace: 'library/alpine' }],
    ['/v2/alpine/manifests/latest', { kind: 'manifest', namespace: 'alpine', reference: 'latest' }],
    ['/v2/a/b/c/manifests/latest', { kind: 'manifest', namespace: 'a/b/c', reference: 'latest' }],
    [`/v2/a/manifests/${DIGEST}`, { kind: 'manifest', namespace: 'a', reference: DIGEST }],
    [`/v2/a/blobs/${DIGEST}`, { kind: 'blob', namespace: 'a', digest: DIGEST }],
    ['/v2/a/blobs/uploads/', { kind: 'uploads', namespace: 'a' }],
    ['/v2/a/blobs/uploads', { kind: 'uploads', namespace: 'a' }],
    ['/v2/a/b/blobs/uploads/', { kind: 'uploads', namespace: 'a/b' }],
    ['/v2/a/blobs/uploads/0b5e-41c2', { kind: 'upload', namespace: 'a', id: '0b5e-41c2' }],
    [`/v2/a/referrers/${DIGEST}`, { kind: 'referrers', namespace: 'a', digest: DIGEST }],
    // Namespaces whose components are named like endpoint segments.
    [`/v2/blobs/blobs/${DIGEST}`, { kind: 'blob', namespace: 'blobs', digest: DIGEST }],
    [`/v2/org/blobs/team/blobs/${DIGEST}`, { kind: 'blob', namespace: 'org/blobs/team', digest: DIGEST }],
    ['/v2/blobs/blobs/uploads/', { kind: 'uploads', namespace: 'blobs' }],
    ['/v2/blobs/uploads/blobs/uploads/x', { kind: 'upload', namespace: 'blobs/uploads', id: 'x' }],
    ['/v2/manifests/manifests/latest', { kind: 'manifest', namespace: 'manifests', reference: 'latest' }],
    ['/v2/a/manifests/b/manifests/v1', { kind: 'manifest', namespace: 'a/manifests/b', reference: 'v1' }],
    ['/v2/tags/tags/list', { kind: 'tags', namespace: 'tags' }],
    ['/v2/a/tags/list/tags/list', { kind: 'tags', namespace: 'a/tags/list' }],
    ['/v2/a/manifests/tags/list', { kind: 'tags', namespace: 'a/manifests' }],
    [`/v2/referrers/referrers/${DIGEST}`, { kind: 'referrers', namespace: 'referrers', digest: DIGEST }],
    ['/v2/_catalog/tags/list', { kind: 'tags', namespace: '_catalog' }],
    // Not decoded: the literal text reaches the caller, which rejects the name.
    ['/v2/a%2Fb/manifests/latest', { kind: 'manifest', namespace: 'a%2Fb', reference: 'latest' }],
    ['/v2/%2e%2e/tags/list', { kind: 'tags', namespace: '%2e%2e' }],
    ['/v2/../a/tags/list', { kind: 'tags', namespace: '../a' }],
    ['/v2/a//b/tags/list', { kind: 'tags', namespace: 'a//b' }],
    ['/v2/a/manifests/%2e%2e', { kind: 'manifest', namespace: 'a', reference: '%2e%2e' }],
    // The extension API: `_` segments are never namespace components, so these are unambiguous.
    ['/v2/_ext/_ui/config', { kind: 'uiConfig' }],
    ['/v2/_ext/_repositories', { kind: 'extRepositories' }],
    ['/v2/_ext/_namespaces', { kind: 'extNamespaces' }],
    ['/v2/_ext/team/app/_tags', { kind: 'extTags', namespace: 'team/app' }],
    ['/v2/_ext/a/b/c/d/e/_revisions', { kind: 'extRevisions', namespace: 'a/b/c/d/e' }],
    ['/v2/_ext/team/_uploads', { kind: 'extUploads', namespace: 'team' }],
    [
      `/v2/_ext/team/app/_manifests/${DIGEST}`,
      { kind: 'extManifest', namespace: 'team/app', digest: DIGEST },
    ],
    ['/v2/_ext/jobs/_tags', { kind: 'extTags', namespace: 'jobs' }],
    ['/v2/_ext/jobs/pending/_tags', { kind: 'extTags', namespace: 'jobs/pending' }],
    ['/v2/_ext/tags/_manifests/_tags', { kind: 'extTags', namespace: 'tags/_manifests' }],
    ['/v2/_ext/_tags', { kind: 'extension', path: '_tags' }],
    ['/v2/_ext/a/_tags/', { kind: 'extension', path: 'a/_tags/' }],
    ['/v2/_ext/a/_manifests/', { kind: 'extension', path: 'a/_manifests/' }],
    ['/v2/_ext/_ui/config/x', { kind: 'extension', path: '_ui/config/x' }],
  ])('%s', (path, expected) => {
    expect(parseRoute(path)).toEqual(expected);
  });

  it.each([
    '',
    '/',
    '/v1/',
    '/v2x',
    '/v20/a/tags/list',
    'v2/a/tags/list',
    '//v2/a/tags/list',
    '/V2/a/tags/list',
    '/v2/_catalog/',
    '/v2/a',
    '/v2/a/',
    '/v2/a/tags',
    '/v2/a/tags/list/',
    '/v2/a/manifests',
    '/v2/a/manifests/',
    '/v2/a/blobs',
    '/v2/a/blobs/',
    '/v2/a/referrers/',
    '/v2/a/blobs/uploads/x/extra',
    '/v2/a/unknown/thing',
    '/v2/tags/list',
    '/v2/manifests/latest',
    `/v2/blobs/${DIGEST}`,
    '/v2/blobs/uploads',
    '/v2/blobs/uploads/',
    '/v2/blobs/uploads/x',
    '/v2//manifests/latest',
    '/v2//tags/list',
    '/health',
    '/metrics',
  ])('%s is not a registry route', (path) => {
    expect(parseRoute(path)).toBeUndefined();
  });

  it('turns junk into a route whose namespace fails validation, or nothing, without throwing', () => {
    const junk = [
      '/v2/a\u0000b/tags/list',
      '/v2/\u0000',
      `/v2/${'a/'.repeat(8192)}manifests/latest`,
      `/v2/${'x'.repeat(16_384)}/blobs/uploads/`,
      `/v2/${'/'.repeat(16_384)}`,
      '/v2/\ud800/tags/list',
      '/v2/🙂/manifests/🙂',
      '/v2/a b/tags/list',
      '/v2///blobs/uploads/',
    ];
    for (const path of junk) {
      const route = parseRoute(path);
      if (route !== undefined && 'namespace' in route) expect(isValidNamespace(route.namespace)).toBe(false);
    }
    expect(parseRoute(`/v2/${'a/'.repeat(8192)}manifests/latest`)).toMatchObject({ kind: 'manifest' });
  });

  it('never throws on non-string input', () => {
    expect(parseRoute(undefined as unknown as string)).toBeUndefined();
    expect(parseRoute(42 as unknown as string)).toBeUndefined();
  });
});

describe('actionFor', () => {
  const none = new URLSearchParams();
  const route = (path: string) => {
    const parsed = parseRoute(path);
    if (parsed === undefined) throw new Error(`no route for ${path}`);
    return parsed;
  };

  it.each<[string, string, Action, string?]>([
    ['/v2/', 'GET', 'get-api-version'],
    ['/v2/', 'HEAD', 'get-api-version'],
    ['/v2/_catalog', 'GET', 'list-catalog'],
    ['/v2/a/tags/list', 'GET', 'list-tags'],
    ['/v2/a/manifests/latest', 'GET', 'get-manifest'],
    ['/v2/a/manifests/latest', 'HEAD', 'get-manifest'],
    ['/v2/a/manifests/latest', 'PUT', 'put-manifest'],
    ['/v2/a/manifests/latest', 'DELETE', 'delete-manifest'],
    [`/v2/a/blobs/${DIGEST}`, 'GET', 'get-blob'],
    [`/v2/a/blobs/${DIGEST}`, 'HEAD', 'get-blob'],
    [`/v2/a/blobs/${DIGEST}`, 'DELETE', 'delete-blob'],
    ['/v2/a/blobs/uploads/', 'POST', 'start-upload'],
    ['/v2/a/blobs/uploads', 'POST', 'start-upload'],
    ['/v2/a/blobs/uploads/', 'POST', 'start-upload', `digest=${DIGEST}`],
    ['/v2/a/blobs/uploads/', 'POST', 'start-upload', 'mount='],
    ['/v2/a/blobs/uploads/', 'POST', 'mount-blob', `mount=${DIGEST}&from=b`],
    ['/v2/a/blobs/uploads/', 'POST', 'mount-blob', `mount=${DIGEST}`],
    ['/v2/a/blobs/uploads/id', 'GET', 'get-upload'],
    ['/v2/a/blobs/uploads/id', 'PATCH', 'update-upload'],
    ['/v2/a/blobs/uploads/id', 'PUT', 'complete-upload'],
    ['/v2/a/blobs/uploads/id', 'DELETE', 'cancel-upload'],
    [`/v2/a/referrers/${DIGEST}`, 'GET', 'get-referrers'],
    [`/v2/a/referrers/${DIGEST}`, 'HEAD', 'get-referrers'],
    ['/v2/_ext/jobs/pending', 'GET', 'list-pending-jobs'],
    ['/v2/_ext/jobs/pending', 'HEAD', 'list-pending-jobs'],
    ['/v2/_ext/jobs/failed', 'GET', 'list-failed-jobs'],
    ['/v2/_ext/jobs/pending/cache/j-1', 'DELETE', 'delete-job'],
    ['/v2/_ext/jobs/failed/cache/j-1', 'DELETE', 'delete-job'],
    ['/v2/_ext/jobs/failed/cache/j-1/retry', 'POST', 'retry-job'],
    ['/v2/_ext/_ui/config', 'GET', 'ui-config'],
    ['/v2/_ext/_repositories', 'GET', 'list-repositories'],
    ['/v2/_ext/_namespaces', 'GET', 'list-namespaces'],
    ['/v2/_ext/a/_tags', 'GET', 'list-tag-details'],
    ['/v2/_ext/a/_revisions', 'HEAD', 'list-revisions'],
    [`/v2/_ext/a/_manifests/${DIGEST}`, 'GET', 'get-revision'],
    ['/v2/_ext/a/_uploads', 'GET', 'list-uploads'],
  ])('%s %s is %s', (path, method, action, query) => {
    expect(actionFor(route(path), method, new URLSearchParams(query ?? ''))).toBe(action);
  });

  it.each([
    ['/v2/', 'POST'],
    ['/v2/_catalog', 'DELETE'],
    ['/v2/a/tags/list', 'PUT'],
    ['/v2/a/manifests/latest', 'POST'],
    ['/v2/a/manifests/latest', 'PATCH'],
    ['/v2/a/manifests/latest', 'get'],
    [`/v2/a/blobs/${DIGEST}`, 'PUT'],
    ['/v2/a/blobs/uploads/', 'GET'],
    ['/v2/a/blobs/uploads/', 'PUT'],
    ['/v2/a/blobs/uploads/id', 'POST'],
    [`/v2/a/referrers/${DIGEST}`, 'DELETE'],
    ['/v2/a/manifests/latest', 'constructor'],
    ['/v2/a/manifests/latest', '__proto__'],
    ['/v2/_ext/anything', 'GET'],
    ['/v2/_ext/jobs/pending', 'DELETE'],
    ['/v2/_ext/jobs/failed/cache/j-1', 'GET'],
    ['/v2/_ext/jobs/failed/cache/j-1/retry', 'GET'],
    ['/v2/_ext/a/_tags', 'DELETE'],
    [`/v2/_ext/a/_manifests/${DIGEST}`, 'DELETE'],
    ['/v2/_ext/_namespaces', 'POST'],
  ])('%s %s is not allowed', (path, method) => {
    expect(actionFor(route(path), method, none)).toBeUndefined();
  });

  it('lists the allowed methods of a route', () => {
    expect(allowedMethods(route('/v2/a/manifests/x'))).toEqual(['GET', 'HEAD', 'PUT', 'DELETE']);
    expect(allowedMethods(route('/v2/a/blobs/uploads/'))).toEqual(['POST']);
    expect(allowedMethods(route('/v2/_ext/x'))).toBeUndefined();
    expect(allowedMethods(route('/v2/_ext/jobs/pending'))).toEqual(['GET', 'HEAD']);
    expect(allowedMethods(route('/v2/_ext/jobs/failed/q/id'))).toEqual(['DELETE']);
    expect(allowedMethods(route('/v2/_ext/jobs/failed/q/id/retry'))).toEqual(['POST']);
  });
});
