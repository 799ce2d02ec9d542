import { once } from 'node:events';
import { createServer } from 'node:net';
import { verify } from '@node-rs/argon2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseConfig, freePort, runAngos, type Workspace, workspace } from './helpers.js';

let ws: Workspace;
beforeAll(async () => {
  ws = await workspace();
});
afterAll(async () => {
  await ws.remove();
});

describe('angos (spawned)', () => {
  it('exits 1 on a TOML syntax error, naming the line', async () => {
    await ws.writeConfig('[server]\nbind_address = "127.0.0.1"\nport = = 8000\n');
    const result = await runAngos(['-c', ws.configPath, 'server']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/config\.toml: syntax error at line 3, column \d+/);
  });

  it('exits 1 on an invalid option, naming its key', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000).replace('port = 8000', 'port = "eighty"'));
    const result = await runAngos(['--config', ws.configPath, 'server']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^server\.port: /m);
  });

  it('exits 1 when the configuration file does not exist', async () => {
    const result = await runAngos(['-c', `${ws.dir}/missing.toml`, 'server']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('missing.toml: configuration file not found');
  });

  it('reads config.toml from the working directory by default', async () => {
    await ws.writeConfig('[server\n');
    const result = await runAngos(['server'], { cwd: ws.dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^config\.toml: syntax error at line 1/m);
  });

  it('requires services.internal_token for registry-api', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000));
    const result = await runAngos(['-c', ws.configPath, 'registry-api']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('services.internal_token: required for registry-api');
  });

  it('requires services.registry_api_url and internal_token for gateway', async () => {
    await ws.writeConfig(baseConfig(ws.dir, 8000));
    const result = await runAngos(['-c', ws.configPath, 'gateway']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('services.registry_api_url: required for gateway');
    expect(result.stderr).toContain('services.internal_token: required for gateway');
  });

  it.each([['nonsense'], ['127.0.0.1'], ['127.0.0.1:99999'], ['::1:8000']])(
    'exits 1 on --listen %s',
    async (value) => {
      await ws.writeConfig(baseConfig(ws.dir, 8000));
      const result = await runAngos(['-c', ws.configPath, 'server', '--listen', value]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('--listen: ');
    },
  );

  it('exits 1 with a clear message when the port is in use', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as { port: number };
    try {
      await ws.writeConfig(baseConfig(ws.dir, port));
      const result = await runAngos(['-c', ws.configPath, 'server']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}: address already in use`);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('exits 1 on an unknown command or option', async () => {
    expect((await runAngos(['frobnicate'])).code).toBe(1);
    expect((await runAngos(['server', '--no-such-option'])).code).toBe(1);
    expect((await runAngos([])).code).toBe(1);
  });

  it('prints usage with --help and help', async () => {
    for (const args of [['--help'], ['help']]) {
      const result = await runAngos(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('angos [-c <config>] <command>');
      expect(result.stdout).toContain('argon');
    }
  });

  it('hashes the first line of stdin with argon2id', async () => {
    const result = await runAngos(['argon'], { input: 'correct horse battery staple\nignored\n' });
    expect(result.code).toBe(0);
    const hash = result.stdout.trim();
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await verify(hash, 'wrong')).toBe(false);
  });

  it('accepts a password without a trailing newline, and CRLF input', async () => {
    const plain = await runAngos(['argon'], { input: 'secret' });
    expect(await verify(plain.stdout.trim(), 'secret')).toBe(true);
    const crlf = await runAngos(['argon'], { input: 'secret\r\n' });
    expect(await verify(crlf.stdout.trim(), 'secret')).toBe(true);
  });

  it('refuses an empty password', async () => {
    const result = await runAngos(['argon'], { input: '\n' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('password must not be empty');
  });

  it('needs no configuration file for argon', async () => {
    const result = await runAngos(['-c', '/nonexistent/config.toml', 'argon'], { input: 'pw\n' });
    expect(result.code).toBe(0);
  });

  it('uses a free port for the listen tests', async () => {
    expect(await freePort()).toBeGreaterThan(0);
  });
});
