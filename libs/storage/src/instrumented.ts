import type { Readable, Writable } from 'node:stream';
import { inTrace, type Metrics, recordFailure, type Span, tracer } from '@angos/observability';
import type { DigestParts } from './keys.js';
import { keyKindOf } from './keys.js';
import { MetadataStoreWrapper } from './metadata-wrapper.js';
import {
  type BlobCopy,
  type BlobStore,
  BodyLengthError,
  type ByteRange,
  type ConditionalWrites,
  type ListPageOptions,
  type MetadataStore,
  NotFoundError,
  OffsetMismatchError,
  type PresignOptions,
} from './types.js';

/** Milliseconds; from an in-memory hit to a multi-minute S3 multipart commit. */
export const STORAGE_OPERATION_BUCKETS = [
  0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
];

/** The storage metrics of the metrics reference, with its names, types and labels. */
function storageMetrics(metrics: Metrics) {
  return {
    duration: metrics.histogram({
      name: 'storage_operation_duration_ms',
      help: 'Storage operation duration in milliseconds, by backend and operation',
      labelNames: ['backend', 'operation'],
      buckets: STORAGE_OPERATION_BUCKETS,
    }),
    errors: metrics.counter({
      name: 'storage_operation_errors_total',
      help: 'Storage operations that failed, by backend and operation',
      labelNames: ['backend', 'operation'],
    }),
  };
}

/**
 * The answers the contracts give by rejecting: an absent key, an append at the wrong offset, a
 * body of the wrong length. The store worked; they are not errors of the backend.
 */
function isAnswer(error: unknown): boolean {
  return (
    error instanceof NotFoundError || error instanceof OffsetMismatchError || error instanceof BodyLengthError
  );
}

/**
 * Times one store's operations and, when tracing is on, runs each in a span carrying the backend,
 * the operation and the kind of key (never the key itself: it names repositories and digests).
 * Streams pass through untouched: an operation that hands one back (readBlob) is timed until it
 * is open, one that consumes one (appendUpload) until the store has taken every byte.
 */
class Instrumentation {
  readonly #m: ReturnType<typeof storageMetrics>;
  readonly #byOperation = new Map<
    string,
    { duration: { observe(value: number): void }; errors: { inc(): void } }
  >();

  constructor(
    readonly backend: string,
    readonly store: 'blob' | 'metadata',
    metrics: Metrics,
  ) {
    this.#m = storageMetrics(metrics);
  }

  run<T>(operation: string, keyKind: string | (() => string), work: () => Promise<T>): Promise<T> {
    if (inTrace()) return this.#traced(operation, keyKind, work);
    const started = performance.now();
    return work().then(
      (value) => {
        this.#observe(operation, started);
        return value;
      },
      (error: unknown) => {
        this.#failed(operation, started, error);
        throw error;
      },
    );
  }

  #traced<T>(operation: string, keyKind: string | (() => string), work: () => Promise<T>): Promise<T> {
    const attributes = {
      'angos.storage.store': this.store,
      'angos.storage.backend': this.backend,
      'angos.storage.operation': operation,
      'angos.storage.key_kind': typeof keyKind === 'string' ? keyKind : keyKind(),
    };
    return tracer().startActiveSpan(`storage ${operation}`, { attributes }, async (span: Span) => {
      const started = performance.now();
      try {
        const value = await work();
        this.#observe(operation, started);
        return value;
      } catch (error) {
        this.#failed(operation, started, error);
        if (!isAnswer(error)) recordFailure(span, error);
        else span.setAttribute('angos.storage.outcome', (error as Error).name);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  #observe(operation: string, started: number): void {
    this.#series(operation).duration.observe(performance.now() - started);
  }

  #failed(operation: string, started: number, error: unknown): void {
    const series = this.#series(operation);
    series.duration.observe(performance.now() - started);
    if (!isAnswer(error)) series.errors.inc();
  }

  /** The operation's series, resolved once: labelling each observation cost as much as the rest. */
  #series(operation: string) {
    let series = this.#byOperation.get(operation);
    if (series === undefined) {
      const labels = { backend: this.backend, operation };
      series = { duration: this.#m.duration.labels(labels), errors: this.#m.errors.labels(labels) };
      this.#byOperation.set(operation, series);
    }
    return series;
  }
}

class InstrumentedMetadataStore extends MetadataStoreWrapper {
  readonly #i: Instrumentation;

  constructor(inner: MetadataStore, i: Instrumentation) {
    super(inner, {
      conditional: (conditional) => instrumentConditional(conditional, i),
      getUncached: (getUncached) => (path) =>
        i.run(
          'get_uncached',
          () => keyKindOf(path),
          () => getUncached(path),
        ),
    });
    this.#i = i;
  }

  override get(path: string): Promise<Buffer> {
    return this.#i.run(
      'get',
      () => keyKindOf(path),
      () => this.inner.get(path),
    );
  }

  override put(path: string, data: Uint8Array | string): Promise<void> {
    return this.#i.run(
      'put',
      () => keyKindOf(path),
      () => this.inner.put(path, data),
    );
  }

  override putIfAbsent(path: string, data: Uint8Array | string): Promise<boolean> {
    return this.#i.run(
      'put_if_absent',
      () => keyKindOf(path),
      () => this.inner.putIfAbsent(path, data),
    );
  }

  override delete(path: string): Promise<boolean> {
    return this.#i.run(
      'delete',
      () => keyKindOf(path),
      () => this.inner.delete(path),
    );
  }

  override list(prefix: string): Promise<string[]> {
    return this.#i.run(
      'list',
      () => keyKindOf(prefix),
      () => this.inner.list(prefix),
    );
  }

  override listPage(prefix: string, options: ListPageOptions): Promise<string[]> {
    return this.#i.run(
      'list_page',
      () => keyKindOf(prefix),
      () => this.inner.listPage(prefix, options),
    );
  }

  override deletePrefix(prefix: string): Promise<void> {
    return this.#i.run(
      'delete_prefix',
      () => keyKindOf(prefix),
      () => this.inner.deletePrefix(prefix),
    );
  }
}

