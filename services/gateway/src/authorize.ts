import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '@angos/http';
import { actionFor, type Route } from '@angos/oci';
import { decide, type PolicyConfig } from './policy.js';

export type Authorization =
  | { readonly outcome: 'allow'; readonly context: RequestContext }
  | { readonly outcome: 'deny'; readonly context: RequestContext };

const NO_QUERY = new URLSearchParams();

function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '';
  const start = url.indexOf('?');
  return start === -1 ? NO_QUERY : new URLSearchParams(url.slice(start + 1));
}

function namespaceOf(route: Route | undefined): string | undefined {
  return route !== undefined && 'namespace' in route ? route.namespace : undefined;
}

/**
 * Authorizes one /v2 request and builds the context the services behind the gateway act on.
 * A cross-repository mount also needs `get-blob` on its source: when that is allowed, the source
 * goes into `mountAllowedFrom`; when not, the registry answers with a plain upload session, as the
 * distribution-spec prescribes for a mount it will not perform.
 */
export function authorize(
  config: PolicyConfig,
  req: IncomingMessage,
  route: Route | undefined,
): Authorization {
  const namespace = namespaceOf(route);
  // Only upload starts read the query; everything else skips parsing it.
  const query = route?.kind === 'uploads' ? queryOf(req) : NO_QUERY;
  const action = route === undefined ? undefined : actionFor(route, req.method ?? '', query);
  const context: { clientIp: string; mountAllowedFrom?: string[] } = {
    clientIp: req.socket.remoteAddress ?? '',
  };

  if (decide(config, { action, namespace }) === 'deny') return { outcome: 'deny', context };

  if (action === 'mount-blob') {
    const from = query.get('from') ?? '';
    if (from !== '' && decide(config, { action: 'get-blob', namespace: from }) === 'allow') {
      context.mountAllowedFrom = [from];
    }
  }
  return { outcome: 'allow', context };
}
