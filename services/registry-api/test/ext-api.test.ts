import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '@angos/http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Api,
  FS,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  type Reply,
  s3Server,
  sha256,
  startApi,
} from './harness.js';

/**
 * The extension API under `/v2/_ext/` (docs/extension-api.md), on a registry-api in this process.
 * The gateway's part (each endpoint's action, a refused namespace's 403) is tested end to end
 * through the split pair (tests/e2e); here registry-api receives the caller as the gateway would
 * forward it (`x-test-user` stands for the authenticated username).
 */

const SIGNATURE_TYPE = 'application/vnd.dev.cosign.artifact.sig.v1+json';

/** Everyone may do everything, except that only `admin` may see `team/secret…`. */
const POLICY = `
[global]
update_pull_time = true

[global.access_policy]
default = "deny"
rules = [
  "!has(request.namespace) || !request.namespace.startsWith('team/secret') || (has(identity.username) && identity.username == 'admin')",
]

[repository."team"]
immutable_tags = true

[repository."team".access_policy]
default = "allow"
`;

function asUser(req: IncomingMessage): Partial<RequestContext> {
  const user = req.headers['x-test-user'];
  if (typeof user !== 'string') return {};
  return { identity: { username: user }, policyIdentity: { client_ip: '127.0.0.1', username: user } };
}

function errorCode(reply: Reply): string {
  return reply.json().errors[0].code;
}

interface Pushed {
  index: string;
  amd64: string;
  arm64: string;
  signature: string;
  indexSize: number;
}

/** A multi-platform index (two images with configs naming their platforms) with a signature on it. */
async function pushIndex(api: Api, namespace: string, tag: string): Promise<Pushed> {
  const images: Array<{ digest: string; size: number; total: number; arch: string }> = [];
  for (const arch of ['amd64', 'arm64']) {
    const config = JSON.stringify({
      architecture: arch,
      os: 'linux',
      ...(arch === 'arm64' && { variant: 'v8' }),
    });
    const layer = `layer ${arch} ${namespace}`;
    await pushBlob(api, namespace, config);
    await pushBlob(api, namespace, layer);
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length },
      ],
    });
    const digest = sha256(body);
    const put = await api.send('PUT', `/v2/${namespace}/manifests/${digest}`, {
      body,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    expect(put.status).toBe(201);
    images.push({ digest, size: body.length, total: body.length + config.length + layer.length, arch });
  }
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: images.map((image) => ({
      mediaType: OCI_MANIFEST,
      digest: image.digest,
      size: image.size,
      platform: { os: 'linux', architecture: image.arch },
    })),
  });
  const put = await api.send('PUT', `/v2/${namespace}/manifests/${tag}`, {
    body: index,
    headers: { 'Content-Type': OCI_INDEX },
  });
  expect(put.status).toBe(201);
  const empty = '{}';
  await pushBlob(api, namespace, empty);
  const signature = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: SIGNATURE_TYPE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 }],
    subject: { mediaType: OCI_INDEX, digest: sha256(index), size: index.length },
    annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ' },
  });
  const signed = await api.send('PUT', `/v2/${namespace}/manifests/${sha256(signature)}`, {
    body: signature,
    headers: { 'Content-Type': OCI_MANIFEST },
  });
  expect(signed.status).toBe(201);
  return {
    index: sha256(index),
    amd64: images[0]!.digest,
    arm64: images[1]!.digest,
    signature: sha256(signature),
    indexSize: index.length + images[0]!.total + images[1]!.total,
  };
}

