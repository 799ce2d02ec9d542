import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { baseConfig, freePort, logRecords, startAngos, useWorkspace, waitForHttp } from './helpers.js';

const ws = useWorkspace();

const WARNING = 'access policy refuses every request';

/** Starts `angos <command>` with `extra` configuration; its warnings once it listens. */
async function startupWarnings(command: string, extra: string): Promise<Record<string, unknown>[]> {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  await ws().writeConfig(
    baseConfig(
      ws().dir,
      port,
      `${extra}\n[services]\nregistry_api_url = "http://127.0.0.1:1"\ninternal_token = "${token}"\n`,
    ),
  );
  const service = startAngos(['-c', ws().configPath, command]);
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, service);
  expect(await service.stop()).toBe(0);
  return logRecords(service.output()).filter((record) => record['level'] === 'WARN');
}

describe('startup warning when the configuration refuses every request (spawned)', () => {
  it.each([
    ['server', 'no access policy', ''],
    ['server', 'default deny without rules', '[global.access_policy]\ndefault = "deny"\n'],
    ['gateway', 'no access policy', ''],
  ])('angos %s warns with %s, naming the option', async (command, _what, extra) => {
    const warnings = await startupWarnings(command, extra);
    const refusing = warnings.filter((record) => record['message'] === WARNING);
    expect(refusing).toHaveLength(1);
    expect(refusing[0]).toMatchObject({ target: 'angos', key: 'global.access_policy' });
    expect(String(refusing[0]?.['reason'])).toContain('default = "allow"');
  });

  it.each([
    ['server', 'default allow', '[global.access_policy]\ndefault = "allow"\n'],
    ['server', 'a rule that can allow', '[global.access_policy]\nrules = ["has(identity.username)"]\n'],
    // registry-api does not authorize: the gateway in front of it does, and warns.
    ['registry-api', 'no access policy', ''],
  ])('angos %s does not warn with %s', async (command, _what, extra) => {
    const warnings = await startupWarnings(command, extra);
    expect(warnings.filter((record) => record['message'] === WARNING)).toEqual([]);
  });
});
