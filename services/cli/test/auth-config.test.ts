import { captureLogger, eventually, skipWithout } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { baseConfig, freePort, runAngos, startAngos, useRedisServer, waitForHttp } from './helpers.js';
import { useInProcessServer } from './in-process.js';

const { ws, start } = useInProcessServer();

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';
const ALICE = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;

const policy = (rules: string[]) =>
  `[auth.identity.alice]\nusername = "alice"\npassword = "${ALICE_HASH}"\n[global.access_policy]\ndefault = "deny"\nrules = ${JSON.stringify(rules)}\n`;

describe('access policy rules at startup and reload', () => {
  it('refuses to start with a rule that does not compile, naming it', async () => {
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        `[repository."x".access_policy]\nrules = ["true", "false", "request.namespace.startsWith("]\n[global.access_policy]\nrules = ["request.acton == 'get-blob'"]\n`,
      ),
    );
    const result = await runAngos(['-c', ws().configPath, 'server', '--listen', '127.0.0.1:0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('repository."x".access_policy.rules[2]: invalid CEL rule:');
    expect(result.stderr).toContain('global.access_policy.rules[0]: invalid CEL rule: No such key: acton');
  });

  it('refuses to start when an authorization webhook TLS file cannot be read', async () => {
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        '[auth.webhook.authz]\nurl = "https://authz.example"\ntimeout_ms = 100\nserver_ca_bundle = "/nonexistent/ca.pem"\n',
      ),
    );
    const result = await runAngos(['-c', ws().configPath, 'server', '--listen', '127.0.0.1:0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'auth.webhook.authz.server_ca_bundle: cannot read /nonexistent/ca.pem: ENOENT',
    );
  });

  it('rejects a reload with a bad rule and keeps the running policy; applies a good one', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 1, policy(["identity.username == 'alice'"])));
    const { logger, output } = captureLogger('info');
    const service = await start(logger);
    const url = `http://127.0.0.1:${service.address.port}/v2/`;
    expect((await fetch(url, { headers: { authorization: ALICE } })).status).toBe(200);

    await ws().writeConfig(
      baseConfig(ws().dir, 1, policy(["identity.username == 'alice'", 'request.n + 1'])),
    );
    await eventually(() => output().includes('configuration change rejected: invalid configuration'));
    expect(output()).toContain('global.access_policy.rules[1]');
    expect((await fetch(url, { headers: { authorization: ALICE } })).status).toBe(200);

    await ws().writeConfig(baseConfig(ws().dir, 1, policy(["identity.username == 'bob'"])));
    await eventually(async () => (await fetch(url, { headers: { authorization: ALICE } })).status === 403);
  });
});

describe.skipIf(skipWithout('the [cache.redis] test', 'redis-server'))('[cache.redis] (redis-server)', () => {
  const redis = useRedisServer();

  it('runs angos server with the token cache in Redis and stops cleanly', async () => {
    const port = await freePort();
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        port,
        `[cache.redis]\nurl = "${redis().url}"\nkey_prefix = "angos:"\nhmac_key = "0123456789abcdef0123"\n${policy(['true'])}`,
      ),
    );
    const server = startAngos(['-c', ws().configPath, 'server']);
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, server);
    expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
    const started = Date.now();
    expect(await server.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
