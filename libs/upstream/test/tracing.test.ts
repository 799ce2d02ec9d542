import type { IncomingHttpHeaders } from 'node:http';
import { inSpan, silentLogger, startTracing, type TracingHandle } from '@angos/observability';
import { type Listening, type OtlpReceiver, startOtlpReceiver } from '@angos/test-support';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { clientFor, startServer } from './helpers.js';

/**
 * Upstream (and, through the same transport, replication downstream) calls made in a traced
 * request or job: a client span each, its `traceparent` sent to the registry called.
 */

let upstream: Listening | undefined;
let receiver: OtlpReceiver | undefined;
let tracing: TracingHandle | undefined;
afterEach(async () => {
  await tracing?.shutdown();
  await upstream?.close();
  await receiver?.close();
  tracing = upstream = receiver = undefined;
});

describe('upstream calls under tracing', () => {
  it('send the traceparent of a client span that is a child of the active span', async () => {
    const seen: IncomingHttpHeaders[] = [];
    upstream = await startServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[]}');
    });
    receiver = await startOtlpReceiver();
    tracing = await startTracing({
      endpoint: receiver.url,
      samplingRate: 1,
      serviceName: 'angos-pull-through-cache',
      logger: silentLogger,
    });
    const client = clientFor(upstream.url);
    const parent = await inSpan('GET manifest', {}, async () => {
      await client.headManifest('mirror/app', 'v1').catch(() => undefined);
      return trace.getActiveSpan()?.spanContext();
    });
    client.close();
    await tracing.forceFlush();

    const call = receiver.spans().find((span) => span.kind === 3);
    expect(call).toMatchObject({
      traceId: parent?.traceId,
      parentSpanId: parent?.spanId,
      name: `HEAD ${new URL(upstream.url).host}`,
      attributes: expect.objectContaining({
        'http.request.method': 'HEAD',
        'http.response.status_code': 404,
      }),
    });
    expect(seen[0]?.['traceparent']).toBe(`00-${parent?.traceId}-${call?.spanId}-01`);
  });
});
