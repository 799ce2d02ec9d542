import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  activeSpanIds,
  createLogger,
  inSpan,
  startTracing,
  type TracingHandle,
  tracesUrl,
  tracingActive,
} from '../src/index.js';

function capture(format: 'json' | 'text') {
  const destination = new PassThrough();
  let output = '';
  destination.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { logger: createLogger({ filter: 'info', format, destination }), output: () => output };
}

let tracing: TracingHandle | undefined;
afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
});

/** A port nothing listens on: exports fail at once (connection refused). */
const DEAD_COLLECTOR = 'http://127.0.0.1:9';

describe('tracing set-up', () => {
  it('adds /v1/traces to a base URL and keeps a URL with a path', () => {
    expect(tracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('http://collector:4318/')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('https://otlp.example/tenant/v1/traces')).toBe('https://otlp.example/tenant/v1/traces');
  });

  it('is off until started: spans are no-ops and log lines carry no ids', async () => {
    const { logger, output } = capture('json');
    expect(tracingActive()).toBe(false);
    await inSpan('work', {}, async () => logger.info('inside'));
    expect(activeSpanIds()).toBeUndefined();
    expect(JSON.parse(output())).not.toHaveProperty('trace_id');
  });

  it('puts the active span ids in JSON and text log lines', async () => {
    const json = capture('json');
    const text = capture('text');
    tracing = await startTracing({
      endpoint: DEAD_COLLECTOR,
      samplingRate: 1,
      serviceName: 'angos-test',
      logger: json.logger,
      shutdownTimeoutMs: 500,
    });
    const ids = await inSpan('work', {}, async () => {
      json.logger.info('inside', { trace_id: 'a field cannot overwrite it' });
      text.logger.info('inside');
      return activeSpanIds();
    });
    json.logger.info('outside');
    const [inside, outside] = json
      .output()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(inside).toMatchObject({
      trace_id: ids?.traceId,
      span_id: ids?.spanId,
      'field.trace_id': 'a field cannot overwrite it',
    });
    expect(outside).not.toHaveProperty('trace_id');
    expect(text.output()).toContain(`inside trace_id=${ids?.traceId} span_id=${ids?.spanId}`);
  });

  it('stops within its bound, with a warning, when the collector is down', async () => {
    const { logger, output } = capture('json');
    const handle = await startTracing({
      endpoint: DEAD_COLLECTOR,
      samplingRate: 1,
      serviceName: 'angos-test',
      logger,
      shutdownTimeoutMs: 300,
    });
    await inSpan('work', {}, async () => {});
    await handle.shutdown();
    expect(tracingActive()).toBe(false);
    expect(output()).toContain('spans not exported at shutdown');
  });

  it('starts nothing with OTEL_SDK_DISABLED=true', async () => {
    tracing = await startTracing({
      endpoint: DEAD_COLLECTOR,
      samplingRate: 1,
      serviceName: 'angos-test',
      logger: capture('json').logger,
      env: { OTEL_SDK_DISABLED: 'true' },
    });
    expect(tracingActive()).toBe(false);
  });
});
