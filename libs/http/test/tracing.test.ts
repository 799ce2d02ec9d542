import { createMetrics, startTracing, type TracingHandle } from '@angos/observability';
import { type OtlpReceiver, startOtlpReceiver } from '@angos/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { sendText, withObservability } from '../src/index.js';
import { captureLogger, type Running, serve } from './helpers.js';

/**
 * The server span of withObservability and log correlation, with the real SDK exporting to a real
 * OTLP receiver (protobuf decoded with the generated opentelemetry-proto code).
 */

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

let running: Running | undefined;
let receiver: OtlpReceiver | undefined;
let tracing: TracingHandle | undefined;
afterEach(async () => {
  await running?.close();
  await tracing?.shutdown();
  await receiver?.close();
  running = undefined;
  tracing = undefined;
  receiver = undefined;
});

async function tracedServer(samplingRate: number) {
  receiver = await startOtlpReceiver();
  const { logger, records } = captureLogger('debug');
  tracing = await startTracing({ endpoint: receiver.url, samplingRate, serviceName: 'angos-test', logger });
  const metrics = createMetrics({ defaultMetrics: false });
  const app = withObservability(
    async (_req, res) => {
      await new Promise((resolve) => setImmediate(resolve));
      logger.child('registry').info('inside the request');
      sendText(res, 404, 'nope');
    },
    { metrics, logger, service: 'test' },
  );
  running = await serve(app, logger);
  return { records, receiver, tracing };
}

describe('tracing of requests', () => {
  it('continues a client traceparent in a server span named by route, and puts its ids in every log line', async () => {
    const { records, receiver, tracing } = await tracedServer(1);
    const response = await fetch(`${running?.url}/v2/team/app/manifests/v1`, {
      headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    });
    await response.text();
    await new Promise((resolve) => setImmediate(resolve));
    await tracing.forceFlush();

    const server = receiver.spans().find((span) => span.kind === 2);
    expect(server).toMatchObject({
      traceId: CLIENT_TRACE,
      parentSpanId: CLIENT_SPAN,
      name: 'get-manifest',
      service: 'angos-test',
      attributes: expect.objectContaining({
        'http.request.method': 'GET',
        'http.route': 'get-manifest',
        'http.response.status_code': 404,
      }),
    });
    const lines = (await records()).filter(
      (record) => record['message'] === 'inside the request' || record['target'] === 'angos::access',
    );
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).toMatchObject({ trace_id: CLIENT_TRACE, span_id: server?.spanId });
    }
    expect(receiver.refused).toBe(0);
  });

  it('starts a new trace for a request without traceparent, none for probes, and logs without ids outside requests', async () => {
    const { records, receiver, tracing } = await tracedServer(1);
    await (await fetch(`${running?.url}/healthz`)).text(); // probes and scrapes are not traced
    await (await fetch(`${running?.url}/metrics`)).text();
    await (await fetch(`${running?.url}/v2/`)).text();
    await tracing.forceFlush();
    expect(receiver.spans().map((span) => span.name)).toEqual(['get-api-version']);
    const [server] = receiver.spans();
    expect(server?.parentSpanId).toBe('');
    expect(server?.traceId).toMatch(/^[0-9a-f]{32}$/);
    const startup = (await records()).filter((record) => record['message'] === 'listening');
    for (const line of startup) expect(line['trace_id']).toBeUndefined();
  });

  it('exports nothing at sampling_rate 0', async () => {
    const { receiver, tracing } = await tracedServer(0);
    for (let i = 0; i < 5; i++) await (await fetch(`${running?.url}/v2/`)).text();
    await tracing.forceFlush();
    expect(receiver.exports).toBe(0);
    expect(receiver.spans()).toEqual([]);
  });
});
