import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAuth } from '@angos/auth';
import { type Config, parseConfig } from '@angos/config';
import { createEventDispatcher, EVENTS_QUEUE } from '@angos/events';
import { createHttpServer, setContext } from '@angos/http';
import { JobQueue } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { createMetrics, silentLogger } from '@angos/observability';
import { createRegistry } from '@angos/registry';
import { createStores } from '@angos/storage';
import { startWebhookReceiver, type WebhookReceiver } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRegistryApi } from '../src/index.js';

/**
 * The events registry-api emits, against real webhook receivers: every kind, once the change is
 * committed (pulls before their body), with the actor; what `required`, `optional` and `async`
 * do to the client's answer.
 */

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function receiver(options: Parameters<typeof startWebhookReceiver>[0] = {}): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver(options);
  cleanups.push(() => started.close());
  return started;
}

interface Started {
  readonly url: string;
  readonly jobs: JobQueue;
  /** Swaps the configuration, as a hot reload does. */
  reload(toml: string): void;
}

function configOf(toml: string): Config {
  return parseConfig(`[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n${toml}`)
    .config;
}

/** registry-api with the event dispatcher, as `angos server` wires it, behind a gateway that authenticated alice. */
async function start(toml: string): Promise<Started> {
  let config = configOf(toml);
  const stores = createStores({ blob: { kind: 'memory' }, metadata: { kind: 'memory' } });
  const registry = createRegistry({
    ...stores,
    locks: new MemoryLockManager(),
    config: () => config,
    logger: silentLogger,
  });
  const jobs = new JobQueue({ store: stores.metadata });
  const handler = buildRegistryApi({
    registry,
    jobs,
    config: () => config,
    logger: silentLogger,
    trust: { kind: 'in-process' },
    events: createEventDispatcher({
      config: () => config,
      enqueue: (...args) => jobs.enqueue(...args),
      logger: silentLogger,
    }),
    auth: createAuth({
      config: () => config,
      logger: silentLogger,
      metrics: createMetrics({ defaultMetrics: false }),
    }),
    version: '0.0.0-test',
  });
  const server: Server = createHttpServer(
    (req, res) => {
      setContext(req, {
        clientIp: '192.0.2.7',
        identity: { id: 'alice', username: 'alice' },
        mountAllowedFrom: ['team/app'],
      });
      return handler(req, res);
    },
    { logger: silentLogger },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    jobs,
    reload(next) {
      config = configOf(next);
    },
  };
}

function webhookToml(name: string, url: string, settings: string): string {
  return `[event_webhook.${name}]\nurl = ${JSON.stringify(url)}\n${settings}\n`;
}

const ALL_KINDS =
  'events = ["manifest.push", "manifest.pull", "manifest.delete", "blob.push", "blob.pull", "tag.create", "tag.delete"]';

const configBlob = Buffer.from('{"architecture":"amd64","os":"linux"}');
const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: sha(configBlob),
    size: configBlob.length,
  },
  layers: [],
});

function uploadBlob(url: string, namespace = 'team/app'): Promise<Response> {
  return fetch(`${url}/v2/${namespace}/blobs/uploads/?digest=${sha(configBlob)}`, {
    method: 'POST',
    body: configBlob,
    headers: { 'content-type': 'application/octet-stream' },
  });
}

