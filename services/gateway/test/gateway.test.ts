import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Config } from '@angos/config';
import { getContext, sendJson } from '@angos/http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ALLOW_ALL,
  basic,
  configOf,
  type GatewayUnderTest,
  IDENTITIES,
  listenUpstream,
  type Running,
  startGateway,
} from './helpers.js';

const started: Array<GatewayUnderTest | Running> = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.close()));
});

async function gateway(...args: Parameters<typeof startGateway>): Promise<GatewayUnderTest> {
  const running = await startGateway(...args);
  started.push(running);
  return running;
}

/** An in-process upstream that reports what it received. */
const echo = {
  kind: 'in-process' as const,
  handler: (req: Parameters<typeof getContext>[0], res: Parameters<typeof sendJson>[0]) =>
    sendJson(res, 200, { method: req.method, url: req.url, headers: req.headers, context: getContext(req) }),
};

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  context: { clientIp: string; mountAllowedFrom?: string[]; identity?: Record<string, unknown> };
}

const DENY = '[global.access_policy]\ndefault = "deny"\n';

/** A GET sent from `localAddress` (any 127.0.0.0/8 address reaches the loopback listener). */
function requestFrom(
  url: string,
  localAddress: string,
  authorization?: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = authorization === undefined ? {} : { authorization };
    const req = httpRequest(url, { localAddress, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function codeOf(response: Response): Promise<string | undefined> {
  return ((await response.json()) as { errors: { code: string }[] }).errors[0]?.code;
}

describe('buildGateway with an in-process upstream', () => {
  it('forwards allowed /v2 requests with the request context', async () => {
    const running = await gateway(echo);
    const response = await fetch(`${running.url}/v2/team/app/manifests/latest`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Echo;
    expect(body.url).toBe('/v2/team/app/manifests/latest');
    expect(body.context.clientIp).toBe('127.0.0.1');
    expect(body.context.mountAllowedFrom).toBeUndefined();
    expect(body.context.identity).toBeUndefined();
  });

  it('strips x-angos-* headers clients send', async () => {
    const running = await gateway(echo);
    const response = await fetch(`${running.url}/v2/`, {
      headers: { 'x-angos-signature': 'forged', 'X-Angos-Context': 'forged', 'x-other': 'kept' },
    });
    const body = (await response.json()) as Echo;
    expect(Object.keys(body.headers).filter((name) => name.startsWith('x-angos-'))).toEqual([]);
    expect(body.headers['x-other']).toBe('kept');
  });

  it('answers a denied anonymous request 401 with a Basic challenge', async () => {
    const running = await gateway(echo, DENY);
    const response = await fetch(`${running.url}/v2/`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Basic realm="Angos"');
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await response.json()).toEqual({
      errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }],
    });
  });

  it('denies everything when no access policy is configured', async () => {
    const running = await gateway(echo, '');
    expect((await fetch(`${running.url}/v2/a/blobs/sha256:abc`)).status).toBe(401);
    expect((await fetch(`${running.url}/v2/_catalog`)).status).toBe(401);
  });

  it('answers requests it cannot describe itself, before authorization', async () => {
    const running = await gateway(echo, DENY);
    const unknown = await fetch(`${running.url}/v2/not/a/route/at/all`);
    expect(unknown.status).toBe(404);
    const extension = await fetch(`${running.url}/v2/_ext/anything`);
    expect(extension.status).toBe(404);
    const invalidName = await fetch(`${running.url}/v2/Team/manifests/v1`);
    expect(invalidName.status).toBe(400);
    expect(await codeOf(invalidName)).toBe('NAME_INVALID');
    const method = await fetch(`${running.url}/v2/team/manifests/v1`, { method: 'POST' });
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
  });

  it('requires the global policy and then the repository policy to allow', async () => {
    const running = await gateway(
      echo,
      `${ALLOW_ALL}
[repository."private".access_policy]
default = "deny"
[repository."open".access_policy]
default = "allow"
`,
    );
    expect((await fetch(`${running.url}/v2/private/manifests/v1`)).status).toBe(401);
    expect((await fetch(`${running.url}/v2/private/app/manifests/v1`)).status).toBe(401);
    expect((await fetch(`${running.url}/v2/private-not/manifests/v1`)).status).toBe(200);
    expect((await fetch(`${running.url}/v2/open/manifests/v1`)).status).toBe(200);

    // A repository policy narrows; it cannot open what the global policy refuses.
    const narrow = await gateway(echo, `${DENY}\n[repository."open".access_policy]\ndefault = "allow"\n`);
    expect((await fetch(`${narrow.url}/v2/open/manifests/v1`)).status).toBe(401);
  });

  it('reads the configuration per request (hot reload)', async () => {
    let config: Config = configOf(DENY);
    const running = await gateway(echo, () => config);
    expect((await fetch(`${running.url}/v2/`)).status).toBe(401);
    config = configOf(ALLOW_ALL);
    expect((await fetch(`${running.url}/v2/`)).status).toBe(200);
  });

  it.each([
    ['an allowed source', 'public/base', ['public/base']],
    ['a denied source', 'private/base', undefined],
    ['an invalid source', 'Private', undefined],
  ])('evaluates get-blob on the mount source: %s', async (_name, from, expected) => {
    const running = await gateway(
      echo,
      `${ALLOW_ALL}[repository."private".access_policy]\ndefault = "deny"\n`,
    );
    const response = await fetch(`${running.url}/v2/app/blobs/uploads/?mount=sha256:abc&from=${from}`, {
      method: 'POST',
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Echo).context.mountAllowedFrom).toEqual(expected);
  });

  it('refuses the mount target itself when it is denied', async () => {
    const running = await gateway(
      echo,
      `${ALLOW_ALL}[repository."private".access_policy]\ndefault = "deny"\n`,
    );
    const response = await fetch(`${running.url}/v2/private/x/blobs/uploads/?mount=sha256:abc&from=public`, {
      method: 'POST',
    });
    expect(response.status).toBe(401);
  });

  it('authorizes a mount as an upload too: mount-blob alone lets nobody upload', async () => {
    // Allowed to mount into app, not to upload: a mount that cannot happen would become an upload.
    const running = await gateway(
      echo,
      `[global.access_policy]\ndefault = "allow"\nrules = ["request.action == 'start-upload'"]\n`,
    );
    const mount = await fetch(`${running.url}/v2/app/blobs/uploads/?mount=sha256:abc&from=base`, {
      method: 'POST',
      body: 'uploaded through a mount',
    });
    expect(mount.status).toBe(401);
    const withUpload = await gateway(echo, ALLOW_ALL);
    const allowed = await fetch(`${withUpload.url}/v2/app/blobs/uploads/?mount=sha256:abc&from=base`, {
      method: 'POST',
    });
    expect(allowed.status).toBe(200);
  });

  it('serves health and metrics itself, whatever the policy', async () => {
    const running = await gateway(echo, DENY, { ready: () => false });
    expect(await (await fetch(`${running.url}/healthz`)).text()).toBe('ok\n');
    expect((await fetch(`${running.url}/readyz`)).status).toBe(503);
    const metrics = await fetch(`${running.url}/metrics`);
    expect(metrics.status).toBe(200);
  });

  it('answers 404 outside /v2', async () => {
    const running = await gateway(echo);
    const response = await fetch(`${running.url}/index.html`);
    expect(response.status).toBe(404);
    expect(await codeOf(response)).toBe('UNSUPPORTED');
  });
});

describe('authentication and authorization in the gateway', () => {
  const RULES = `${IDENTITIES}
[global.access_policy]
default = "deny"
rules = [
  "identity.username == 'admin'",
  "has(identity.username) && request.action in ['get-api-version', 'get-manifest', 'get-blob']",
]
`;

  it('accepts a basic login and forwards the identity', async () => {
    const running = await gateway(echo, RULES);
    const response = await fetch(`${running.url}/v2/team/manifests/v1`, {
      headers: { authorization: basic('alice') },
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as Echo).context.identity).toEqual({ id: 'alice', username: 'alice' });
  });

  it('answers an authenticated caller that is not allowed 403 DENIED, without a challenge', async () => {
    const running = await gateway(echo, RULES);
    const response = await fetch(`${running.url}/v2/team/manifests/v1`, {
      method: 'DELETE',
      headers: { authorization: basic('alice') },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toBeNull();
    expect(await codeOf(response)).toBe('DENIED');
    const admin = await fetch(`${running.url}/v2/team/manifests/v1`, {
      method: 'DELETE',
      headers: { authorization: basic('admin') },
    });
    expect(admin.status).toBe(200);
  });

  it('treats wrong credentials as anonymous (fail-open) and challenges again', async () => {
    const running = await gateway(echo, RULES);
    for (const authorization of [
      basic('alice', 'wrong'),
      basic('admin', ''),
      'Basic !!!',
      'Digest x',
      basic('nobody' as 'alice', 'x'),
    ]) {
      const response = await fetch(`${running.url}/v2/`, { headers: { authorization } });
      expect(response.status, authorization).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Basic realm="Angos"');
    }
  });

  it('counts attempts in auth_attempts_total', async () => {
    const running = await gateway(echo, RULES);
    await fetch(`${running.url}/v2/`, { headers: { authorization: basic('alice') } });
    await fetch(`${running.url}/v2/`, { headers: { authorization: basic('alice', 'nope') } });
    await fetch(`${running.url}/v2/`);
    const text = (await running.metrics.render()).body;
    expect(text).toContain('auth_attempts_total{method="basic",result="success"} 1');
    expect(text).toContain('auth_attempts_total{method="basic",result="failed"} 1');
  });

  it('answers an address that keeps failing 429 with Retry-After, while another address logs in', async () => {
    // The defaults: 10 failures within 60 s.
    const running = await gateway(echo, RULES);
    const from = (localAddress: string, authorization: string) =>
      requestFrom(`${running.url}/v2/team/manifests/v1`, localAddress, authorization);
    // Distinct guesses from 127.0.0.2: the first ten are checked (anonymous, so 401) ...
    for (let i = 0; i < 10; i++) {
      expect((await from('127.0.0.2', basic('alice', `guess-${i}`))).status).toBe(401);
    }
    // ... then that address is refused without a look at its credentials, the right ones included.
    for (const authorization of [basic('alice', 'guess-10'), basic('alice')]) {
      const refused = await from('127.0.0.2', authorization);
      expect(refused.status).toBe(429);
      expect(JSON.parse(refused.body).errors[0].code).toBe('TOOMANYREQUESTS');
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }
    // Another address is not affected, and the limited one may still come without credentials.
    const alice = await from('127.0.0.1', basic('alice'));
    expect(alice.status).toBe(200);
    expect((JSON.parse(alice.body) as Echo).context.identity).toEqual({ id: 'alice', username: 'alice' });
    expect((await requestFrom(`${running.url}/v2/`, '127.0.0.2')).status).toBe(401);
  });

  it('asks the authorization webhook after the policies, with the request as headers', async () => {
    const seen: Record<string, string | string[] | undefined>[] = [];
    const webhook = await listenUpstream((req, res) => {
      seen.push(req.headers);
      res.statusCode = req.headers['x-registry-username'] === 'admin' ? 200 : 403;
      res.end();
    });
    started.push(webhook);
    const running = await gateway(
      echo,
      `${IDENTITIES}${ALLOW_ALL}
[global]
authorization_webhook = "authz"
[repository."public"]
authorization_webhook = ""
[auth.webhook.authz]
url = "${webhook.url}/check"
timeout_ms = 2000
bearer_token = "webhook-secret"
forward_headers = ["X-Request-Id"]
`,
    );
    const admin = await fetch(`${running.url}/v2/team/manifests/v1?x=1`, {
      headers: { authorization: basic('admin'), 'x-request-id': 'r-1', host: 'registry.example' },
    });
    expect(admin.status).toBe(200);
    expect(seen[0]).toMatchObject({
      authorization: 'Bearer webhook-secret',
      'x-forwarded-method': 'GET',
      'x-forwarded-uri': '/v2/team/manifests/v1?x=1',
      'x-forwarded-proto': 'http',
      'x-forwarded-for': '127.0.0.1',
      'x-registry-action': 'get-manifest',
      'x-registry-namespace': 'team',
      'x-registry-reference': 'v1',
      'x-registry-username': 'admin',
      'x-registry-identity-id': 'admin',
      'x-request-id': 'r-1',
    });
    const alice = await fetch(`${running.url}/v2/team/manifests/v1`, {
      headers: { authorization: basic('alice') },
    });
    expect(alice.status).toBe(403);
    // An empty repository webhook turns the global one off.
    const calls = seen.length;
    expect((await fetch(`${running.url}/v2/public/manifests/v1`)).status).toBe(200);
    expect(seen.length).toBe(calls);
  });
});

describe('refused uploads', () => {
  it('closes the connection instead of reading the body of a refused upload', async () => {
    const running = await gateway(echo, DENY);
    const response = await fetch(`${running.url}/v2/team/blobs/uploads/abc`, {
      method: 'PATCH',
      body: Buffer.alloc(1024 * 1024),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('connection')).toBe('close');
    const bodyless = await fetch(`${running.url}/v2/team/manifests/v1`);
    expect(bodyless.status).toBe(401);
    expect(bodyless.headers.get('connection')).not.toBe('close');
  });
});

describe('the extension API in the gateway', () => {
  it('forwards the caller as policies see it only for the listings that span namespaces', async () => {
    const running = await gateway(echo, `${IDENTITIES}${ALLOW_ALL}`);
    const context = async (path: string) =>
      (
        (await (
          await fetch(`${running.url}${path}`, { headers: { authorization: basic('alice') } })
        ).json()) as {
          context: Record<string, unknown>;
        }
      ).context;
    for (const path of ['/v2/_ext/_namespaces?parent=team', '/v2/_ext/_repositories']) {
      expect((await context(path))['policyIdentity'], path).toEqual({
        client_ip: '127.0.0.1',
        id: 'alice',
        username: 'alice',
      });
    }
    for (const path of ['/v2/_ext/team/_tags', '/v2/team/tags/list', '/v2/_ext/_ui/config']) {
      expect((await context(path))['policyIdentity'], path).toBeUndefined();
    }
  });

  it('judges each endpoint as its own action, with the namespace for the namespaced ones', async () => {
    const running = await gateway(
      echo,
      `${IDENTITIES}
[global.access_policy]
default = "deny"
rules = [
  "has(identity.username) && request.action in ['list-namespaces', 'list-tag-details'] && (!has(request.namespace) || request.namespace != 'private')",
]
`,
    );
    const get = (path: string) =>
      fetch(`${running.url}${path}`, { headers: { authorization: basic('alice') } });
    expect((await get('/v2/_ext/_namespaces')).status).toBe(200);
    expect((await get('/v2/_ext/team/app/_tags')).status).toBe(200);
    const refused = await get('/v2/_ext/private/_tags');
    expect(refused.status).toBe(403);
    expect(await codeOf(refused)).toBe('DENIED');
    expect((await get('/v2/_ext/team/_revisions')).status).toBe(403);
    expect((await get('/v2/_ext/Team/_tags')).status).toBe(400);
    const anonymous = await fetch(`${running.url}/v2/_ext/_namespaces`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="Angos"');
  });
});
