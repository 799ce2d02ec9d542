import { parseRoute } from '@angos/oci';
import { describe, expect, it } from 'vitest';
import { describeRequest, mountSourceRequest } from '../src/request.js';

function describeUrl(method: string, url: string) {
  const [path = '', query = ''] = url.split('?');
  const route = parseRoute(path);
  if (route === undefined) throw new Error(`not a route: ${path}`);
  return describeRequest(route, method, new URLSearchParams(query));
}

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('describeRequest', () => {
  it.each([
    ['GET', '/v2/', { action: 'get-api-version' }],
    ['GET', '/v2/_catalog?n=10&last=b', { action: 'list-catalog', n: 10, last: 'b' }],
    ['GET', '/v2/_catalog?n=ten', { action: 'list-catalog' }],
    ['GET', '/v2/team/app/tags/list?n=5', { action: 'list-tags', namespace: 'team/app', n: 5 }],
    ['GET', '/v2/team/manifests/v1', { action: 'get-manifest', namespace: 'team', reference: 'v1' }],
    ['HEAD', '/v2/team/manifests/v1', { action: 'get-manifest', namespace: 'team', reference: 'v1' }],
    [
      'GET',
      `/v2/team/manifests/${DIGEST}`,
      { action: 'get-manifest', namespace: 'team', reference: DIGEST, digest: DIGEST },
    ],
    [
      'PUT',
      '/v2/team/manifests/v1',
      { action: 'put-manifest', namespace: 'team', reference: 'v1', tags: ['v1'] },
    ],
    [
      'PUT',
      `/v2/team/manifests/${DIGEST}?tag=a&tag=b`,
      { action: 'put-manifest', namespace: 'team', reference: DIGEST, digest: DIGEST, tags: ['a', 'b'] },
    ],
    [
      'PUT',
      `/v2/team/manifests/${DIGEST}`,
      { action: 'put-manifest', namespace: 'team', reference: DIGEST, digest: DIGEST, tags: [] },
    ],
    ['DELETE', '/v2/team/manifests/v1', { action: 'delete-manifest', namespace: 'team', reference: 'v1' }],
    ['GET', `/v2/team/blobs/${DIGEST}`, { action: 'get-blob', namespace: 'team', digest: DIGEST }],
    ['DELETE', `/v2/team/blobs/${DIGEST}`, { action: 'delete-blob', namespace: 'team', digest: DIGEST }],
    ['POST', '/v2/team/blobs/uploads/', { action: 'start-upload', namespace: 'team' }],
    [
      'POST',
      `/v2/team/blobs/uploads/?digest=${DIGEST}`,
      { action: 'start-upload', namespace: 'team', digest: DIGEST },
    ],
    [
      'POST',
      `/v2/team/blobs/uploads/?mount=${DIGEST}&from=base/img`,
      { action: 'mount-blob', namespace: 'team', digest: DIGEST, from: 'base/img' },
    ],
    [
      'POST',
      `/v2/team/blobs/uploads/?mount=${DIGEST}&from=..`,
      { action: 'mount-blob', namespace: 'team', digest: DIGEST },
    ],
    [
      'PATCH',
      '/v2/team/blobs/uploads/u-1',
      { action: 'update-upload', namespace: 'team', session_id: 'u-1' },
    ],
    ['GET', '/v2/team/blobs/uploads/u-1', { action: 'get-upload', namespace: 'team', session_id: 'u-1' }],
    [
      'PUT',
      `/v2/team/blobs/uploads/u-1?digest=${DIGEST}`,
      { action: 'complete-upload', namespace: 'team', session_id: 'u-1', digest: DIGEST },
    ],
    [
      'DELETE',
      '/v2/team/blobs/uploads/u-1',
      { action: 'cancel-upload', namespace: 'team', session_id: 'u-1' },
    ],
    [
      'GET',
      `/v2/team/referrers/${DIGEST}?artifactType=application/x`,
      { action: 'get-referrers', namespace: 'team', digest: DIGEST, artifact_type: 'application/x' },
    ],
    // The jobs API: registry-wide (no namespace), the queue and job as rules may test them.
    [
      'GET',
      '/v2/_ext/jobs/pending?queue=replication&n=5&last=c',
      { action: 'list-pending-jobs', queue: 'replication', n: 5, last: 'c' },
    ],
    ['GET', '/v2/_ext/jobs/pending', { action: 'list-pending-jobs' }],
    ['HEAD', '/v2/_ext/jobs/failed?queue=cache', { action: 'list-failed-jobs', queue: 'cache' }],
    ['POST', '/v2/_ext/jobs/failed/cache/j-1/retry', { action: 'retry-job', queue: 'cache', job_id: 'j-1' }],
    ['DELETE', '/v2/_ext/jobs/failed/cache/j-1', { action: 'delete-job', queue: 'cache', job_id: 'j-1' }],
    ['DELETE', '/v2/_ext/jobs/pending/cache/j-1', { action: 'delete-job', queue: 'cache', job_id: 'j-1' }],
    // The extension API: cross-namespace listings name no namespace (each is judged on its own).
    ['GET', '/v2/_ext/_ui/config', { action: 'ui-config' }],
    [
      'GET',
      '/v2/_ext/_namespaces?parent=team&n=5&last=team%2Fa',
      { action: 'list-namespaces', n: 5, last: 'team/a' },
    ],
    ['GET', '/v2/_ext/_repositories', { action: 'list-repositories' }],
    ['GET', '/v2/_ext/team/app/_tags?n=2', { action: 'list-tag-details', namespace: 'team/app', n: 2 }],
    ['GET', '/v2/_ext/team/_revisions', { action: 'list-revisions', namespace: 'team' }],
    [
      'GET',
      `/v2/_ext/team/_manifests/${DIGEST}`,
      { action: 'get-revision', namespace: 'team', digest: DIGEST },
    ],
    ['GET', '/v2/_ext/team/_uploads?last=u', { action: 'list-uploads', namespace: 'team', last: 'u' }],
  ])('%s %s', (method, url, expected) => {
    expect(describeUrl(method, url)).toEqual(expected);
  });

  it.each([
    ['POST', '/v2/team/manifests/v1'],
    ['get', '/v2/team/manifests/v1'],
    ['PUT', `/v2/team/blobs/${DIGEST}`],
    ['GET', '/v2/_ext/anything'],
    ['GET', '/v2/_ext/jobs'],
    ['GET', '/v2/_ext/jobs/failed/cache/j-1'],
    ['POST', '/v2/_ext/jobs/pending/cache/j-1/retry'],
  ])('has no action for %s %s', (method, url) => {
    expect(describeUrl(method, url)).toBeUndefined();
  });

  it('derives the mount source check', () => {
    expect(
      mountSourceRequest({ action: 'mount-blob', namespace: 'team', digest: DIGEST, from: 'base' }),
    ).toEqual({ action: 'get-blob', namespace: 'base', digest: DIGEST });
    expect(mountSourceRequest({ action: 'mount-blob', namespace: 'team', digest: DIGEST })).toBeUndefined();
    expect(mountSourceRequest({ action: 'get-blob', namespace: 'team', digest: DIGEST })).toBeUndefined();
  });
});
