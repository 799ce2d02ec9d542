import type { IncomingMessage, ServerResponse } from 'node:http';
import { getContext, type Handler, type RequestContext, setContext } from '@angos/http';

/** Hands an authorized request, with the gateway's decisions, to the service behind it. */
export type Forwarder = (
  req: IncomingMessage,
  res: ServerResponse,
  context: RequestContext,
) => void | Promise<void>;

/**
 * One process: the same request and response objects, no copy, no hop. The gateway has usually
 * attached this very context already (for the access log); it is set again only when it differs.
 */
export function inProcessForwarder(handler: Handler): Forwarder {
  return (req, res, context) => {
    if (getContext(req) !== context) setContext(req, context);
    return handler(req, res);
  };
}
