/**
 * The event webhook scenario: push latency of `angos server` with an `async` webhook whose
 * endpoint answers, and with one that is down (connection refused, every delivery retried), next
 * to no webhook at all. Each push is a manifest `PUT` by a new tag (a `manifest.push` and a
 * `tag.create` event, in one delivery job written before the answer); several clients push at
 * once. The point: a dead endpoint must not move the p99.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  type AngosInstance,
  freePort,
  startAngos,
  startWebhookReceiver,
  type WebhookReceiver,
} from '@angos/test-support';

export const EVENTS_SCENARIO = 'event webhooks';

export type EndpointState = 'no webhook' | 'healthy' | 'down';

export interface EventFigures {
  readonly endpoint: EndpointState;
  readonly pushes: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Deliveries the receiver accepted by the end of the pushes (healthy only). */
  readonly delivered: number | undefined;
}

export interface EventBenchOptions {
  readonly pushes: number;
  readonly clients: number;
  readonly log?: (line: string) => void;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

function webhookConfig(url: string | undefined): string {
  if (url === undefined) return '';
  return [
    '[global]',
    'event_webhooks = ["bench"]',
    '[event_webhook.bench]',
    `url = ${JSON.stringify(url)}`,
    'policy = "async"',
    'token = "bench-secret"',
    'events = ["manifest.push", "tag.create"]',
    'timeout_ms = 1000',
    'max_retries = 3',
  ].join('\n');
}

async function pushAll(angos: AngosInstance, options: EventBenchOptions): Promise<number[]> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', n: randomBytes(8).toString('hex') }),
  );
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const upload = await fetch(`${angos.url}/v2/bench/events/blobs/uploads/?digest=${configDigest}`, {
    method: 'POST',
    body: config,
  });
  if (upload.status !== 201) throw new Error(`config upload answered ${upload.status}`);
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: options.clients }, async () => {
      while (next < options.pushes) {
        const i = next++;
        // A manifest of its own per push (an annotation), so each one stores something new.
        const body = JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: configDigest,
            size: config.length,
          },
          layers: [],
          annotations: { push: String(i) },
        });
        const started = performance.now();
        const response = await fetch(`${angos.url}/v2/bench/events/manifests/t${i}`, {
          method: 'PUT',
          body,
          headers: { 'content-type': OCI_MANIFEST },
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - started);
        if (response.status !== 201) throw new Error(`manifest push answered ${response.status}`);
      }
    }),
  );
  return latencies;
}

export async function benchEvents(options: EventBenchOptions): Promise<EventFigures[]> {
  const log = options.log ?? (() => {});
  const figures: EventFigures[] = [];
  for (const endpoint of ['no webhook', 'healthy', 'down'] as const) {
    let receiver: WebhookReceiver | undefined;
    let url: string | undefined;
    if (endpoint === 'healthy') {
      receiver = await startWebhookReceiver({ token: 'bench-secret' });
      url = receiver.url;
    } else if (endpoint === 'down') {
      // A port nobody listens on: every attempt is refused, and retried.
      url = `http://127.0.0.1:${await freePort()}/events`;
    }
    const angos = await startAngos({ mode: 'server', config: webhookConfig(url) });
    try {
      // Warm up: connections, caches, the first jobs.
      await pushAll(angos, { ...options, pushes: Math.min(50, options.pushes) });
      const latencies = await pushAll(angos, options);
      const result: EventFigures = {
        endpoint,
        pushes: latencies.length,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        delivered: receiver?.accepted().length,
      };
      log(`  ${endpoint}: p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms`);
      figures.push(result);
    } finally {
      await angos.stop();
      await receiver?.close();
    }
  }
  return figures;
}

export function eventsTable(figures: readonly EventFigures[]): string {
  const rows = figures.map(
    (f) =>
      `| ${f.endpoint} | ${f.pushes} | ${f.p50Ms.toFixed(1)} | ${f.p99Ms.toFixed(1)} | ${f.delivered ?? '—'} |`,
  );
  return [
    '| async endpoint | pushes | p50 ms | p99 ms | delivered during the run |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
