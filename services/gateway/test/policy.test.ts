import { describe, expect, it } from 'vitest';
import { decide, type PolicyConfig, repositoryKeyFor } from '../src/index.js';

const config: PolicyConfig = {
  global: { access_policy: { default: 'deny' } },
  repository: {
    team: { access_policy: { default: 'allow' } },
    'org/public': { access_policy: { default: 'allow' } },
    'org/private': { access_policy: { default: 'deny' } },
    inherits: {},
  },
};

describe('repositoryKeyFor', () => {
  it.each([
    ['team', 'team'],
    ['team/app', 'team'],
    ['team/app/sub', 'team'],
    ['teamx', undefined],
    ['org', undefined],
    ['org/public/img', 'org/public'],
    ['org/publicity', undefined],
    ['other/team', undefined],
  ])('%s → %s', (namespace, key) => {
    expect(repositoryKeyFor(config, namespace)).toBe(key);
  });
});

describe('decide', () => {
  it.each([
    ['global deny for an unconfigured namespace', config, 'library/alpine', 'deny'],
    ['repository allow overrides global deny', config, 'team/app', 'allow'],
    ['nested repository key', config, 'org/public/img', 'allow'],
    ['repository deny', config, 'org/private', 'deny'],
    ['repository without a policy inherits global', config, 'inherits/x', 'deny'],
    ['no namespace uses global', config, undefined, 'deny'],
    [
      'repository deny overrides global allow',
      {
        global: { access_policy: { default: 'allow' } },
        repository: { secret: { access_policy: { default: 'deny' } } },
      },
      'secret/x',
      'deny',
    ],
    ['global allow', { global: { access_policy: { default: 'allow' } } }, 'a', 'allow'],
    ['no policy anywhere is deny', {}, 'a', 'deny'],
    ['empty global section is deny', { global: {} }, undefined, 'deny'],
    ['a policy without default is deny', { global: { access_policy: {} } }, 'a', 'deny'],
  ] as const)('%s', (_name, cfg, namespace, expected) => {
    expect(decide(cfg, { action: 'get-manifest', namespace })).toBe(expected);
  });
});