function instrumentConditional(inner: ConditionalWrites, i: Instrumentation): ConditionalWrites {
  const { deleteIfVersion } = inner;
  return {
    getVersioned: (path) =>
      i.run(
        'get_versioned',
        () => keyKindOf(path),
        () => inner.getVersioned(path),
      ),
    putIfVersion: (path, data, version) =>
      i.run(
        'put_if_version',
        () => keyKindOf(path),
        () => inner.putIfVersion(path, data, version),
      ),
    ...(deleteIfVersion === undefined
      ? {}
      : {
          deleteIfVersion: (path: string, version: string) =>
            i.run(
              'delete_if_version',
              () => keyKindOf(path),
              () => deleteIfVersion.call(inner, path, version),
            ),
        }),
  };
}

/** A blob store whose operations are timed, counted when they fail, and traced (see Instrumentation). */
class InstrumentedBlobStore implements BlobStore {
  readonly backend: string;
  readonly openBlobCopy?: (digest: DigestParts, range?: ByteRange) => Promise<BlobCopy>;
  readonly presignBlob?: (digest: DigestParts, options: PresignOptions) => Promise<string>;
  readonly check?: () => Promise<void>;
  readonly close?: () => Promise<void>;
  readonly #inner: BlobStore;
  readonly #i: Instrumentation;

  constructor(inner: BlobStore, i: Instrumentation) {
    this.backend = inner.backend;
    this.#inner = inner;
    this.#i = i;
    const { openBlobCopy, presignBlob, check, close } = inner;
    if (openBlobCopy) {
      this.openBlobCopy = async (digest, range) => {
        const copy = await i.run('open_blob_copy', 'blob', () => openBlobCopy.call(inner, digest, range));
        // The copy writes straight into the destination (a socket): timed, never wrapped.
        return {
          copyTo: (destination: Writable) => i.run('copy_blob', 'blob', () => copy.copyTo(destination)),
          close: () => copy.close(),
        };
      };
    }
    if (presignBlob) {
      this.presignBlob = (digest, options) =>
        i.run('presign_blob', 'blob', () => presignBlob.call(inner, digest, options));
    }
    if (check) this.check = () => check.call(inner);
    if (close) this.close = () => close.call(inner);
  }

  statBlob(digest: DigestParts): Promise<{ size: number }> {
    return this.#i.run('stat_blob', 'blob', () => this.#inner.statBlob(digest));
  }

  readBlob(digest: DigestParts, range?: ByteRange): Promise<Readable> {
    return this.#i.run('read_blob', 'blob', () => this.#inner.readBlob(digest, range));
  }

  putBlob(digest: DigestParts, data: Uint8Array): Promise<void> {
    return this.#i.run('put_blob', 'blob', () => this.#inner.putBlob(digest, data));
  }

  deleteBlob(digest: DigestParts): Promise<boolean> {
    return this.#i.run('delete_blob', 'blob', () => this.#inner.deleteBlob(digest));
  }

  listBlobs(): AsyncIterable<DigestParts> {
    return this.#inner.listBlobs();
  }

  createUpload(namespace: string, id: string): Promise<void> {
    return this.#i.run('create_upload', 'upload', () => this.#inner.createUpload(namespace, id));
  }

  uploadSize(namespace: string, id: string): Promise<number> {
    return this.#i.run('upload_size', 'upload', () => this.#inner.uploadSize(namespace, id));
  }

  appendUpload(
    namespace: string,
    id: string,
    offset: number,
    body: Readable,
    length?: number,
  ): Promise<number> {
    return this.#i.run('append_upload', 'upload', () =>
      this.#inner.appendUpload(namespace, id, offset, body, length),
    );
  }

  readUpload(namespace: string, id: string): Promise<Readable> {
    return this.#i.run('read_upload', 'upload', () => this.#inner.readUpload(namespace, id));
  }

  commitUpload(namespace: string, id: string, digest: DigestParts): Promise<void> {
    return this.#i.run('commit_upload', 'upload', () => this.#inner.commitUpload(namespace, id, digest));
  }

  deleteUpload(namespace: string, id: string): Promise<boolean> {
    return this.#i.run('delete_upload', 'upload', () => this.#inner.deleteUpload(namespace, id));
  }
}

/**
 * A metadata store whose operations record `storage_operation_duration_ms` and
 * `storage_operation_errors_total` and, with tracing on, a span each (backend, operation, key
 * kind). One wrapper for every backend, applied where the stores are opened.
 */
export function instrumentMetadataStore(inner: MetadataStore, metrics: Metrics): MetadataStore {
  return new InstrumentedMetadataStore(inner, new Instrumentation(inner.backend, 'metadata', metrics));
}

/** The blob store counterpart of instrumentMetadataStore. */
export function instrumentBlobStore(inner: BlobStore, metrics: Metrics): BlobStore {
  return new InstrumentedBlobStore(inner, new Instrumentation(inner.backend, 'blob', metrics));
}
