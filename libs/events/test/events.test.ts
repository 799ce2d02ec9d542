import { type Config, parseConfig } from '@angos/config';
import { JobQueue, JobRunner } from '@angos/jobs';
import { MemoryLockManager } from '@angos/lock';
import { createMetrics, silentLogger } from '@angos/observability';
import { createMetadataStore } from '@angos/storage';
import { startWebhookReceiver, type WebhookReceiver } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createEventDispatcher,
  DeliveryError,
  deliverOnce,
  deliverWithRetries,
  EVENT_DELIVERY_JOB,
  EVENTS_QUEUE,
  encodeEvent,
  eventDeliveryHandler,
  RequiredWebhookError,
  signBody,
  verifySignature,
  webhooksFor,
} from '../src/index.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function configWith(toml: string): Config {
  return parseConfig(`[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n${toml}`)
    .config;
}

function webhook(name: string, url: string, settings: string): string {
  return `[event_webhook.${name}]\nurl = ${JSON.stringify(url)}\n${settings}\n`;
}

const receivers: WebhookReceiver[] = [];
async function receiver(options: Parameters<typeof startWebhookReceiver>[0] = {}): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver(options);
  receivers.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

describe('signature', () => {
  it('matches the documented test vectors', () => {
    expect(signBody('test-secret', 'hello world')).toBe(
      'sha256=046e2496e13e0bfd8dbef84244dd188311a48086646355161bc4ad0769a49cf4',
    );
    // The event of docs/events.md, byte for byte.
    const body =
      '{"id":"0b5e8a53-7f0c-4c35-9a57-1f0d2c9c6a11","timestamp":"2026-01-15T10:30:00.123Z","kind":"manifest.push","namespace":"team/app","repository":"team","digest":"sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270","reference":"v1","actor":{"username":"alice","client_ip":"192.0.2.10"}}';
    expect(signBody('my-webhook-secret', body)).toBe(
      'sha256=92c52027cc9453b9321e02b166035130358811d05f95b6006f99ed8504f584ac',
    );
    expect(verifySignature('test-secret', 'hello world', signBody('test-secret', 'hello world'))).toBe(true);
    expect(verifySignature('test-secret', 'hello world!', signBody('test-secret', 'hello world'))).toBe(
      false,
    );
    expect(verifySignature('test-secret', 'hello world', undefined)).toBe(false);
  });
});

describe('webhooksFor', () => {
  const config = configWith(`
[global]
event_webhooks = ["all", "prod"]
[repository."team"]
event_webhooks = ["teamonly"]
[repository."quiet"]
event_webhooks = []
${webhook('all', 'http://127.0.0.1:1/a', 'policy = "async"\nevents = ["manifest.push", "tag.create"]')}
${webhook('prod', 'http://127.0.0.1:1/p', 'policy = "optional"\nevents = ["manifest.push"]\nrepository_filter = ["^prod/", "^library/nginx$"]')}
${webhook('teamonly', 'http://127.0.0.1:1/t', 'policy = "required"\nevents = ["blob.pull"]')}
`);
  const names = (namespace: string, kind: Parameters<typeof webhooksFor>[2]) =>
    webhooksFor(config, namespace, kind).map((entry) => entry.name);

  it('takes the global list, filtered by events and repository_filter', () => {
    expect(names('prod/api', 'manifest.push')).toEqual(['all', 'prod']);
    expect(names('library/nginx', 'manifest.push')).toEqual(['all', 'prod']);
    expect(names('library/nginx2', 'manifest.push')).toEqual(['all']);
    expect(names('prod/api', 'tag.create')).toEqual(['all']);
    expect(names('prod/api', 'blob.push')).toEqual([]);
  });

  it("lets a repository's list, empty included, override the global one", () => {
    expect(names('team/app', 'manifest.push')).toEqual([]);
    expect(names('team/app', 'blob.pull')).toEqual(['teamonly']);
    expect(names('quiet/app', 'manifest.push')).toEqual([]);
  });
});

