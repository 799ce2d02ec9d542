import { type Config, isPullThroughNamespace } from '@angos/config';
import { createInternalVerifier, getContext, type Handler, sendError, sendJson } from '@angos/http';
import { silentLogger } from '@angos/observability';
import { afterEach, describe, expect, it } from 'vitest';
import type { PullThroughRoute, Upstream } from '../src/index.js';
import {
  ALLOW_ALL,
  configOf,
  type GatewayUnderTest,
  listenUpstream,
  type Running,
  startGateway,
} from './helpers.js';

/**
 * The gateway's routing by namespace: the namespaces of repositories with upstreams go to the
 * pull-through cache service, everything else (catalog, /v2/, the jobs API included) to
 * registry-api. Trivial handlers stand in for both services: they report what they received.
 */

const started: Array<GatewayUnderTest | Running> = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.close()));
});

/** A service that answers with its name and what it was sent. */
function reporter(service: string): Handler {
  return (req, res) =>
    sendJson(res, 200, { service, method: req.method, url: req.url, context: getContext(req) });
}

interface Report {
  service: string;
  method: string;
  url: string;
  context: { clientIp: string };
}

const MIRRORS = `
[[repository."docker-io".upstream]]
url = "https://registry-1.docker.io"
[[repository."gh".upstream]]
url = "https://ghcr.io/acme"
`;

/** A gateway over an in-process registry-api and pull-through cache, with `toml` after MIRRORS. */
async function gateway(toml = ALLOW_ALL, config?: () => Config): Promise<GatewayUnderTest> {
  const fixed = configOf(`${toml}${MIRRORS}`);
  const current = config ?? (() => fixed);
  const cache: PullThroughRoute = {
    handles: (namespace) => isPullThroughNamespace(current(), namespace),
    upstream: { kind: 'in-process', handler: reporter('pull-through-cache') },
  };
  const running = await startGateway({ kind: 'in-process', handler: reporter('registry-api') }, current, {
    pullThroughCache: cache,
  });
  started.push(running);
  return running;
}

async function served(base: string, path: string, init?: RequestInit): Promise<Report> {
  const response = await fetch(`${base}${path}`, init);
  expect(response.status, path).toBe(200);
  return (await response.json()) as Report;
}

describe('gateway routing of pull-through namespaces', () => {
  it('sends the namespaces of repositories with upstreams to the cache, the rest to registry-api', async () => {
    const running = await gateway();
    for (const path of [
      '/v2/docker-io/library/alpine/manifests/latest',
      '/v2/docker-io/library/alpine/blobs/sha256:abc',
      '/v2/docker-io/library/alpine/tags/list',
      '/v2/docker-io/library/alpine/referrers/sha256:abc',
      '/v2/docker-io/manifests/v1',
      '/v2/gh/app/manifests/v1',
    ]) {
      expect((await served(running.url, path)).service, path).toBe('pull-through-cache');
    }
    for (const path of [
      '/v2/',
      '/v2/_catalog',
      '/v2/_ext/jobs/pending?queue=cache',
      // The extension API reads the store of every namespace, pull-through ones included.
      '/v2/_ext/docker-io/library/alpine/_tags',
      '/v2/_ext/docker-io/library/alpine/_revisions',
      '/v2/_ext/gh/app/_uploads',
      '/v2/_ext/docker-io/library/alpine/_tags?ns=docker.io',
      '/v2/_ext/_namespaces?parent=docker-io',
      '/v2/docker-iox/alpine/manifests/latest',
      '/v2/team/app/manifests/latest',
    ]) {
      expect((await served(running.url, path)).service, path).toBe('registry-api');
    }
  });

  it('follows the configuration per request: an upstream added by a reload routes the next request', async () => {
    let config = configOf(ALLOW_ALL);
    const running = await gateway(ALLOW_ALL, () => config);
    expect((await served(running.url, '/v2/team/app/manifests/v1')).service).toBe('registry-api');
    config = configOf(`${ALLOW_ALL}[[repository."team".upstream]]\nurl = "https://r.example.com"\n`);
    expect((await served(running.url, '/v2/team/app/manifests/v1')).service).toBe('pull-through-cache');
  });

  it.each([
    ['POST', '/v2/docker-io/x/blobs/uploads/'],
    ['POST', '/v2/docker-io/x/blobs/uploads/?mount=sha256:abc&from=team/app'],
    ['PATCH', '/v2/docker-io/x/blobs/uploads/some-id'],
    ['PUT', '/v2/docker-io/x/blobs/uploads/some-id?digest=sha256:abc'],
    ['GET', '/v2/docker-io/x/blobs/uploads/some-id'],
    ['DELETE', '/v2/docker-io/x/blobs/uploads/some-id'],
    ['PUT', '/v2/docker-io/x/manifests/v1'],
    ['DELETE', '/v2/docker-io/x/manifests/sha256:abc'],
    ['DELETE', '/v2/docker-io/x/blobs/sha256:abc'],
  ])('refuses %s %s with 405 UNSUPPORTED, whatever the access policy', async (method, path) => {
    // Writes are denied to everyone here: authorization would answer 401 and send clients to log in.
    const policy = `[global.access_policy]\ndefault = "allow"\nrules = ["request.action != 'get-manifest' && request.action != 'get-blob'"]\n`;
    for (const running of [await gateway(ALLOW_ALL), await gateway(policy)]) {
      const response = await fetch(`${running.url}${path}`, { method });
      expect(response.status).toBe(405);
      expect(await response.json()).toEqual({
        errors: [
          {
            code: 'UNSUPPORTED',
            message: 'a pull-through cache namespace is read-only',
            detail: { namespace: 'docker-io/x' },
          },
        ],
      });
    }
  });
});

