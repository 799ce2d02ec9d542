import { configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { refusesEveryRequest } from '../src/index.js';

describe('refusesEveryRequest', () => {
  it.each([
    ['no access policy', ''],
    ['default deny, no rules', '[global.access_policy]\ndefault = "deny"\n'],
    ['default deny, only literal false rules', '[global.access_policy]\nrules = ["false", " false "]\n'],
    [
      'default allow with an always-true rule',
      '[global.access_policy]\ndefault = "allow"\nrules = ["true"]\n',
    ],
  ])('says so with %s', (_what, toml) => {
    expect(refusesEveryRequest(configOf(toml))).toMatch(/default = /);
  });

  it.each([
    ['default allow', '[global.access_policy]\ndefault = "allow"\n'],
    ['a rule that may hold', '[global.access_policy]\nrules = ["false", "has(identity.username)"]\n'],
    [
      'default allow with rules that may not hold',
      '[global.access_policy]\ndefault = "allow"\nrules = ["false"]\n',
    ],
  ])('stays silent with %s', (_what, toml) => {
    expect(refusesEveryRequest(configOf(toml))).toBeUndefined();
  });
});
