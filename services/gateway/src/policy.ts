import type { Action } from '@angos/oci';

export type Decision = 'allow' | 'deny';

export interface AccessPolicySection {
  readonly default?: Decision;
}

/** The part of the configuration authorization reads. */
export interface PolicyConfig {
  readonly global?: { readonly access_policy?: AccessPolicySection | undefined } | undefined;
  readonly repository?:
    | Readonly<Record<string, { readonly access_policy?: AccessPolicySection | undefined } | undefined>>
    | undefined;
}

/** What is being asked: the action (undefined for requests outside the action table) and where. */
export interface AccessRequest {
  readonly action: Action | undefined;
  readonly namespace: string | undefined;
}

/** The documented default of `access_policy.default`, also when the section is absent. */
export const DEFAULT_DECISION: Decision = 'deny';

/**
 * The `[repository."<key>"]` entry owning a namespace: the key is a namespace prefix (`team` owns
 * `team` and `team/app`). Keys never overlap (the configuration refuses it), so walking the
 * namespace's own prefixes finds at most one, in as many lookups as the namespace has components.
 */
export function repositoryKeyFor(config: PolicyConfig, namespace: string): string | undefined {
  const repositories = config.repository;
  if (repositories === undefined) return undefined;
  let end = namespace.indexOf('/');
  for (;;) {
    const prefix = end === -1 ? namespace : namespace.slice(0, end);
    if (Object.hasOwn(repositories, prefix)) return prefix;
    if (end === -1) return undefined;
    end = namespace.indexOf('/', end + 1);
  }
}

/**
 * The access policy in force for a namespace: the repository's own `access_policy` when it has
 * one, else the global one; for requests without a namespace (catalog, API version) the global one.
 */
export function policyFor(
  config: PolicyConfig,
  namespace: string | undefined,
): AccessPolicySection | undefined {
  if (namespace !== undefined) {
    const key = repositoryKeyFor(config, namespace);
    const own = key === undefined ? undefined : config.repository?.[key]?.access_policy;
    if (own !== undefined) return own;
  }
  return config.global?.access_policy;
}

/**
 * Decides one request. Today a policy is only its `default`; rules (CEL) and webhooks arrive later
 * and will be evaluated here, against `request.action`, before falling back to the default.
 */
export function decide(config: PolicyConfig, request: AccessRequest): Decision {
  return policyFor(config, request.namespace)?.default ?? DEFAULT_DECISION;
}