describe('deliverOnce', () => {
  it('posts the exact body with the event type, the bearer token and the signature', async () => {
    const endpoint = await receiver({ token: 's3cret' });
    const metrics = createMetrics({ defaultMetrics: false });
    const body = encodeEvent({
      id: 'e1',
      timestamp: '2026-01-01T00:00:00.000Z',
      kind: 'manifest.push',
      namespace: 'team/app',
      repository: 'team',
      digest: DIGEST,
      reference: 'v1',
      tag: undefined,
      actor: undefined,
    });
    await deliverOnce(
      {
        name: 'audit',
        webhook: { url: endpoint.url, token: 's3cret', timeout_ms: 5000 },
        kind: 'manifest.push',
        body,
      },
      metrics,
    );
    const [received] = endpoint.deliveries;
    expect(received?.body).toBe(body);
    expect(received?.signatureValid).toBe(true);
    expect(received?.headers['x-registry-event']).toBe('manifest.push');
    expect(received?.headers['authorization']).toBe('Bearer s3cret');
    expect(received?.headers['content-type']).toBe('application/json');
    expect(received?.event).toEqual({
      id: 'e1',
      timestamp: '2026-01-01T00:00:00.000Z',
      kind: 'manifest.push',
      namespace: 'team/app',
      repository: 'team',
      digest: DIGEST,
      reference: 'v1',
    });
    const text = (await metrics.render()).body;
    expect(text).toContain(
      'event_webhook_deliveries_total{webhook="audit",event="manifest.push",result="success"} 1',
    );
    expect(text).toContain(
      'event_webhook_delivery_duration_seconds_count{webhook="audit",event="manifest.push"} 1',
    );
  });

  it('sends neither token nor signature without a token', async () => {
    const endpoint = await receiver();
    await deliverOnce(
      { name: 'n', webhook: { url: endpoint.url, timeout_ms: 5000 }, kind: 'blob.pull', body: '{}' },
      undefined,
    );
    expect(endpoint.deliveries[0]?.headers['authorization']).toBeUndefined();
    expect(endpoint.deliveries[0]?.headers['x-registry-signature-256']).toBeUndefined();
  });

  it('fails on a 500, on a hang past timeout_ms, and on a closed port, counting each as an error', async () => {
    const endpoint = await receiver({ mode: 'fail' });
    const metrics = createMetrics({ defaultMetrics: false });
    const attempt = (url: string, timeout_ms = 5000) =>
      deliverOnce({ name: 'x', webhook: { url, timeout_ms }, kind: 'tag.delete', body: '{}' }, metrics);
    await expect(attempt(endpoint.url)).rejects.toThrow(/webhook "x" answered 500/);
    endpoint.setMode('hang');
    await expect(attempt(endpoint.url, 200)).rejects.toThrow(/timed out after 200 ms/);
    await endpoint.close();
    await expect(attempt(endpoint.url)).rejects.toBeInstanceOf(DeliveryError);
    expect((await metrics.render()).body).toContain(
      'event_webhook_deliveries_total{webhook="x",event="tag.delete",result="error"} 3',
    );
  });

  it('retries a synchronous delivery up to max_retries times', async () => {
    const endpoint = await receiver();
    endpoint.failNext(2);
    const delivery = {
      name: 'r',
      webhook: { url: endpoint.url, timeout_ms: 5000 },
      kind: 'blob.push' as const,
      body: '{"id":"x"}',
    };
    await deliverWithRetries(delivery, 2, undefined);
    expect(endpoint.deliveries.map((d) => d.status)).toEqual([500, 500, 200]);
    endpoint.failNext(3);
    await expect(deliverWithRetries(delivery, 2, undefined)).rejects.toThrow(/answered 500/);
  });
});

