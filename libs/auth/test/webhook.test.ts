import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createMetrics, inSpan, silentLogger, startTracing } from '@angos/observability';
import { configOf, createTestCa, startOtlpReceiver } from '@angos/test-support';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCache } from '../src/cache/memory.js';
import type { Identity } from '../src/identity.js';
import { createAuthMetrics } from '../src/metrics.js';
import type { AccessRequest } from '../src/request.js';
import { checkAuthConfig } from '../src/setup.js';
import { WebhookAuthorizer } from '../src/webhook/authorizer.js';
import type { ClientRequestDetails } from '../src/webhook/headers.js';
import { type Running, serve } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface FakeWebhook extends Running {
  calls: IncomingHttpHeaders[];
  status: number;
  delayMs: number;
}

async function fakeWebhook(): Promise<FakeWebhook> {
  const state = { calls: [] as IncomingHttpHeaders[], status: 200, delayMs: 0 };
  const running = await serve((req, res) => {
    state.calls.push(req.headers);
    setTimeout(() => {
      res.statusCode = state.status;
      res.end('body is ignored');
    }, state.delayMs);
  });
  cleanups.push(() => running.close());
  return Object.assign(state, running);
}

function authorizer(toml: string) {
  const config = configOf(toml).auth.webhook['authz']!;
  const metrics = createMetrics({ defaultMetrics: false });
  const cache = new MemoryCache();
  const webhook = new WebhookAuthorizer('authz', config, {
    cache: () => cache,
    metrics: createAuthMetrics(metrics),
    logger: silentLogger,
  });
  cleanups.push(() => webhook.close());
  return { webhook, metrics, cache };
}

const identity: Identity = {
  client_ip: '10.0.0.7',
  id: 'alice-id',
  username: 'alice',
  certificate: { common_names: ['robot'], organizations: ['Platform', 'Ops'] },
};
const request: AccessRequest = {
  action: 'put-manifest',
  namespace: 'team/app',
  reference: 'v1',
  tags: ['v1'],
};
const client: ClientRequestDetails = {
  method: 'PUT',
  uri: '/v2/team/app/manifests/v1',
  host: 'registry.example:8443',
  proto: 'https',
  headers: { 'x-request-id': 'req-1', 'x-registry-username': 'spoofed', cookie: 'secret' },
};

