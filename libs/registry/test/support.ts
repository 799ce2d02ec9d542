import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import {
  LockLostError,
  type LockManager,
  type LockOptions,
  type LockWork,
  MemoryLockManager,
} from '@angos/lock';
import { S3LockManager } from '@angos/lock/s3';
import { silentLogger } from '@angos/observability';
import { type DigestParts, parseDigest, parseReference } from '@angos/oci';
import {
  type BlobStore,
  createStores,
  FsBlobStore,
  FsMetadataStore,
  MemoryBlobStore,
  MemoryMetadataStore,
  type MetadataStore,
  openStores,
} from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import { configOf, type S3Endpoint, s3Connection, s3TestStores, wipeBucket } from '@angos/test-support';
import { inject } from 'vitest';
import { createRegistry, type Registry } from '../src/index.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export function digestOf(data: string): DigestParts {
  return parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
}

/** A registry on memory stores, with memory locks unless given others, and the smallest configuration. */
export function memoryRegistry(locks: LockManager = new MemoryLockManager()): Registry {
  const config = configOf();
  return createRegistry({
    // createStores: key-validated, as `angos server` opens them.
    ...createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } }),
    locks,
    config: () => config,
    logger: silentLogger,
  });
}

/** One call to hold: it runs, then waits before returning until `release()`. */
interface Pause {
  /** Settles once the chosen call has run and is waiting. */
  readonly reached: Promise<void>;
  release(): void;
}

/**
 * A store whose chosen call pauses (after running, or before with `before`), once: forces an
 * interleaving deterministically. Everything else passes through to the real store.
 */
export class Pausing<T extends object> {
  readonly store: T;
  #armed: Array<{
    method: string;
    match: (arg: unknown) => boolean;
    before: boolean;
    arrive: () => void;
    go: Promise<void>;
  }> = [];
  /** Calls seen, as `method path` (for assertions on what was written). */
  readonly calls: string[] = [];

  constructor(target: T) {
    this.store = this.#wrap(target, '');
  }

  /** `target` with its methods (and those of its `conditional` object) interceptable as `<prefix><method>`. */
  #wrap<O extends object>(target: O, prefix: string): O {
    return new Proxy(target, {
      get: (object, property) => {
        const value = Reflect.get(object, property);
        if (property === 'conditional' && typeof value === 'object' && value !== null) {
          return this.#wrap(value, 'conditional.');
        }
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const method = `${prefix}${String(property)}`;
          this.calls.push(`${method} ${typeof args[0] === 'string' ? args[0] : JSON.stringify(args[0])}`);
          const call = () => (value as (...a: unknown[]) => unknown).apply(object, args);
          const armed = this.#armed.find((entry) => entry.method === method && entry.match(args[0]));
          if (!armed) return call();
          this.#armed.splice(this.#armed.indexOf(armed), 1);
          return (async () => {
            if (armed.before) {
              armed.arrive();
              await armed.go;
            }
            const result = await call();
            if (!armed.before) {
              armed.arrive();
              await armed.go;
            }
            return result;
          })();
        };
      },
    });
  }

  /** Pauses the next call of `method` whose first argument matches. */
  pause(method: string, match: (arg: unknown) => boolean, options: { before?: boolean } = {}): Pause {
    let arrive!: () => void;
    const reached = new Promise<void>((resolve) => {
      arrive = resolve;
    });
    let release!: () => void;
    const go = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#armed.push({ method, match, before: options.before ?? false, arrive, go });
    return { reached, release };
  }
}

/**
 * Memory locks whose holders can be made to lose them, as a Redis restart or an expired S3 lease
 * would: the work's signal aborts with a LockLostError (the keys are handed back once it stops).
 */
export class LosableLocks implements LockManager {
  readonly backend = 'memory';
  readonly #inner = new MemoryLockManager();
  readonly #held = new Set<{ keys: readonly string[]; controller: AbortController }>();
  /** Every key asked for, in order. */
  readonly requested: string[] = [];

  async withLocks<T>(keys: readonly string[], work: LockWork<T>, options: LockOptions = {}): Promise<T> {
    this.requested.push(...keys);
    const controller = new AbortController();
    const signal = options.signal ? AbortSignal.any([controller.signal, options.signal]) : controller.signal;
    const holding = { keys, controller };
    return this.#inner.withLocks(
      keys,
      async (lockSignal) => {
        this.#held.add(holding);
        try {
          return await work(lockSignal);
        } finally {
          this.#held.delete(holding);
        }
      },
      { signal },
    );
  }

  /** Every holder of a key starting with `prefix` loses its locks now. */
  lose(prefix: string): number {
    let lost = 0;
    for (const holding of this.#held) {
      const key = holding.keys.find((candidate) => candidate.startsWith(prefix));
      if (key === undefined) continue;
      holding.controller.abort(new LockLostError('memory', 'ownership_lost', key));
      lost++;
    }
    return lost;
  }

  observe(): void {}
  async close(): Promise<void> {}
}

export interface TestRegistry {
  readonly registry: Registry;
  readonly metadata: Pausing<MetadataStore>;
  readonly blobs: Pausing<BlobStore>;
  readonly locks: LosableLocks;
  close(): Promise<void>;
}

/** memory and fs always; s3 when this run has an S3 server (test/s3-global-setup.ts). */
export type StoreKind = 'memory' | 'fs' | 's3';

