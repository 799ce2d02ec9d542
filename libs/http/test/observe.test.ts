import { createMetrics } from '@angos/observability';
import { afterEach, describe, expect, it } from 'vitest';
import { healthHandler, routeLabel, sendText, withObservability } from '../src/index.js';
import { captureLogger, type Running, serve } from './helpers.js';

let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

describe('routeLabel', () => {
  const none = new URLSearchParams();
  it.each([
    ['GET', '/v2/', 'get-api-version'],
    ['GET', '/v2/team/app/manifests/latest', 'get-manifest'],
    ['HEAD', '/v2/team/app/manifests/latest', 'get-manifest'],
    ['PUT', '/v2/team/app/manifests/latest', 'put-manifest'],
    ['DELETE', '/v2/team/app/manifests/latest', 'delete-manifest'],
    ['GET', '/v2/team/app/blobs/sha256:abc', 'get-blob'],
    ['DELETE', '/v2/team/app/blobs/sha256:abc', 'delete-blob'],
    ['POST', '/v2/team/app/blobs/uploads/', 'start-upload'],
    ['GET', '/v2/team/app/blobs/uploads/1234', 'get-upload'],
    ['PATCH', '/v2/team/app/blobs/uploads/1234', 'update-upload'],
    ['PUT', '/v2/team/app/blobs/uploads/1234', 'complete-upload'],
    ['DELETE', '/v2/team/app/blobs/uploads/1234', 'cancel-upload'],
    ['GET', '/v2/team/app/tags/list', 'list-tags'],
    ['GET', '/v2/team/app/referrers/sha256:abc', 'get-referrers'],
    ['GET', '/v2/_catalog', 'list-catalog'],
    ['GET', '/v2/_ext/jobs/pending', 'list-pending-jobs'],
    ['GET', '/v2/_ext/jobs/failed', 'list-failed-jobs'],
    ['POST', '/v2/_ext/jobs/failed/cache/1/retry', 'retry-job'],
    ['DELETE', '/v2/_ext/jobs/pending/cache/1', 'delete-job'],
    ['GET', '/healthz', 'healthz'],
    ['GET', '/readyz', 'readyz'],
    ['GET', '/metrics', 'metrics'],
    ['GET', '/favicon.ico', 'unknown'],
    ['GET', '/v2/only-a-name', 'unknown'],
    ['GET', '/v2/_ext/nothing-here', 'unknown'],
    ['POST', '/v2/team/app/manifests/latest', 'unknown'],
  ])('%s %s → %s', (method, path, label) => {
    expect(routeLabel(path, method, none)).toBe(label);
  });

  it("names the web UI's paths by their action while `[ui] enabled`, and only GET and HEAD of them", () => {
    for (const path of ['/', '/repositories/team/app', '/assets/index-abc.js', '/favicon.ico']) {
      expect(routeLabel(path, 'GET', none, { webUi: true })).toBe('ui-asset');
      expect(routeLabel(path, 'HEAD', none, { webUi: true })).toBe('ui-asset');
      expect(routeLabel(path, 'POST', none, { webUi: true })).toBe('unknown');
      expect(routeLabel(path, 'GET', none, { webUi: false })).toBe('unknown');
    }
    // The API and the service endpoints are theirs whether the UI is on or not.
    expect(routeLabel('/v2/only-a-name', 'GET', none, { webUi: true })).toBe('unknown');
    expect(routeLabel('/v2', 'GET', none, { webUi: true })).toBe('get-api-version');
    expect(routeLabel('/metrics', 'GET', none, { webUi: true })).toBe('metrics');
  });

  it('names a mount by its own action', () => {
    expect(routeLabel('/v2/team/app/blobs/uploads/', 'POST', new URLSearchParams('mount=sha256:abc'))).toBe(
      'mount-blob',
    );
  });
});

