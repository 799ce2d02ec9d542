import { silentLogger } from '@angos/observability';
import { parseRoute } from '@angos/oci';
import { captureLogger, configOf } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../src/identity.js';
import { compilePolicies, PolicyCompileError } from '../src/policy/compile.js';
import { evaluatePolicy, RuleFailureLog } from '../src/policy/evaluate.js';
import { type AccessRequest, describeRequest } from '../src/request.js';

function policyOf(defaultDecision: 'allow' | 'deny', rules: string[]) {
  const toml = `[global.access_policy]\ndefault = "${defaultDecision}"\nrules = ${JSON.stringify(rules)}\n`;
  return compilePolicies(configOf(toml)).global;
}

const quiet = new RuleFailureLog(silentLogger);
const anonymous: Identity = { client_ip: '10.0.0.1' };
const alice: Identity = { client_ip: '10.0.0.2', id: 'alice', username: 'alice' };
const ci: Identity = {
  client_ip: '10.0.0.3',
  oidc: {
    provider_name: 'github',
    claims: { repository: 'org/app', ref: 'refs/heads/main', groups: ['release'], run_number: 42 },
  },
};
const robot: Identity = {
  client_ip: '10.0.0.4',
  certificate: { common_names: ['robot-1'], organizations: ['Platform'] },
};
const pull: AccessRequest = { action: 'get-manifest', namespace: 'team/app', reference: 'v1' };
const push: AccessRequest = { action: 'put-manifest', namespace: 'team/app', reference: 'v1', tags: ['v1'] };

describe('compilePolicies', () => {
  it('names every rule that does not compile or type-check, with its key path', () => {
    const config = configOf(`
[global.access_policy]
rules = ["identity.username == 'admin'", "request.action ==", "request.n == 'ten'"]
[repository."x".access_policy]
rules = ["true", "false", "request.nope == 'a'", "request.namespace"]
`);
    let error: unknown;
    try {
      compilePolicies(config);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PolicyCompileError);
    const issues = (error as PolicyCompileError).issues;
    expect(issues.map((issue) => issue.path)).toEqual([
      'global.access_policy.rules[1]',
      'global.access_policy.rules[2]',
      'repository."x".access_policy.rules[2]',
      'repository."x".access_policy.rules[3]',
    ]);
    expect(issues[0]?.message).toMatch(/^invalid CEL rule: /);
    expect(issues[2]?.message).toBe('invalid CEL rule: No such key: nope');
    expect(issues[3]?.message).toBe('CEL rule must evaluate to bool, not string');
    expect(issues.every((issue) => !issue.message.includes('\n'))).toBe(true);
  });

  it('accepts every documented variable and the string functions rules use', () => {
    const rules = [
      "has(identity.id) && identity.id == 'alice'",
      "identity.username == 'alice'",
      "identity.client_ip.startsWith('10.')",
      "'Platform' in identity.certificate.organizations",
      "identity.certificate.common_names.exists(cn, cn.endsWith('-1'))",
      "has(identity.oidc) && identity.oidc.provider_name == 'github'",
      "identity.oidc.claims['repository'].matches('^org/')",
      "request.action in ['get-manifest', 'get-blob']",
      "request.namespace.startsWith('team/')",
      "has(request.digest) && request.digest.startsWith('sha256:')",
      "request.reference == 'latest'",
      "'latest' in request.tags",
      "request.session_id != ''",
      "request.from == 'base'",
      'request.n > 100',
      "request.last == ''",
      "request.artifact_type == 'application/vnd.cncf.notary.signature'",
      "request.queue == 'replication'",
      "has(request.job_id) && request.job_id != ''",
      "identity.oidc.claims['admin']",
      "timestamp('2030-01-01T00:00:00Z') > timestamp('2020-01-01T00:00:00Z')",
    ];
    expect(() => policyOf('deny', rules)).not.toThrow();
  });
});

