/**
 * An active-active pair on S3: two `angos server` instances, each with its blobs and metadata on
 * the run's Ceph RGW (under a key prefix of its own), naming each other as downstreams and
 * draining their replication queues in-process. Blob and manifest GETs answer 307 to presigned
 * RGW URLs, which the replication client and the test client both follow.
 */
import { randomUUID } from 'node:crypto';
import { type AngosInstance, freePort, OciClient, s3Table, startAngos } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { digestOf, holdsContent, peerConfig, pushImage, sleep, until } from './replication-fixtures.js';

const s3 = inject('s3');
if (s3 === null)
  console.warn('skipping the S3 replication pair: no Ceph RGW in this run (see the global setup)');

describe.skipIf(s3 === null)('replication: an active-active pair on S3 (Ceph RGW)', () => {
  let a: AngosInstance;
  let b: AngosInstance;
  let clientA: OciClient;
  let clientB: OciClient;

  beforeAll(async () => {
    if (s3 === null) return;
    const [portA, portB] = [await freePort(), await freePort()];
    const run = randomUUID().slice(0, 8);
    const peer = (prefix: string, name: string, port: number) =>
      [
        s3Table('blob_store.s3', s3, `replication-${run}-${prefix}/`),
        peerConfig([{ name, url: `http://127.0.0.1:${port}` }]),
      ].join('\n');
    [a, b] = await Promise.all([
      startAngos({ mode: 'server', port: portA, config: peer('a', 'instance-b', portB) }),
      startAngos({ mode: 'server', port: portB, config: peer('b', 'instance-a', portA) }),
    ]);
    clientA = new OciClient(a.url);
    clientB = new OciClient(b.url);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('a push to A reaches B content first; a delete on B disappears on A; a concurrent push converges', async () => {
    const pushed = await pushImage(clientA, 'nginx/app', 'v1', 's3 first');
    await until('v1 on B', async () => (await digestOf(clientB, 'nginx/app', 'v1')) === pushed);
    expect(await holdsContent(clientB, 'nginx/app', pushed)).toBe(true);

    expect(await clientB.deleteManifest('nginx/app', 'v1')).toBe(202);
    await until('v1 deleted on A', async () => (await digestOf(clientA, 'nginx/app', 'v1')) === null);

    // A's write, then B's strictly later one: both end on B's, whatever order they cross in.
    const first = await pushImage(clientA, 'nginx/app', 'race', 's3 from A');
    await sleep(20);
    const later = await pushImage(clientB, 'nginx/app', 'race', 's3 from B');
    expect(later).not.toBe(first);
    await until(
      'both peers on the later write',
      async () =>
        (await digestOf(clientA, 'nginx/app', 'race')) === later &&
        (await digestOf(clientB, 'nginx/app', 'race')) === later,
    );
    expect(await holdsContent(clientA, 'nginx/app', later)).toBe(true);

    // Settled: no echo brings the deleted tag back or flips the raced one.
    await sleep(2000);
    expect(await digestOf(clientA, 'nginx/app', 'v1')).toBeNull();
    expect(await digestOf(clientB, 'nginx/app', 'v1')).toBeNull();
    expect(await digestOf(clientA, 'nginx/app', 'race')).toBe(later);
    expect(await digestOf(clientB, 'nginx/app', 'race')).toBe(later);
  });
});
