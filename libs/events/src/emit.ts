import type { RequestContext } from '@angos/http';
import { OciError } from '@angos/oci';
import { type EventDispatcher, EventQueueError, RequiredWebhookError } from './dispatcher.js';
import type { EventActor, EventInput } from './event.js';

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
 * What a service calls once an operation is committed (or, for a pull, once the content is
 * resolved and before any of the answer is sent). The change stands whatever happens here: a
 * `required` webhook that refused the event, or `async` deliveries that could not be queued,
 * answer 503 UNAVAILABLE naming the webhook, and a client that repeats the operation emits a new
 * event of it. `committed` says whether the operation changed something (the message says so).
 */
export async function emitForRequest(
  events: EventDispatcher | undefined,
  inputs: readonly EventInput[],
  actor: EventActor,
  committed: boolean,
): Promise<void> {
  if (events === undefined || inputs.length === 0) return;
  try {
    await events.emit(inputs, actor);
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
