import { quoted } from '@angos/config';
import { configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import {
  checkRetentionConfig,
  compileRetentionPolicies,
  compileRetentionPolicy,
  RetentionCompileError,
  retentionPoliciesFor,
} from '../../src/index.js';

describe('compileRetentionPolicy', () => {
  it('compiles the documented variables and functions', () => {
    const policy = compileRetentionPolicy(
      [
        "has(image.tag) && image.tag == 'latest'",
        'image.pushed_at > now() - days(30)',
        'image.last_pulled_at > now() - hours(12) - minutes(30)',
        'top_pushed(10)',
        'top_pulled(5)',
        "has(image.tag) && image.tag.matches('^v[0-9]+')",
      ],
      ['global', 'retention_policy'],
    );
    expect(policy.locator).toBe('global.retention_policy');
    expect(policy.rules.map((rule) => rule.locator)).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => `global.retention_policy.rules[${i}]`),
    );
  });

  it('names every rule that does not compile, by key path', () => {
    const attempt = () =>
      compileRetentionPolicy(
        [
          'true',
          'image.pushed_at >',
          'image.size > 3',
          "image.tag == 'x' || image.pushed_at",
          'top_pushed("5")',
        ],
        ['repository', quoted('team'), 'retention_policy'],
      );
    expect(attempt).toThrow(RetentionCompileError);
    try {
      attempt();
    } catch (error) {
      const issues = (error as RetentionCompileError).issues;
      expect(issues.map((issue) => issue.path)).toEqual([
        'repository."team".retention_policy.rules[1]',
        'repository."team".retention_policy.rules[2]',
        'repository."team".retention_policy.rules[3]',
        'repository."team".retention_policy.rules[4]',
      ]);
      expect(issues[1]?.message).toMatch(/invalid CEL rule: .*size/);
    }
  });

  it('refuses a rule that is not boolean', () => {
    expect(() => compileRetentionPolicy(['image.pushed_at'], ['global', 'retention_policy'])).toThrow(
      'global.retention_policy.rules[0]: CEL rule must evaluate to bool, not int',
    );
  });

  it('says to use has(image.tag) when a rule compares the tag with null', () => {
    expect(() => compileRetentionPolicy(['image.tag != null'], ['global', 'retention_policy'])).toThrow(
      /global\.retention_policy\.rules\[0\]: invalid CEL rule: .*has\(image\.tag\)/,
    );
  });
});

describe('checkRetentionConfig', () => {
  it('lists the bad rules of the global and repository policies, and nothing for good ones', () => {
    const config = configOf(`
[global.retention_policy]
rules = ["top_pushed(3)", "top_pushed(3", "true"]
[repository."team".retention_policy]
rules = ["now()"]
[repository."ok".retention_policy]
rules = ["image.pushed_at > now() - days(1)"]
`);
    expect(checkRetentionConfig(config).map((issue) => issue.path)).toEqual([
      'global.retention_policy.rules[1]',
      'repository."team".retention_policy.rules[0]',
    ]);
    expect(checkRetentionConfig(configOf('[global.retention_policy]\nrules = ["true"]\n'))).toEqual([]);
    expect(checkRetentionConfig(configOf(''))).toEqual([]);
  });
});

describe('retentionPoliciesFor', () => {
  it('is the global policy, plus the one of the repository that owns the namespace', () => {
    const config = configOf(`
[global.retention_policy]
rules = ["top_pushed(1)"]
[repository."team".retention_policy]
rules = ["true"]
[repository."other"]
`);
    const compiled = compileRetentionPolicies(config);
    const locators = (namespace: string) =>
      retentionPoliciesFor(compiled, config, namespace).map((policy) => policy.locator);
    expect(locators('team/app')).toEqual(['global.retention_policy', 'repository."team".retention_policy']);
    expect(locators('team')).toEqual(['global.retention_policy', 'repository."team".retention_policy']);
    expect(locators('teamx/app')).toEqual(['global.retention_policy']);
    expect(locators('other/app')).toEqual(['global.retention_policy']);
  });
});
