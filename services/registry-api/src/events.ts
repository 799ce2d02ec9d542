import { type EventInput, emitForRequest } from '@angos/events';
import type { RouteContext } from './route-context.js';

/** The events of what a route did, once committed (pulls: before the body); see `emitForRequest`. */
export function emitEvents(
  ctx: RouteContext,
  inputs: readonly EventInput[],
  committed: boolean,
): Promise<void> {
  return emitForRequest(ctx.events, inputs, ctx.actor, committed);
}
