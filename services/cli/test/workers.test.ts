import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWorkers } from '../src/workers.js';
import { baseConfig, runAngos, type Workspace, workspace } from './helpers.js';

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
  let ws: Workspace;
  beforeAll(async () => {
    ws = await workspace();
  });
  afterAll(() => ws.remove());

  // Several processes would each keep their own lock table and link cache: refused until shared.
  it('refuses more than one worker, from the flag or the configuration, naming the source', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 0));
    const flag = await runAngos(['-c', ws.configPath, 'server', '--workers', '2']);
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain('--workers: 2 worker processes requested; this build runs one process');

    await ws.writeConfig(baseConfig(ws.dir, 0).replace('port = 0', 'port = 0\nworkers = 4'));
    const configured = await runAngos(['-c', ws.configPath, 'server']);
    expect(configured.code).toBe(1);
    expect(configured.stderr).toContain('server.workers: 4 worker processes requested');
  });
});
