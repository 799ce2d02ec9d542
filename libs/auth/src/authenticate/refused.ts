import { OciError } from '@angos/oci';

/**
 * Authentication declined to look at the credentials at all: the client address failed too often
 * (429 TOOMANYREQUESTS) or too many password checks are waiting already (503 UNAVAILABLE). Unlike
 * a rejection, which leaves the caller anonymous, the request is answered with this error and a
 * `Retry-After` of `retryAfterSeconds`.
 */
export class AuthenticationRefused extends OciError {
  constructor(
    kind: 'TOOMANYREQUESTS' | 'UNAVAILABLE',
    readonly retryAfterSeconds: number,
    message: string,
  ) {
    super(kind, undefined, message);
  }
}