describe('extension API', () => {
  let api: Api;
  let pushed: Pushed;
  const get = (path: string, user = 'bob') => api.send('GET', path, { headers: { 'x-test-user': user } });

  beforeAll(async () => {
    api = await startApi(POLICY, { kind: 'in-process' }, [], FS, undefined, undefined, asUser);
    pushed = await pushIndex(api, 'team/app', 'v1');
    await pushImage(api, 'team/app', 'latest');
    await pushImage(api, 'team/app', 'beta');
    await pushImage(api, 'team/secret/db', 'v1');
    await pushImage(api, 'other', 'v1');
    await pushImage(api, 'a/b/c/d/e', 'deep');
    for (let i = 0; i < 9; i++) await pushImage(api, `num/${i}`, 'v1');
    await pushImage(api, 'num', 'v1');
  }, 60_000);
  afterAll(async () => api?.close());

  it('answers the UI configuration with the caller', async () => {
    const reply = await get('/v2/_ext/_ui/config');
    expect(reply.status).toBe(200);
    expect(reply.json()).toEqual({ name: 'Angos', version: '0.0.0-test', username: 'bob' });
    expect((await api.send('GET', '/v2/_ext/_ui/config')).json().username).toBeNull();
  });

  it('lists the children of a prefix, sorted, with counts for namespaces and none for prefixes', async () => {
    const root = await get('/v2/_ext/_namespaces');
    expect(root.status).toBe(200);
    expect(root.json().entries.map((entry: { path: string }) => entry.path)).toEqual([
      'a',
      'num',
      'other',
      'team',
    ]);
    const team = root.json().entries[3];
    expect(team).toEqual({
      path: 'team',
      name: 'team',
      is_namespace: false,
      has_children: true,
      tags: null,
      manifests: null,
      uploads: null,
      repository: 'team',
      is_pull_through: false,
    });
    const children = (await get('/v2/_ext/_namespaces?parent=team', 'admin')).json().entries;
    expect(children.map((entry: { path: string }) => entry.path)).toEqual(['team/app', 'team/secret']);
    expect(children[0]).toMatchObject({
      name: 'app',
      is_namespace: true,
      has_children: false,
      tags: 3,
      uploads: 0,
    });
    // The index, its two images, the signature and two single images.
    expect(children[0].manifests).toBe(6);
    const deep = await get('/v2/_ext/_namespaces?parent=a/b/c/d');
    expect(deep.json().entries).toMatchObject([
      { path: 'a/b/c/d/e', name: 'e', is_namespace: true, tags: 1 },
    ]);
  });

  it('counts a namespace whose nested namespaces sort before its own data', async () => {
    // Components starting with a digit sort before `_manifests`: the first names of `num`'s listing
    // (beforeAll) do not settle what it holds, so the whole listing is read.
    const [num] = (await get('/v2/_ext/_namespaces?q=num&n=1')).json().entries;
    expect(num).toMatchObject({ path: 'num', is_namespace: true, has_children: true, tags: 1, manifests: 1 });
    const root = (await get('/v2/_ext/_namespaces')).json().entries;
    expect(root.find((entry: { path: string }) => entry.path === 'num')).toMatchObject({
      is_namespace: true,
      tags: 1,
    });
    const children = (await get('/v2/_ext/_namespaces?parent=num')).json().entries;
    expect(children).toHaveLength(9);
  });

  it('pages the tree with n and last and a Link to the next page', async () => {
    const first = await get('/v2/_ext/_namespaces?n=3');
    expect(first.json().entries.map((entry: { path: string }) => entry.path)).toEqual(['a', 'num', 'other']);
    expect(first.headers.link).toBe('</v2/_ext/_namespaces?n=3&last=other>; rel="next"');
    const second = await get('/v2/_ext/_namespaces?n=3&last=other');
    expect(second.json().entries.map((entry: { path: string }) => entry.path)).toEqual(['team']);
    expect(second.headers.link).toBeUndefined();
    const nested = await get('/v2/_ext/_namespaces?parent=team&n=1', 'admin');
    expect(nested.headers.link).toBe('</v2/_ext/_namespaces?parent=team&n=1&last=team%2Fapp>; rel="next"');
  });

  it('never shows a namespace the policy refuses: tree, search and repository counts', async () => {
    const children = (await get('/v2/_ext/_namespaces?parent=team')).json().entries;
    expect(children.map((entry: { path: string }) => entry.path)).toEqual(['team/app']);
    expect((await get('/v2/_ext/_namespaces?parent=team/secret')).json().entries).toEqual([]);
    expect((await get('/v2/_ext/_namespaces?q=SECRET')).json().entries).toEqual([]);
    const found = (await get('/v2/_ext/_namespaces?q=SECRET', 'admin')).json().entries;
    expect(found.map((entry: { path: string }) => entry.path)).toEqual(['team/secret/db']);
    const search = (await get('/v2/_ext/_namespaces?q=e'))
      .json()
      .entries.map((entry: { path: string }) => entry.path);
    expect(search).toEqual(['a/b/c/d/e', 'other', 'team/app']);
    const repositories = (await get('/v2/_ext/_repositories')).json();
    expect(repositories).toEqual({
      repositories: [
        { name: 'team', namespaces: 1, is_pull_through: false, immutable_tags: true, downstreams: [] },
      ],
    });
    expect((await get('/v2/_ext/_repositories', 'admin')).json().repositories[0].namespaces).toBe(2);
  });

  it('lists tags with digest, media type, size, platforms and times', async () => {
    expect(
      (await api.send('GET', '/v2/team/app/manifests/v1', { headers: { Accept: OCI_INDEX } })).status,
    ).toBe(200);
    const reply = await get('/v2/_ext/team/app/_tags');
    expect(reply.status).toBe(200);
    const body = reply.json();
    expect(body.total).toBe(3);
    expect(body.tags.map((tag: { name: string }) => tag.name)).toEqual(['beta', 'latest', 'v1']);
    const v1 = body.tags[2];
    expect(v1).toMatchObject({
      name: 'v1',
      digest: pushed.index,
      media_type: OCI_INDEX,
      artifact_type: null,
      size: pushed.indexSize,
      platforms: [
        { os: 'linux', architecture: 'amd64', variant: null },
        { os: 'linux', architecture: 'arm64', variant: null },
      ],
    });
    expect(Date.parse(v1.pushed_at)).toBeGreaterThan(0);
    // Pull times are written off the response path.
    for (
      let i = 0;
      i < 50 && (await get('/v2/_ext/team/app/_tags')).json().tags[2].last_pulled_at === null;
      i++
    )
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(Date.parse((await get('/v2/_ext/team/app/_tags')).json().tags[2].last_pulled_at)).toBeGreaterThan(
      0,
    );
    expect(body.tags[0]).toMatchObject({
      platforms: [{ os: 'linux', architecture: 'amd64', variant: null }],
    });
  });

  it('sorts tags by name or push time in either order, and pages in that order', async () => {
    const names = async (query: string) =>
      (await get(`/v2/_ext/team/app/_tags?${query}`)).json().tags.map((tag: { name: string }) => tag.name);
    expect(await names('order=desc')).toEqual(['v1', 'latest', 'beta']);
    expect(await names('sort=pushed')).toEqual(['v1', 'latest', 'beta']);
    expect(await names('sort=pushed&order=desc')).toEqual(['beta', 'latest', 'v1']);
    const first = await get('/v2/_ext/team/app/_tags?sort=pushed&order=desc&n=2');
    expect(first.headers.link).toBe(
      '</v2/_ext/team/app/_tags?sort=pushed&order=desc&n=2&last=latest>; rel="next"',
    );
    expect(await names('sort=pushed&order=desc&n=2&last=latest')).toEqual(['v1']);
    expect(await names('order=desc&n=2&last=latest')).toEqual(['beta']);
  });

  it('refuses a bad n, sort or order with 400 and an unknown namespace with 404', async () => {
    for (const query of ['n=1001', 'n=-1', 'n=x', 'sort=size', 'order=up']) {
      const reply = await get(`/v2/_ext/team/app/_tags?${query}`);
      expect(reply.status, query).toBe(400);
      // REQUEST_INVALID of libs/oci: the spec's code for a bad parameter is UNSUPPORTED, with 400.
      expect(errorCode(reply), query).toBe('UNSUPPORTED');
    }
    expect((await get('/v2/_ext/_namespaces?n=1001')).status).toBe(400);
    expect((await get('/v2/_ext/team/app/_revisions?n=5000')).status).toBe(400);
    for (const path of ['/v2/_ext/nope/_tags', '/v2/_ext/nope/_revisions', '/v2/_ext/nope/_uploads']) {
      const reply = await get(path);
      expect(reply.status, path).toBe(404);
      expect(errorCode(reply)).toBe('NAME_UNKNOWN');
    }
    expect(errorCode(await get('/v2/_ext/Bad/_tags'))).toBe('NAME_INVALID');
    expect((await get('/v2/_ext/team/_unknown')).status).toBe(404);
  });

  it('lists revisions with their tags, parents and subject', async () => {
    const reply = await get('/v2/_ext/team/app/_revisions');
    expect(reply.status).toBe(200);
    const { revisions, total } = reply.json();
    expect(total).toBe(6);
    const byDigest = new Map(revisions.map((revision: { digest: string }) => [revision.digest, revision]));
    expect(byDigest.get(pushed.amd64)).toMatchObject({ parents: [pushed.index], tags: [], subject: null });
    expect(byDigest.get(pushed.index)).toMatchObject({ tags: ['v1'], parents: [], media_type: OCI_INDEX });
    expect(byDigest.get(pushed.signature)).toMatchObject({
      subject: pushed.index,
      artifact_type: SIGNATURE_TYPE,
    });
    const digests = revisions.map((revision: { digest: string }) => revision.digest);
    expect(digests).toEqual([...digests].sort());
    const paged = await get(`/v2/_ext/team/app/_revisions?n=2&last=${digests[1]}`);
    expect(paged.json().revisions.map((revision: { digest: string }) => revision.digest)).toEqual(
      digests.slice(2, 4),
    );
  });

  it('shows one manifest in detail: platforms of an index, referrers, parents', async () => {
    const index = (await get(`/v2/_ext/team/app/_manifests/${pushed.index}`)).json();
    expect(index).toMatchObject({
      digest: pushed.index,
      media_type: OCI_INDEX,
      tags: ['v1'],
      config: null,
      layers: [],
      subject: null,
      parents: [],
    });
    expect(
      index.manifests.map((child: { platform: { architecture: string } }) => child.platform.architecture),
    ).toEqual(['amd64', 'arm64']);
    expect(index.referrers).toEqual([
      {
        digest: pushed.signature,
        media_type: OCI_MANIFEST,
        artifact_type: SIGNATURE_TYPE,
        size: expect.any(Number),
        annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ' },
      },
    ]);
    const image = (await get(`/v2/_ext/team/app/_manifests/${pushed.arm64}`)).json();
    expect(image.parents).toEqual([pushed.index]);
    expect(image.config.media_type).toBe('application/vnd.oci.image.config.v1+json');
    expect(image.layers).toHaveLength(1);
    const signature = (await get(`/v2/_ext/team/app/_manifests/${pushed.signature}`)).json();
    expect(signature.subject).toMatchObject({ digest: pushed.index, media_type: OCI_INDEX });
    const missing = await get(`/v2/_ext/team/app/_manifests/${sha256('nothing')}`);
    expect(missing.status).toBe(404);
    expect(errorCode(missing)).toBe('MANIFEST_UNKNOWN');
    expect(errorCode(await get('/v2/_ext/team/app/_manifests/sha256:xyz'))).toBe('DIGEST_INVALID');
  });

  it('lists upload sessions in progress', async () => {
    const started = await api.send('POST', '/v2/team/app/blobs/uploads/');
    expect(started.status).toBe(202);
    const id = String(started.headers['docker-upload-uuid']);
    await api.send('PATCH', `/v2/team/app/blobs/uploads/${id}`, {
      body: 'abc',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-2' },
    });
    const reply = await get('/v2/_ext/team/app/_uploads');
    expect(reply.status).toBe(200);
    expect(reply.json().uploads).toEqual([{ id, size: 3, started_at: expect.any(String) }]);
    expect((await get('/v2/_ext/_namespaces?parent=team', 'admin')).json().entries[0].uploads).toBe(1);
    await api.send('DELETE', `/v2/team/app/blobs/uploads/${id}`);
    expect((await get('/v2/_ext/team/app/_uploads')).json().uploads).toEqual([]);
  });
});

describe.skipIf(!s3Server)('extension API on S3', () => {
  it('lists the tree, tags and revisions from S3', async () => {
    const allow = '[global.access_policy]\ndefault = "allow"\n';
    const api = await startApi(allow, { kind: 'in-process' }, [], { name: 's3', blob: 's3', metadata: 's3' });
    try {
      const pushed = await pushIndex(api, 'team/app', 'v1');
      const root = (await api.send('GET', '/v2/_ext/_namespaces')).json().entries;
      expect(root).toMatchObject([{ path: 'team', is_namespace: false, has_children: true }]);
      const tags = (await api.send('GET', '/v2/_ext/team/app/_tags')).json();
      expect(tags).toMatchObject({
        total: 1,
        tags: [{ name: 'v1', digest: pushed.index, size: pushed.indexSize }],
      });
      const revisions = (await api.send('GET', '/v2/_ext/team/app/_revisions')).json();
      expect(revisions.total).toBe(4);
    } finally {
      await api.close();
    }
  }, 60_000);
});
