import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startAngos } from '../src/angos.js';

/**
 * These tests check the harness itself (config, process lifecycle, readiness, failure reports)
 * with small stand-in programs in place of the CLI (ANGOS_CLI); tests/e2e runs the real one.
 */
const standIn = `
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
const args = process.argv.slice(2);
const role = args[2];
const [host, port] = args[args.indexOf('--listen') + 1].split(':');
console.log(JSON.stringify({ role, args, config: readFileSync(args[1], 'utf8') }));
if (process.env.STAND_IN === 'crash') { console.error('boom: cannot start'); process.exit(1); }
if (process.env.STAND_IN === 'silent') setInterval(() => {}, 1000);
else createServer((req, res) => res.end('{}')).listen(Number(port), host);
`;

describe('startAngos', () => {
  let dir: string;
  const savedCli = process.env['ANGOS_CLI'];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'test-support-angos-'));
    await writeFile(join(dir, 'stand-in.mjs'), standIn);
    process.env['ANGOS_CLI'] = join(dir, 'stand-in.mjs');
  });
  afterAll(async () => {
    if (savedCli === undefined) delete process.env['ANGOS_CLI'];
    else process.env['ANGOS_CLI'] = savedCli;
    await rm(dir, { recursive: true, force: true });
  });
  const started: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const instance of started.splice(0)) await instance.stop();
  });

  it('runs `server` with a generated config and waits for /v2/', async () => {
    const angos = await startAngos({ mode: 'server', config: '[global]\nmax_blob_size = "1GiB"' });
    started.push(angos);
    expect(angos.url).toBe(`http://${angos.host}`);
    expect((await fetch(`${angos.url}/v2/`)).status).toBe(200);
    const config = await readFile(angos.configPath, 'utf8');
    expect(config).toContain('[global]\nmax_blob_size = "1GiB"');
    expect(config).toContain(`[blob_store.fs]\nroot_dir = ${JSON.stringify(angos.rootDir)}`);
    expect(config).toContain('[global.access_policy]\ndefault = "allow"');
    expect(config).not.toContain('[services]');
    const launch = JSON.parse(angos.logs().split('\n')[1]!);
    expect(launch.args).toEqual(['-c', angos.configPath, 'server', '--listen', angos.host]);
  });

  it('leaves out a default table the extra config defines', async () => {
    const angos = await startAngos({ mode: 'server', config: '[global.access_policy]\ndefault = "deny"' });
    started.push(angos);
    const config = await readFile(angos.configPath, 'utf8');
    expect(config.match(/\[global\.access_policy\]/g)).toHaveLength(1);
    expect(config).toContain('default = "deny"');
  });

  it('runs registry-api and gateway with a shared [services] table in split mode', async () => {
    const angos = await startAngos({ mode: 'split' });
    started.push(angos);
    const config = await readFile(angos.configPath, 'utf8');
    const apiUrl = /registry_api_url = "(http:\/\/127\.0\.0\.1:\d+)"/.exec(config)?.[1];
    expect(apiUrl).toBeDefined();
    expect(config).toMatch(/internal_token = "[0-9a-f]{48}"/);
    expect(apiUrl).not.toBe(angos.url);
    expect((await fetch(`${apiUrl}/v2/`)).status).toBe(200);
    expect(angos.logs()).toContain('--- angos registry-api');
    expect(angos.logs()).toContain('--- angos gateway');
  });

  it('stops every process and removes its directory', async () => {
    const angos = await startAngos({ mode: 'split' });
    await angos.stop();
    await expect(fetch(`${angos.url}/v2/`)).rejects.toThrow();
    expect(existsSync(angos.configPath)).toBe(false);
    expect(angos.logs()).toMatch(
      /\[exited code=null signal=SIGTERM\][\s\S]*\[exited code=null signal=SIGTERM\]/,
    );
  });

  it('fails at once with the process output when the process exits', async () => {
    const started = Date.now();
    const failure = startAngos({ mode: 'server', env: { STAND_IN: 'crash' } });
    await expect(failure).rejects.toThrow(/angos server exited before[\s\S]*boom: cannot start/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('fails after the bound when nothing answers', async () => {
    const failure = startAngos({ mode: 'server', env: { STAND_IN: 'silent' }, startTimeoutMs: 1000 });
    await expect(failure).rejects.toThrow(
      /did not answer in time \(last status: none\)[\s\S]*"role":"server"/,
    );
  });
});
