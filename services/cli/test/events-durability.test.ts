import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { startWebhookReceiver, type WebhookReceiver } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startAngos, useWorkspace, waitForHttp } from './helpers.js';

/**
 * `async` event webhooks through the durable queue of a real `angos server`: an event whose push
 * was acknowledged survives a SIGKILL of the server right after the 201 and a receiver that is
 * down meanwhile; it arrives once the receiver is back, and every attempt carries the same id
 * and the same signed bytes.
 */

const TOKEN = 'durable-secret';
const ws = useWorkspace();
const receivers: WebhookReceiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

describe('async event webhooks', () => {
  it('deliver an acknowledged event after a SIGKILL right after the 201 and a receiver outage', async () => {
    const failing = await startWebhookReceiver({ token: TOKEN, mode: 'fail' });
    receivers.push(failing);
    const port = await freePort();
    await ws().writeConfig(
      [
        '[server]',
        'bind_address = "127.0.0.1"',
        `port = ${port}`,
        '[blob_store.fs]',
        `root_dir = ${JSON.stringify(join(ws().dir, 'data'))}`,
        '[global]',
        'event_webhooks = ["later"]',
        '[global.access_policy]',
        'default = "allow"',
        '[event_webhook.later]',
        `url = ${JSON.stringify(failing.url)}`,
        'policy = "async"',
        `token = ${JSON.stringify(TOKEN)}`,
        'events = ["blob.push"]',
        'max_retries = 30',
      ].join('\n'),
    );
    const url = `http://127.0.0.1:${port}`;
    const killed = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`${url}/healthz`, killed);

    const blob = randomBytes(64);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const pushed = await fetch(`${url}/v2/t/img/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: blob,
    });
    expect(pushed.status).toBe(201);
    const exited = once(killed.child, 'exit');
    killed.child.kill('SIGKILL');
    await exited;

    // The receiver goes down entirely (connection refused) while the next server starts.
    await failing.close();
    const server = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`${url}/healthz`, server);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const back = await startWebhookReceiver({ token: TOKEN, port: failing.port, failFirst: 1 });
    receivers.push(back);
    await back.waitFor((deliveries) => deliveries.some((d) => d.status === 200), 45_000);

    // At least two attempts reached a receiver (the first answered 500): the retry is the same event.
    const attempts = [...failing.deliveries, ...back.deliveries];
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.every((d) => d.event['kind'] === 'blob.push' && d.event['digest'] === digest)).toBe(true);
    expect(new Set(attempts.map((d) => d.event['id'])).size).toBe(1);
    expect(new Set(attempts.map((d) => d.body)).size).toBe(1);
    expect(attempts.every((d) => d.signatureValid === true)).toBe(true);
    expect(await server.stop()).toBe(0);
  }, 90_000);
});
