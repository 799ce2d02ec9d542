import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { moduleTracePreload } from '@angos/test-support';
import { describe, expect, it } from 'vitest';

/**
 * The optional dependencies cost RSS at idle (jose ~7 MiB, cel-js ~6, argon2 ~11, ioredis ~21),
 * so each must load only when the configuration uses what needs it. Checked in a fresh process
 * running the built package (like the CLI tests, this reads dist: the test task builds first),
 * which is what the CLI runs and where nothing else has loaded them yet.
 */

const PACKAGE = join(dirname(fileURLToPath(import.meta.url)), '..');
const OPTIONAL = ['jose', '@marcbachmann/cel-js', '@node-rs/argon2', 'ioredis'] as const;

const ALICE_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';

/** What the gateway does with a configuration: check it, then serve a basic and a bearer request. */
function scenario(toml: string): string {
  const config = `[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n${toml}`;
  return `
import { checkAuthConfig, createAuth } from ${JSON.stringify(pathToFileURL(join(PACKAGE, 'dist', 'index.js')).href)};
import { parseConfig } from '@angos/config';
import { createMetrics, silentLogger } from '@angos/observability';

const { config } = parseConfig(${JSON.stringify(config)});
const issues = checkAuthConfig(config);
if (issues.length > 0) throw new Error(JSON.stringify(issues));
const auth = createAuth({ config: () => config, logger: silentLogger, metrics: createMetrics({ defaultMetrics: false }) });
const client = { method: 'GET', uri: '/v2/team/manifests/v1', host: 'h', proto: 'http', headers: {} };
const request = { action: 'get-manifest', namespace: 'team', reference: 'v1' };
for (const authorization of ['Basic ' + Buffer.from('alice:alice-secret').toString('base64'), 'Bearer a.b.c']) {
  const identity = await auth.authenticate({ headers: { authorization }, socket: { remoteAddress: '127.0.0.1' } });
  await auth.authorize(identity, request, client);
}
await auth.close();
process.exit(0);
`;
}

/** The optional dependencies a process running `scenario(toml)` loaded. */
async function optionalLoadedBy(toml: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'angos-auth-loads-'));
  const trace = join(dir, 'trace');
  try {
    await promisify(execFile)(
      process.execPath,
      ['--import', moduleTracePreload(), '--input-type=module', '-e', scenario(toml)],
      { cwd: PACKAGE, env: { ...process.env, ANGOS_LOAD_TRACE: trace }, timeout: 20_000 },
    );
    const loaded = (await readFile(trace, 'utf8')).split('\n');
    return OPTIONAL.filter((name) =>
      loaded.some((line) => line === name || line.includes(`/node_modules/${name}/`)),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('optional dependencies', () => {
  it('are not loaded by a configuration without authentication, rules or [cache.redis]', async () => {
    expect(await optionalLoadedBy('[global.access_policy]\ndefault = "allow"\n')).toEqual([]);
  });

  it('are not loaded by [cache.redis] without hmac_key: nothing is stored in Redis then', async () => {
    expect(await optionalLoadedBy('[cache.redis]\nurl = "redis://127.0.0.1:1"\n')).toEqual([]);
  });

  it.each([
    [
      'access policy rules',
      '[global.access_policy]\nrules = ["has(identity.username)"]\n',
      '@marcbachmann/cel-js',
    ],
    [
      'basic authentication',
      `[auth.identity.alice]\nusername = "alice"\npassword = "${ALICE_HASH}"\n`,
      '@node-rs/argon2',
    ],
    ['an OIDC provider', '[auth.oidc.ci]\nprovider = "github"\n', 'jose'],
    [
      '[cache.redis] and its hmac_key',
      '[cache.redis]\nurl = "redis://127.0.0.1:1"\nhmac_key = "0123456789abcdef"\n',
      'ioredis',
    ],
  ])('load with %s, alone', async (_feature, toml, expected) => {
    expect(await optionalLoadedBy(toml)).toEqual([expected]);
  });
});
