import { createRequire } from 'node:module';
import type * as Cel from '@marcbachmann/cel-js';
import type { Identity } from '../identity.js';
import type { AccessRequest } from '../request.js';

/**
 * The variables access policy rules are written against, with their types, so a rule is
 * type-checked when the configuration loads (a misspelled field or a comparison of a string with
 * a number is a configuration error, not a surprise at request time).
 */
export const IDENTITY_SCHEMA = {
  id: 'string',
  username: 'string',
  client_ip: 'string',
  certificate: { common_names: 'list<string>', organizations: 'list<string>' },
  oidc: { provider_name: 'string', claims: 'map<string, dyn>' },
} as const;

export const REQUEST_SCHEMA = {
  action: 'string',
  namespace: 'string',
  digest: 'string',
  reference: 'string',
  tags: 'list<string>',
  session_id: 'string',
  from: 'string',
  n: 'int',
  last: 'string',
  artifact_type: 'string',
  queue: 'string',
  job_id: 'string',
} as const;

const require = createRequire(import.meta.url);

let shared: Cel.Environment | undefined;

/**
 * One environment for every rule: declarations never change, and compiling against it is cheap.
 * cel-js costs ~6 MiB of RSS, so it is loaded by the first rule compiled, not with this module: a
 * configuration without rules never loads it. Loaded with require (an ES module, which Node ≥ 20.19
 * loads synchronously) because rules are compiled by `checkAuthConfig`, which the CLI calls
 * synchronously at startup and on reload.
 */
export function policyEnvironment(): Cel.Environment {
  if (shared === undefined) {
    const { Environment } = require('@marcbachmann/cel-js') as typeof Cel;
    shared = new Environment()
      .registerVariable({ name: 'identity', schema: IDENTITY_SCHEMA })
      .registerVariable({ name: 'request', schema: REQUEST_SCHEMA });
  }
  return shared;
}

/** The CEL activation of a request: absent fields stay absent; `n` becomes a CEL int. */
export function activation(identity: Identity, request: AccessRequest): Record<string, unknown> {
  const { n, ...rest } = request;
  return {
    identity,
    request: n === undefined ? rest : { ...rest, n: BigInt(n) },
  };
}
