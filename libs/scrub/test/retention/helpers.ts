import { PassThrough } from 'node:stream';
import { type Config, parseConfig } from '@angos/config';
import { createLogger, type Logger } from '@angos/observability';

/** A full configuration: the smallest valid one followed by `toml`. */
export function configOf(toml: string): Config {
  return parseConfig(`[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n${toml}`)
    .config;
}

/** A logger whose JSON records the test can read. */
export function captureLogger(filter = 'debug'): {
  logger: Logger;
  records: () => Array<Record<string, unknown>>;
} {
  const destination = new PassThrough();
  let output = '';
  destination.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return {
    logger: createLogger({ filter, format: 'json', destination }),
    records: () =>
      output
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
