import { CliError } from './errors.js';

const COUNT = /^[1-9][0-9]{0,4}$/;

/** `--workers <count>`: a whole number from 1 to 65535 (the range of `[server] workers`). */
export function parseWorkers(value: string): number {
  if (!COUNT.test(value) || Number(value) > 65535) {
    throw new CliError([`--workers: expected a whole number from 1 to 65535: ${JSON.stringify(value)}`]);
  }
  return Number(value);
}

/**
 * Refuses a worker count this build cannot run. Several processes on one storage need what one
 * process keeps to itself shared among them (the memory lock table, the single-writer link cache,
 * the instance lock, the one background GC and job drain): until all of it is, a count above 1
 * would run workers that can lose pushes, so startup stops naming where the count came from.
 */
export function checkWorkers(count: number, source: 'server.workers' | '--workers'): void {
  if (count === 1) return;
  throw new CliError([
    `${source}: ${count} worker processes requested; this build runs one process per service (set 1, or leave it unset)`,
  ]);
}
