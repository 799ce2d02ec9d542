import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { StorageError } from '../types.js';
import type { S3ConnectionOptions } from './options.js';

/** One part of a multipart upload, as CompleteMultipartUpload needs it. */
export interface CompletedPart {
  readonly number: number;
  readonly etag: string;
}

/** An in-progress multipart upload found by listing. */
export interface MultipartUploadInfo {
  /** Storage key (without the key prefix). */
  readonly key: string;
  readonly uploadId: string;
  readonly initiated: Date | undefined;
}

/** What a conditional write may require of the current object. */
export type WriteCondition = { ifNoneMatch: '*' } | { ifMatch: string } | undefined;

/** A listing page: object keys and "directories" (common prefixes), as storage keys. */
export interface ListPage {
  readonly keys: string[];
  readonly prefixes: string[];
}

/** A request body streamed from a client, of known length. */
type StreamBody = { readonly stream: Readable; readonly length: number };

/** Body of a PUT or UploadPart: bytes in memory (retried freely) or a stream (never retried). */
type Body = Buffer | StreamBody;

/**
 * The slowest client link a streamed upload is given time for, beyond `operation_timeout_secs`
 * (32 KiB/s: a 5 GiB part may take two days; a stalled one is cut long before by inactivity).
 */
const MIN_STREAM_BYTES_PER_SEC = 32 * 1024;

/** setTimeout fires at once for longer delays (a 32-bit millisecond count). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** S3 caps DeleteObjects at this many keys per call. */
const DELETE_BATCH = 1000;
/** Sockets per endpoint: registry requests fan out into concurrent S3 calls. */
const MAX_SOCKETS = 256;

/**
 * A bucket (and key prefix) of an S3-compatible service: every S3 call of the
 * drivers goes through here, so path-style addressing, checksum settings,
 * retries, timeouts and the wording of failures are decided once.
 *
 * Keys given to and returned by these methods are storage keys (`keyFor()`);
 * the `key_prefix` is added and removed here only.
 */
export class S3Bucket {
  readonly name: string;
  readonly endpoint: string;
  readonly #prefix: string;
  /** Retries failed calls `max_attempts` times in all. */
  readonly #client: S3Client;
  /** For streamed bodies: a spent stream cannot be sent again, so one attempt only. */
  readonly #singleAttempt: S3Client;
  readonly #handler: NodeHttpHandler;
  readonly #streamHandler: NodeHttpHandler;
  readonly #timeoutMs: number;
  readonly #timeoutSecs: number;
  readonly #attemptTimeoutSecs: number;

