import { instrumentLocks, MemoryLockManager } from '@angos/lock';
import { createMetrics, inSpan, startTracing, type TracingHandle } from '@angos/observability';
import { createMetadataStore, instrumentMetadataStore } from '@angos/storage';
import { captureLogger, eventually, type OtlpReceiver, startOtlpReceiver } from '@angos/test-support';
import { trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { JobQueue, JobRunner } from '../src/index.js';

/**
 * A job runs in a trace of its own, linked to the trace of the request that enqueued it (through
 * the envelope), with the storage and lock spans of its run inside; exported by the real SDK to a
 * real OTLP receiver.
 */

let receiver: OtlpReceiver | undefined;
let tracing: TracingHandle | undefined;
let runner: JobRunner | undefined;
afterEach(async () => {
  await runner?.stop(0);
  await tracing?.shutdown();
  await receiver?.close();
  runner = undefined;
  tracing = undefined;
  receiver = undefined;
});

describe('job tracing', () => {
  it("links the job's span to the enqueuing request's span, and logs the job's trace id", async () => {
    receiver = await startOtlpReceiver();
    const { logger, records } = captureLogger('info');
    tracing = await startTracing({
      endpoint: receiver.url,
      samplingRate: 1,
      serviceName: 'angos-worker',
      logger,
    });
    const metrics = createMetrics({ defaultMetrics: false });
    const store = instrumentMetadataStore(createMetadataStore({ kind: 'memory' }), metrics);
    const locks = instrumentLocks(new MemoryLockManager(), metrics);
    const queue = new JobQueue({ store });

    const request = await inSpan('PUT manifest', {}, async () => {
      await queue.enqueue('cache', 'fill', 'fill:team/app', { n: 1 });
      return trace.getActiveSpan()?.spanContext();
    });
    expect(request).toBeDefined();

    let ran = false;
    runner = new JobRunner({
      queue,
      locks,
      pools: [{ name: 'cache', concurrency: 1 }],
      handlers: [
        {
          kind: 'fill',
          async run() {
            logger.info('filling');
            ran = true;
          },
        },
      ],
      pollIntervalMs: 20,
      logger,
    });
    runner.start();
    await eventually(() => ran, { timeoutMs: 20_000, what: 'the job run' });
    await runner.stop(1000);
    await tracing.forceFlush();

    const spans = receiver.spans();
    const job = spans.find((span) => span.name === 'job fill');
    expect(job).toMatchObject({
      parentSpanId: '',
      kind: 5,
      links: [{ traceId: request?.traceId, spanId: request?.spanId }],
      attributes: expect.objectContaining({ 'angos.job.queue': 'cache', 'angos.job.kind': 'fill' }),
    });
    expect(job?.traceId).not.toBe(request?.traceId);
    const inJob = spans.filter((span) => span.traceId === job?.traceId && span !== job);
    expect(inJob.find((span) => span.name === 'lock')?.attributes).toMatchObject({
      'angos.lock.backend': 'memory',
      'angos.lock.keys': ['fill:team/app'],
    });
    expect(inJob.find((span) => span.name.startsWith('storage '))?.attributes).toMatchObject({
      'angos.storage.backend': 'memory',
      'angos.storage.key_kind': expect.stringMatching(/^job_/),
    });
    const filling = records().find((record) => record['message'] === 'filling');
    expect(filling?.['trace_id']).toBe(job?.traceId);
  });
});
