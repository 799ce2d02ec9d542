import type { ServerResponse } from 'node:http';
import { sendBody } from '@angos/http';
import { errorBody, OCI_ERRORS, OciError } from '@angos/oci';

export const UPSTREAM_UNAVAILABLE_STATUS = OCI_ERRORS.UPSTREAM_UNAVAILABLE.status;

/**
 * registry-api could not be reached: 502 with an OCI body. Written here rather than through
 * sendError because the connection may have to be closed: the client may still be sending a body
 * nobody will read.
 */
export function sendUpstreamUnavailable(res: ServerResponse, closeConnection: boolean): void {
  sendBody(
    res,
    UPSTREAM_UNAVAILABLE_STATUS,
    'application/json',
    errorBody([new OciError('UPSTREAM_UNAVAILABLE')]),
    closeConnection ? { connection: 'close' } : {},
  );
}