describe('WebhookAuthorizer', () => {
  it("sends the traced request's traceparent, and caches decisions across traces", async () => {
    const hook = await fakeWebhook();
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const tracing = await startTracing({
      endpoint: receiver.url,
      samplingRate: 1,
      serviceName: 'angos-test',
      logger: silentLogger,
    });
    cleanups.push(() => tracing.shutdown());
    const { webhook } = authorizer(
      `[auth.webhook.authz]\nurl = "${hook.url}/authorize"\ntimeout_ms = 1000\ncache_ttl = 60\n`,
    );
    const first = await inSpan('PUT manifest', {}, async () => {
      expect(await webhook.authorize(identity, request, client)).toBe('allow');
      return trace.getActiveSpan()?.spanContext().traceId;
    });
    expect(hook.calls[0]?.['traceparent']).toMatch(new RegExp(`^00-${first}-[0-9a-f]{16}-01$`));
    await inSpan('PUT manifest', {}, () => webhook.authorize(identity, request, client));
    expect(hook.calls).toHaveLength(1);
  });

  it('sends the request, identity and forwarded headers, with its own credentials', async () => {
    const hook = await fakeWebhook();
    const { webhook } = authorizer(`[auth.webhook.authz]
url = "${hook.url}/authorize"
timeout_ms = 1000
basic_auth = { username = "registry", password = "hook-pass" }
forward_headers = ["X-Request-Id", "X-Registry-Username"]
`);
    expect(await webhook.authorize(identity, request, client)).toBe('allow');
    expect(hook.calls[0]).toMatchObject({
      authorization: `Basic ${Buffer.from('registry:hook-pass').toString('base64')}`,
      'x-forwarded-method': 'PUT',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'registry.example:8443',
      'x-forwarded-uri': '/v2/team/app/manifests/v1',
      'x-forwarded-for': '10.0.0.7',
      'x-registry-action': 'put-manifest',
      'x-registry-namespace': 'team/app',
      'x-registry-reference': 'v1',
      // The client cannot speak for the registry by sending a registry header.
      'x-registry-username': 'alice',
      'x-registry-identity-id': 'alice-id',
      'x-registry-certificate-cn': 'robot',
      'x-registry-certificate-o': 'Platform,Ops',
      'x-request-id': 'req-1',
    });
    expect(hook.calls[0]?.cookie).toBeUndefined();
    expect(hook.calls[0]?.['x-registry-digest']).toBeUndefined();
  });

  it.each([
    [200, 'allow'],
    [204, 'allow'],
    [401, 'deny'],
    [403, 'deny'],
  ] as const)('caches a %i answer (%s) for cache_ttl', async (status, decision) => {
    const hook = await fakeWebhook();
    hook.status = status;
    const { webhook, metrics } = authorizer(
      `[auth.webhook.authz]\nurl = "${hook.url}"\ntimeout_ms = 1000\ncache_ttl = 60\n`,
    );
    expect(await webhook.authorize(identity, request, client)).toBe(decision);
    expect(await webhook.authorize(identity, request, client)).toBe(decision);
    expect(hook.calls).toHaveLength(1);
    // Another request context is another question.
    await webhook.authorize(identity, { ...request, reference: 'v2' }, client);
    expect(hook.calls).toHaveLength(2);
    const text = (await metrics.render()).body;
    expect(text).toContain(
      `webhook_authorization_requests_total{webhook="authz",result="cached_${decision}"} 1`,
    );
    expect(text).toContain(`webhook_authorization_requests_total{webhook="authz",result="${decision}"} 2`);
    expect(text).toContain('webhook_authorization_duration_seconds_count{webhook="authz"} 2');
  });

  it.each([[500], [404], [302]])(
    'denies on %i and asks again next time (fail-closed, not cached)',
    async (status) => {
      const hook = await fakeWebhook();
      hook.status = status;
      const { webhook } = authorizer(`[auth.webhook.authz]\nurl = "${hook.url}"\ntimeout_ms = 1000\n`);
      expect(await webhook.authorize(identity, request, client)).toBe('deny');
      hook.status = 200;
      expect(await webhook.authorize(identity, request, client)).toBe('allow');
      expect(hook.calls).toHaveLength(2);
    },
  );

  it('denies when the webhook does not answer within timeout_ms, without caching', async () => {
    const hook = await fakeWebhook();
    hook.delayMs = 1000;
    const { webhook, metrics } = authorizer(`[auth.webhook.authz]\nurl = "${hook.url}"\ntimeout_ms = 100\n`);
    const started = Date.now();
    expect(await webhook.authorize(identity, request, client)).toBe('deny');
    expect(Date.now() - started).toBeLessThan(900);
    expect((await metrics.render()).body).toContain(
      'webhook_authorization_requests_total{webhook="authz",result="error"} 1',
    );
    hook.delayMs = 0;
    expect(await webhook.authorize(identity, request, client)).toBe('allow');
  });

  it('denies when the webhook cannot be reached', async () => {
    const hook = await fakeWebhook();
    await hook.close();
    const { webhook } = authorizer(`[auth.webhook.authz]\nurl = "${hook.url}"\ntimeout_ms = 1000\n`);
    expect(await webhook.authorize(identity, request, client)).toBe('deny');
  });

  it('does not cache with cache_ttl = 0', async () => {
    const hook = await fakeWebhook();
    const { webhook } = authorizer(
      `[auth.webhook.authz]\nurl = "${hook.url}"\ntimeout_ms = 1000\ncache_ttl = 0\n`,
    );
    await webhook.authorize(identity, request, client);
    await webhook.authorize(identity, request, client);
    expect(hook.calls).toHaveLength(2);
  });

  it('talks mTLS to an HTTPS webhook with server_ca_bundle and a client certificate, and a bearer token', async () => {
    const ca = createTestCa();
    cleanups.push(() => ca.remove());
    const server = ca.issue('webhook', { subject: '/CN=localhost', usage: 'server' });
    const registry = ca.issue('registry', { subject: '/CN=angos-registry/O=Angos', usage: 'client' });
    const seen: Array<{ cn: string | undefined; authorization: string | undefined }> = [];
    const https = createHttpsServer(
      { cert: server.cert, key: server.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seen.push({ cn: peer.subject?.CN as string | undefined, authorization: req.headers.authorization });
        res.end();
      },
    );
    https.listen(0, '127.0.0.1');
    await once(https, 'listening');
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          https.closeAllConnections();
          https.close(() => resolve());
        }),
    );
    const { port } = https.address() as AddressInfo;
    const base = `[auth.webhook.authz]
url = "https://127.0.0.1:${port}/authorize"
timeout_ms = 2000
server_ca_bundle = "${ca.certPath}"
bearer_token = "hook-token"
`;
    const mtls = authorizer(
      `${base}client_certificate_bundle = "${registry.certPath}"\nclient_private_key = "${registry.keyPath}"\n`,
    );
    expect(await mtls.webhook.authorize(identity, request, client)).toBe('allow');
    expect(seen).toEqual([{ cn: 'angos-registry', authorization: 'Bearer hook-token' }]);
    // Without the client certificate the webhook's TLS refuses the connection: denied.
    const noCertificate = authorizer(base);
    expect(await noCertificate.webhook.authorize(identity, request, client)).toBe('deny');
    // Without the CA bundle the webhook's certificate does not verify: denied.
    const noCa = authorizer(base.replace(/server_ca_bundle = .*\n/, ''));
    expect(await noCa.webhook.authorize(identity, request, client)).toBe('deny');
  });

  it('reports unreadable TLS files as configuration issues', () => {
    const config = configOf(`[auth.webhook.authz]
url = "https://127.0.0.1:1/"
timeout_ms = 100
server_ca_bundle = "/nonexistent/ca.pem"
`);
    expect(checkAuthConfig(config)).toEqual([
      { path: 'auth.webhook.authz.server_ca_bundle', message: 'cannot read /nonexistent/ca.pem: ENOENT' },
    ]);
  });
});