  constructor(options: S3ConnectionOptions) {
    // The SDK warns on every start under Node 20 (older than the supported 22, still on some
    // development machines) about its releases of 2027; it says nothing about this process.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    this.name = options.bucket;
    this.endpoint = options.endpoint;
    this.#prefix = normalizePrefix(options.keyPrefix);
    this.#timeoutSecs = options.operationTimeoutSecs;
    this.#timeoutMs = options.operationTimeoutSecs * 1000;
    this.#attemptTimeoutSecs = options.operationAttemptTimeoutSecs;
    const connectionTimeout = Math.min(options.operationAttemptTimeoutSecs, 10) * 1000;
    this.#handler = new NodeHttpHandler({
      httpAgent: new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
      connectionTimeout,
      // Up to the response headers: includes sending the request body, not reading the response body.
      requestTimeout: options.operationAttemptTimeoutSecs * 1000,
      throwOnRequestTimeout: true,
    });
    // A streamed body arrives at its client's pace: a 5 GiB part over a slow link takes most of an
    // hour, so its attempt is bounded by inactivity (no byte moving either way) rather than by a
    // deadline. A client that stalls is cut by the HTTP server's body-idle timeout first.
    this.#streamHandler = new NodeHttpHandler({
      httpAgent: new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
      connectionTimeout,
      socketTimeout: options.operationAttemptTimeoutSecs * 1000,
    });
    const common = {
      endpoint: options.endpoint,
      region: options.region,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      forcePathStyle: true,
      // Streamed bodies with aws-chunked checksum trailers are refused by some providers (RGW: 411).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: this.#handler,
    } as const;
    this.#client = new S3Client({ ...common, maxAttempts: options.maxAttempts });
    this.#singleAttempt = new S3Client({
      ...common,
      requestHandler: this.#streamHandler,
      maxAttempts: 1,
    });
  }

  /** The object key of a storage key. */
  objectKey(key: string): string {
    return this.#prefix + key;
  }

  /** The storage key of an object key under the prefix (undefined for one outside it). */
  storageKey(objectKey: string): string | undefined {
    return objectKey.startsWith(this.#prefix) ? objectKey.slice(this.#prefix.length) : undefined;
  }

  /** The object's bytes, or undefined if absent. */
  async getBuffer(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    return this.#run('GetObject', key, async (client, abortSignal) => {
      try {
        const reply = await client.send(
          new GetObjectCommand({ Bucket: this.name, Key: this.objectKey(key) }),
          { abortSignal },
        );
        const data = Buffer.from(await reply.Body!.transformToByteArray());
        return { data, etag: unquote(reply.ETag ?? '') };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    });
  }

  /** A stream of the object (or an inclusive range of it), or undefined if absent. */
  async getStream(key: string, range?: { start: number; end: number }): Promise<Readable | undefined> {
    return this.#run('GetObject', key, async (client, abortSignal) => {
      try {
        const reply = await client.send(
          new GetObjectCommand({
            Bucket: this.name,
            Key: this.objectKey(key),
            Range: range && `bytes=${range.start}-${range.end}`,
          }),
          { abortSignal },
        );
        return reply.Body as Readable;
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    });
  }

  /** Size and ETag of the object, or undefined if absent. */
  async head(key: string): Promise<{ size: number; etag: string } | undefined> {
    return this.#run('HeadObject', key, async (client, abortSignal) => {
      try {
        const reply = await client.send(
          new HeadObjectCommand({ Bucket: this.name, Key: this.objectKey(key) }),
          {
            abortSignal,
          },
        );
        return { size: reply.ContentLength ?? 0, etag: unquote(reply.ETag ?? '') };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    });
  }

  /**
   * Writes an object. With a condition, returns false (writing nothing) when
   * the provider reports it unmet (412, or 409 for a concurrent conditional
   * write, or 404 for If-Match on a missing object); true otherwise.
   */
  async put(key: string, body: Body | string, condition?: WriteCondition): Promise<boolean> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    return this.#run(
      'PutObject',
      key,
      async (client, abortSignal) => {
        try {
          await client.send(
            new PutObjectCommand({
              Bucket: this.name,
              Key: this.objectKey(key),
              ...bodyFields(bytes),
              ...(condition && 'ifNoneMatch' in condition && { IfNoneMatch: condition.ifNoneMatch }),
              ...(condition && 'ifMatch' in condition && { IfMatch: condition.ifMatch }),
            }),
            { abortSignal },
          );
          return true;
        } catch (error) {
          if (condition !== undefined && isConditionUnmet(error)) return false;
          throw error;
        }
      },
      bytes,
    );
  }

  /** Deletes an object (no error if absent); with `ifMatch`, false when the provider reports it unmet. */
  async delete(key: string, ifMatch?: string): Promise<boolean> {
    return this.#run('DeleteObject', key, async (client, abortSignal) => {
      try {
        await client.send(
          new DeleteObjectCommand({ Bucket: this.name, Key: this.objectKey(key), IfMatch: ifMatch }),
          { abortSignal },
        );
        return true;
      } catch (error) {
        if (ifMatch !== undefined && isConditionUnmet(error)) return false;
        throw error;
      }
    });
  }

  /** Deletes objects in batches; absent ones are fine. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      if (batch.length === 1) {
        await this.delete(batch[0]!);
        continue;
      }
      await this.#run('DeleteObjects', batch[0], async (client, abortSignal) => {
        const reply = await client.send(
          new DeleteObjectsCommand({
            Bucket: this.name,
            Delete: { Objects: batch.map((key) => ({ Key: this.objectKey(key) })), Quiet: true },
          }),
          { abortSignal },
        );
        const failed = (reply.Errors ?? []).filter((entry) => entry.Code !== 'NoSuchKey');
        if (failed.length > 0) {
          const first = failed[0]!;
          throw Object.assign(
            new Error(`${failed.length} keys not deleted: ${first.Code}: ${first.Message}`),
            {
              name: first.Code ?? 'DeleteObjectsError',
            },
          );
        }
      });
    }
  }

  /** One page of a listing under `prefix` (a storage key prefix, `''` for the root of the key prefix). */
  async listPage(
    prefix: string,
    options: {
      delimiter?: string;
      continuationToken?: string | undefined;
      /** Only keys after this storage key (ignored with a continuation token). */
      startAfter?: string | undefined;
      /** At most this many keys and common prefixes together (S3's ceiling is 1,000). */
      maxKeys?: number | undefined;
    },
  ): Promise<ListPage & { next: string | undefined }> {
    return this.#run('ListObjectsV2', prefix, async (client, abortSignal) => {
      const reply = await client.send(
        new ListObjectsV2Command({
          Bucket: this.name,
          Prefix: this.objectKey(prefix),
          Delimiter: options.delimiter,
          ContinuationToken: options.continuationToken,
          StartAfter: options.startAfter === undefined ? undefined : this.objectKey(options.startAfter),
          MaxKeys: options.maxKeys,
        }),
        { abortSignal },
      );
      const keys: string[] = [];
      for (const entry of reply.Contents ?? []) {
        const key = entry.Key === undefined ? undefined : this.storageKey(entry.Key);
        if (key !== undefined) keys.push(key);
      }
      const prefixes: string[] = [];
      for (const entry of reply.CommonPrefixes ?? []) {
        const key = entry.Prefix === undefined ? undefined : this.storageKey(entry.Prefix);
        if (key !== undefined) prefixes.push(key);
      }
      return { keys, prefixes, next: reply.IsTruncated ? reply.NextContinuationToken : undefined };
    });
  }

  /** Every object key under `prefix`, page by page. */
  async *listKeys(prefix: string): AsyncGenerator<string> {
    let continuationToken: string | undefined;
    do {
      const page = await this.listPage(prefix, { continuationToken });
      yield* page.keys;
      continuationToken = page.next;
    } while (continuationToken !== undefined);
  }

  async createMultipartUpload(key: string): Promise<string> {
    return this.#run('CreateMultipartUpload', key, async (client, abortSignal) => {
      const reply = await client.send(
        new CreateMultipartUploadCommand({ Bucket: this.name, Key: this.objectKey(key) }),
        { abortSignal },
      );
      if (!reply.UploadId) throw new Error('no UploadId in the reply');
      return reply.UploadId;
    });
  }

  /** Uploads one part; returns its ETag. */
  async uploadPart(key: string, uploadId: string, number: number, body: Body): Promise<string> {
    return this.#run(
      'UploadPart',
      key,
      async (client, abortSignal) => {
        const reply = await client.send(
          new UploadPartCommand({
            Bucket: this.name,
            Key: this.objectKey(key),
            UploadId: uploadId,
            PartNumber: number,
            ...bodyFields(body),
          }),
          { abortSignal },
        );
        return reply.ETag ?? '';
      },
      body,
    );
  }

  /** Copies an object, or an inclusive byte range of it, into one part; returns the part's ETag. */
  async uploadPartCopy(
    key: string,
    uploadId: string,
    number: number,
    source: string,
    range?: { start: number; end: number },
  ): Promise<string> {
    return this.#run('UploadPartCopy', key, async (client, abortSignal) => {
      const reply = await client.send(
        new UploadPartCopyCommand({
          Bucket: this.name,
          Key: this.objectKey(key),
          UploadId: uploadId,
          PartNumber: number,
          CopySource: this.#copySource(source),
          CopySourceRange: range && `bytes=${range.start}-${range.end}`,
        }),
        { abortSignal },
      );
      return reply.CopyPartResult?.ETag ?? '';
    });
  }

  /** Completes a multipart upload (the ETag of the reply is not used: RGW leaves it empty). */
  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
  ): Promise<void> {
    await this.#run('CompleteMultipartUpload', key, async (client, abortSignal) => {
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.name,
          Key: this.objectKey(key),
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.number, ETag: part.etag })) },
        }),
        { abortSignal },
      );
    });
  }

  /** Aborts a multipart upload; one already gone is fine. */
  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.#run('AbortMultipartUpload', key, async (client, abortSignal) => {
      try {
        await client.send(
          new AbortMultipartUploadCommand({
            Bucket: this.name,
            Key: this.objectKey(key),
            UploadId: uploadId,
          }),
          { abortSignal },
        );
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    });
  }

  /** Every in-progress multipart upload whose key starts with `prefix` (a storage key prefix). */
  async *listMultipartUploads(prefix: string): AsyncGenerator<MultipartUploadInfo> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.#run('ListMultipartUploads', prefix, (client, abortSignal) =>
        client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.name,
            Prefix: this.objectKey(prefix),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
          { abortSignal },
        ),
      );
      for (const upload of page.Uploads ?? []) {
        const key = upload.Key === undefined ? undefined : this.storageKey(upload.Key);
        if (key !== undefined && upload.UploadId) {
          yield { key, uploadId: upload.UploadId, initiated: upload.Initiated };
        }
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** Server-side copy of a whole object (at most 5 GB: S3's CopyObject limit). */
  async copyObject(source: string, target: string): Promise<void> {
    await this.#run('CopyObject', target, async (client, abortSignal) => {
      await client.send(
        new CopyObjectCommand({
          Bucket: this.name,
          Key: this.objectKey(target),
          CopySource: this.#copySource(source),
        }),
        { abortSignal },
      );
    });
  }

  /** A presigned GET URL of the object. */
  async presignGet(key: string, expiresInSecs: number, contentType?: string): Promise<string> {
    return this.#run('PresignGetObject', key, () =>
      getSignedUrl(
        this.#client,
        new GetObjectCommand({
          Bucket: this.name,
          Key: this.objectKey(key),
          ResponseContentType: contentType,
        }),
        { expiresIn: expiresInSecs },
      ),
    );
  }

  /**
   * A cheap call that needs valid credentials and an existing bucket: a
   * one-key listing under the prefix. Throws StorageError otherwise.
   */
  async probeAccess(): Promise<void> {
    try {
      await this.#run('ListObjectsV2', '', (client, abortSignal) =>
        client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: this.#prefix, MaxKeys: 1 }), {
          abortSignal,
        }),
      );
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      throw new StorageError(`${this.#accessProblem(error)} (${error.message})`, error.details, {
        cause: error,
      });
    }
  }

  destroy(): void {
    this.#client.destroy();
    this.#singleAttempt.destroy();
    this.#handler.destroy();
    this.#streamHandler.destroy();
  }

  /** What an operator should check, for the failure of the access probe. */
  #accessProblem(error: StorageError): string {
    const at = `S3 bucket "${this.name}" at ${this.endpoint}`;
    switch (error.details.code) {
      case 'NoSuchBucket':
        return `${at}: the bucket does not exist`;
      case 'InvalidAccessKeyId':
        return `${at}: the access key id is not known to the service (check access_key_id)`;
      case 'SignatureDoesNotMatch':
        return `${at}: the secret key does not match the access key id (check secret_key)`;
      case 'AccessDenied':
      case 'Forbidden':
        return `${at}: access denied to these credentials (check access_key_id, secret_key and the bucket policy)`;
      default:
        return error.details.status === undefined &&
          !['TimeoutError', 'OperationTimeout'].includes(error.details.code ?? '')
          ? `${at}: the endpoint cannot be reached (check endpoint)`
          : `${at}: the startup check failed`;
    }
  }

  #copySource(key: string): string {
    // CopySource is `bucket/key`, URL-encoded (keys of the layout are ASCII, but `+` or spaces in a prefix are not safe raw).
    return `${this.name}/${encodeURIComponent(this.objectKey(key)).replaceAll('%2F', '/')}`;
  }

  /**
   * Runs one S3 call under the total operation timeout and turns any failure
   * into a StorageError naming the bucket, key and operation. `call` handles
   * the outcomes it expects (a missing key, an unmet condition) itself.
   */
  async #run<T>(
    operation: string,
    key: string | undefined,
    call: (client: S3Client, abortSignal: AbortSignal) => Promise<T>,
    body?: Body,
  ): Promise<T> {
    const controller = new AbortController();
    let timedOut = false;
    const stream = body === undefined || Buffer.isBuffer(body) ? undefined : body.stream;
    // Cleared once the call settles: a streamed GET body is not cut off by it. A streamed request
    // body gets the time its length needs at the slowest rate we still serve on top.
    const deadlineMs =
      this.#timeoutMs +
      (stream === undefined ? 0 : ((body as StreamBody).length / MIN_STREAM_BYTES_PER_SEC) * 1000);
    const timer = setTimeout(
      () => {
        timedOut = true;
        controller.abort();
      },
      Math.min(deadlineMs, MAX_TIMER_MS),
    );
    // The SDK pipes a stream body without listening for its errors: a client that goes away
    // mid-body would be an uncaught exception, and the request would wait for the missing bytes.
    const onBodyError = () => controller.abort();
    stream?.on('error', onBodyError);
    try {
      return await call(stream ? this.#singleAttempt : this.#client, controller.signal);
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw this.#failure(operation, key, error, timedOut);
    } finally {
      clearTimeout(timer);
      // Still listening: an error after the call settled must not become uncaught either.
      if (stream) stream.off('error', onBodyError).on('error', ignore);
    }
  }

  #failure(operation: string, key: string | undefined, error: unknown, timedOut: boolean): StorageError {
    const failure = error as {
      name?: string;
      code?: string;
      message?: string;
      $metadata?: { httpStatusCode?: number; attempts?: number };
    };
    const status = failure.$metadata?.httpStatusCode;
    const attempts = failure.$metadata?.attempts;
    const attemptTimedOut = failure.name === 'TimeoutError';
    const code = timedOut
      ? 'OperationTimeout'
      : attemptTimedOut
        ? 'TimeoutError'
        : (failure.code ?? failure.name ?? 'Error');
    const reason = timedOut
      ? `timed out after ${this.#timeoutSecs} s (operation_timeout_secs)`
      : attemptTimedOut
        ? `an attempt timed out after ${this.#attemptTimeoutSecs} s (operation_attempt_timeout_secs)`
        : `${code}${status ? ` (HTTP ${status})` : ''}${describeMessage(failure.message, code)}`;
    const where = key === undefined || key === '' ? '' : ` key "${this.objectKey(key)}"`;
    const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
    return new StorageError(
      `S3 ${operation} failed on bucket "${this.name}"${where} at ${this.endpoint}${tries}: ${reason}`,
      {
        backend: 's3',
        operation,
        bucket: this.name,
        key: key === undefined ? undefined : this.objectKey(key),
        code,
        status,
        attempts,
      },
      // The SDK's exception is not kept as `cause`: it carries the whole HTTP exchange into every log line.
    );
  }
}

function ignore(): void {}

/** The service's message, when it says more than the code (the SDK fills in `UnknownError` when there is none). */
function describeMessage(message: string | undefined, code: string): string {
  return message && message !== 'UnknownError' && message !== code ? `: ${message}` : '';
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

function bodyFields(body: Body): { Body: Buffer | Readable; ContentLength: number } {
  return Buffer.isBuffer(body)
    ? { Body: body, ContentLength: body.length }
    : { Body: body.stream, ContentLength: body.length };
}

/** ETags come quoted; conditional headers are sent unquoted, which both AWS and RGW accept. */
export function unquote(etag: string): string {
  return etag.replaceAll('"', '');
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function codeOf(error: unknown): string | undefined {
  return (error as { name?: string }).name;
}

/** The key (or the multipart upload) does not exist. */
function isMissing(error: unknown): boolean {
  const code = codeOf(error);
  return statusOf(error) === 404 && (code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchUpload');
}

/** A conditional write that the current object does not allow. */
function isConditionUnmet(error: unknown): boolean {
  const status = statusOf(error);
  return status === 412 || status === 409 || (status === 404 && codeOf(error) === 'NoSuchKey');
}