describe('evaluatePolicy', () => {
  it('applies the default when no rule is true (or there are none)', () => {
    expect(evaluatePolicy(policyOf('deny', []), alice, pull, quiet)).toBe('deny');
    expect(evaluatePolicy(policyOf('allow', []), anonymous, push, quiet)).toBe('allow');
    expect(evaluatePolicy(policyOf('deny', ['false']), alice, pull, quiet)).toBe('deny');
  });

  it('under default = "deny", a true rule grants', () => {
    const policy = policyOf('deny', ["identity.username == 'alice'", "request.action == 'get-manifest'"]);
    expect(evaluatePolicy(policy, alice, push, quiet)).toBe('allow');
    expect(evaluatePolicy(policy, anonymous, pull, quiet)).toBe('allow');
    expect(evaluatePolicy(policy, anonymous, push, quiet)).toBe('deny');
  });

  it('under default = "allow", a true rule refuses', () => {
    const policy = policyOf('allow', ["request.action == 'put-manifest' && !has(identity.username)"]);
    expect(evaluatePolicy(policy, anonymous, push, quiet)).toBe('deny');
    expect(evaluatePolicy(policy, alice, push, quiet)).toBe('allow');
    expect(evaluatePolicy(policy, anonymous, pull, quiet)).toBe('allow');
  });

  it('sees absent identity and request fields as absent (has())', () => {
    const policy = policyOf('deny', [
      '!has(identity.username) && !has(identity.oidc) && !has(request.digest)',
    ]);
    expect(evaluatePolicy(policy, anonymous, pull, quiet)).toBe('allow');
    expect(evaluatePolicy(policy, alice, pull, quiet)).toBe('deny');
    expect(evaluatePolicy(policy, anonymous, { ...pull, digest: 'sha256:abc' }, quiet)).toBe('deny');
  });

  it('tells the jobs API actions apart: listing can be granted without retry or delete', () => {
    const jobs = (method: string, url: string): AccessRequest => {
      const [path = '', query = ''] = url.split('?');
      const route = parseRoute(path);
      const request = route && describeRequest(route, method, new URLSearchParams(query));
      if (request === undefined) throw new Error(`no action for ${method} ${url}`);
      return request;
    };
    const policy = policyOf('deny', [
      "identity.username == 'alice' && request.action in ['list-pending-jobs', 'list-failed-jobs']",
      "identity.username == 'alice' && request.action == 'retry-job' && request.queue == 'cache'",
    ]);
    const decide = (method: string, url: string) => evaluatePolicy(policy, alice, jobs(method, url), quiet);
    expect(decide('GET', '/v2/_ext/jobs/pending?queue=replication')).toBe('allow');
    expect(decide('GET', '/v2/_ext/jobs/failed?queue=cache&n=10')).toBe('allow');
    expect(decide('POST', '/v2/_ext/jobs/failed/cache/j-1/retry')).toBe('allow');
    expect(decide('POST', '/v2/_ext/jobs/failed/replication/j-1/retry')).toBe('deny');
    expect(decide('DELETE', '/v2/_ext/jobs/failed/cache/j-1')).toBe('deny');
    expect(decide('DELETE', '/v2/_ext/jobs/pending/cache/j-1')).toBe('deny');
    expect(evaluatePolicy(policy, anonymous, jobs('GET', '/v2/_ext/jobs/pending?queue=cache'), quiet)).toBe(
      'deny',
    );
  });

  it('reads OIDC claims, certificate subjects and integer page sizes', () => {
    const claims = policyOf('deny', [
      "has(identity.oidc) && identity.oidc.claims['repository'].startsWith('org/') && 'release' in identity.oidc.claims['groups'] && identity.oidc.claims['run_number'] > 40",
    ]);
    expect(evaluatePolicy(claims, ci, push, quiet)).toBe('allow');
    const certificate = policyOf('deny', ["'Platform' in identity.certificate.organizations"]);
    expect(evaluatePolicy(certificate, robot, push, quiet)).toBe('allow');
    const page = policyOf('deny', ["request.action == 'list-tags' && request.n <= 100"]);
    expect(evaluatePolicy(page, anonymous, { action: 'list-tags', namespace: 'a', n: 50 }, quiet)).toBe(
      'allow',
    );
    expect(evaluatePolicy(page, anonymous, { action: 'list-tags', namespace: 'a', n: 500 }, quiet)).toBe(
      'deny',
    );
  });

  it('skips a rule that fails at run time, logs it, and goes on to the next', () => {
    const { logger, records } = captureLogger('debug');
    const failures = new RuleFailureLog(logger);
    const policy = policyOf('deny', ["identity.username != ''", "identity.oidc.claims['admin']", 'true']);
    expect(evaluatePolicy(policy, anonymous, pull, failures)).toBe('allow');
    expect(evaluatePolicy(policyOf('deny', ["identity.username != ''"]), anonymous, pull, failures)).toBe(
      'deny',
    );
    const ciWithStringAdmin: Identity = {
      ...ci,
      oidc: { provider_name: 'github', claims: { admin: 'yes' } },
    };
    expect(
      evaluatePolicy(policyOf('deny', ["identity.oidc.claims['admin']"]), ciWithStringAdmin, pull, failures),
    ).toBe('deny');
    const logged = records().filter((record) => record['message'] === 'access policy rule failed, skipped');
    expect(logged[0]).toMatchObject({
      level: 'WARN',
      rule: 'global.access_policy.rules[0]',
      action: 'get-manifest',
    });
    expect(logged.some((record) => record['reason'] === 'did not evaluate to a boolean')).toBe(true);
  });

  it('under default = "allow", a rule that fails refuses instead of being skipped (fail closed)', () => {
    const { logger, records } = captureLogger('debug');
    const failures = new RuleFailureLog(logger);
    // Meant to keep deletes for the admin: anonymous and OIDC callers have no username, the rule
    // fails for them, and skipping it would let them delete.
    const policy = policyOf('allow', ["request.action == 'delete-manifest' && identity.username != 'admin'"]);
    const remove: AccessRequest = { action: 'delete-manifest', namespace: 'a', reference: 'v1' };
    expect(evaluatePolicy(policy, anonymous, remove, failures)).toBe('deny');
    expect(evaluatePolicy(policy, ci, remove, failures)).toBe('deny');
    expect(evaluatePolicy(policy, { ...alice, username: 'admin' }, remove, failures)).toBe('allow');
    expect(evaluatePolicy(policy, alice, remove, failures)).toBe('deny');
    // Written with has(), the rule says what it means for every caller.
    const explicit = policyOf('allow', [
      "request.action == 'delete-manifest' && (!has(identity.username) || identity.username != 'admin')",
    ]);
    expect(evaluatePolicy(explicit, anonymous, remove, failures)).toBe('deny');
    expect(evaluatePolicy(explicit, anonymous, pull, failures)).toBe('allow');
    // A claim that is not a boolean at run time refuses too.
    const stringAdmin: Identity = { ...ci, oidc: { provider_name: 'github', claims: { admin: 'yes' } } };
    expect(
      evaluatePolicy(policyOf('allow', ["identity.oidc.claims['admin']"]), stringAdmin, pull, failures),
    ).toBe('deny');
    const denied = records().filter(
      (record) => record['message'] === 'access policy rule failed, request denied',
    );
    expect(denied[0]).toMatchObject({
      level: 'WARN',
      rule: 'global.access_policy.rules[0]',
      action: 'delete-manifest',
    });
  });

  it('warns about a failing rule at most once a minute, and at debug level otherwise', () => {
    let now = 0;
    const { logger, records } = captureLogger('debug');
    const failures = new RuleFailureLog(logger, () => now);
    const policy = policyOf('deny', ["identity.username == 'x'"]);
    for (let i = 0; i < 3; i++) evaluatePolicy(policy, anonymous, pull, failures);
    now += 61_000;
    evaluatePolicy(policy, anonymous, pull, failures);
    const levels = records().map((record) => record['level']);
    expect(levels).toEqual(['WARN', 'DEBUG', 'DEBUG', 'WARN']);
    expect(records()[3]).toMatchObject({ failures_since_last_warning: 2 });
  });
});
