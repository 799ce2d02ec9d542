import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '@angos/observability';

export interface CapturedLogger {
  readonly logger: Logger;
  /** Everything written so far, as the JSON lines the logger wrote. */
  output(): string;
  /** Every record written so far, parsed. */
  records(): Array<Record<string, unknown>>;
}

/** A JSON logger (at `filter`) whose output the test can read back. */
export function captureLogger(filter = 'debug'): CapturedLogger {
  const destination = new PassThrough();
  let output = '';
  destination.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return {
    logger: createLogger({ filter, format: 'json', destination }),
    output: () => output,
    records: () =>
      output
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
