import type { Config } from '@angos/config';
import { repositoryKeyFor } from '@angos/config';
import type { Identity } from './identity.js';
import type { CompiledPolicies } from './policy/compile.js';
import { evaluatePolicy, type PolicyDecision, type RuleFailureLog } from './policy/evaluate.js';
import { webhookNameFor } from './repository.js';
import type { AccessRequest } from './request.js';
import type { WebhookAuthorizer } from './webhook/authorizer.js';
import type { ClientRequestDetails } from './webhook/headers.js';

/** Where a refusal came from, for the log. */
export type DecidedBy = 'global policy' | 'repository policy' | 'webhook';

export type Authorization =
  | { readonly decision: 'allow' }
  | { readonly decision: 'deny'; readonly by: DecidedBy; readonly detail: string };

export interface AuthorizationSetup {
  readonly config: Config;
  readonly policies: CompiledPolicies;
  readonly webhooks: ReadonlyMap<string, WebhookAuthorizer>;
}

/**
 * Authorization, cheapest first and fail-closed: the global access policy, then the access policy
 * of the repository owning the namespace (a repository policy can only narrow what the global one
 * allows), then the authorization webhook in force. Every stage must allow.
 */
export async function authorizeRequest(
  setup: AuthorizationSetup,
  identity: Identity,
  request: AccessRequest,
  client: ClientRequestDetails,
  failures: RuleFailureLog,
): Promise<Authorization> {
  const deny = (by: DecidedBy, detail: string): Authorization => ({ decision: 'deny', by, detail });

  if (evaluatePolicy(setup.policies.global, identity, request, failures) === 'deny') {
    return deny('global policy', 'global.access_policy');
  }
  const key = request.namespace === undefined ? undefined : repositoryKeyFor(setup.config, request.namespace);
  const repositoryPolicy = key === undefined ? undefined : setup.policies.repositories.get(key);
  if (repositoryPolicy !== undefined) {
    const decision: PolicyDecision = evaluatePolicy(repositoryPolicy, identity, request, failures);
    if (decision === 'deny')
      return deny('repository policy', `repository.${JSON.stringify(key)}.access_policy`);
  }
  const webhookName = webhookNameFor(setup.config, request.namespace);
  if (webhookName !== undefined) {
    const webhook = setup.webhooks.get(webhookName);
    // The configuration guarantees the name exists; a missing one must not open the door.
    if (webhook === undefined) return deny('webhook', `auth.webhook.${webhookName} (undefined)`);
    if ((await webhook.authorize(identity, request, client)) === 'deny') {
      return deny('webhook', `auth.webhook.${webhookName}`);
    }
  }
  return { decision: 'allow' };
}
