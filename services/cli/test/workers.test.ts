import { afterEach, describe, expect, it } from 'vitest';
import { parseWorkers } from '../src/workers.js';
import { baseConfig, freePort, killAll, startAngos, useWorkspace, waitForRecord } from './helpers.js';

describe('--workers', () => {
  it.each([
    ['1', 1],
    ['16', 16],
    ['65535', 65535],
  ])('reads %s', (value, count) => {
    expect(parseWorkers(value)).toBe(count);
  });

  it.each([['0'], ['-1'], ['two'], ['1.5'], ['65536'], ['']])('refuses %j', (value) => {
    expect(() => parseWorkers(value)).toThrow(/^--workers: expected a whole number from 1 to 65535/);
  });
});

describe('worker count at startup', () => {
  const ws = useWorkspace();
  afterEach(() => killAll());

  it('takes [server] workers, and --workers over it', async () => {
    const port = await freePort();
    await ws().writeConfig(
      baseConfig(ws().dir, port).replace(`port = ${port}`, `port = ${port}\nworkers = 3`),
    );
    const started = async (args: readonly string[]) => {
      const server = startAngos(['-c', ws().configPath, 'server', ...args]);
      const record = await waitForRecord(server, (line) => line['message'] === 'serving threads started');
      expect(await server.stop()).toBe(0);
      return record['workers'];
    };
    expect(await started([])).toBe(3);
    expect(await started(['--workers', '2'])).toBe(2);
  }, 60_000);
});