function putManifest(url: string, reference: string): Promise<Response> {
  return fetch(`${url}/v2/team/app/manifests/${reference}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': OCI_MANIFEST },
  });
}

describe('registry-api events', () => {
  it('emits every kind with its fields, the actor, a signature over the body, and nothing for HEAD', async () => {
    const hook = await receiver({ token: 'shh' });
    const api = await start(
      `[global]\nevent_webhooks = ["all"]\n${webhookToml('all', hook.url, `policy = "required"\ntoken = "shh"\n${ALL_KINDS}`)}`,
    );
    const digest = sha(manifest);
    expect((await uploadBlob(api.url)).status).toBe(201);
    const mount = await fetch(
      `${api.url}/v2/other/app/blobs/uploads/?mount=${sha(configBlob)}&from=team/app`,
      {
        method: 'POST',
      },
    );
    expect(mount.status).toBe(201);
    expect((await putManifest(api.url, 'v1')).status).toBe(201);
    expect((await fetch(`${api.url}/v2/team/app/manifests/v1`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${api.url}/v2/team/app/blobs/${sha(configBlob)}`, { method: 'HEAD' })).status).toBe(
      200,
    );
    const pulled = await fetch(`${api.url}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    expect(await pulled.text()).toBe(manifest);
    expect(await (await fetch(`${api.url}/v2/team/app/blobs/${sha(configBlob)}`)).text()).toBe(
      configBlob.toString(),
    );
    expect((await fetch(`${api.url}/v2/team/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(`${api.url}/v2/team/app/manifests/${digest}`, { method: 'DELETE' })).status).toBe(
      202,
    );

    const actor = { id: 'alice', username: 'alice', client_ip: '192.0.2.7' };
    const common = { namespace: 'team/app', repository: 'team', actor };
    expect(hook.deliveries.map((d) => d.event).map(({ id: _id, timestamp: _t, ...rest }) => rest)).toEqual([
      { kind: 'blob.push', ...common, digest: sha(configBlob) },
      { kind: 'blob.push', ...common, namespace: 'other/app', repository: 'other', digest: sha(configBlob) },
      { kind: 'manifest.push', ...common, digest, reference: 'v1' },
      { kind: 'tag.create', ...common, digest, reference: 'v1', tag: 'v1' },
      { kind: 'manifest.pull', ...common, digest, reference: 'v1', tag: 'v1' },
      { kind: 'blob.pull', ...common, digest: sha(configBlob) },
      { kind: 'tag.delete', ...common, reference: 'v1', tag: 'v1' },
      { kind: 'manifest.delete', ...common, digest, reference: digest },
    ]);
    expect(hook.deliveries.every((d) => d.signatureValid)).toBe(true);
    expect(hook.deliveries.map((d) => d.headers['x-registry-event'])).toEqual(
      hook.deliveries.map((d) => d.event['kind']),
    );
    expect(new Set(hook.deliveries.map((d) => d.event['id'])).size).toBe(hook.deliveries.length);
  });

  it('delivers after the commit: what an event names is already readable when it arrives', async () => {
    let apiUrl = '';
    const seen: Array<[string, number]> = [];
    const hook = await receiver({
      async beforeAnswer({ event }) {
        const path =
          event['kind'] === 'blob.push'
            ? `/v2/team/app/blobs/${String(event['digest'])}`
            : `/v2/team/app/manifests/${String(event['tag'] ?? event['reference'])}`;
        const response = await fetch(`${apiUrl}${path}`, {
          method: 'HEAD',
          headers: { accept: OCI_MANIFEST },
        });
        seen.push([String(event['kind']), response.status]);
      },
    });
    const api = await start(
      `[global]\nevent_webhooks = ["audit"]\n${webhookToml('audit', hook.url, 'policy = "required"\nevents = ["blob.push", "manifest.push", "tag.create"]')}`,
    );
    apiUrl = api.url;
    expect((await uploadBlob(api.url)).status).toBe(201);
    expect((await putManifest(api.url, 'v1')).status).toBe(201);
    expect(seen).toEqual([
      ['blob.push', 200],
      ['manifest.push', 200],
      ['tag.create', 200],
    ]);
  });

  it('required: a refused push answers 503 naming the webhook, and the push stays committed', async () => {
    const hook = await receiver({ mode: 'fail' });
    const api = await start(
      `[global]\nevent_webhooks = ["audit"]\n${webhookToml('audit', hook.url, 'policy = "required"\nevents = ["manifest.push"]\nmax_retries = 1')}`,
    );
    expect((await uploadBlob(api.url)).status).toBe(201);
    const push = await putManifest(api.url, 'v1');
    expect(push.status).toBe(503);
    const error = (await push.json()) as {
      errors: Array<{ code: string; detail: { reason: string; webhooks: string[] } }>;
    };
    expect(error.errors[0]?.code).toBe('UNAVAILABLE');
    expect(error.errors[0]?.detail.webhooks).toEqual(['audit']);
    expect(error.errors[0]?.detail.reason).toContain('the change is stored');
    expect(hook.deliveries).toHaveLength(2);
    expect(
      (await fetch(`${api.url}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } })).status,
    ).toBe(200);
  });

  it('required: a refused pull answers 503 before any of the body', async () => {
    const hook = await receiver({ mode: 'fail' });
    const api = await start(
      `[global]\nevent_webhooks = ["pulls"]\n${webhookToml('pulls', hook.url, 'policy = "required"\nevents = ["blob.pull", "manifest.pull"]')}`,
    );
    expect((await uploadBlob(api.url)).status).toBe(201);
    expect((await putManifest(api.url, 'v1')).status).toBe(201);
    const blob = await fetch(`${api.url}/v2/team/app/blobs/${sha(configBlob)}`);
    expect(blob.status).toBe(503);
    expect(await blob.text()).not.toContain('architecture');
    expect((await fetch(`${api.url}/v2/team/app/manifests/v1`)).status).toBe(503);
    hook.setMode('ok');
    expect((await fetch(`${api.url}/v2/team/app/manifests/v1`)).status).toBe(200);
  });

  it('optional: a failing webhook is tried with its retries and never fails the operation', async () => {
    const hook = await receiver({ mode: 'hang' });
    const api = await start(
      `[global]\nevent_webhooks = ["slack"]\n${webhookToml('slack', hook.url, 'policy = "optional"\nevents = ["blob.push"]\ntimeout_ms = 100\nmax_retries = 1')}`,
    );
    expect((await uploadBlob(api.url)).status).toBe(201);
    expect(hook.deliveries).toHaveLength(2);
  });

  it('async: the delivery is on the durable queue before the answer, whatever the endpoint does', async () => {
    const api = await start(
      `[global]\nevent_webhooks = ["later"]\n${webhookToml('later', 'http://127.0.0.1:9/dead', 'policy = "async"\nevents = ["manifest.push", "tag.create"]\nmax_retries = 4')}`,
    );
    expect((await uploadBlob(api.url)).status).toBe(201);
    expect((await putManifest(api.url, 'v1')).status).toBe(201);
    // One job for the push's two events (one operation, one webhook).
    const pending = (await api.jobs.listPending(EVENTS_QUEUE)).items;
    expect(pending).toHaveLength(1);
    const payload = pending[0]?.payload as { webhook: string; events: Array<{ kind: string; body: string }> };
    expect(payload.webhook).toBe('later');
    expect(payload.events.map((event) => event.kind)).toEqual(['manifest.push', 'tag.create']);
    expect(JSON.parse(payload.events[1]?.body ?? '{}')).toMatchObject({ kind: 'tag.create', tag: 'v1' });
    expect(pending[0]?.maxAttempts).toBe(5);
    // The jobs API lists the queue (and its dead letter) like any other.
    const listed = await fetch(`${api.url}/v2/_ext/jobs/pending?queue=events`);
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { jobs: Array<{ kind: string }> }).jobs.map((job) => job.kind)).toEqual([
      'event.delivery',
    ]);
    expect((await fetch(`${api.url}/v2/_ext/jobs/failed?queue=events`)).status).toBe(200);
  });

  it('applies a reloaded webhook configuration to the next operation', async () => {
    const hook = await receiver();
    const api = await start('');
    expect((await uploadBlob(api.url)).status).toBe(201);
    expect(hook.deliveries).toHaveLength(0);
    api.reload(
      `[repository."team"]\nevent_webhooks = ["new"]\n${webhookToml('new', hook.url, 'policy = "optional"\nevents = ["blob.push"]')}`,
    );
    expect((await uploadBlob(api.url)).status).toBe(201);
    expect(hook.deliveries.map((d) => d.event['kind'])).toEqual(['blob.push']);
  });
});