describe('withObservability and healthHandler', () => {
  it('counts requests by method, route action and status and exposes them on /metrics', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { logger, records } = captureLogger('debug');
    const app = withObservability(
      healthHandler((_req, res) => sendText(res, 404, 'nope'), { metrics, logger }),
      { metrics, logger, service: 'test' },
    );
    running = await serve(app, logger);
    await (await fetch(`${running.url}/v2/a/manifests/v1`)).text();
    await (await fetch(`${running.url}/v2/a/manifests/v2`, { method: 'HEAD' })).text();
    await (
      await fetch(`${running.url}/whatever/path`, { method: 'BREW' }).catch(() => new Response())
    ).text();
    // A method the route does not allow performs no action.
    await (await fetch(`${running.url}/v2/a/manifests/v1`, { method: 'POST' })).text();

    const body = await (await fetch(`${running.url}/metrics`)).text();
    expect(body).toContain('http_requests_total{method="GET",route="get-manifest",status="404"} 1');
    expect(body).toContain('http_requests_total{method="HEAD",route="get-manifest",status="404"} 1');
    expect(body).toContain('http_requests_total{method="POST",route="unknown",status="404"} 1');
    expect(body).toContain('http_request_duration_ms_count{method="GET",route="get-manifest"} 1');
    expect(body).not.toContain('/v2/a/manifests');
    // The /metrics request itself is still in flight while it renders; the gauge has no labels.
    expect(body).toMatch(/^http_requests_in_flight 1$/m);

    const access = (await records()).filter((r) => r['target'] === 'angos::access');
    expect(access[0]).toMatchObject({
      level: 'INFO',
      message: 'request',
      service: 'test',
      method: 'GET',
      path: '/v2/a/manifests/v1',
      status: 404,
    });
  });

  it("counts the web UI's paths as `ui-asset` while the live configuration enables it", async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { logger } = captureLogger('off');
    let enabled = false;
    const app = withObservability(
      healthHandler((_req, res) => sendText(res, 200, 'page'), { metrics, logger }),
      { metrics, logger, service: 'test', webUi: () => enabled },
    );
    running = await serve(app, logger);
    await (await fetch(`${running.url}/repositories`)).text();
    enabled = true; // a reload turned the UI on
    await (await fetch(`${running.url}/repositories`)).text();
    await (await fetch(`${running.url}/assets/app.js`, { method: 'HEAD' })).text();

    const body = await (await fetch(`${running.url}/metrics`)).text();
    expect(body).toContain('http_requests_total{method="GET",route="unknown",status="200"} 1');
    expect(body).toContain('http_requests_total{method="GET",route="ui-asset",status="200"} 1');
    expect(body).toContain('http_requests_total{method="HEAD",route="ui-asset",status="200"} 1');
  });

  it('records a request the client abandoned as 499', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { logger } = captureLogger('off');
    let abandoned!: () => void;
    const gone = new Promise<void>((resolve) => {
      abandoned = resolve;
    });
    running = await serve(
      withObservability(
        (_req, res) => {
          res.on('close', () => abandoned());
        },
        { metrics, logger, service: 'test' },
      ),
      logger,
    );
    const controller = new AbortController();
    const pending = fetch(`${running.url}/v2/a/blobs/sha256:x`, { signal: controller.signal }).catch(
      () => undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    await pending;
    await gone;
    const { body } = await metrics.render();
    expect(body).toContain('http_requests_total{method="GET",route="get-blob",status="499"} 1');
    expect(body).toMatch(/^http_requests_in_flight 0$/m);
  });

  it('serves /healthz and /readyz, 503 when not ready or when the check throws', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const { logger } = captureLogger('off');
    let state: 'ready' | 'not-ready' | 'broken' = 'ready';
    running = await serve(
      healthHandler((_req, res) => sendText(res, 418, 'next'), {
        metrics,
        logger,
        ready: () => {
          if (state === 'broken') throw new Error('check failed');
          return state === 'ready';
        },
      }),
      logger,
    );
    expect(await (await fetch(`${running.url}/healthz`)).text()).toBe('ok\n');
    expect((await fetch(`${running.url}/readyz`)).status).toBe(200);
    state = 'not-ready';
    expect((await fetch(`${running.url}/readyz`)).status).toBe(503);
    state = 'broken';
    expect((await fetch(`${running.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${running.url}/v2/`)).status).toBe(418);
    const post = await fetch(`${running.url}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});
