import { CliError } from './errors.js';

const COUNT = /^[1-9][0-9]{0,4}$/;

/** `--workers <count>`: a whole number from 1 to 65535 (the range of `[server] workers`). */
export function parseWorkers(value: string): number {
  if (!COUNT.test(value) || Number(value) > 65535) {
    throw new CliError([`--workers: expected a whole number from 1 to 65535: ${JSON.stringify(value)}`]);
  }
  return Number(value);
}