/** The S3 server of this run; null when none could start outside CI. */
export const s3Server: S3Endpoint | null = inject('s3');

function testServer(): S3Endpoint {
  if (!s3Server) throw new Error('no S3 server for this run');
  return s3Server;
}

/** Removes every object under a key prefix of the test bucket. */
function wipeS3Prefix(keyPrefix: string): Promise<void> {
  return wipeBucket(new S3Bucket(s3Connection(testServer(), keyPrefix)));
}

/**
 * A registry on memory stores (compare-and-swap on the index) or fs stores (no compare-and-swap:
 * index updates under the digest lock), both wrapped so calls can be paused.
 */
export async function testRegistry(kind: StoreKind, toml = ''): Promise<TestRegistry> {
  const config = configOf(toml);
  let root: string | undefined;
  let blobs: BlobStore;
  let metadata: MetadataStore;
  let cleanup = async () => {};
  if (kind === 's3') {
    // Blobs and metadata on RGW under a fresh prefix; the metadata store probes the conditional
    // writes RGW offers (compare-and-swap, but no delete-if-match).
    const keyPrefix = `angos-registry-test/${randomUUID()}`;
    const stores = await openStores(s3TestStores(testServer(), keyPrefix));
    blobs = stores.blobs;
    metadata = stores.metadata;
    cleanup = async () => {
      await stores.close();
      await wipeS3Prefix(keyPrefix);
    };
  } else if (kind === 'fs') {
    root = await mkdtemp(join(tmpdir(), 'angos-registry-'));
    blobs = new FsBlobStore(root, { syncToDisk: false });
    metadata = new FsMetadataStore(root, { syncToDisk: false });
  } else {
    blobs = new MemoryBlobStore();
    metadata = new MemoryMetadataStore();
  }
  const pausingMetadata = new Pausing(metadata);
  const pausingBlobs = new Pausing(blobs);
  const locks = new LosableLocks();
  const registry = createRegistry({
    blobs: pausingBlobs.store,
    metadata: pausingMetadata.store,
    locks,
    config: () => config,
    logger: silentLogger,
  });
  return {
    registry,
    metadata: pausingMetadata,
    blobs: pausingBlobs,
    locks,
    async close() {
      if (root) await rm(root, { recursive: true, force: true });
      await cleanup();
    },
  };
}

export interface S3Replica {
  readonly registry: Registry;
  readonly blobs: Pausing<BlobStore>;
}

/**
 * Replicas as `angos server` runs them on S3: each its own stores and its own S3 lock (short TTL,
 * so a reclaim held up for longer than it must keep its lease by heartbeats), all on one prefix.
 */
export async function s3Replicas(count: number): Promise<{ replicas: S3Replica[]; close(): Promise<void> }> {
  const config = configOf();
  const keyPrefix = `angos-registry-test/${randomUUID()}`;
  const closers: Array<() => Promise<void>> = [];
  const replicas: S3Replica[] = [];
  for (let i = 0; i < count; i++) {
    const stores = await openStores(s3TestStores(testServer(), keyPrefix));
    const locks = new S3LockManager({
      ...s3Connection(testServer(), keyPrefix),
      ttlSecs: 2,
      maxRetries: 600,
      retryDelayMs: 100,
      maxHoldSecs: 300,
    });
    const blobs = new Pausing(stores.blobs);
    const registry = createRegistry({
      blobs: blobs.store,
      metadata: stores.metadata,
      locks,
      config: () => config,
      logger: silentLogger,
    });
    replicas.push({ registry, blobs });
    closers.push(async () => {
      await locks.close();
      await stores.close();
    });
  }
  return {
    replicas,
    async close() {
      for (const close of closers) await close();
      await wipeS3Prefix(keyPrefix);
    },
  };
}

export async function upload(registry: Registry, namespace: string, data: string): Promise<DigestParts> {
  const id = await registry.uploads.start(namespace);
  await registry.uploads.complete(namespace, id, digestOf(data), Readable.from([Buffer.from(data)]), {});
  return digestOf(data);
}

export function manifestOf(config: string, layers: readonly string[], nonce = ''): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${digestOf(config).hex}`,
        size: config.length,
      },
      layers: layers.map((layer) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: `sha256:${digestOf(layer).hex}`,
        size: layer.length,
      })),
      ...(nonce && { annotations: { nonce } }),
    }),
  );
}

export async function putManifest(registry: Registry, namespace: string, reference: string, body: Buffer) {
  return registry.manifests.put(namespace, parseReference(reference), body, OCI_MANIFEST, []);
}

/** The blob's bytes as the namespace reads them, or undefined when it cannot. */
export async function readAs(
  registry: Registry,
  namespace: string,
  digest: DigestParts,
): Promise<string | undefined> {
  try {
    await registry.blobs.stat(namespace, digest);
    const chunks: Buffer[] = [];
    const collect = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    });
    await (await registry.blobs.open(namespace, digest)).copyTo(collect);
    return Buffer.concat(chunks).toString();
  } catch {
    return undefined;
  }
}

/** Lets queued work run (several turns of the event loop). */
export async function settle(ms = 20): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

export function isPath(suffix: string): (arg: unknown) => boolean {
  return (arg) => typeof arg === 'string' && arg.endsWith(suffix);
}

export function digestMatch(digest: DigestParts): (arg: unknown) => boolean {
  return (arg) => typeof arg === 'object' && arg !== null && (arg as DigestParts).hex === digest.hex;
}
