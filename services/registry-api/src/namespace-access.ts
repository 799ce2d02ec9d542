import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Auth, ClientRequestDetails, Identity } from '@angos/auth';
import type { RequestContext } from '@angos/http';
import type { Readable } from '@angos/registry';

/** Decisions one request remembers (a listing of every namespace stays bounded). */
const CACHE_LIMIT = 50_000;

/**
 * Whether the caller of a cross-namespace listing may see a namespace: the `list-namespaces`
 * action with `request.namespace` set to it, judged by the same policies the gateway applies to
 * every request (@angos/auth: global policy, repository policy, authorization webhook), for the
 * caller as the gateway authenticated it (the signed context's policy identity). One source of
 * truth: the configuration's policies, evaluated by the one evaluator. A request that reached
 * registry-api without a policy identity is judged as an anonymous caller from its address.
 * Decisions are remembered for the request, so a namespace met twice is judged once.
 */
export function namespaceAccess(
  auth: Pick<Auth, 'authorize'>,
  req: IncomingMessage,
  context: RequestContext,
): Readable {
  const identity: Identity = context.policyIdentity ?? { client_ip: context.clientIp };
  const client: ClientRequestDetails = {
    method: req.method ?? 'GET',
    uri: req.url ?? '/',
    host: req.headers.host ?? '',
    proto: (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http',
    headers: req.headers,
  };
  const decided = new Map<string, Promise<boolean>>();
  return (namespace) => {
    let decision = decided.get(namespace);
    if (decision === undefined) {
      decision = auth
        .authorize(identity, { action: 'list-namespaces', namespace }, client)
        .then((authorization) => authorization.decision === 'allow');
      if (decided.size < CACHE_LIMIT) decided.set(namespace, decision);
    }
    return decision;
  };
}
