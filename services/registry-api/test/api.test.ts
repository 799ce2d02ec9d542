import {
  CONTEXT_HEADER,
  deriveSigningKey,
  encodeContext,
  formatSignature,
  SIGNATURE_HEADER,
  SIGNATURE_WINDOW_MS,
} from '@angos/http';
import { keyFor } from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ALL_MANIFEST_TYPES,
  type Api,
  BACKENDS,
  type Backend,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  type Reply,
  s3Server,
  sha256,
  startApi,
  type Trust,
  usesS3,
} from './harness.js';

const HOUR = 3_600_000;

let api: Api;
afterEach(async () => api?.close());

function errorCode(reply: Reply): string {
  return reply.json().errors[0].code;
}

/** Docker-Content-Digest of a GET: from the registry's 307 when it redirected to the storage. */
function contentDigest(reply: Reply): string | string[] | undefined {
  return (reply.redirect ?? reply).headers['docker-content-digest'];
}

// The whole suite on every backend set-up; the S3 ones need the run's S3 server.
describe.each(BACKENDS)('on $name storage', (backend: Backend) => {
  const start = (extraToml?: string, trust?: Trust, mountAllowedFrom?: readonly string[]) =>
    startApi(extraToml, trust, mountAllowedFrom, backend);
  describe.skipIf(usesS3(backend) && !s3Server)('registry-api', () => {
    describe('base and routing', () => {
      beforeEach(async () => {
        api = await start();
      });

      it('answers the version check', async () => {
        const reply = await api.send('GET', '/v2/');
        expect(reply.status).toBe(200);
        expect(reply.headers['docker-distribution-api-version']).toBe('registry/2.0');
        expect((await api.send('GET', '/v2')).status).toBe(200);
      });

      it('answers unknown paths and methods with OCI errors', async () => {
        const unknown = await api.send('GET', '/v3/whatever');
        expect(unknown.status).toBe(404);
        expect(unknown.json().errors[0].code).toBeTypeOf('string');
        const method = await api.send('POST', '/v2/t/img/manifests/latest');
        expect(method.status).toBe(405);
        expect(method.headers.allow).toContain('PUT');
      });

      it.each([
        ['uppercase', '/v2/Team/img/tags/list'],
        ['dot-dot', '/v2/t/../img/tags/list'],
        ['encoded dot-dot', '/v2/t/%2e%2e/img/tags/list'],
        ['encoded slash', '/v2/t%2Fimg/tags/list'],
        ['NUL', '/v2/t/img%00/tags/list'],
        ['300 characters', `/v2/${'a'.repeat(300)}/tags/list`],
        ['empty component', '/v2/t//img/tags/list'],
      ])('rejects a %s namespace with NAME_INVALID', async (_label, path) => {
        const reply = await api.send('GET', path);
        expect(reply.status).toBe(400);
        expect(errorCode(reply)).toBe('NAME_INVALID');
      });
    });

    describe('blobs', () => {
      beforeEach(async () => {
        api = await start();
      });

      it('uploads monolithically and serves GET, HEAD and ranges', async () => {
        const data = Buffer.from('0123456789abcdef');
        const digest = await pushBlob(api, 't/img', data);
        const head = await api.send('HEAD', `/v2/t/img/blobs/${digest}`);
        expect(head.status).toBe(200);
        expect(head.headers['content-length']).toBe('16');
        expect(head.headers['docker-content-digest']).toBe(digest);
        const get = await api.send('GET', `/v2/t/img/blobs/${digest}`);
        expect(get.body.equals(data)).toBe(true);
        const range = await api.send('GET', `/v2/t/img/blobs/${digest}`, { headers: { Range: 'bytes=2-5' } });
        expect(range.status).toBe(206);
        expect(range.body.toString()).toBe('2345');
        expect(range.headers['content-range']).toBe('bytes 2-5/16');
        const suffix = await api.send('GET', `/v2/t/img/blobs/${digest}`, { headers: { Range: 'bytes=-3' } });
        expect(suffix.body.toString()).toBe('def');
        const beyond = await api.send('GET', `/v2/t/img/blobs/${digest}`, {
          headers: { Range: 'bytes=100-200' },
        });
        expect(beyond.status).toBe(416);
        expect(beyond.headers['content-range']).toBe('bytes */16');
      });

      it.each([
        ['unknown algorithm', 'md5:d41d8cd98f00b204e9800998ecf8427e'],
        ['short hex', 'sha256:abc'],
        ['uppercase hex', `sha256:${'A'.repeat(64)}`],
        ['no algorithm', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      ])('rejects a digest with %s', async (_label, digest) => {
        const reply = await api.send('GET', `/v2/t/img/blobs/${digest}`);
        expect(reply.status).toBe(400);
        expect(errorCode(reply)).toBe('DIGEST_INVALID');
      });

      it('answers BLOB_UNKNOWN for a blob the namespace does not hold', async () => {
        const digest = await pushBlob(api, 't/a', 'secret bytes');
        const other = await api.send('GET', `/v2/t/b/blobs/${digest}`);
        expect(other.status).toBe(404);
        expect(errorCode(other)).toBe('BLOB_UNKNOWN');
        expect((await api.send('HEAD', `/v2/t/a/blobs/${sha256('never pushed')}`)).status).toBe(404);
      });

      it('uploads in chunks with Content-Range, streamed chunks and a final chunk on PUT', async () => {
        const start = await api.send('POST', '/v2/t/img/blobs/uploads/');
        expect(start.status).toBe(202);
        expect(start.headers.range).toBe('0-0');
        const location = String(start.headers.location);
        expect(location).toMatch(/^\/v2\/t\/img\/blobs\/uploads\/[0-9a-f-]{36}$/);
        expect(start.headers['docker-upload-uuid']).toBe(location.split('/').pop());

        const first = await api.send('PATCH', location, {
          body: 'hello ',
          headers: { 'Content-Range': '0-5', 'Content-Type': 'application/octet-stream' },
        });
        expect(first.status).toBe(202);
        expect(first.headers.range).toBe('0-5');

        // Streamed (chunked transfer encoding, no Content-Length), as docker does.
        const second = await api.send('PATCH', location, {
          body: [Buffer.from('chunked '), Buffer.from('world')],
        });
        expect(second.status).toBe(202);
        expect(second.headers.range).toBe('0-18');

        const outOfOrder = await api.send('PATCH', location, {
          body: 'x',
          headers: { 'Content-Range': '5-5' },
        });
        expect(outOfOrder.status).toBe(416);

        const status = await api.send('GET', location);
        expect(status.status).toBe(204);
        expect(status.headers.range).toBe('0-18');

        const digest = sha256('hello chunked world!');
        const done = await api.send('PUT', `${location}?digest=${digest}`, { body: '!' });
        expect(done.status).toBe(201);
        expect(done.headers.location).toBe(`/v2/t/img/blobs/${digest}`);
        expect((await api.send('GET', `/v2/t/img/blobs/${digest}`)).body.toString()).toBe(
          'hello chunked world!',
        );
        expect((await api.send('GET', location)).status).toBe(404);
      });

      it('verifies the digest on completion and cancels the session on a mismatch, so the client starts again', async () => {
        const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        await api.send('PATCH', location, { body: 'some ' });
        // The final chunk came with the PUT: a kept session would keep it, and every retry would mismatch.
        const wrong = await api.send('PUT', `${location}?digest=${sha256('other bytes')}`, { body: 'bytes' });
        expect(wrong.status).toBe(400);
        expect(errorCode(wrong)).toBe('DIGEST_INVALID');
        const gone = await api.send('GET', location);
        expect(gone.status).toBe(404);
        expect(errorCode(gone)).toBe('BLOB_UPLOAD_UNKNOWN');
        expect((await api.send('PUT', `${location}?digest=${sha256('some bytes')}`)).status).toBe(404);

        const retry = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        expect((await api.send('PATCH', retry, { body: 'some ' })).status).toBe(202);
        const done = await api.send('PUT', `${retry}?digest=${sha256('some bytes')}`, { body: 'bytes' });
        expect(done.status).toBe(201);
        expect((await api.send('GET', `/v2/t/img/blobs/${sha256('some bytes')}`)).body.toString()).toBe(
          'some bytes',
        );
      });

      it.each([
        ['longer', [Buffer.from('abcd'), Buffer.from('efgh')]],
        ['shorter', [Buffer.from('ab')]],
      ])(
        'answers 416 to a chunked body %s than its Content-Range, the session still at its offset',
        async (_label, body) => {
          const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
          expect(
            (await api.send('PATCH', location, { body: 'head:', headers: { 'Content-Range': '0-4' } }))
              .status,
          ).toBe(202);
          // Streamed (no Content-Length): only the Content-Range says how long the chunk is.
          const patched = await api.send('PATCH', location, { body, headers: { 'Content-Range': '5-8' } });
          expect(patched.status).toBe(416);
          expect(errorCode(patched)).toBe('BLOB_UPLOAD_INVALID');
          expect((await api.send('GET', location)).headers.range).toBe('0-4');
          const put = await api.send('PUT', `${location}?digest=${sha256('head:abcd')}`, {
            body,
            headers: { 'Content-Range': '5-8' },
          });
          expect(put.status).toBe(416);
          expect((await api.send('GET', location)).headers.range).toBe('0-4');

          const fixed = await api.send('PATCH', location, {
            body: [Buffer.from('ab'), Buffer.from('cd')],
            headers: { 'Content-Range': '5-8' },
          });
          expect(fixed.status).toBe(202);
          expect(fixed.headers.range).toBe('0-8');
          expect((await api.send('PUT', `${location}?digest=${sha256('head:abcd')}`)).status).toBe(201);
        },
      );

      it('lets a DELETE end a session while a PATCH streams into it, and the PATCH then answers 404', async () => {
        const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        let deleted: number | undefined;
        async function* deletedMidway() {
          yield Buffer.from('first half ');
          // The PATCH holds no lock while its body streams: the DELETE does not wait for it.
          deleted = (await api.send('DELETE', location)).status;
          yield Buffer.from('second half');
        }
        const patched = await api.send('PATCH', location, { body: deletedMidway() });
        expect(deleted).toBe(204);
        expect(patched.status).toBe(404);
        expect(errorCode(patched)).toBe('BLOB_UPLOAD_UNKNOWN');
        // Nothing of the session came back with the end of the append (S3 saves its state then).
        expect((await api.send('GET', location)).status).toBe(404);
        expect((await api.send('PATCH', location, { body: 'more' })).status).toBe(404);
      });

      it('supports sha512', async () => {
        const { createHash } = await import('node:crypto');
        const data = 'sha512 content';
        const digest = `sha512:${createHash('sha512').update(data).digest('hex')}`;
        const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        await api.send('PATCH', location, { body: data });
        expect((await api.send('PUT', `${location}?digest=${digest}`)).status).toBe(201);
        expect((await api.send('GET', `/v2/t/img/blobs/${digest}`)).body.toString()).toBe(data);
      });

      it('answers BLOB_UPLOAD_UNKNOWN for unknown, malformed and cancelled sessions', async () => {
        const unknown = await api.send(
          'PATCH',
          '/v2/t/img/blobs/uploads/3f1b9a2c-0000-4000-8000-000000000000',
          {
            body: 'x',
          },
        );
        expect(unknown.status).toBe(404);
        expect(errorCode(unknown)).toBe('BLOB_UPLOAD_UNKNOWN');
        expect((await api.send('GET', '/v2/t/img/blobs/uploads/..%2f..%2fetc')).status).toBe(404);
        const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        expect((await api.send('DELETE', location)).status).toBe(204);
        expect((await api.send('DELETE', location)).status).toBe(404);
        expect((await api.send('PUT', `${location}?digest=${sha256('')}`)).status).toBe(404);
      });

      it('requires a digest to complete', async () => {
        const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        const reply = await api.send('PUT', location);
        expect(reply.status).toBe(400);
        expect(errorCode(reply)).toBe('DIGEST_INVALID');
      });

      it('falls back to a normal session when a mount is not allowed', async () => {
        const digest = await pushBlob(api, 't/src', 'mount me');
        const reply = await api.send('POST', `/v2/t/dst/blobs/uploads/?mount=${digest}&from=t/src`);
        expect(reply.status).toBe(202);
        expect((await api.send('HEAD', `/v2/t/dst/blobs/${digest}`)).status).toBe(404);
      });

      it('deletes a blob; its bytes go with the next garbage collection pass past the grace period', async () => {
        const digest = await pushBlob(api, 't/img', 'to be deleted');
        expect(await api.blobHexes()).toContain(digest.slice(7));
        expect((await api.send('DELETE', `/v2/t/img/blobs/${digest}`)).status).toBe(202);
        expect((await api.send('HEAD', `/v2/t/img/blobs/${digest}`)).status).toBe(404);
        expect((await api.send('DELETE', `/v2/t/img/blobs/${digest}`)).status).toBe(404);
        // The request deletes the grant only; the bytes are garbage collection's.
        expect(await api.blobHexes()).toContain(digest.slice(7));
        expect((await api.collectGarbage({ gracePeriodMs: HOUR })).blobsDeleted).toBe(0);
        expect(await api.blobHexes()).toContain(digest.slice(7));
        expect((await api.collectGarbage({ gracePeriodMs: 0 })).blobsDeleted).toBe(1);
        expect(await api.blobHexes()).not.toContain(digest.slice(7));
      });
    });

    describe('cross-repository mount', () => {
      it('mounts a blob the caller may read from the source namespace', async () => {
        api = await start('', { kind: 'in-process' }, ['t/src']);
        const digest = await pushBlob(api, 't/src', 'mount me');
        const reply = await api.send('POST', `/v2/t/dst/blobs/uploads/?mount=${digest}&from=t/src`);
        expect(reply.status).toBe(201);
        expect(reply.headers.location).toBe(`/v2/t/dst/blobs/${digest}`);
        expect(reply.headers['docker-content-digest']).toBe(digest);
        expect((await api.send('GET', `/v2/t/dst/blobs/${digest}`)).body.toString()).toBe('mount me');
        // The source keeps its own grant; deleting one leaves the other readable.
        expect((await api.send('DELETE', `/v2/t/src/blobs/${digest}`)).status).toBe(202);
        expect((await api.send('GET', `/v2/t/dst/blobs/${digest}`)).status).toBe(200);
      });

      it('does not mount a digest the source does not hold', async () => {
        api = await start('', { kind: 'in-process' }, ['t/src', 't/other']);
        const digest = await pushBlob(api, 't/other', 'held elsewhere');
        const reply = await api.send('POST', `/v2/t/dst/blobs/uploads/?mount=${digest}&from=t/src`);
        expect(reply.status).toBe(202);
        expect((await api.send('HEAD', `/v2/t/dst/blobs/${digest}`)).status).toBe(404);
      });
    });

    describe('blob size limit', () => {
      beforeEach(async () => {
        api = await start('[global]\nmax_blob_size = "1KiB"\n');
      });

      it('rejects a blob above max_blob_size with 413 BLOB_UPLOAD_INVALID, declared or streamed', async () => {
        const big = Buffer.alloc(2048, 1);
        const declared = await api.send('POST', `/v2/t/img/blobs/uploads/?digest=${sha256(big)}`, {
          body: big,
        });
        expect(declared.status).toBe(413);
        expect(errorCode(declared)).toBe('BLOB_UPLOAD_INVALID');
        const location = String((await api.send('POST', '/v2/t/img/blobs/uploads/')).headers.location);
        const streamed = await api.send('PATCH', location, {
          body: [big.subarray(0, 1000), big.subarray(1000)],
        });
        expect(streamed.status).toBe(413);
        expect(await api.blobHexes()).toEqual([]);
      });
    });

    describe('manifests', () => {
      beforeEach(async () => {
        api = await start();
      });

      it('pushes by tag and serves it by tag and digest', async () => {
        const image = await pushImage(api, 't/img', 'v1');
        for (const reference of ['v1', image.digest]) {
          const reply = await api.send('GET', `/v2/t/img/manifests/${reference}`, {
            headers: { Accept: ALL_MANIFEST_TYPES },
          });
          expect(reply.status).toBe(200);
          expect(reply.headers['content-type']).toBe(OCI_MANIFEST);
          expect(contentDigest(reply)).toBe(image.digest);
          expect(reply.body.toString()).toBe(image.body);
        }
        const head = await api.send('HEAD', '/v2/t/img/manifests/v1');
        expect(head.status).toBe(200);
        expect(head.headers['content-length']).toBe(String(image.body.length));
      });

      it('negotiates on Accept', async () => {
        await pushImage(api, 't/img', 'v1');
        const dockerOnly = await api.send('GET', '/v2/t/img/manifests/v1', {
          headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        });
        expect(dockerOnly.status).toBe(404);
        expect(errorCode(dockerOnly)).toBe('MANIFEST_UNKNOWN');
        const wildcard = await api.send('GET', '/v2/t/img/manifests/v1', { headers: { Accept: '*/*' } });
        expect(wildcard.status).toBe(200);
      });

      it('answers MANIFEST_UNKNOWN for unknown tags and digests', async () => {
        expect(errorCode(await api.send('GET', '/v2/t/img/manifests/nope'))).toBe('MANIFEST_UNKNOWN');
        expect((await api.send('GET', `/v2/t/img/manifests/${sha256('x')}`)).status).toBe(404);
      });

      // Conformance (distribution-spec suite v1.1.1) and distribution/zot: a name that no push
      // could have created names no manifest. Only a PUT is told that its tag is invalid.
      it.each([
        ['the conformance suite', '.INVALID_MANIFEST_NAME'],
        ['129 characters', 'a'.repeat(129)],
        ['leading dash', '-leading-dash'],
      ])(
        'answers 404 MANIFEST_UNKNOWN to GET, HEAD and DELETE by an invalid tag (%s), 400 to a PUT',
        async (_label, tag) => {
          await pushImage(api, 't/img', 'v1');
          for (const method of ['GET', 'HEAD', 'DELETE']) {
            const reply = await api.send(method, `/v2/t/img/manifests/${tag}`, {
              headers: { Accept: ALL_MANIFEST_TYPES },
            });
            expect(reply.status, method).toBe(404);
            if (method !== 'HEAD') expect(errorCode(reply), method).toBe('MANIFEST_UNKNOWN');
          }
          const image = await pushImage(api, 't/img', 'v2');
          const put = await api.send('PUT', `/v2/t/img/manifests/${tag}`, {
            body: image.body,
            headers: { 'Content-Type': OCI_MANIFEST },
          });
          expect(put.status).toBe(400);
          expect(errorCode(put)).toBe('MANIFEST_INVALID');
          expect(put.json().errors[0].message).toBe('invalid tag');
        },
      );

      it.each([
        ['invalid JSON', '{"schemaVersion": 2,', OCI_MANIFEST],
        ['schema version 1', JSON.stringify({ schemaVersion: 1, mediaType: OCI_MANIFEST }), OCI_MANIFEST],
        [
          'a media type that disagrees with Content-Type',
          JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }),
          OCI_MANIFEST,
        ],
        ['an unknown media type', JSON.stringify({ schemaVersion: 2, layers: [] }), 'text/plain'],
        ['deep nesting', `${'['.repeat(10000)}${']'.repeat(10000)}`, OCI_MANIFEST],
      ])('rejects %s with MANIFEST_INVALID', async (_label, body, contentType) => {
        const reply = await api.send('PUT', '/v2/t/img/manifests/v1', {
          body,
          headers: { 'Content-Type': contentType },
        });
        expect(reply.status).toBe(400);
        expect(errorCode(reply)).toBe('MANIFEST_INVALID');
      });

      it('rejects a manifest above max_manifest_size with 413', async () => {
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [],
          pad: 'x'.repeat(6 << 20),
        });
        const reply = await api.send('PUT', '/v2/t/img/manifests/big', {
          body,
          headers: { 'Content-Type': OCI_INDEX },
        });
        expect(reply.status).toBe(413);
      });

      it('checks a digest reference against the body and applies ?tag=', async () => {
        const image = await pushImage(api, 't/img', 'base');
        const wrong = await api.send('PUT', `/v2/t/img/manifests/${sha256('other')}`, {
          body: image.body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(wrong.status).toBe(400);
        expect(errorCode(wrong)).toBe('DIGEST_INVALID');
        const tagged = await api.send('PUT', `/v2/t/img/manifests/${image.digest}?tag=a&tag=b`, {
          body: image.body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(tagged.status).toBe(201);
        expect((await api.send('GET', '/v2/t/img/tags/list')).json().tags).toEqual(['a', 'b', 'base']);
      });

      it('echoes every tag a push by digest created in OCI-Tag, once each', async () => {
        const image = await pushImage(api, 't/img', 'base');
        const tagged = await api.send(
          'PUT',
          `/v2/t/img/manifests/${image.digest}?tag=1.2.3&tag=latest&tag=1.2.3`,
          {
            body: image.body,
            headers: { 'Content-Type': OCI_MANIFEST },
          },
        );
        expect(tagged.status).toBe(201);
        expect(tagged.headers['oci-tag']).toBe('1.2.3, latest');
        expect((await api.send('GET', '/v2/t/img/tags/list')).json().tags).toEqual([
          '1.2.3',
          'base',
          'latest',
        ]);
        // Without ?tag=, and on a push by tag (which ignores ?tag=), no tag header.
        const untagged = await api.send('PUT', `/v2/t/img/manifests/${image.digest}`, {
          body: image.body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(untagged.headers['oci-tag']).toBeUndefined();
        const byTag = await api.send('PUT', '/v2/t/img/manifests/v9?tag=other', {
          body: image.body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(byTag.status).toBe(201);
        expect(byTag.headers['oci-tag']).toBeUndefined();
        // One invalid tag refuses the whole push: nothing to echo.
        const invalid = await api.send('PUT', `/v2/t/img/manifests/${image.digest}?tag=ok&tag=.bad`, {
          body: image.body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(invalid.status).toBe(400);
        expect(invalid.headers['oci-tag']).toBeUndefined();
        expect((await api.send('GET', '/v2/t/img/manifests/ok')).status).toBe(404);
      });

      it('deletes a tag without deleting the manifest', async () => {
        const image = await pushImage(api, 't/img', 'v1');
        expect((await api.send('DELETE', '/v2/t/img/manifests/v1')).status).toBe(202);
        expect((await api.send('GET', '/v2/t/img/manifests/v1')).status).toBe(404);
        expect((await api.send('GET', `/v2/t/img/manifests/${image.digest}`)).status).toBe(200);
        expect((await api.send('DELETE', '/v2/t/img/manifests/v1')).status).toBe(404);
      });

      it('deletes a manifest with its tags; garbage collection reclaims what nothing else uses', async () => {
        const kept = await pushImage(api, 't/other', 'v1', 'shared');
        const image = await pushImage(api, 't/img', 'v1', 'shared');
        await api.send('PUT', `/v2/t/img/manifests/v2`, {
          body: image.body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect((await api.send('DELETE', `/v2/t/img/manifests/${image.digest}`)).status).toBe(202);
        expect((await api.send('GET', '/v2/t/img/manifests/v2')).status).toBe(404);
        // The delete revokes no grant: a push that was told the layer exists may still use it.
        expect((await api.send('HEAD', `/v2/t/img/blobs/${image.layer}`)).status).toBe(200);
        await api.collectGarbage({ gracePeriodMs: 0 });
        expect((await api.send('HEAD', `/v2/t/img/blobs/${image.layer}`)).status).toBe(404);
        // t/other holds the same content: its copy is untouched.
        expect((await api.send('HEAD', `/v2/t/other/blobs/${kept.layer}`)).status).toBe(200);
        expect((await api.send('GET', '/v2/t/other/manifests/v1')).status).toBe(200);
        expect(await api.blobHexes()).toContain(image.layer.slice(7));

        expect((await api.send('DELETE', `/v2/t/other/manifests/${kept.digest}`)).status).toBe(202);
        expect(await api.blobHexes()).toContain(image.layer.slice(7));
        await api.collectGarbage({ gracePeriodMs: 0 });
        expect(await api.blobHexes()).toEqual([]);
        const layer = { algorithm: 'sha256', hex: image.layer.slice(7) } as const;
        expect(await api.hasMetadata(keyFor({ kind: 'blobIndex', digest: layer }))).toBe(false);
      });

      it('keeps a layer that HEAD found when the last other manifest using it is deleted before the PUT', async () => {
        // The client flow of issue 2.1 point 1: B's client HEADs L (200) and skips its upload;
        // another client deletes A, the last manifest using L; B's manifest PUT then answers 201.
        const a = await pushImage(api, 't/img', 'a', 'shared');
        const configB = JSON.stringify({ architecture: 'arm64', os: 'linux' });
        const configDigest = await pushBlob(api, 't/img', configB);
        expect((await api.send('HEAD', `/v2/t/img/blobs/${a.layer}`)).status).toBe(200);
        expect((await api.send('DELETE', `/v2/t/img/manifests/${a.digest}`)).status).toBe(202);
        const layerSize = 'layer of shared'.length;
        const b = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: configDigest,
            size: configB.length,
          },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: a.layer, size: layerSize }],
        });
        const put = await api.send('PUT', '/v2/t/img/manifests/b', {
          body: b,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(put.status).toBe(201);
        expect((await api.send('GET', `/v2/t/img/blobs/${a.layer}`)).body.toString()).toBe('layer of shared');
        // B references L now: a garbage collection pass, even with no grace at all, keeps it.
        await api.collectGarbage({ gracePeriodMs: 0 });
        expect((await api.send('GET', `/v2/t/img/blobs/${a.layer}`)).status).toBe(200);
        expect((await api.send('GET', '/v2/t/img/manifests/b')).status).toBe(200);

        // With B deleted too, L stays readable until a pass past the grace period, then goes.
        expect((await api.send('DELETE', `/v2/t/img/manifests/${sha256(b)}`)).status).toBe(202);
        expect((await api.send('GET', `/v2/t/img/blobs/${a.layer}`)).status).toBe(200);
        expect((await api.collectGarbage({ gracePeriodMs: HOUR })).grantsRevoked).toBe(0);
        expect((await api.send('GET', `/v2/t/img/blobs/${a.layer}`)).status).toBe(200);
        const later = Date.now() + 3 * HOUR;
        await api.collectGarbage({ gracePeriodMs: HOUR, now: () => later });
        expect((await api.send('GET', `/v2/t/img/blobs/${a.layer}`)).status).toBe(404);
        expect(await api.blobHexes()).toContain(a.layer.slice(7));
        await api.collectGarbage({ gracePeriodMs: HOUR, now: () => later + HOUR });
        expect(await api.blobHexes()).not.toContain(a.layer.slice(7));
        expect(await api.blobHexes()).toEqual([]);
      });

      it('accepts a multi-platform index', async () => {
        const amd = await pushImage(api, 't/multi', 'amd', 'amd');
        const arm = await pushImage(api, 't/multi', 'arm', 'arm');
        const index = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [
            {
              mediaType: OCI_MANIFEST,
              digest: amd.digest,
              size: amd.body.length,
              platform: { os: 'linux', architecture: 'amd64' },
            },
            {
              mediaType: OCI_MANIFEST,
              digest: arm.digest,
              size: arm.body.length,
              platform: { os: 'linux', architecture: 'arm64' },
            },
          ],
        });
        const put = await api.send('PUT', '/v2/t/multi/manifests/latest', {
          body: index,
          headers: { 'Content-Type': OCI_INDEX },
        });
        expect(put.status).toBe(201);
        const get = await api.send('GET', '/v2/t/multi/manifests/latest', { headers: { Accept: OCI_INDEX } });
        expect(get.headers['content-type']).toBe(OCI_INDEX);
        expect(contentDigest(get)).toBe(sha256(index));
      });
    });

    describe('manifest references', () => {
      it('accepts missing references by default but never makes them readable', async () => {
        api = await start();
        const foreign = await pushBlob(api, 't/a', 'owned by a');
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: foreign, size: 10 },
          layers: [],
        });
        const put = await api.send('PUT', '/v2/t/b/manifests/v1', {
          body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(put.status).toBe(201);
        expect((await api.send('GET', `/v2/t/b/blobs/${foreign}`)).status).toBe(404);
      });

      it('rejects missing references with MANIFEST_BLOB_UNKNOWN when allow_missing_manifest_references = false', async () => {
        api = await start('[global]\nallow_missing_manifest_references = false\n');
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: sha256('absent'),
            size: 6,
          },
          layers: [],
        });
        const put = await api.send('PUT', '/v2/t/b/manifests/v1', {
          body,
          headers: { 'Content-Type': OCI_MANIFEST },
        });
        expect(put.status).toBe(404);
        expect(errorCode(put)).toBe('MANIFEST_BLOB_UNKNOWN');
        await pushImage(api, 't/b', 'complete');
      });
    });

    describe('immutable tags', () => {
      it('refuses to move an immutable tag, allows re-pushing the same digest and excluded tags', async () => {
        api = await start('[global]\nimmutable_tags = true\nimmutable_tags_exclusions = ["^latest$"]\n');
        await pushImage(api, 't/img', 'v1', 'one');
        await pushImage(api, 't/img', 'v1', 'one');
        await expect(pushImage(api, 't/img', 'v1', 'two')).rejects.toThrow(/409/);
        await pushImage(api, 't/img', 'latest', 'one');
        await pushImage(api, 't/img', 'latest', 'two');
      });

      it('lets a repository override the global setting', async () => {
        api = await start(
          '[global]\nimmutable_tags = true\n[repository."scratch"]\nimmutable_tags = false\n',
        );
        await pushImage(api, 'scratch/img', 'v1', 'one');
        await pushImage(api, 'scratch/img', 'v1', 'two');
        await pushImage(api, 'prod/img', 'v1', 'one');
        await expect(pushImage(api, 'prod/img', 'v1', 'two')).rejects.toThrow(/409/);
      });
    });

    describe('tag listing and catalog', () => {
      beforeEach(async () => {
        api = await start();
      });

      it('lists tags sorted, paginated with n, last and Link', async () => {
        const image = await pushImage(api, 't/img', 'c');
        for (const tag of ['a', 'B', 'b', '1.0']) {
          await api.send('PUT', `/v2/t/img/manifests/${tag}`, {
            body: image.body,
            headers: { 'Content-Type': OCI_MANIFEST },
          });
        }
        expect((await api.send('GET', '/v2/t/img/tags/list')).json()).toEqual({
          name: 't/img',
          tags: ['1.0', 'B', 'a', 'b', 'c'],
        });
        const page = await api.send('GET', '/v2/t/img/tags/list?n=2');
        expect(page.json().tags).toEqual(['1.0', 'B']);
        expect(page.headers.link).toBe('</v2/t/img/tags/list?n=2&last=B>; rel="next"');
        const next = await api.send('GET', '/v2/t/img/tags/list?n=2&last=B');
        expect(next.json().tags).toEqual(['a', 'b']);
        const end = await api.send('GET', '/v2/t/img/tags/list?n=2&last=b');
        expect(end.json().tags).toEqual(['c']);
        expect(end.headers.link).toBeUndefined();
        expect((await api.send('GET', '/v2/t/img/tags/list?n=0')).json().tags).toEqual([]);
      });

      it.each(['-1', 'abc', '1e3', ''])('rejects n=%s with a 400', async (n) => {
        await pushImage(api, 't/img', 'v1');
        expect((await api.send('GET', `/v2/t/img/tags/list?n=${n}`)).status).toBe(400);
      });

      it('answers NAME_UNKNOWN for a namespace that holds nothing', async () => {
        const reply = await api.send('GET', '/v2/t/nothing/tags/list');
        expect(reply.status).toBe(404);
        expect(errorCode(reply)).toBe('NAME_UNKNOWN');
      });

      // As distribution: a namespace is known once it holds a manifest. Layers, upload sessions
      // and manifests that were deleted do not make one.
      it('answers NAME_UNKNOWN for a namespace with only blobs, an upload session or deleted manifests', async () => {
        await pushBlob(api, 't/layers', 'only a layer');
        expect((await api.send('POST', '/v2/t/session/blobs/uploads/')).status).toBe(202);
        const gone = await pushImage(api, 't/gone', 'v1');
        expect((await api.send('DELETE', `/v2/t/gone/manifests/${gone.digest}`)).status).toBe(202);
        for (const namespace of ['t/layers', 't/session', 't/gone']) {
          const reply = await api.send('GET', `/v2/${namespace}/tags/list`);
          expect(reply.status, namespace).toBe(404);
          expect(errorCode(reply), namespace).toBe('NAME_UNKNOWN');
        }
      });

      it('lists no tags, with a 200, for a namespace whose manifests are untagged', async () => {
        const image = await pushImage(api, 't/img', 'v1');
        expect((await api.send('DELETE', '/v2/t/img/manifests/v1')).status).toBe(202);
        expect((await api.send('GET', `/v2/t/img/manifests/${image.digest}`)).status).toBe(200);
        const reply = await api.send('GET', '/v2/t/img/tags/list');
        expect(reply.status).toBe(200);
        expect(reply.json()).toEqual({ name: 't/img', tags: [] });
      });

      it('lists repositories in the catalog', async () => {
        await pushImage(api, 'b/img', 'v1');
        await pushImage(api, 'a/img', 'v1');
        await pushImage(api, 'a/img/sub', 'v1');
        expect((await api.send('GET', '/v2/_catalog')).json().repositories).toEqual([
          'a/img',
          'a/img/sub',
          'b/img',
        ]);
        const page = await api.send('GET', '/v2/_catalog?n=1');
        expect(page.json().repositories).toEqual(['a/img']);
        expect(page.headers.link).toContain('last=a%2Fimg');
      });

      it('lists only namespaces that hold a manifest in the catalog', async () => {
        await pushImage(api, 'a/img', 'v1');
        await pushBlob(api, 'a/img/layers', 'only a layer');
        expect((await api.send('POST', '/v2/b/session/blobs/uploads/')).status).toBe(202);
        const gone = await pushImage(api, 'c/gone', 'v1');
        expect((await api.send('DELETE', `/v2/c/gone/manifests/${gone.digest}`)).status).toBe(202);
        const untagged = await pushImage(api, 'd/untagged', 'v1');
        expect((await api.send('DELETE', '/v2/d/untagged/manifests/v1')).status).toBe(202);
        expect((await api.send('GET', `/v2/d/untagged/manifests/${untagged.digest}`)).status).toBe(200);
        expect((await api.send('GET', '/v2/_catalog')).json().repositories).toEqual(['a/img', 'd/untagged']);
      });
    });

    describe('referrers', () => {
      beforeEach(async () => {
        api = await start();
      });

      it('records a subject, lists referrers and filters by artifactType', async () => {
        const image = await pushImage(api, 't/img', 'v1');
        const empty = await pushBlob(api, 't/img', '{}');
        const artifact = (artifactType: string) =>
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            artifactType,
            config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
            layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 }],
            subject: { mediaType: OCI_MANIFEST, digest: image.digest, size: image.body.length },
            annotations: { 'org.example': artifactType },
          });
        const sbom = artifact('application/spdx+json');
        const sig = artifact('application/vnd.dev.sigstore.bundle+json');
        for (const body of [sbom, sig]) {
          const put = await api.send('PUT', `/v2/t/img/manifests/${sha256(body)}`, {
            body,
            headers: { 'Content-Type': OCI_MANIFEST },
          });
          expect(put.status).toBe(201);
          expect(put.headers['oci-subject']).toBe(image.digest);
        }
        const all = await api.send('GET', `/v2/t/img/referrers/${image.digest}`);
        expect(all.status).toBe(200);
        expect(all.headers['content-type']).toBe(OCI_INDEX);
        expect(
          all
            .json()
            .manifests.map((m: { artifactType: string }) => m.artifactType)
            .sort(),
        ).toEqual(['application/spdx+json', 'application/vnd.dev.sigstore.bundle+json']);
        const filtered = await api.send(
          'GET',
          `/v2/t/img/referrers/${image.digest}?artifactType=${encodeURIComponent('application/spdx+json')}`,
        );
        expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
        expect(filtered.json().manifests).toEqual([
          {
            mediaType: OCI_MANIFEST,
            digest: sha256(sbom),
            size: sbom.length,
            artifactType: 'application/spdx+json',
            annotations: { 'org.example': 'application/spdx+json' },
          },
        ]);
        expect((await api.send('DELETE', `/v2/t/img/manifests/${sha256(sbom)}`)).status).toBe(202);
        expect((await api.send('GET', `/v2/t/img/referrers/${image.digest}`)).json().manifests).toHaveLength(
          1,
        );
      });

      it('answers an empty index for an unknown subject and 400 for a bad digest', async () => {
        const none = await api.send('GET', `/v2/t/img/referrers/${sha256('nothing')}`);
        expect(none.status).toBe(200);
        expect(none.json()).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
        expect((await api.send('GET', '/v2/t/img/referrers/sha256:zz')).status).toBe(400);
      });
    });

    describe('split deployment trust', () => {
      const token = 's3cret-token-0123456789';
      const key = deriveSigningKey(token);
      const anonymous = encodeContext({ clientIp: '192.0.2.7' });
      let nonces = 0;
      /** The headers the gateway sends for this request, signed `ageMs` ago. */
      const signedHeaders = (method: string, target: string, context = anonymous, ageMs = 0) => {
        nonces += 1;
        const nonce = `test-nonce-${String(nonces).padStart(8, '0')}`;
        const timestamp = Date.now() - ageMs;
        return {
          [CONTEXT_HEADER]: context,
          [SIGNATURE_HEADER]: formatSignature(key, { method, target, context, timestamp, nonce }),
        };
      };

      beforeEach(async () => {
        api = await start('', { kind: 'internal-token', token });
      });

      it('serves a request the gateway signed', async () => {
        expect((await api.send('GET', '/v2/', { headers: signedHeaders('GET', '/v2/') })).status).toBe(200);
        const target = '/v2/t/img/tags/list?n=1';
        expect((await api.send('GET', target, { headers: signedHeaders('GET', target) })).status).toBe(404);
      });

      it('refuses requests without a valid signature with 401 UNAUTHORIZED, the old static token included', async () => {
        const attempts: Record<string, string>[] = [
          {},
          { 'x-angos-internal-token': token },
          { 'x-angos-internal-token': token, [CONTEXT_HEADER]: anonymous },
          { [SIGNATURE_HEADER]: 'forged' },
          { authorization: 'Basic YWRtaW46YWRtaW4=' },
        ];
        for (const headers of attempts) {
          const reply = await api.send('GET', '/v2/', { headers });
          expect(reply.status, JSON.stringify(headers)).toBe(401);
          expect(errorCode(reply)).toBe('UNAUTHORIZED');
        }
      });

      it('refuses a signed request sent to another path or with another query', async () => {
        const headers = signedHeaders('GET', '/v2/t/img/tags/list?n=1');
        expect((await api.send('GET', '/v2/other/img/tags/list?n=1', { headers })).status).toBe(401);
        expect((await api.send('GET', '/v2/t/img/tags/list?n=1000', { headers })).status).toBe(401);
        expect((await api.send('DELETE', '/v2/t/img/tags/list?n=1', { headers })).status).toBe(401);
      });

      it('refuses a signed request whose context was changed', async () => {
        const headers = signedHeaders('POST', '/v2/t/img/blobs/uploads/?mount=sha256:abc&from=secret');
        const widened = encodeContext({ clientIp: '192.0.2.7', mountAllowedFrom: ['secret'] });
        const reply = await api.send('POST', '/v2/t/img/blobs/uploads/?mount=sha256:abc&from=secret', {
          headers: { ...headers, [CONTEXT_HEADER]: widened },
        });
        expect(reply.status).toBe(401);
        expect(errorCode(reply)).toBe('UNAUTHORIZED');
      });

      it('refuses a request replayed, within the window or after it', async () => {
        const headers = signedHeaders('GET', '/v2/');
        expect((await api.send('GET', '/v2/', { headers })).status).toBe(200);
        expect((await api.send('GET', '/v2/', { headers })).status).toBe(401);
        // A request captured 31 s ago is refused even though its nonce was never seen.
        const old = signedHeaders('GET', '/v2/', anonymous, SIGNATURE_WINDOW_MS + 1_000);
        const stale = await api.send('GET', '/v2/', { headers: old });
        expect(stale.status).toBe(401);
        expect(errorCode(stale)).toBe('UNAUTHORIZED');
      });
    });

    describe('downloads', () => {
      const redirectsBlobs = backend.blob === 's3';

      /** The 307 a GET got, checked to point at the storage; undefined when it was served here. */
      function redirectOf(reply: Reply): string | undefined {
        if (!reply.redirect) return undefined;
        expect(reply.redirect.status).toBe(307);
        const location = String(reply.redirect.headers.location);
        expect(location.startsWith(`${s3Server?.endpoint}/`)).toBe(true);
        return location;
      }

      it('sends blob GETs to the storage when it can presign (S3): bytes and ranges from there, HEAD from here', async () => {
        api = await start();
        const data = Buffer.from('0123456789abcdef');
        const digest = await pushBlob(api, 't/img', data);
        const get = await api.send('GET', `/v2/t/img/blobs/${digest}`);
        expect(get.status).toBe(200);
        expect(get.body.equals(data)).toBe(true);
        const range = await api.send('GET', `/v2/t/img/blobs/${digest}`, { headers: { Range: 'bytes=2-5' } });
        expect(range.status).toBe(206);
        expect(range.body.toString()).toBe('2345');
        expect(range.headers['content-range']).toBe('bytes 2-5/16');
        const head = await api.send('HEAD', `/v2/t/img/blobs/${digest}`);
        expect(head.status).toBe(200);
        expect(head.redirect).toBeUndefined();
        expect(redirectOf(get) !== undefined).toBe(redirectsBlobs);
        expect(redirectOf(range) !== undefined).toBe(redirectsBlobs);
        expect(get.redirect?.headers['docker-content-digest']).toBe(redirectsBlobs ? digest : undefined);
        // A blob the namespace may not read is refused here, never redirected.
        const foreign = await api.send('GET', `/v2/t/other/blobs/${digest}`);
        expect(foreign.status).toBe(404);
        expect(foreign.redirect).toBeUndefined();
      });

      it('streams blobs itself, Range included, with enable_blob_redirect = false', async () => {
        api = await start('[global]\nenable_blob_redirect = false\n');
        const digest = await pushBlob(api, 't/img', '0123456789abcdef');
        const range = await api.send('GET', `/v2/t/img/blobs/${digest}`, { headers: { Range: 'bytes=-3' } });
        expect(range.status).toBe(206);
        expect(range.body.toString()).toBe('def');
        expect(range.redirect).toBeUndefined();
        expect((await api.send('GET', `/v2/t/img/blobs/${digest}`)).redirect).toBeUndefined();
      });

      it('sends manifest GETs to the storage with their media type as Content-Type', async () => {
        api = await start();
        const image = await pushImage(api, 't/img', 'v1');
        const get = await api.send('GET', '/v2/t/img/manifests/v1', {
          headers: { Accept: ALL_MANIFEST_TYPES },
        });
        expect(get.status).toBe(200);
        expect(get.headers['content-type']).toBe(OCI_MANIFEST);
        expect(get.body.toString()).toBe(image.body);
        expect(contentDigest(get)).toBe(image.digest);
        expect(redirectOf(get) !== undefined).toBe(redirectsBlobs);
        // Not acceptable to the client: answered here, not redirected.
        const refused = await api.send('GET', '/v2/t/img/manifests/v1', {
          headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
        });
        expect(refused.status).toBe(404);
        expect(refused.redirect).toBeUndefined();
        expect((await api.send('HEAD', '/v2/t/img/manifests/v1')).redirect).toBeUndefined();
      });

      it('serves manifests itself with enable_manifest_redirect = false, and everything with enable_redirect = false', async () => {
        api = await start('[global]\nenable_manifest_redirect = false\n');
        const image = await pushImage(api, 't/img', 'v1');
        const manifest = await api.send('GET', '/v2/t/img/manifests/v1');
        expect(manifest.body.toString()).toBe(image.body);
        expect(manifest.redirect).toBeUndefined();
        expect(redirectOf(await api.send('GET', `/v2/t/img/blobs/${image.layer}`)) !== undefined).toBe(
          redirectsBlobs,
        );
        await api.close();
        api = await start('[global]\nenable_redirect = false\n');
        const again = await pushImage(api, 't/img', 'v1');
        expect((await api.send('GET', '/v2/t/img/manifests/v1')).redirect).toBeUndefined();
        expect((await api.send('GET', `/v2/t/img/blobs/${again.layer}`)).redirect).toBeUndefined();
      });

      it('records the pull time of a manifest with update_pull_time, redirected or not', async () => {
        api = await start('[global]\nupdate_pull_time = true\n');
        const image = await pushImage(api, 't/img', 'v1');
        const key = `t/img/_manifests/revisions/sha256/${image.digest.slice(7)}/pulledat`;
        expect(await api.hasMetadata(key)).toBe(false);
        expect((await api.send('GET', '/v2/t/img/manifests/v1')).status).toBe(200);
        // Off the response path on fs, batched in memory on S3 (readable at once there).
        for (let i = 0; i < 50 && !(await api.hasMetadata(key)); i++)
          await new Promise((r) => setTimeout(r, 20));
        expect(await api.hasMetadata(key)).toBe(true);
      });
    });
  });
});
