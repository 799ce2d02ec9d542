import { mkOci, OciLayout, startWebhookReceiver, type WebhookReceiver } from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEPLOYMENTS, skipWithoutClients, useRegistry } from './fixture.js';

/**
 * Event webhooks with a real client: a skopeo push and pull through `angos server` reach a real
 * receiver as signed events of every kind the push and pull make (short form: one deployment).
 */

const TOKEN = 'e2e-webhook-secret';
const server = DEPLOYMENTS.find((deployment) => deployment.mode === 'server' && deployment.storage === 'fs');

describe.skipIf(skipWithoutClients('skopeo'))('event webhooks with skopeo', () => {
  let hook: WebhookReceiver;
  beforeAll(async () => {
    hook = await startWebhookReceiver({ token: TOKEN });
  });
  afterAll(async () => {
    await hook?.close();
  });
  if (server === undefined) throw new Error('no server-on-fs deployment');
  const r = useRegistry(server, ['skopeo'], {
    config: () =>
      [
        '[global]',
        'event_webhooks = ["audit"]',
        '[event_webhook.audit]',
        `url = ${JSON.stringify(hook.url)}`,
        'policy = "required"',
        `token = ${JSON.stringify(TOKEN)}`,
        'events = ["manifest.push", "manifest.pull", "blob.push", "blob.pull", "tag.create"]',
      ].join('\n'),
  });

  it('delivers signed blob, manifest and tag events of a push, and pull events of a pull', async () => {
    const src = new OciLayout(r.path('src'));
    const digest = await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed() });
    const blobs = (await src.closure(digest)).filter((blob) => blob !== digest);
    await r.ok('skopeo', 'copy', '--dest-tls-verify=false', `oci:${src.dir}:v1`, r.ref('t/events', 'v1'));

    const kinds = (kind: string) => hook.deliveries.filter((d) => d.event['kind'] === kind);
    expect(
      kinds('blob.push')
        .map((d) => d.event['digest'])
        .sort(),
    ).toEqual([...blobs].sort());
    expect(kinds('manifest.push').map((d) => d.event)).toMatchObject([
      { namespace: 't/events', digest, reference: 'v1' },
    ]);
    expect(kinds('tag.create').map((d) => d.event)).toMatchObject([
      { namespace: 't/events', digest, tag: 'v1' },
    ]);

    await r.ok(
      'skopeo',
      'copy',
      '--src-tls-verify=false',
      r.ref('t/events', 'v1'),
      `oci:${r.path('out')}:v1`,
    );
    expect(kinds('manifest.pull').map((d) => d.event)).toContainEqual(
      expect.objectContaining({ namespace: 't/events', digest, reference: 'v1', tag: 'v1' }),
    );
    expect(new Set(kinds('blob.pull').map((d) => d.event['digest']))).toEqual(new Set(blobs));

    expect(hook.deliveries.every((d) => d.signatureValid === true)).toBe(true);
    expect(hook.deliveries.every((d) => d.headers['authorization'] === `Bearer ${TOKEN}`)).toBe(true);
  });
});
