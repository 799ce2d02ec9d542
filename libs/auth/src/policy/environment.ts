import type { Identity } from '../identity.js';
import type { AccessRequest } from '../request.js';
import { type CelEnvironment, newCelEnvironment } from './cel.js';

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

let shared: CelEnvironment | undefined;

/**
 * One environment for every rule: declarations never change, and compiling against it is cheap.
 * Made by the first rule compiled, so a configuration without rules never loads cel-js (cel.ts).
 */
export function policyEnvironment(): CelEnvironment {
  if (shared === undefined) {
    shared = newCelEnvironment()
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
