import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '@angos/observability';
import { type Listening, listenOnFreePort } from '@angos/test-support';
import { createHttpServer, type Handler, type HttpServerOptions } from '../src/index.js';

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

/** Listens on 127.0.0.1 with a free port. */
export const listen = listenOnFreePort;
export type Running = Listening;

export function serve(
  handler: Handler,
  logger: Logger,
  options: Omit<HttpServerOptions, 'logger'> = {},
): Promise<Running> {
  return listen(createHttpServer(handler, { ...options, logger }));
}
