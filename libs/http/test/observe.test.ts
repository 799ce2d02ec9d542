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
  it.each([
    ['/v2/', 'apiVersion'],
    ['/v2/team/app/manifests/latest', 'manifest'],
    ['/v2/team/app/blobs/sha256:abc', 'blob'],
    ['/v2/team/app/blobs/uploads/', 'uploads'],
    ['/v2/team/app/blobs/uploads/1234', 'upload'],
    ['/v2/_catalog', 'catalog'],
    ['/healthz', 'health'],
    ['/readyz', 'health'],
    ['/metrics', 'metrics'],
    ['/favicon.ico', 'other'],
    ['/v2/only-a-name', 'other'],
  ])('%s → %s', (path, label) => {
    expect(routeLabel(path)).toBe(label);
  });
});

describe('withObservability and healthHandler', () => {
  it('counts requests by method, route kind and status and exposes them on /metrics', async () => {
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

    const body = await (await fetch(`${running.url}/metrics`)).text();
    expect(body).toContain('http_requests_total{method="GET",route="manifest",status="404"} 1');
    expect(body).toContain('http_requests_total{method="HEAD",route="manifest",status="404"} 1');
    expect(body).toContain('http_request_duration_seconds_count{method="GET",route="manifest"} 1');
    expect(body).not.toContain('/v2/a/manifests');
    // The /metrics request itself is still in flight while it renders.
    expect(body).toContain('http_requests_in_flight{route="metrics"} 1');
    expect(body).toMatch(/http_requests_in_flight\{route="manifest"\} 0/);

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
    expect(body).toContain('http_requests_total{method="GET",route="blob",status="499"} 1');
    expect(body).toContain('http_requests_in_flight{route="blob"} 0');
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
