import { describe, expect, it } from 'vitest';
import { createMetrics } from '../src/index.js';

describe('createMetrics', () => {
  it('renders the HTTP metrics and process metrics in Prometheus text', async () => {
    const metrics = createMetrics();
    metrics.http.requestsTotal.inc({ method: 'GET', route: 'get-manifest', status: '200' });
    metrics.http.requestDuration.observe({ method: 'GET', route: 'get-manifest' }, 20);
    metrics.http.requestsInFlight.inc();

    const { contentType, body } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(body).toContain('http_requests_total{method="GET",route="get-manifest",status="200"} 1');
    // Milliseconds, as the metrics reference names it: 20 ms falls in the 25 ms bucket.
    expect(body).toContain('http_request_duration_ms_bucket{le="25",method="GET",route="get-manifest"} 1');
    expect(body).toContain('http_request_duration_ms_bucket{le="10",method="GET",route="get-manifest"} 0');
    expect(body).toMatch(/^http_requests_in_flight 1$/m);
    expect(body).toContain('process_cpu_seconds_total');
  });

  it('keeps registries of separate instances apart', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.http.requestsTotal.inc({ method: 'GET', route: 'blob', status: '200' });
    expect((await b.render()).body).not.toContain('route="blob"');
  });

  it('returns the existing metric when the same name is asked for twice', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const definition = { name: 'lock_retries_total', help: 'retries', labelNames: ['backend'] as const };
    const first = metrics.counter(definition);
    const second = metrics.counter(definition);
    expect(second).toBe(first);
    first.inc({ backend: 'memory' });
    second.inc({ backend: 'memory' });
    expect((await metrics.render()).body).toContain('lock_retries_total{backend="memory"} 2');
  });

  it('refuses the same name with another type', () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.counter({ name: 'lock_acquisition_duration_ms', help: 'x' });
    expect(() => metrics.histogram({ name: 'lock_acquisition_duration_ms', help: 'x' })).toThrow(
      /different type/,
    );
  });
});
