import { describe, expect, it } from 'vitest';
import { baseConfig } from './helpers.js';
import { useInProcessServer } from './in-process.js';

const { ws, start } = useInProcessServer();

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
const ALICE = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;
const ALICE_IDENTITY = ['[auth.identity.alice]', 'username = "alice"', `password = "${ALICE_HASH}"`];

describe('the web UI through angos server', () => {
  it('challenges an anonymous visitor and serves a permitted user the page (ui-asset)', async () => {
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        [
          ...ALICE_IDENTITY,
          '[global.access_policy]',
          'default = "deny"',
          `rules = ["identity.username == 'alice'"]`,
          '[ui]',
          'enabled = true',
          'name = "Test Registry"',
          '',
        ].join('\n'),
      ),
    );
    const service = await start();
    const base = `http://127.0.0.1:${service.address.port}`;

    const anonymous = await fetch(`${base}/n/team/app`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="Angos"');

    const page = await fetch(`${base}/n/team/app`, { headers: { authorization: ALICE } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<div id="app">');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    const post = await fetch(`${base}/`, { method: 'POST', headers: { authorization: ALICE } });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');

    // Counted by their action, as the policy judged them, not as `unknown` paths.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('http_requests_total{method="GET",route="ui-asset",status="401"} 1');
    expect(metrics).toContain('http_requests_total{method="GET",route="ui-asset",status="200"} 1');
    expect(metrics).toContain('http_requests_total{method="POST",route="unknown",status="405"} 1');
  });

  it('lets a policy refuse the UI by its action', async () => {
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        [
          ...ALICE_IDENTITY,
          '[global.access_policy]',
          'default = "allow"',
          `rules = ["request.action == 'ui-asset'"]`,
          '[ui]',
          'enabled = true',
          '',
        ].join('\n'),
      ),
    );
    const service = await start();
    const base = `http://127.0.0.1:${service.address.port}`;
    expect((await fetch(`${base}/`, { headers: { authorization: ALICE } })).status).toBe(403);
    expect((await fetch(`${base}/v2/`, { headers: { authorization: ALICE } })).status).toBe(200);
  });

  it('keeps / unknown, without a login challenge, while [ui] is off', async () => {
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        [...ALICE_IDENTITY, '[global.access_policy]', 'default = "deny"', ''].join('\n'),
      ),
    );
    const service = await start();
    const reply = await fetch(`http://127.0.0.1:${service.address.port}/`);
    expect(reply.status).toBe(404);
    expect(reply.headers.get('www-authenticate')).toBeNull();
  });
});
