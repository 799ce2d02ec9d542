import type { IncomingMessage } from 'node:http';
import type { AccessRequest, Auth, ClientRequestDetails, Identity } from '@angos/auth';
import { SOURCE_TIMESTAMP_HEADER } from '@angos/http';
import type { Logger } from '@angos/observability';
import { REPLICATE_ACTION } from '@angos/oci';

/**
 * `X-Angos-Source-Timestamp`, the author's time of a replicated write. Every `x-angos-*` header a
 * client sends is stripped before anything reads it, so this one is taken first, and forwarded
 * (in the signed context) only when the policy allows the caller the `replicate` action for the
 * request: anyone else could backdate or forward-date a tag with it.
 */
const sent = new WeakMap<IncomingMessage, string>();

/** Keeps the header's value for `honouredSourceTimestamp`; call before the `x-angos-*` headers go. */
export function takeSourceTimestamp(req: IncomingMessage): void {
  const value = req.headers[SOURCE_TIMESTAMP_HEADER];
  if (typeof value === 'string') sent.set(req, value);
}

/** The writes a source timestamp applies to. */
const REPLICABLE = new Set(['put-manifest', 'delete-manifest']);

/**
 * The source timestamp to forward for an allowed request, or undefined: none sent, not a manifest
 * write, or the caller may not replicate (then the header is ignored, and logged).
 */
export async function honouredSourceTimestamp(
  req: IncomingMessage,
  deps: { auth: Auth; logger: Logger },
  identity: Identity,
  request: AccessRequest,
  client: ClientRequestDetails,
): Promise<string | undefined> {
  const value = sent.get(req);
  if (value === undefined || !REPLICABLE.has(request.action)) return undefined;
  const decision = await deps.auth.authorize(identity, { ...request, action: REPLICATE_ACTION }, client);
  if (decision.decision === 'allow') return value;
  deps.logger.info('source timestamp ignored', {
    reason: 'the caller may not replicate',
    action: request.action,
    namespace: request.namespace,
    decided_by: decision.detail,
    client_ip: identity.client_ip,
    username: identity.username,
  });
  return undefined;
}
