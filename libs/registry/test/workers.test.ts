import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import { parseConfig } from '@angos/config';
import { IpcLockManager, MemoryLockManager, messagePortChannel, serveLocks } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { OciError, parseReference } from '@angos/oci';
import {
  FsBlobStore,
  FsMetadataStore,
  LinkCacheVersions,
  withBlobKeyValidation,
  withLinkCache,
  withMetadataKeyValidation,
} from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRegistry, type Registry } from '../src/index.js';
import { digestOf, manifestOf, OCI_MANIFEST, upload } from './support.js';

/**
 * The serving threads of one `angos server` process (`[server] workers`): each builds its own
 * registry, with its own running upload hashes and link cache, over the same fs directory; the
 * lock table is the main thread's (served over MessagePorts) and the link caches share one
 * version table.
 */
describe('registries of several serving threads on one directory', () => {
  let root: string;
  let ports: Array<() => void>;
  let workers: Registry[];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'angos-workers-'));
    const { config } = parseConfig(
      `[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = ${JSON.stringify(root)}\n`,
    );
    const table = new MemoryLockManager();
    const versions = new LinkCacheVersions();
    ports = [];
    workers = [1, 2].map(() => {
      const { port1, port2 } = new MessageChannel();
      serveLocks(table, messagePortChannel(port1));
      ports.push(() => port1.close());
      return createRegistry({
        blobs: withBlobKeyValidation(new FsBlobStore(root, { syncToDisk: false })),
        metadata: withMetadataKeyValidation(
          withLinkCache(new FsMetadataStore(root, { syncToDisk: false }), 5, { lists: true, versions }),
        ),
        locks: new IpcLockManager(messagePortChannel(port2)),
        config: () => config,
        logger: silentLogger,
      });
    });
  });

  afterEach(async () => {
    for (const close of ports) close();
    await rm(root, { recursive: true, force: true });
  });

  const body = (data: string) => Readable.from([Buffer.from(data)]);

  it('verifies the digest of a chunked upload whose PATCHes reach different threads', async () => {
    const [a, b] = workers as [Registry, Registry];
    const id = await a.uploads.start('t/app');
    // a hashes the first chunk; b takes the second, so a's running hash falls behind the stored bytes.
    expect(await a.uploads.append('t/app', id, body('one '), {})).toBe(4);
    expect(await b.uploads.append('t/app', id, body('two '), {})).toBe(8);
    expect(await a.uploads.append('t/app', id, body('three'), {})).toBe(13);
    await a.uploads.complete('t/app', id, digestOf('one two three'), undefined, {});
    expect(await b.blobs.stat('t/app', digestOf('one two three'))).toEqual({ size: 13 });

    const wrong = await b.uploads.start('t/app');
    await b.uploads.append('t/app', wrong, body('some '), {});
    await a.uploads.append('t/app', wrong, body('bytes'), {});
    const error = await b.uploads
      .complete('t/app', wrong, digestOf('other bytes'), undefined, {})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).kind).toBe('DIGEST_INVALID');
  });

  it('answers a tag moved through one thread from the other at once', async () => {
    const [a, b] = workers as [Registry, Registry];
    await upload(a, 't/app', 'cfg');
    const latest = parseReference('latest');
    const first = await a.manifests.put('t/app', latest, manifestOf('cfg', [], '1'), OCI_MANIFEST, []);
    // b serves the tag once: its link cache holds latest → first.
    expect((await b.manifests.resolve('t/app', latest)).digest.hex).toBe(first.digest.hex);
    const second = await a.manifests.put('t/app', latest, manifestOf('cfg', [], '2'), OCI_MANIFEST, []);
    expect((await b.manifests.resolve('t/app', latest)).digest.hex).toBe(second.digest.hex);
  });

  it('keeps every push of one tag from both threads, the last one tagged', async () => {
    const [a, b] = workers as [Registry, Registry];
    await upload(a, 't/app', 'cfg');
    const latest = parseReference('latest');
    const pushes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 === 0 ? a : b).manifests.put(
          't/app',
          latest,
          manifestOf('cfg', [], String(i)),
          OCI_MANIFEST,
          [],
        ),
      ),
    );
    const tagged = (await a.manifests.resolve('t/app', latest)).digest.hex;
    expect(pushes.map((push) => push.digest.hex)).toContain(tagged);
    // Every acknowledged push is still there by digest.
    for (const push of pushes) {
      const reference = parseReference(`sha256:${push.digest.hex}`);
      expect((await b.manifests.resolve('t/app', reference)).digest.hex).toBe(push.digest.hex);
    }
  });
});
