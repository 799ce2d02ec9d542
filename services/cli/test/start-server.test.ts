import { request } from 'node:http';
import { captureLogger, eventually } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { startServer } from '../src/index.js';
import { baseConfig } from './helpers.js';
import { useInProcessServer } from './in-process.js';

const { ws, start } = useInProcessServer();

describe('startServer (in-process)', () => {
  it('listens on the --listen address and answers /v2/', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const { logger } = captureLogger('info');
    const service = await start(logger);
    expect(service.address.host).toBe('127.0.0.1');
    expect(service.address.port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${service.address.port}/v2/`)).status).toBe(200);
  });

  it('rejects with the configuration issues', async () => {
    await ws().writeConfig('[server]\nport = 8000\n');
    await expect(startServer({ configPath: ws().configPath })).rejects.toMatchObject({
      name: 'ConfigError',
      issues: expect.arrayContaining([expect.objectContaining({ path: 'server.bind_address' })]),
    });
  });

  it('applies configuration changes while running and keeps restart-only options', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const { logger, output } = captureLogger('info');
    const service = await start(logger);
    const url = `http://127.0.0.1:${service.address.port}/v2/`;
    expect((await fetch(url)).status).toBe(200);

    await ws().writeConfig(baseConfig(ws().dir, 2, '[global.access_policy]\ndefault = "deny"\n'));
    await eventually(async () => (await fetch(url)).status === 401);
    await eventually(async () => output().includes('configuration change requires restart'));
    expect(output()).toMatch(/"message":"configuration change requires restart".*"keys":\["server\.port"\]/);

    // An invalid file is reported and the running configuration stays.
    await ws().writeConfig('[server\n');
    await eventually(async () => output().includes('configuration change rejected: invalid configuration'));
    expect((await fetch(url)).status).toBe(401);
  });

  it('closes promptly with an idle keep-alive connection open', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const { logger } = captureLogger('info');
    const service = await start(logger);
    const port = service.address.port;

    // A keep-alive connection left idle must not hold the shutdown for the keep-alive timeout.
    const agentResponse = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/v2/', headers: { connection: 'keep-alive' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
        .on('error', reject)
        .end();
    });
    expect(agentResponse).toBe(200);

    const started = Date.now();
    await service.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(fetch(`http://127.0.0.1:${port}/v2/`)).rejects.toThrow();
  });
});