describe("containerd's ?ns= (registry-host mirrors)", () => {
  it('serves /v2/<name>/…?ns=<registry> from the repository whose first upstream is that registry', async () => {
    const running = await gateway();
    const hub = await served(running.url, '/v2/library/alpine/manifests/latest?ns=docker.io');
    expect(hub).toMatchObject({
      service: 'pull-through-cache',
      url: '/v2/docker-io/library/alpine/manifests/latest',
    });
    const blob = await served(running.url, '/v2/library/alpine/blobs/sha256:abc?ns=registry-1.docker.io');
    expect(blob.url).toBe('/v2/docker-io/library/alpine/blobs/sha256:abc');
    const tags = await served(running.url, '/v2/acme/app/tags/list?n=10&ns=ghcr.io&last=a');
    expect(tags).toMatchObject({ service: 'pull-through-cache', url: '/v2/gh/app/tags/list?n=10&last=a' });
  });

  it('leaves a request for a registry no repository mirrors as it is', async () => {
    const running = await gateway();
    const other = await served(running.url, '/v2/library/alpine/manifests/latest?ns=quay.io');
    expect(other).toMatchObject({
      service: 'registry-api',
      url: '/v2/library/alpine/manifests/latest?ns=quay.io',
    });
    const outside = await served(running.url, '/v2/other/app/manifests/v1?ns=ghcr.io');
    expect(outside.service).toBe('registry-api');
  });

  it('authorizes the mapped namespace', async () => {
    const running = await gateway(`${ALLOW_ALL}[repository."docker-io".access_policy]\ndefault = "deny"\n`);
    const refused = await fetch(`${running.url}/v2/library/alpine/manifests/latest?ns=docker.io`);
    expect(refused.status).toBe(401);
    // The same name without ?ns= is a local namespace no repository policy covers.
    expect((await served(running.url, '/v2/library/alpine/manifests/latest')).service).toBe('registry-api');
  });

  it('refuses a push through the mirror path like a push to the mapped namespace', async () => {
    const running = await gateway();
    const response = await fetch(`${running.url}/v2/library/alpine/manifests/v1?ns=docker.io`, {
      method: 'PUT',
    });
    expect(response.status).toBe(405);
  });
});

describe('split deployment: the cache behind its own signed hop', () => {
  it('signs the mapped path, which the cache service verifies', async () => {
    const token = 'a-long-internal-token-for-tests';
    const verify = createInternalVerifier(token);
    const service =
      (name: string): Handler =>
      (req, res) => {
        try {
          verify(req);
        } catch (error) {
          sendError(res, error, silentLogger);
          return;
        }
        sendJson(res, 200, { service: name, url: req.url });
      };
    const api = await listenUpstream(service('registry-api'));
    const cacheService = await listenUpstream(service('pull-through-cache'));
    started.push(api, cacheService);
    const config = configOf(`${ALLOW_ALL}${MIRRORS}`);
    const http = (url: string): Upstream => ({ kind: 'http', url, internalToken: token });
    const running = await startGateway(http(api.url), () => config, {
      pullThroughCache: {
        handles: (namespace) => isPullThroughNamespace(config, namespace),
        upstream: http(cacheService.url),
      },
    });
    started.push(running);
    expect(await served(running.url, '/v2/library/alpine/manifests/latest?ns=docker.io')).toEqual({
      service: 'pull-through-cache',
      url: '/v2/docker-io/library/alpine/manifests/latest',
    });
    expect(await served(running.url, '/v2/team/app/tags/list')).toEqual({
      service: 'registry-api',
      url: '/v2/team/app/tags/list',
    });
  });
});
