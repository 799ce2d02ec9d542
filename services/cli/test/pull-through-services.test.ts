import { PassThrough } from 'node:stream';
import { createLogger } from '@angos/observability';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningService, startService } from '../src/index.js';
import { baseConfig, runAngos, type Workspace, workspace } from './helpers.js';

/**
 * The services around the pull-through cache: the split gateway needs the cache service's address
 * as soon as a repository has an upstream (at startup, and on a reload that adds one), and
 * `angos pull-through-cache` starts like registry-api, behind the gateway's signature.
 */

const TOKEN = '0123456789abcdef0123456789abcdef';
const UPSTREAM = '[[repository."docker-io".upstream]]\nurl = "https://registry-1.docker.io"\n';
const ALLOW = '[global.access_policy]\ndefault = "allow"\n';

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

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('condition not met in time');
}

const services = (extra = '') =>
  `[services]\nregistry_api_url = "http://127.0.0.1:1"\ninternal_token = "${TOKEN}"\n${extra}`;

describe('split services of the pull-through cache', () => {
  it('gateway: refuses to start with an upstream and no pull_through_cache_url, naming the key', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000, `${ALLOW}${UPSTREAM}${services()}`));
    const result = await runAngos(['-c', ws.configPath, 'gateway']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'services.pull_through_cache_url: required for gateway when a repository has an upstream',
    );
  });

  it('gateway: rejects a reload that adds an upstream when it started without the cache address', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000, `${ALLOW}${services()}`));
    const { logger, output } = captureLogger();
    service = await startService({
      kind: 'gateway',
      configPath: ws.configPath,
      listen: '127.0.0.1:0',
      // One thread, this one: serving threads log to stderr, not to the logger given here.
      workers: 1,
      logger,
    });
    await ws.writeConfig(baseConfig(ws.dir, 8000, `${ALLOW}${UPSTREAM}${services()}`));
    await eventually(() => output().includes('services.pull_through_cache_url'));
    expect(output()).toMatch(/"message":"configuration change rejected: invalid configuration"/);
    expect(output()).not.toContain('"message":"configuration reloaded"');
  });

  it('pull-through-cache: requires internal_token', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000, UPSTREAM));
    const refused = await runAngos(['-c', ws.configPath, 'pull-through-cache']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('services.internal_token: required for pull-through-cache');
  });

  it('pull-through-cache: answers only what the gateway signed', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000, `${UPSTREAM}[services]\ninternal_token = "${TOKEN}"\n`));
    const { logger } = captureLogger();
    service = await startService({
      kind: 'pull-through-cache',
      configPath: ws.configPath,
      listen: '127.0.0.1:0',
      logger,
    });
    const base = `http://127.0.0.1:${service.address.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const unsigned = await fetch(`${base}/v2/docker-io/library/alpine/manifests/latest`);
    expect(unsigned.status).toBe(401);
  });
});

describe('upstream TLS files', () => {
  it('stop startup, naming the key, when they cannot be read', async () => {
    const missing = `${ws.dir}/no-such-ca.pem`;
    await ws.writeConfig(
      baseConfig(
        ws.dir,
        8000,
        `${ALLOW}[[repository."docker-io".upstream]]\nurl = "https://registry-1.docker.io"\nserver_ca_bundle = "${missing}"\n`,
      ),
    );
    const result = await runAngos(['-c', ws.configPath, 'server']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `repository."docker-io".upstream[0].server_ca_bundle: cannot read ${missing}: ENOENT`,
    );
  });
});
