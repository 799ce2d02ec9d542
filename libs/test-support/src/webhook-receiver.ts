import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver took, as it arrived. */
export interface ReceivedDelivery {
  readonly headers: IncomingMessage['headers'];
  /** The exact bytes of the body, as text. */
  readonly body: string;
  /** The body parsed (an event: id, timestamp, kind, namespace…). */
  readonly event: Record<string, unknown>;
  /** Whether `X-Registry-Signature-256` is the HMAC-SHA256 of the body under the token; undefined without a token. */
  readonly signatureValid: boolean | undefined;
  /** The status it was answered. */
  readonly status: number;
}

/**
 * How the receiver answers: `ok` 200, `fail` 500, `hang` never (the sender's timeout ends it).
 * Every request is recorded, answered or not.
 */
export type ReceiverMode = 'ok' | 'fail' | 'hang';

export interface WebhookReceiver {
  readonly url: string;
  readonly port: number;
  /** Every request so far, in arrival order. */
  readonly deliveries: ReceivedDelivery[];
  /** The ones answered 2xx. */
  accepted(): ReceivedDelivery[];
  setMode(mode: ReceiverMode): void;
  /** Answers the next `count` requests 500, then goes back to the current mode. */
  failNext(count: number): void;
  /** Resolves once `predicate` holds for the recorded deliveries; rejects after `timeoutMs`. */
  waitFor(predicate: (deliveries: readonly ReceivedDelivery[]) => boolean, timeoutMs?: number): Promise<void>;
  /** Stops listening (connections dropped); the port can be listened on again with `start({ port })`. */
  close(): Promise<void>;
}

/**
 * A real HTTP endpoint for event webhooks on 127.0.0.1: checks each request's signature
 * independently of the registry's code, records it, and answers as told.
 */
export async function startWebhookReceiver(
  options: {
    token?: string;
    port?: number;
    mode?: ReceiverMode;
    /** Answers the first this many requests 500 (as `failNext`). */
    failFirst?: number;
    /**
     * Runs before each request is answered (the sender is still waiting): to look at the
     * registry while it delivers, as a receiver reacting to the event would.
     */
    beforeAnswer?: (delivery: ReceivedDelivery) => Promise<void>;
  } = {},
): Promise<WebhookReceiver> {
  let mode: ReceiverMode = options.mode ?? 'ok';
  let failures = options.failFirst ?? 0;
  const deliveries: ReceivedDelivery[] = [];
  const hanging = new Set<ServerResponse>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    let answer = mode;
    if (failures > 0) {
      failures--;
      answer = 'fail';
    }
    const status = answer === 'ok' ? 200 : answer === 'fail' ? 500 : 0;
    let event: Record<string, unknown> = {};
    try {
      event = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      // Recorded as is: the test looks at `body`.
    }
    const delivery: ReceivedDelivery = {
      headers: req.headers,
      body: raw.toString('utf8'),
      event,
      signatureValid: options.token === undefined ? undefined : signatureMatches(options.token, raw, req),
      status,
    };
    deliveries.push(delivery);
    await options.beforeAnswer?.(delivery);
    if (answer === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    res.writeHead(status, { 'Content-Length': 0 });
    res.end();
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/events`,
    port,
    deliveries,
    accepted: () => deliveries.filter((delivery) => delivery.status >= 200 && delivery.status < 300),
    setMode(next) {
      mode = next;
    },
    failNext(count) {
      failures = count;
    },
    async waitFor(predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(deliveries)) {
        if (Date.now() > deadline) {
          throw new Error(
            `webhook receiver: condition not met after ${timeoutMs} ms (${deliveries.length} deliveries)`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function signatureMatches(token: string, body: Buffer, req: IncomingMessage): boolean {
  const header = req.headers['x-registry-signature-256'];
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', token).update(body).digest('hex')}`);
  const received = Buffer.from(header);
  return expected.length === received.length && timingSafeEqual(expected, received);
}
