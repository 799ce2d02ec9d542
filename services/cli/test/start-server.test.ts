import { request } from 'node:http';
import { PassThrough } from 'node:stream';
import { createLogger } from '@angos/observability';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningService, startServer } from '../src/index.js';
import { baseConfig, type Workspace, workspace } from './helpers.js';

let ws: Workspace;
let service: RunningService | undefined;
beforeAll(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await service?.close();
  service = undefined;
});
afterAll(async () => {
  await ws.remove();
});

function captureLogger() {
  const destination = new PassThrough();
  let output = '';
  destination.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { logger: createLogger({ filter: 'info', format: 'json', destination }), output: () => output };
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('condition not met in time');
}

describe('startServer (in-process)', () => {
  it('listens on the --listen address and answers /v2/', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const { logger } = captureLogger();
    service = await startServer({ configPath: ws.configPath, listen: '127.0.0.1:0', logger });
    expect(service.address.host).toBe('127.0.0.1');
    expect(service.address.port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${service.address.port}/v2/`)).status).toBe(200);
  });

  it('rejects with the configuration issues', async () => {
    await ws.writeConfig('[server]\nport = 8000\n');
    await expect(startServer({ configPath: ws.configPath })).rejects.toMatchObject({
      name: 'ConfigError',
      issues: expect.arrayContaining([expect.objectContaining({ path: 'server.bind_address' })]),
    });
  });

  it('applies configuration changes while running and keeps restart-only options', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const { logger, output } = captureLogger();
    service = await startServer({ configPath: ws.configPath, listen: '127.0.0.1:0', logger });
    const url = `http://127.0.0.1:${service.address.port}/v2/`;
    expect((await fetch(url)).status).toBe(200);

    await ws.writeConfig(baseConfig(ws.dir, 2, '[global.access_policy]\ndefault = "deny"\n'));
    await eventually(async () => (await fetch(url)).status === 401);
    await eventually(async () => output().includes('configuration change requires restart'));
    expect(output()).toMatch(/"message":"configuration change requires restart".*"keys":\["server\.port"\]/);

    // An invalid file is reported and the running configuration stays.
    await ws.writeConfig('[server\n');
    await eventually(async () => output().includes('configuration change rejected: invalid configuration'));
    expect((await fetch(url)).status).toBe(401);

    // So is a valid one using a feature this build cannot run.
    await ws.writeConfig(
      `${baseConfig(ws.dir, 1, '[global.access_policy]\ndefault = "allow"\n')}\n[ui]\nenabled = true\n`,
    );
    await eventually(async () => output().includes('features not supported yet'));
    expect((await fetch(url)).status).toBe(401);
  });

  it('closes promptly with an idle keep-alive connection open', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 1, '[global.access_policy]\ndefault = "allow"\n'));
    const { logger } = captureLogger();
    service = await startServer({ configPath: ws.configPath, listen: '127.0.0.1:0', logger });
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
    const current = service;
    service = undefined;
    await current.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(fetch(`http://127.0.0.1:${port}/v2/`)).rejects.toThrow();
  });
});
