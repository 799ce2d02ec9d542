import {
  type Distribution,
  skipWithout,
  startDistribution,
  startWebhookReceiver,
  type WebhookReceiver,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MANIFEST_ACCEPT,
  type SeededImage,
  seedImage,
  startCache,
  type TestCache,
  upstreamOf,
} from './harness.js';

/** Pulls served by the pull-through cache are events too: `manifest.pull` and `blob.pull`, before the body. */

const skip = skipWithout('pull-through cache tests against CNCF distribution', 'docker-registry', 'openssl');

describe.skipIf(skip)('pull events of the pull-through cache', () => {
  let upstream: Distribution;
  let image: SeededImage;
  let hook: WebhookReceiver;
  let cache: TestCache;

  beforeAll(async () => {
    upstream = await startDistribution({ auth: 'none' });
    image = await seedImage(upstream, 'library/hello', 'v1');
    hook = await startWebhookReceiver({ token: 'ptc' });
    cache = await startCache({
      upstreams: [upstreamOf(upstream)],
      events: true,
      toml: [
        '[global]',
        'event_webhooks = ["pulls"]',
        '[event_webhook.pulls]',
        `url = ${JSON.stringify(hook.url)}`,
        'policy = "required"',
        'token = "ptc"',
        'events = ["manifest.pull", "blob.pull"]',
      ].join('\n'),
    });
  });

  afterAll(async () => {
    await cache?.close();
    await hook?.close();
    await upstream?.stop();
    await image?.remove();
  });

  it('emits manifest.pull and blob.pull of GETs (not HEADs), and a refused pull answers 503', async () => {
    const blob = image.images.get('linux/amd64')!.blobs[0]!;
    expect(
      (await cache.send('GET', '/v2/mirror/library/hello/manifests/v1', { accept: MANIFEST_ACCEPT })).status,
    ).toBe(200);
    expect(
      (await cache.send('HEAD', '/v2/mirror/library/hello/manifests/v1', { accept: MANIFEST_ACCEPT })).status,
    ).toBe(200);
    expect((await cache.send('GET', `/v2/mirror/library/hello/blobs/${blob}`)).status).toBe(200);
    expect(hook.deliveries.map(({ event: { id: _id, timestamp: _t, ...rest } }) => rest)).toEqual([
      {
        kind: 'manifest.pull',
        namespace: 'mirror/library/hello',
        repository: 'mirror',
        digest: image.digest,
        reference: 'v1',
        tag: 'v1',
        actor: { client_ip: '127.0.0.1' },
      },
      {
        kind: 'blob.pull',
        namespace: 'mirror/library/hello',
        repository: 'mirror',
        digest: blob,
        actor: { client_ip: '127.0.0.1' },
      },
    ]);
    expect(hook.deliveries.every((d) => d.signatureValid)).toBe(true);

    hook.setMode('fail');
    const refused = await cache.send('GET', `/v2/mirror/library/hello/blobs/${blob}`);
    expect(refused.status).toBe(503);
    expect(refused.json().errors[0].detail.webhooks).toEqual(['pulls']);
  });
});
