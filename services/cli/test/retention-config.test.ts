import { captureLogger, eventually } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { baseConfig, runAngos } from './helpers.js';
import { useInProcessServer } from './in-process.js';

const { ws, start } = useInProcessServer();

const ALLOW = '[global.access_policy]\ndefault = "allow"\n';
const retention = (rules: string[]) =>
  `${ALLOW}[global.retention_policy]\nrules = ${JSON.stringify(rules)}\n`;

describe('retention rules at startup and reload', () => {
  it('refuses to start with a retention rule that does not compile, naming it', async () => {
    await ws().writeConfig(
      baseConfig(
        ws().dir,
        1,
        `${retention(['top_pushed(10)', 'image.pushed_at > now() - days(30)', 'image.pushed > 3'])}[repository."team".retention_policy]\nrules = ["image.tag != null"]\n`,
      ),
    );
    const result = await runAngos(['-c', ws().configPath, 'server', '--listen', '127.0.0.1:0']);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain('not supported yet');
    expect(result.stderr).toContain(
      'global.retention_policy.rules[2]: invalid CEL rule: No such key: pushed',
    );
    expect(result.stderr).toMatch(
      /repository\."team"\.retention_policy\.rules\[0\]: invalid CEL rule: .*has\(image\.tag\)/,
    );
  });

  it('starts with valid retention rules, and rejects a reload with a bad one', async () => {
    await ws().writeConfig(baseConfig(ws().dir, 1, retention(["has(image.tag) && image.tag == 'latest'"])));
    const { logger, output } = captureLogger('info');
    const service = await start(logger);
    expect((await fetch(`http://127.0.0.1:${service.address.port}/v2/`)).status).toBe(200);

    await ws().writeConfig(baseConfig(ws().dir, 1, retention(['top_pulled()'])));
    await eventually(() => output().includes('configuration change rejected: invalid configuration'));
    expect(output()).toContain('global.retention_policy.rules[0]');
  });

  it('warns at startup about rules that read pull times while they are not recorded', async () => {
    await ws().writeConfig(
      baseConfig(ws().dir, 1, retention(['top_pushed(3)', 'image.last_pulled_at > now() - days(7)'])),
    );
    const { logger, output } = captureLogger('info');
    await start(logger);
    const warnings = output()
      .split('\n')
      .filter((line) => line.includes('configuration warning'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warnings).toEqual([
      expect.objectContaining({
        key: 'global.retention_policy.rules[1]',
        reason: expect.stringContaining('global.update_pull_time = true'),
      }),
    ]);
  });
});
