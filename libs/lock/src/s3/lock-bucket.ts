import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** Where the lock objects live and how long a call to S3 may take. */
export interface LockBucketOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The metadata store's `key_prefix`; a trailing `/` is implied. */
  readonly keyPrefix?: string | undefined;
  /** Bound on one call, every attempt included (`operation_timeout_secs`). */
  readonly operationTimeoutSecs: number;
  /** Bound on one attempt (`operation_attempt_timeout_secs`). */
  readonly operationAttemptTimeoutSecs: number;
  /** Attempts per call, the first included (`max_attempts`). */
  readonly maxAttempts: number;
}

/**
 * How the provider wants the ETag in `If-Match`: `"…"` as HTTP says, or bare, as Ceph RGW 16
 * compares it (a quoted ETag never matches there, which would read as a lost lock).
 */
export type EtagForm = 'quoted' | 'unquoted';

/** A lock object as S3 describes it; times are the server's own, never this host's clock. */
export interface LockObjectState {
  readonly etag: string;
  readonly body: string;
  /** When S3 last wrote the object (second resolution). */
  readonly lastModified: Date;
  /** The server's clock when it answered (the `Date` header, second resolution). */
  readonly serverNow: Date | undefined;
}

export type WriteResult =
  | { readonly kind: 'written'; readonly etag: string | undefined }
  | { readonly kind: 'unmet' };

/** Objects are under this folder of the metadata store; `_` keeps them out of every namespace. */
const LOCK_FOLDER = '_locks/';

/**
 * The lock strategy's own S3 client: small JSON objects written with conditions, with the
 * tight timeouts of the lock options rather than the long ones of blob transfers.
 */
export class LockBucket {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #operationTimeoutMs: number;
  /** Response `Date` headers, by the output object the SDK returns. */
  readonly #serverDates = new WeakMap<object, string>();
  etagForm: EtagForm = 'quoted';

  constructor(options: LockBucketOptions) {
    // The SDK warns on every start under Node 20 about its releases of 2027; irrelevant here.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    this.#bucket = options.bucket;
    const prefix = options.keyPrefix?.replace(/^\/+|\/+$/g, '') ?? '';
    this.#prefix = `${prefix === '' ? '' : `${prefix}/`}${LOCK_FOLDER}`;
    this.#operationTimeoutMs = options.operationTimeoutSecs * 1000;
    const attemptMs = options.operationAttemptTimeoutSecs * 1000;
    this.#client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      forcePathStyle: true,
      maxAttempts: options.maxAttempts,
      // RGW refuses aws-chunked checksum trailers; the lock objects need no checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true }),
        httpsAgent: new HttpsAgent({ keepAlive: true }),
        connectionTimeout: attemptMs,
        requestTimeout: attemptMs,
        throwOnRequestTimeout: true,
      }),
    });
    this.#client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const date = (result.response as { headers?: Record<string, string> } | undefined)?.headers?.['date'];
        if (date && typeof result.output === 'object' && result.output !== null) {
          this.#serverDates.set(result.output, date);
        }
        return result;
      },
      { step: 'initialize', name: 'angosLockServerDate' },
    );
  }

  /** The object key of a lock key (any string: it is percent-encoded into one path segment). */
  objectKey(lockKey: string): string {
    return this.#prefix + encodeURIComponent(lockKey);
  }

  /**
   * PUT with `If-None-Match: *`: unmet when the object exists. Without `signal` only the
   * operation timeout cuts it short.
   */
  async create(objectKey: string, body: string, signal?: AbortSignal): Promise<WriteResult> {
    return this.#put(objectKey, body, { IfNoneMatch: '*' }, signal, isConditionUnmet);
  }

  /** PUT with `If-Match: <etag>`: unmet when the object changed or is gone (RGW says 412 for both). */
  async replace(objectKey: string, body: string, etag: string, signal?: AbortSignal): Promise<WriteResult> {
    return this.#put(
      objectKey,
      body,
      { IfMatch: this.#condition(etag) },
      signal,
      (error) => isConditionUnmet(error) || isMissingKey(error),
    );
  }

  /** The object with its server-side timestamps, or undefined when absent. */
  async get(objectKey: string, signal?: AbortSignal): Promise<LockObjectState | undefined> {
    try {
      const reply = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: objectKey }), {
        abortSignal: this.#bounded(signal),
      });
      const body = (await reply.Body?.transformToString('utf8')) ?? '';
      const date = this.#serverDates.get(reply);
      return {
        etag: bareEtag(reply.ETag ?? ''),
        body,
        lastModified: reply.LastModified ?? new Date(0),
        serverNow: date ? new Date(date) : undefined,
      };
    } catch (error) {
      if (isMissingKey(error)) return undefined;
      throw error;
    }
  }

  /** DELETE, with `If-Match` when given; false when the provider refused the condition. */
  async delete(objectKey: string, etag: string | undefined, signal: AbortSignal): Promise<boolean> {
    try {
      await this.#client.send(
        new DeleteObjectCommand({
          Bucket: this.#bucket,
          Key: objectKey,
          ...(etag !== undefined && { IfMatch: this.#condition(etag) }),
        }),
        { abortSignal: this.#bounded(signal) },
      );
      return true;
    } catch (error) {
      if (etag !== undefined && isConditionUnmet(error)) return false;
      if (isMissingKey(error)) return true;
      throw error;
    }
  }

  close(): void {
    this.#client.destroy();
  }

  async #put(
    objectKey: string,
    body: string,
    condition: { IfNoneMatch: string } | { IfMatch: string },
    signal: AbortSignal | undefined,
    unmet: (error: unknown) => boolean,
  ): Promise<WriteResult> {
    try {
      const reply = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: objectKey,
          Body: body,
          ContentType: 'application/json',
          ...condition,
        }),
        { abortSignal: this.#bounded(signal) },
      );
      return { kind: 'written', etag: reply.ETag ? bareEtag(reply.ETag) : undefined };
    } catch (error) {
      if (unmet(error)) return { kind: 'unmet' };
      throw error;
    }
  }

  #condition(etag: string): string {
    return this.etagForm === 'quoted' ? `"${etag}"` : etag;
  }

  /** The caller's signal, if any, bounded by `operation_timeout_secs`. */
  #bounded(signal: AbortSignal | undefined): AbortSignal {
    const timeout = AbortSignal.timeout(this.#operationTimeoutMs);
    return signal ? AbortSignal.any([signal, timeout]) : timeout;
  }
}

function bareEtag(etag: string): string {
  return etag.replace(/^(W\/)?"|"$/g, '');
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/**
 * 412: the condition did not hold. 409 ConditionalRequestConflict: AWS's answer to two
 * conditional writes racing on one key; the loser did not write, as with 412.
 */
function isConditionUnmet(error: unknown): boolean {
  const status = statusOf(error);
  return (
    status === 412 || (status === 409 && (error as { name?: string }).name === 'ConditionalRequestConflict')
  );
}

/** 404 for the object (AWS answers `If-Match` on a missing object so), not for the bucket. */
function isMissingKey(error: unknown): boolean {
  return statusOf(error) === 404 && (error as { name?: string }).name !== 'NoSuchBucket';
}
