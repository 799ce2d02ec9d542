import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback HTTP proxy in front of an S3 endpoint that counts the requests passing through. */
export interface CountingProxy {
  /** Point the S3 client here. */
  readonly endpoint: string;
  /** ListObjectsV2 requests so far. */
  readonly lists: number;
  /** Every request so far. */
  readonly requests: number;
  close(): Promise<void>;
}

/**
 * Forwards every request unchanged, Host header included, so that SigV4 signatures made for the
 * proxy's address still verify (path-style requests; RGW does not look at the host beyond that).
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  let lists = 0;
  let requests = 0;
  const server = createServer((incoming, outgoing) => {
    requests++;
    const url = incoming.url ?? '/';
    if (incoming.method === 'GET' && /[?&]list-type=2(&|$)/.test(url)) lists++;
    const forwarded = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: url,
        headers: incoming.headers,
      },
      (reply) => {
        outgoing.writeHead(reply.statusCode ?? 502, reply.headers);
        reply.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get lists() {
      return lists;
    },
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
