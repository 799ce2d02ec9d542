import { createHash, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { type DigestParts, parseDigest, parseReference } from '@angos/oci';
import { createRegistry, encodeLink, type GcReport, type Registry } from '@angos/registry';
import { type BlobStore, createStores, keyFor, type MetadataStore, openStores } from '@angos/storage';
import { S3Bucket } from '@angos/storage/s3';
import {
  configOf,
  type S3Endpoint,
  s3Connection,
  s3Table,
  s3TestStores,
  wipeBucket,
} from '@angos/test-support';
import { inject } from 'vitest';
import {
  checksFor,
  type FsRoots,
  type PlannedAction,
  runScrub,
  type ScrubSelection,
  type ScrubSummary,
} from '../src/index.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** The S3 server of this run; null when none could start outside CI. */
export const s3Server: S3Endpoint | null = inject('s3');

export type StoreKind = 'fs' | 's3';
export const KINDS: readonly StoreKind[] = s3Server ? ['fs', 's3'] : ['fs'];

export function digestOf(data: string | Buffer): DigestParts {
  return parseDigest(`sha256:${createHash('sha256').update(data).digest('hex')}`);
}

/**
 * Every check of this library that needs no configuration, as
 * `-t -m -l -M -R -u 1h --reconcile-blob-index --orphan-grants 1h -b` selects them.
 */
export const ALL_CHECKS: ScrubSelection = {
  tags: true,
  manifests: true,
  links: true,
  mediaTypes: true,
  referrers: true,
  uploads: true,
  reconcileBlobIndex: true,
  orphanGrants: true,
  blobs: true,
};

/** `[gc] grace_period_secs` of these tests, and the durations of `--uploads` and `--orphan-grants`. */
export const HOUR_MS = 3600_000;

/** A registry over real stores (fs in a temp directory, or RGW under a fresh prefix), with memory locks. */
export interface Store {
  readonly kind: StoreKind;
  readonly registry: Registry;
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  readonly locks: MemoryLockManager;
  readonly fsRoots: FsRoots;
  /** Every key and a hash of its bytes (fs: every file, temp files included). */
  snapshot(): Promise<Map<string, string>>;
  /** A copy of every key (fs: every file, modification times kept) in a store of its own. */
  copy(): Promise<StoreCopy>;
  /** Runs the checks; returns the summary and the actions planned, in order. */
  scrub(
    dryRun: boolean,
    selection?: ScrubSelection,
    now?: () => number,
  ): Promise<{ summary: ScrubSummary; actions: PlannedAction[]; gc?: GcReport | undefined }>;
  close(): Promise<void>;
}

/** Turns a key's bytes into what a comparison looks at (see hashTree). */
export type Normalize = (key: string, data: Buffer) => Buffer;

/** An independent copy of a store, for an `angos` process to run on. */
export interface StoreCopy {
  /** The `[blob_store…]` and `[metadata_store…]` tables of a configuration over the copy. */
  readonly storeConfig: string;
  /** Every key of the copy and the hash of its bytes, or of what `normalize` makes of them. */
  tree(normalize?: Normalize): Promise<Map<string, string>>;
  remove(): Promise<void>;
}

function testServer(): S3Endpoint {
  if (!s3Server) throw new Error('no S3 server for this run');
  return s3Server;
}

export async function openStore(kind: StoreKind): Promise<Store> {
  const config = configOf();
  let blobs: BlobStore;
  let metadata: MetadataStore;
  let fsRoots: FsRoots = {};
  let snapshot: () => Promise<Map<string, string>>;
  let copy: () => Promise<StoreCopy>;
  let close: () => Promise<void>;
  if (kind === 'fs') {
    const root = await mkdtemp(join(tmpdir(), 'angos-scrub-'));
    ({ blobs, metadata } = createStores({
      blob: { kind: 'fs', rootDir: root, syncToDisk: false },
      metadata: { kind: 'fs', rootDir: root, syncToDisk: false },
    }));
    fsRoots = { metadata: root, blobs: root };
    snapshot = () => hashTree(root);
    copy = () => copyFsStore(root);
    close = () => rm(root, { recursive: true, force: true });
  } else {
    const keyPrefix = `angos-scrub-test/${randomUUID()}`;
    const stores = await openStores(s3TestStores(testServer(), keyPrefix));
    ({ blobs, metadata } = stores);
    const bucket = new S3Bucket(s3Connection(testServer(), keyPrefix));
    snapshot = () => hashBucket(bucket);
    copy = () => copyS3Store(bucket);
    close = async () => {
      await stores.close();
      await wipeBucket(bucket);
    };
  }
  const locks = new MemoryLockManager();
  const registry = createRegistry({ blobs, metadata, locks, config: () => config, logger: silentLogger });
  return {
    kind,
    registry,
    blobs,
    metadata,
    locks,
    fsRoots,
    snapshot,
    copy,
    async scrub(dryRun, selection = ALL_CHECKS, now = Date.now) {
      const actions: PlannedAction[] = [];
      const summary = await runScrub(
        checksFor(selection),
        {
          metadata,
          blobs,
          registry,
          locks,
          logger: silentLogger,
          now,
          options: { uploadsOlderThanMs: HOUR_MS, orphanGrantsOlderThanMs: HOUR_MS },
          fsRoots,
        },
        { dryRun, onAction: (action) => actions.push(action) },
      );
      // `--blobs` ends with the garbage-collection pass, as the scrub job runs it.
      const gc = selection.blobs
        ? await registry.collectGarbage({ gracePeriodMs: HOUR_MS, dryRun, now })
        : undefined;
      return { summary, actions, gc };
    },
    close,
  };
}

/** Every key under the bucket's prefix and the hash of its bytes (or of what `normalize` makes of them). */
async function hashBucket(bucket: S3Bucket, normalize: Normalize = (_key, data) => data) {
  const tree = new Map<string, string>();
  for await (const key of bucket.listKeys('')) {
    const found = await bucket.getBuffer(key);
    tree.set(key, found === undefined ? 'gone' : sha256(normalize(key, found.data)));
  }
  return tree;
}

async function copyFsStore(source: string): Promise<StoreCopy> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-scrub-copy-'));
  const root = join(dir, 'data');
  // Modification times kept: temp files and fs upload sessions are aged by them.
  await cp(source, root, { recursive: true, preserveTimestamps: true });
  return {
    storeConfig: `[blob_store.fs]\nroot_dir = ${JSON.stringify(root)}\n`,
    tree: (normalize) => hashTree(root, normalize),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

async function copyS3Store(source: S3Bucket): Promise<StoreCopy> {
  const keyPrefix = `angos-scrub-test/${randomUUID()}`;
  const server = testServer();
  const target = new S3Bucket(s3Connection(server, keyPrefix));
  for await (const key of source.listKeys('')) {
    const found = await source.getBuffer(key);
    if (found !== undefined) await target.put(key, found.data);
  }
  return {
    storeConfig: `${s3Table('blob_store.s3', server, keyPrefix)}${s3Table('metadata_store.s3', server, keyPrefix)}`,
    tree: (normalize) => hashBucket(target, normalize),
    remove: () => wipeBucket(target),
  };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Every file under `root` (dotfiles included) and the hash of its bytes, or of what `normalize`
 * makes of them (a comparison that leaves out what legitimately depends on the clock).
 */
export async function hashTree(
  root: string,
  normalize: Normalize = (_key, data) => data,
): Promise<Map<string, string>> {
  const tree = new Map<string, string>();
  const walk = async (dir: string, prefix: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const key = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
      if (entry.isDirectory()) await walk(path, key);
      else tree.set(key, sha256(normalize(key, await readFile(path))));
    }
  };
  await walk(root, '');
  return tree;
}

export async function upload(registry: Registry, namespace: string, data: string): Promise<DigestParts> {
  const id = await registry.uploads.start(namespace);
  await registry.uploads.complete(namespace, id, digestOf(data), Readable.from([Buffer.from(data)]), {});
  return digestOf(data);
}

/** An image manifest over a config and layers (uploaded first), optionally a referrer of `subject`. */
export async function pushImage(
  registry: Registry,
  namespace: string,
  reference: string,
  options: { config: string; layers: readonly string[]; subject?: { digest: DigestParts; size: number } },
): Promise<{ digest: DigestParts; size: number }> {
  await upload(registry, namespace, options.config);
  for (const layer of options.layers) await upload(registry, namespace, layer);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: fmt(digestOf(options.config)), size: options.config.length },
      layers: options.layers.map((layer) => ({
        mediaType: OCI_LAYER,
        digest: fmt(digestOf(layer)),
        size: layer.length,
      })),
      ...(options.subject && {
        subject: { mediaType: OCI_MANIFEST, digest: fmt(options.subject.digest), size: options.subject.size },
      }),
    }),
  );
  const pushed = await registry.manifests.put(namespace, parseReference(reference), body, OCI_MANIFEST, []);
  return { digest: pushed.digest, size: body.length };
}

