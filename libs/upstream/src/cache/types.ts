import type { Writable } from 'node:stream';
import type { Config } from '@angos/config';
import type { JobQueue } from '@angos/jobs';
import type { LockManager } from '@angos/lock';
import type { Logger, Metrics } from '@angos/observability';
import type { ByteRange, Descriptor } from '@angos/oci';
import type { Registry } from '@angos/registry';
import type { UpstreamTimeouts } from '../transport.js';

export interface PullThroughCacheDeps {
  /** Cached content is stored through the core, in the local namespace. */
  readonly registry: Registry;
  /** Single-flight fills across replicas (the `[metadata_store]` lock strategy). */
  readonly locks: LockManager;
  /** Fills are durable `cache` jobs. */
  readonly jobs: JobQueue;
  /** The current configuration, read on every request so hot reloads apply. */
  readonly config: () => Config;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Upstream timeouts (tests); the defaults of the upstream client otherwise. */
  readonly upstreamTimeouts?: Partial<UpstreamTimeouts> | undefined;
}

/**
 * Every `cache` job payload carries the local namespace it fills, so `scrub --cache-orphans` can
 * tell whether its repository is still configured for pull-through.
 */
export interface CacheJobPayload {
  readonly namespace: string;
}

/** `cache` job `blob`: fetch one blob of a namespace from its upstreams and store it. */
export interface BlobFillPayload extends CacheJobPayload {
  readonly digest: string;
}

/** Common to every read answer. */
interface Served {
  /**
   * Set when the answer comes from the cache because every upstream failed (down, timed out,
   * rate limited): the value of the HTTP `Warning` header.
   */
  readonly warning?: string | undefined;
}

/** A manifest to answer with (GET: `body`; HEAD: the same without writing it). */
export interface ManifestAnswer extends Served {
  readonly digest: string;
  readonly mediaType: string;
  readonly body: Buffer;
}

/**
 * The bytes of a blob, to be copied into a response: from storage (a hit), or from the fill in
 * progress (a miss). `copyTo` writes them without ending `destination`; `close` releases what the
 * copy holds (call it whatever happened). A fill that fails while copying (digest mismatch,
 * upstream cut off) rejects `copyTo`: the response must then be destroyed, never ended.
 */
export interface BlobBytes {
  copyTo(destination: Writable): Promise<void>;
  close(): Promise<void>;
}

/** A blob to answer with. */
export interface BlobAnswer extends Served {
  readonly digest: string;
  /** The whole blob's size; undefined only when a cold upstream answer did not give it. */
  readonly size: number | undefined;
  /** The range served (206), when the request asked for one. */
  readonly range?: ByteRange | undefined;
  /** Absent for HEAD, and for a redirect. */
  readonly bytes?: BlobBytes | undefined;
  /**
   * A hit the client downloads from the storage itself (`enable_blob_redirect` on S3): answer
   * 307 to this presigned URL, as registry-api does.
   */
  readonly redirect?: string | undefined;
}

export interface TagListAnswer extends Served {
  readonly tags: string[];
  /** More tags follow the page (a `Link` header). */
  readonly more: boolean;
}

export interface ReferrersAnswer extends Served {
  readonly manifests: Descriptor[];
}

/** What a blob read asks for. */
export interface BlobRequest {
  readonly method: 'GET' | 'HEAD';
  /** The raw `Range` header, if any. */
  readonly range?: string | undefined;
}

/** What a manifest read asks for. */
export interface ManifestRequest {
  readonly method: 'GET' | 'HEAD';
  /** The raw `Accept` header, if any. */
  readonly accept?: string | string[] | undefined;
}
