import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { type Listening, listenOnFreePort } from './listen.js';

/**
 * A real OTLP/HTTP trace receiver for tests: accepts `POST /v1/traces` with
 * `application/x-protobuf` and decodes each body as the ExportTraceServiceRequest it is, with the
 * code opentelemetry-proto generates (protobufjs, as shipped in @opentelemetry/otlp-transformer
 * 0.208: the newer releases encode by hand and cannot decode). What an exporter sends that is not
 * a valid message is answered 400 and counted, so a test sees it.
 */

interface ProtoMessage {
  decode(bytes: Uint8Array): unknown;
}

interface GeneratedRoot {
  readonly opentelemetry: {
    readonly proto: {
      readonly collector: {
        readonly trace: { readonly v1: { readonly ExportTraceServiceRequest: ProtoMessage } };
      };
    };
  };
}

let loadedRequestMessage: ProtoMessage | undefined;

/** The generated message, loaded at its first use: not by every importer of this package. */
function exportTraceServiceRequest(): ProtoMessage {
  loadedRequestMessage ??= (
    createRequire(import.meta.url)('otlp-transformer-protobuf/build/src/generated/root.js') as GeneratedRoot
  ).opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
  return loadedRequestMessage;
}

/** One decoded span, with the ids in hex and attribute values as plain JavaScript values. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  /** `service.name` of the resource that sent it. */
  readonly service: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
  /** OTLP's StatusCode: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
}

export interface OtlpReceiver {
  /** The base URL, as `[observability.tracing] endpoint` takes it. */
  readonly url: string;
  /** Every span received so far, in arrival order. */
  spans(): ReceivedSpan[];
  /** Export requests received (valid ones). */
  readonly exports: number;
  /** Requests refused: wrong path, method or content type, or a body that is not the message. */
  readonly refused: number;
  close(): Promise<void>;
}

interface WireValue {
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: number | { toNumber(): number } | null;
  doubleValue?: number | null;
  arrayValue?: { values?: WireValue[] } | null;
}

interface WireKeyValue {
  key: string;
  value?: WireValue | null;
}

interface WireSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId?: Uint8Array | null;
  name: string;
  kind?: number | null;
  attributes?: WireKeyValue[];
  links?: { traceId: Uint8Array; spanId: Uint8Array }[];
  status?: { code?: number | null } | null;
}

interface WireRequest {
  resourceSpans?: {
    resource?: { attributes?: WireKeyValue[] } | null;
    scopeSpans?: { spans?: WireSpan[] }[];
  }[];
}

function plainValue(value: WireValue | null | undefined): unknown {
  if (value === null || value === undefined) return undefined;
  if (value.stringValue !== null && value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== null && value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== null && value.intValue !== undefined) {
    return typeof value.intValue === 'number' ? value.intValue : value.intValue.toNumber();
  }
  if (value.doubleValue !== null && value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(plainValue);
  return undefined;
}

function attributesOf(list: readonly WireKeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, plainValue(value)]));
}

const hex = (bytes: Uint8Array | null | undefined): string =>
  bytes === null || bytes === undefined ? '' : Buffer.from(bytes).toString('hex');

/** The spans of one decoded ExportTraceServiceRequest. */
export function spansOf(request: unknown): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of (request as WireRequest).resourceSpans ?? []) {
    const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name'] ?? '');
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId),
          name: span.name,
          kind: span.kind ?? 0,
          service,
          attributes: attributesOf(span.attributes),
          links: (span.links ?? []).map((link) => ({ traceId: hex(link.traceId), spanId: hex(link.spanId) })),
          statusCode: span.status?.code ?? 0,
        });
      }
    }
  }
  return spans;
}

/** Decodes a protobuf ExportTraceServiceRequest (throws on anything else). */
export function decodeExportTraceRequest(body: Uint8Array): ReceivedSpan[] {
  return spansOf(exportTraceServiceRequest().decode(body));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Starts a receiver on 127.0.0.1 and a free port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  let exports = 0;
  let refused = 0;
  const refuse = (res: ServerResponse, status: number) => {
    refused++;
    res.writeHead(status).end();
  };
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      if (req.method !== 'POST' || req.url !== '/v1/traces') return refuse(res, 404);
      if (req.headers['content-type'] !== 'application/x-protobuf') return refuse(res, 415);
      let spans: ReceivedSpan[];
      try {
        spans = decodeExportTraceRequest(body);
      } catch {
        return refuse(res, 400);
      }
      exports++;
      received.push(...spans);
      // An empty ExportTraceServiceResponse: full success, encoded as zero bytes.
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
    })().catch(() => res.destroy());
  });
  const listening: Listening = await listenOnFreePort(server);
  return {
    url: listening.url,
    spans: () => [...received],
    get exports() {
      return exports;
    },
    get refused() {
      return refused;
    },
    close: () => listening.close(),
  };
}
