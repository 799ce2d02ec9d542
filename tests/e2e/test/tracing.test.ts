import {
  eventually,
  mkOci,
  OciLayout,
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from '@angos/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Deployment, skipWithoutClients, useRegistry } from './fixture.js';

/**
 * Tracing across the split pair, exported by the real SDK of each process (gateway and
 * registry-api are separate processes) to a real OTLP receiver that decodes the protobuf.
 */

const SPLIT: Deployment = { mode: 'split', storage: 'fs', label: 'split on fs' };
/** Batches go out every 100 ms instead of 5 s: the test waits for them. */
const FAST_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: '100' };
const SERVER = 2;

const tracingTable = (receiver: OtlpReceiver | undefined, rate: number) =>
  `[observability.tracing]\nendpoint = "${receiver?.url}"\nsampling_rate = ${rate}\n`;

function spansOfTrace(receiver: OtlpReceiver, traceId: string): ReceivedSpan[] {
  return receiver.spans().filter((span) => span.traceId === traceId);
}

describe.skipIf(skipWithoutClients('skopeo'))('tracing through the split pair', () => {
  let receiver: OtlpReceiver | undefined;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });
  const r = useRegistry(SPLIT, ['skopeo'], {
    config: () => tracingTable(receiver, 1),
    env: FAST_EXPORT,
  });

  it('a skopeo push yields traces spanning gateway and registry-api, with storage and lock spans', async () => {
    const src = new OciLayout(r.path('src'));
    await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed() });
    await r.ok('skopeo', 'copy', '--dest-tls-verify=false', `oci:${src.dir}:v1`, r.ref('traced/img', 'v1'));

    const received = receiver as OtlpReceiver;
    let manifestPut: ReceivedSpan | undefined;
    await eventually(
      () => {
        manifestPut = received
          .spans()
          .find((span) => span.service === 'angos-gateway' && span.name === 'put-manifest');
        if (manifestPut === undefined) return false;
        return spansOfTrace(received, manifestPut.traceId).some((span) => span.name === 'lock');
      },
      { timeoutMs: 20_000, what: 'the spans of the manifest push' },
    );
    const gateway = manifestPut as ReceivedSpan;
    const trace = spansOfTrace(received, gateway.traceId);
    expect(gateway).toMatchObject({ kind: SERVER, parentSpanId: '' });
    // registry-api's server span continues the gateway's (traceparent on the signed hop).
    const api = trace.find((span) => span.service === 'angos-registry-api' && span.kind === SERVER);
    expect(api).toMatchObject({ name: 'put-manifest', parentSpanId: gateway.spanId });
    const storage = trace.filter((span) => span.name.startsWith('storage '));
    expect(storage.length).toBeGreaterThan(0);
    for (const span of storage) {
      expect(span.service).toBe('angos-registry-api');
      expect(span.attributes).toMatchObject({
        'angos.storage.backend': 'fs',
        'angos.storage.operation': expect.any(String),
        'angos.storage.key_kind': expect.any(String),
      });
    }
    expect(storage.map((span) => span.attributes['angos.storage.key_kind'])).toContain('tag_link');
    const lock = trace.find((span) => span.name === 'lock');
    expect(lock?.attributes['angos.lock.keys']).toEqual(expect.arrayContaining([expect.any(String)]));
    expect(received.refused).toBe(0);

    // Blob uploads are traced as well, their storage spans under registry-api's.
    const upload = received
      .spans()
      .find((span) => span.service === 'angos-registry-api' && span.name === 'complete-upload');
    expect(upload).toBeDefined();
  });

  it("continues a client's traceparent through the gateway into registry-api", async () => {
    const clientTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpan = '00f067aa0ba902b7';
    const response = await fetch(`${r.angos.url}/v2/traced/img/manifests/v1`, {
      headers: {
        traceparent: `00-${clientTrace}-${clientSpan}-01`,
        accept: 'application/vnd.oci.image.manifest.v1+json',
      },
    });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    const received = receiver as OtlpReceiver;
    await eventually(
      () => {
        const services = new Set(spansOfTrace(received, clientTrace).map((span) => span.service));
        return services.has('angos-gateway') && services.has('angos-registry-api');
      },
      { timeoutMs: 20_000, what: "the client's trace in gateway and registry-api" },
    );
    const trace = spansOfTrace(received, clientTrace);
    const gateway = trace.find((span) => span.service === 'angos-gateway' && span.kind === SERVER);
    expect(gateway).toMatchObject({ name: 'get-manifest', parentSpanId: clientSpan });
    const api = trace.find((span) => span.service === 'angos-registry-api' && span.kind === SERVER);
    expect(api?.parentSpanId).toBe(gateway?.spanId);
    // The access log of each process names the trace.
    expect(r.angos.logs()).toContain(`"trace_id":"${clientTrace}"`);
  });
});

describe.skipIf(skipWithoutClients('skopeo'))('tracing at sampling_rate 0', () => {
  let receiver: OtlpReceiver | undefined;
  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });
  const r = useRegistry(SPLIT, ['skopeo'], {
    config: () => tracingTable(receiver, 0),
    env: FAST_EXPORT,
  });

  it('exports nothing', async () => {
    const src = new OciLayout(r.path('src'));
    await mkOci(src.dir, 'v1', ['linux/amd64'], { seed: r.seed() });
    await r.ok('skopeo', 'copy', '--dest-tls-verify=false', `oci:${src.dir}:v1`, r.ref('untraced/img', 'v1'));
    // Stopping flushes whatever the exporters hold: after it, nothing more can arrive.
    await r.angos.stop();
    expect(receiver?.exports).toBe(0);
    expect(receiver?.refused).toBe(0);
  });
});
