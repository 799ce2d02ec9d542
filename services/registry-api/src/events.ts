import { type EventActor, type EventInput, EventQueueError, RequiredWebhookError } from '@angos/events';
import type { RequestContext } from '@angos/http';
import { OciError } from '@angos/oci';
import type { RouteContext } from './route-context.js';

/** The event actor of a request: who the gateway authenticated, and from where. */
export function actorOf(context: RequestContext): EventActor {
  const identity = context.identity;
  return {
    id: identity?.id,
    username: identity?.username ?? identity?.oidc?.subject ?? identity?.certificate?.commonNames[0],
    client_ip: context.clientIp === '' ? undefined : context.clientIp,
  };
}

/**
 * Hands what an operation did to the event webhooks, once it is committed (or, for a pull, once
 * the content is resolved and before its body is sent). The change stands whatever happens here:
 * a `required` webhook that refused the event, or `async` deliveries that could not be queued,
 * answer 503 UNAVAILABLE naming the webhook, and a client that repeats the operation emits a new
 * event of it.
 */
export async function emitEvents(
  ctx: RouteContext,
  inputs: readonly EventInput[],
  committed: boolean,
): Promise<void> {
  if (ctx.events === undefined || inputs.length === 0) return;
  try {
    await ctx.events.emit(inputs, ctx.actor);
  } catch (error) {
    const outcome = committed ? 'the change is stored, but ' : '';
    if (error instanceof RequiredWebhookError) {
      const names = error.webhooks.map((name) => `"${name}"`).join(', ');
      throw new OciError('UNAVAILABLE', {
        reason: `${outcome}the required event webhook ${names} did not accept its event`,
        webhooks: error.webhooks,
      });
    }
    if (error instanceof EventQueueError) {
      throw new OciError('UNAVAILABLE', {
        reason: `${outcome}its event deliveries could not be queued: repeat it`,
      });
    }
    throw error;
  }
}
