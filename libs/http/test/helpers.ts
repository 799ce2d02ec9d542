import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '@angos/observability';
import { createHttpServer, type Handler } from '../src/index.js';

/** A JSON logger into memory; `records()` lets pending writes land first. */
export function captureLogger(filter = 'debug'): {
  logger: Logger;
  records(): Promise<Record<string, unknown>[]>;
} {
  const destination = new PassThrough();
  let output = '';
  destination.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  return {
    logger: createLogger({ filter, format: 'json', destination }),
    async records() {
      await new Promise((resolve) => setImmediate(resolve));
      return output
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

export interface Running {
  readonly server: Server;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 with a free port. */
export async function listen(server: Server): Promise<Running> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function serve(handler: Handler, logger: Logger, requestTimeoutSecs = 30): Promise<Running> {
  return listen(createHttpServer(handler, { requestTimeoutSecs, logger }));
}