export function fmt(digest: DigestParts): string {
  return `${digest.algorithm}:${digest.hex}`;
}

/** A few images sharing layers, tags, a referrer: what a healthy store holds. */
export async function seedHealthy(registry: Registry): Promise<{
  app: { digest: DigestParts; size: number };
  signature: { digest: DigestParts; size: number };
}> {
  const app = await pushImage(registry, 'team/app', 'v1', { config: 'cfg-app', layers: ['base', 'app-1'] });
  await pushImage(registry, 'team/app', 'v2', { config: 'cfg-app-2', layers: ['base', 'app-2'] });
  await pushImage(registry, 'lib', 'latest', { config: 'cfg-lib', layers: ['base'] });
  const signature = await pushImage(registry, 'team/app', 'sig', {
    config: 'cfg-sig',
    layers: ['signature'],
    subject: app,
  });
  return { app, signature };
}

/** Reads the readable parts of a manifest back through the registry, as a pull would. */
export async function pull(registry: Registry, namespace: string, reference: string): Promise<boolean> {
  try {
    await registry.manifests.get(namespace, parseReference(reference));
    return true;
  } catch {
    return false;
  }
}

/**
 * One namespace holding healthy images beside one fault of each kind the fault matrix seeds (a
 * tag and a revision without bytes, a grant without bytes, an orphan referrer link, a tag
 * directory that is not a tag, an old and a broken upload session, a link without media type, an
 * unknown key, a link that does not parse, and on fs a stale temp file): many of these make a
 * store that takes a scrub some seconds. Deterministic for a given `namespace`, times included,
 * so that two stores seeded alike hold the same keys.
 */
