import { keyFor } from '../keys.js';
import type { S3Bucket } from './bucket.js';
import { decodeState } from './upload-state.js';

/** A multipart upload that no live upload session owns. */
export interface OrphanMultipartUpload {
  /** Storage key the upload would create. */
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: Date | undefined;
}

/** `<namespace>/_uploads/<id>/data` or `…/staged/<name>`: the keys upload sessions open multipart uploads at. */
const SESSION_UPLOAD = /^(.+)\/_uploads\/([^/]+)\/(data|staged\/[^/]+)$/;
/** `_blobs/<alg>/<hex>`: the target of a multipart copy at commit. */
const BLOB_COPY = /^_blobs\/(sha256|sha512)\/[0-9a-f]+$/;

/**
 * `scrub --multipart`: finds the multipart uploads of the blob store that no
 * upload session can still complete (their session is gone, or has moved on
 * to another upload: scratch uploads of a crashed append, the multipart copy
 * of a crashed commit) and aborts them, releasing the storage their parts
 * hold. Only uploads older than a cut-off are considered, so an append or
 * commit in progress is never touched.
 */
export class S3MultipartCleanup {
  constructor(private readonly bucket: S3Bucket) {}

  /** The orphans initiated before `olderThan`, in the order S3 lists them. */
  async *orphans(olderThan: Date): AsyncGenerator<OrphanMultipartUpload> {
    const owners = new Map<string, string | undefined>();
    for await (const upload of this.bucket.listMultipartUploads('')) {
      if (upload.initiated === undefined || upload.initiated >= olderThan) continue;
      if (BLOB_COPY.test(upload.key)) {
        yield upload;
        continue;
      }
      const match = SESSION_UPLOAD.exec(upload.key);
      if (!match) continue; // not a key this registry creates: not ours to judge
      const [, namespace, id, object] = match as unknown as [string, string, string, string];
      if (object !== 'data') {
        // Scratch uploads live for one append only.
        yield upload;
        continue;
      }
      const stateKey = keyFor({ kind: 'uploadState', namespace, id });
      if (!owners.has(stateKey)) owners.set(stateKey, await this.#sessionUploadId(stateKey));
      if (owners.get(stateKey) !== upload.uploadId) yield upload;
    }
  }

  async abort(upload: OrphanMultipartUpload): Promise<void> {
    await this.bucket.abortMultipartUpload(upload.key, upload.uploadId);
  }

  /** The multipart upload a live session records, if any. */
  async #sessionUploadId(stateKey: string): Promise<string | undefined> {
    const found = await this.bucket.getBuffer(stateKey);
    if (found === undefined) return undefined;
    try {
      return decodeState(found.data).multipart?.uploadId;
    } catch {
      return undefined; // unreadable state: the session cannot complete it either
    }
  }
}
