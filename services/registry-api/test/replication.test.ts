import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '@angos/config';
import { createHttpServer, setContext } from '@angos/http';
import { JobQueue } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { createRegistry, type Registry } from '@angos/registry';
import type { LocalChange, ReplicationEvents } from '@angos/replication';
import { createStores } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRegistryApi } from '../src/index.js';

/**
 * What registry-api tells replication: each manifest push or delete that changed something, once
 * it is durable, with the honoured source timestamp; a failure to queue it is a 503, never a
 * silently dropped change.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** The registry core of the last `start`. */
let registry: Registry;

/** registry-api with `replication`; `sourceTimestamp` is what the gateway would have honoured. */
async function start(replication: ReplicationEvents, sourceTimestamp?: string): Promise<string> {
  const { config } = parseConfig(
    '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n',
  );
  const stores = createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } });
  registry = createRegistry({
    ...stores,
    locks: new MemoryLockManager(),
    config: () => config,
    logger: silentLogger,
  });
  const handler = buildRegistryApi({
    registry,
    jobs: new JobQueue({ store: stores.metadata }),
    config: () => config,
    logger: silentLogger,
    trust: { kind: 'in-process' },
    replication,
    auth: { authorize: async () => ({ decision: 'allow' }) },
    version: '0.0.0-test',
  });
  server = createHttpServer(
    (req, res) => {
      setContext(req, {
        clientIp: '127.0.0.1',
        ...(sourceTimestamp === undefined ? {} : { sourceTimestamp }),
      });
      return handler(req, res);
    },
    { logger: silentLogger },
  );
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function pushImage(url: string, tag: string): Promise<Response> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const start = await fetch(`${url}/v2/team/app/blobs/uploads/?digest=${sha(config)}`, {
    method: 'POST',
    body: config,
    headers: { 'content-type': 'application/octet-stream' },
  });
  expect(start.status).toBe(201);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha(config),
      size: config.length,
    },
    layers: [],
  });
  return fetch(`${url}/v2/team/app/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': OCI_MANIFEST },
  });
}

function recording(): { changes: LocalChange[]; events: ReplicationEvents } {
  const changes: LocalChange[] = [];
  return {
    changes,
    events: {
      async changed(change) {
        changes.push(change);
        return 1;
      },
    },
  };
}

describe('registry-api and replication', () => {
  it('announces a push and a delete, with the honoured source timestamp', async () => {
    const { changes, events } = recording();
    const at = '2026-01-01T00:00:00.000Z';
    const url = await start(events, at);
    const pushed = await pushImage(url, 'v1');
    expect(pushed.status).toBe(201);
    const digest = pushed.headers.get('docker-content-digest');
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
    expect(changes).toEqual([
      { namespace: 'team/app', change: 'push', tags: ['v1'], digest, sourceTimestamp: at },
      { namespace: 'team/app', change: 'delete', tags: ['v1'], digest: undefined, sourceTimestamp: at },
    ]);
  });

  it('does not announce a replicated write that changed nothing (a replay, or a peer echo)', async () => {
    const { changes, events } = recording();
    const url = await start(events, '2026-01-01T00:00:00.000Z');
    expect((await pushImage(url, 'v1')).status).toBe(201);
    expect((await pushImage(url, 'v1')).status).toBe(201);
    expect(changes).toHaveLength(1);
  });

  it('dates an ordinary delete once: the tag tombstone and the announced delete carry the same time', async () => {
    const { changes, events } = recording();
    const url = await start(events);
    expect((await pushImage(url, 'v1')).status).toBe(201);
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
    const deletedAt = await registry.manifests.tagDeletedAt('team/app', 'v1');
    expect(deletedAt).toBeDefined();
    expect(changes[1]).toEqual({
      namespace: 'team/app',
      change: 'delete',
      tags: ['v1'],
      digest: undefined,
      sourceTimestamp: deletedAt,
    });
    // A delete of a tag that is not there is a plain 404, and nothing is announced.
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status).toBe(404);
    expect(changes).toHaveLength(2);
  });

  it('records and announces a replicated delete of a tag absent here, once', async () => {
    const { changes, events } = recording();
    const at = '2026-01-01T00:00:00.000Z';
    const url = await start(events, at);
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
    expect(await registry.manifests.tagDeletedAt('team/app', 'v1')).toBe(at);
    // The same delete again changed nothing: 404 (the sender counts it converged), not announced.
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status).toBe(404);
    expect(changes).toEqual([
      { namespace: 'team/app', change: 'delete', tags: ['v1'], digest: undefined, sourceTimestamp: at },
    ]);
    // The older push it supersedes, arriving after it, is refused.
    const late = await pushImage(url, 'v1');
    expect(late.status).toBe(409);
    expect(((await late.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe(
      'REPLICATION_SUPERSEDED',
    );
  });

  it('answers 503 when the change cannot be queued; the write itself stands', async () => {
    const url = await start({
      async changed() {
        throw new Error('storage unreachable');
      },
    });
    const pushed = await pushImage(url, 'v1');
    expect(pushed.status).toBe(503);
    expect(((await pushed.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe(
      'UNAVAILABLE',
    );
    expect((await fetch(`${url}/v2/team/app/manifests/v1`, { method: 'HEAD' })).status).toBe(200);
  });
});
