import { createServer, type IncomingMessage, request } from 'node:http';
import { type Listening, listenOnFreePort } from '@angos/test-support';

/** A request the proxy passed on to S3 and whose answer it keeps from the client for now. */
export interface HeldReply {
  /** The status S3 answered: the request has taken effect there. */
  readonly status: number;
  /** Sends the answer on to the client (a client that gave up meanwhile gets nothing). */
  deliver(): void;
}

/**
 * An HTTP proxy in front of S3 that passes every request on at once but keeps back the answer
 * to the requests `hold` selects until the test delivers it: the write has landed on S3 while
 * its client still waits, as when a slow answer runs past a deadline. Headers go through
 * untouched, Host included, so SigV4 signatures made for the proxy's address still verify.
 */
export class HeldReplyProxy {
  readonly #upstream: URL;
  readonly #waiting: ((reply: HeldReply) => void)[] = [];
  readonly #arrived: HeldReply[] = [];
  readonly #pending = new Set<() => void>();
  #listening: Listening | undefined;

  constructor(
    upstream: string,
    private readonly hold: (request: IncomingMessage) => boolean,
  ) {
    this.#upstream = new URL(upstream);
  }

  get url(): string {
    if (!this.#listening) throw new Error('proxy not started');
    return this.#listening.url;
  }

  async start(): Promise<void> {
    const server = createServer((incoming, outgoing) => {
      const held = this.hold(incoming);
      const forwarded = request(
        {
          host: this.#upstream.hostname,
          port: this.#upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (answer) => {
          const chunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => chunks.push(chunk));
          answer.on('end', () => {
            const send = () => {
              this.#pending.delete(send);
              if (outgoing.destroyed) return;
              outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
              outgoing.end(Buffer.concat(chunks));
            };
            if (!held) {
              send();
              return;
            }
            this.#pending.add(send);
            this.#arrive({ status: answer.statusCode ?? 0, deliver: send });
          });
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      incoming.pipe(forwarded);
    });
    this.#listening = await listenOnFreePort(server);
  }

  /** The next held answer, once S3 has given it. */
  nextHeld(): Promise<HeldReply> {
    const arrived = this.#arrived.shift();
    if (arrived) return Promise.resolve(arrived);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Delivers every answer still held, then stops. */
  async stop(): Promise<void> {
    for (const send of [...this.#pending]) send();
    await this.#listening?.close();
  }

  #arrive(reply: HeldReply): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(reply);
    else this.#arrived.push(reply);
  }
}