describe('dispatcher', () => {
  function dispatcherFor(config: Config, queue: JobQueue) {
    return createEventDispatcher({
      config: () => config,
      enqueue: (...args) => queue.enqueue(...args),
      logger: silentLogger,
    });
  }

  it('fails for a required webhook, not for an optional one, and queues async ones', async () => {
    const good = await receiver({ token: 't' });
    const bad = await receiver({ mode: 'fail' });
    const config = configWith(`
[global]
event_webhooks = ["ok", "opt", "req", "later"]
${webhook('ok', good.url, 'policy = "required"\nevents = ["manifest.push"]\ntoken = "t"')}
${webhook('opt', bad.url, 'policy = "optional"\nevents = ["manifest.push"]\nmax_retries = 1')}
${webhook('req', bad.url, 'policy = "required"\nevents = ["tag.create"]')}
${webhook('later', `${bad.url}/async`, 'policy = "async"\nevents = ["manifest.push"]\nmax_retries = 3')}
`);
    const queue = new JobQueue({ store: createMetadataStore({ kind: 'memory' }) });
    const events = dispatcherFor(config, queue);
    await events.emit([{ kind: 'manifest.push', namespace: 'a/b', digest: DIGEST }], { username: 'alice' });
    expect(good.accepted()).toHaveLength(1);
    expect(good.deliveries[0]?.signatureValid).toBe(true);
    expect(good.deliveries[0]?.event['actor']).toEqual({ username: 'alice' });
    // The optional one was tried twice (max_retries = 1), and its failure did not fail the emit.
    expect(bad.deliveries).toHaveLength(2);
    const [pending] = (await queue.listPending(EVENTS_QUEUE)).items;
    expect(pending?.kind).toBe(EVENT_DELIVERY_JOB);
    expect(pending?.maxAttempts).toBe(4);
    expect(
      (pending?.payload as { events?: Array<{ eventId: string }> } | undefined)?.events?.[0]?.eventId,
    ).toBe(good.deliveries[0]?.event['id']);

    const failing = events.emit(
      [{ kind: 'tag.create', namespace: 'a/b', digest: DIGEST, tag: 'v1' }],
      undefined,
    );
    await expect(failing).rejects.toBeInstanceOf(RequiredWebhookError);
    await expect(failing).rejects.toMatchObject({ webhooks: ['req'] });
  });

  it('runs async deliveries from the queue: same id and bytes on every retry, dead letter when spent', async () => {
    const endpoint = await receiver({ token: 'tok' });
    const config = configWith(`
[global]
event_webhooks = ["later"]
${webhook('later', endpoint.url, 'policy = "async"\nevents = ["manifest.delete"]\nmax_retries = 2\ntoken = "tok"')}
`);
    const queue = new JobQueue({ store: createMetadataStore({ kind: 'memory' }) });
    const runner = new JobRunner({
      queue,
      locks: new MemoryLockManager(),
      pools: [{ name: EVENTS_QUEUE, concurrency: 4 }],
      handlers: [eventDeliveryHandler({ config, logger: silentLogger })],
      pollIntervalMs: 20,
      retry: { baseDelayMs: 10, maxDelayMs: 20 },
    });
    try {
      endpoint.failNext(2);
      const events = dispatcherFor(config, queue);
      await events.emit([{ kind: 'manifest.delete', namespace: 'x/y', digest: DIGEST }], undefined);
      runner.start();
      await endpoint.waitFor((d) => d.some((x) => x.status === 200));
      expect(endpoint.deliveries).toHaveLength(3);
      expect(new Set(endpoint.deliveries.map((d) => d.body)).size).toBe(1);
      expect(endpoint.deliveries.every((d) => d.signatureValid)).toBe(true);

      endpoint.setMode('fail');
      await events.emit([{ kind: 'manifest.delete', namespace: 'x/y', digest: DIGEST }], undefined);
      await endpoint.waitFor((d) => d.length === 6);
      await waitUntil(async () => (await queue.listFailed(EVENTS_QUEUE)).items.length === 1);
      const [dead] = (await queue.listFailed(EVENTS_QUEUE)).items;
      expect(dead?.lastError).toMatch(/answered 500/);
      expect(endpoint.deliveries.length).toBe(6);
    } finally {
      await runner.stop(0);
    }
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