export async function seedFaults(store: Store, namespace: string): Promise<void> {
  const { registry, metadata, blobs } = store;
  const longAgo = new Date(Date.now() - 2 * 3600_000);
  const image = (name: string, subject?: { digest: DigestParts; size: number }) =>
    pushImage(registry, namespace, name, {
      config: `${namespace}-cfg-${name}`,
      layers: ['shared-base', `${namespace}-${name}`],
      ...(subject && { subject }),
    });
  const app = await image('v1');
  await image('v2');
  const signature = await image('sig', app);
  // A tag whose manifest bytes are gone, and an untagged revision without bytes.
  const broken = await image('broken');
  await blobs.deleteBlob(broken.digest);
  const gone = await image('gone');
  await registry.manifests.delete(namespace, { kind: 'tag', tag: 'gone' });
  await blobs.deleteBlob(gone.digest);
  // A grant whose blob bytes are gone.
  const lost = await upload(registry, namespace, `${namespace}-lost-layer`);
  await blobs.deleteBlob(lost);
  // A referrer link whose referrer manifest was deleted (a crash between the two deletes).
  await metadata.delete(keyFor({ kind: 'revisionLink', namespace, digest: signature.digest }));
  await metadata.delete(keyFor({ kind: 'tagLink', namespace, tag: 'sig' }));
  // A tag directory whose name is not a tag.
  await metadata.put(
    `${keyFor({ kind: 'tag', namespace, tag: '-not-a-tag' })}/link`,
    encodeLink({ digest: app.digest }),
  );
  // An upload older than --uploads, and one without data.
  const old = await registry.uploads.start(namespace);
  await metadata.put(keyFor({ kind: 'uploadStartedAt', namespace, id: old }), longAgo.toISOString());
  const noData = await registry.uploads.start(namespace);
  await blobs.deleteUpload(namespace, noData);
  // A revision link without a media type, an unknown key, a layer link that does not parse.
  await metadata.put(
    keyFor({ kind: 'revisionLink', namespace, digest: app.digest }),
    encodeLink({ digest: app.digest, createdAt: '2020-01-01T00:00:00.000Z' }),
  );
  await metadata.put(`${keyFor({ kind: 'revision', namespace, digest: app.digest })}/notes`, namespace);
  await metadata.put(keyFor({ kind: 'layerLink', namespace, digest: digestOf('shared-base') }), 'not json');
  if (store.fsRoots.metadata) {
    const stale = join(store.fsRoots.metadata, namespace, '_manifests', '.tmp-deadbeef-1');
    await writeFile(stale, 'half a link');
    await utimes(stale, longAgo, longAgo);
  }
}
