/**
 * The one table of OCI error kinds. Libraries throw `OciError(kind)`; one
 * handler at the HTTP edge writes `errorBody([...])` with `error.status`.
 *
 * A *kind* is what went wrong inside Angos; the wire `code` is what the client
 * reads. The distribution-spec says the `code` of an error body "MUST be one of"
 * its fourteen codes, so every 4xx kind below answers with one of them (the
 * closest match) and says the rest in its message and detail. Only the 5xx
 * kinds use codes outside that set (INTERNAL_ERROR, and distribution's
 * UNAVAILABLE), which the spec lets clients read as UNKNOWN.
 *
 * Statuses follow the spec's endpoint tables and, where it is silent, what
 * distribution (registry/api/errcode) and Angos do.
 */
export type OciErrorKind =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'TAG_INVALID'
  | 'BLOB_TOO_LARGE'
  | 'MANIFEST_TOO_LARGE'
  | 'RANGE_INVALID'
  | 'RANGE_NOT_SATISFIABLE'
  | 'TAG_IMMUTABLE'
  | 'REPLICATION_SUPERSEDED'
  | 'METHOD_NOT_ALLOWED'
  | 'ROUTE_UNKNOWN'
  | 'REQUEST_INVALID'
  | 'JOB_UNKNOWN'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UNAVAILABLE'
  | 'INTERNAL';

export interface OciErrorSpec {
  /** The `code` written in the JSON body. */
  readonly code: string;
  /** The HTTP status of the response. */
  readonly status: number;
  /** The default human-readable `message`. */
  readonly message: string;
}

/** The fourteen codes of the distribution-spec's error table (code-1 … code-14). */
export const SPEC_ERROR_CODES: readonly string[] = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
];

/**
 * Wire codes outside the distribution-spec table that the product documents for its own
 * extensions: answered only to Angos' own replication senders.
 */
export const EXTENSION_ERROR_CODES: readonly string[] = ['REPLICATION_SUPERSEDED'];

/** Wire code of the 5xx fallback: outside the spec's set, as a 5xx may be (same spelling as Angos). */
export const INTERNAL_ERROR_CODE = 'INTERNAL_ERROR';

export const OCI_ERRORS: Readonly<Record<OciErrorKind, OciErrorSpec>> = Object.freeze({
  // A blob (layer, config) is not in the registry or not readable from this namespace.
  BLOB_UNKNOWN: { code: 'BLOB_UNKNOWN', status: 404, message: 'blob unknown to registry' },
  // An upload request is malformed: missing digest on completion, bad body for the session state.
  BLOB_UPLOAD_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 400, message: 'blob upload invalid' },
  // The upload session id is unknown, expired or was cancelled.
  BLOB_UPLOAD_UNKNOWN: {
    code: 'BLOB_UPLOAD_UNKNOWN',
    status: 404,
    message: 'blob upload unknown to registry',
  },
  // A digest is malformed, uses an unsupported algorithm, or does not match the uploaded bytes.
  DIGEST_INVALID: {
    code: 'DIGEST_INVALID',
    status: 400,
    message: 'provided digest did not match uploaded content',
  },
  // A pushed manifest references a blob or child manifest the namespace does not hold (strict mode).
  MANIFEST_BLOB_UNKNOWN: {
    code: 'MANIFEST_BLOB_UNKNOWN',
    status: 404,
    message: 'manifest references a manifest or blob unknown to registry',
  },
  // A pushed manifest fails parsing or validation (JSON, schemaVersion, media type, descriptors).
  MANIFEST_INVALID: { code: 'MANIFEST_INVALID', status: 400, message: 'manifest invalid' },
  // No manifest under this tag or digest in the namespace.
  MANIFEST_UNKNOWN: { code: 'MANIFEST_UNKNOWN', status: 404, message: 'manifest unknown to registry' },
  // The namespace does not match the repository-name grammar.
  NAME_INVALID: { code: 'NAME_INVALID', status: 400, message: 'invalid repository name' },
  // The namespace holds nothing (or is not served here).
  NAME_UNKNOWN: { code: 'NAME_UNKNOWN', status: 404, message: 'repository name not known to registry' },
  // A declared length (Content-Length, Content-Range) disagrees with the bytes received.
  SIZE_INVALID: {
    code: 'SIZE_INVALID',
    status: 400,
    message: 'provided length did not match content length',
  },
  // No usable credentials; the edge adds WWW-Authenticate.
  UNAUTHORIZED: { code: 'UNAUTHORIZED', status: 401, message: 'authentication required' },
  // Authenticated, but the access policy or webhook refused the action.
  DENIED: { code: 'DENIED', status: 403, message: 'requested access to the resource is denied' },
  // A well-formed request for something this registry does not do (distribution answers 405).
  UNSUPPORTED: { code: 'UNSUPPORTED', status: 405, message: 'the operation is unsupported' },
  // Rate or concurrency limit reached.
  TOOMANYREQUESTS: { code: 'TOOMANYREQUESTS', status: 429, message: 'too many requests' },
  // A tag reference breaks the tag grammar; the spec has no tag code, MANIFEST_INVALID is the closest.
  TAG_INVALID: { code: 'MANIFEST_INVALID', status: 400, message: 'invalid tag' },
  // An upload grew beyond global.max_blob_size (configuration reference: BLOB_UPLOAD_INVALID, 413).
  BLOB_TOO_LARGE: {
    code: 'BLOB_UPLOAD_INVALID',
    status: 413,
    message: 'blob exceeds the maximum blob size',
  },
  // A manifest body beyond global.max_manifest_size; the spec requires 413, MANIFEST_INVALID as Angos does.
  MANIFEST_TOO_LARGE: {
    code: 'MANIFEST_INVALID',
    status: 413,
    message: 'manifest exceeds the maximum manifest size',
  },
  // An upload chunk does not start where the session ends, or its Content-Range is malformed (spec: 416).
  RANGE_INVALID: { code: 'BLOB_UPLOAD_INVALID', status: 416, message: 'invalid content range' },
  // A blob GET Range starts beyond the blob; the spec has no range code, SIZE_INVALID as Angos does.
  RANGE_NOT_SATISFIABLE: { code: 'SIZE_INVALID', status: 416, message: 'requested range not satisfiable' },
  // Moving an immutable tag: a refused write, 409 with DENIED as Angos does.
  TAG_IMMUTABLE: { code: 'DENIED', status: 409, message: 'tag is immutable' },
  // A replicated write (X-Angos-Source-Timestamp) older than the tag it would change: the tag
  // holds a later write (last-writer-wins). The replication guide names this code and status; the
  // sender counts it as convergence. Only replication senders ever see it: the header is honoured
  // for identities allowed to replicate only.
  REPLICATION_SUPERSEDED: {
    code: 'REPLICATION_SUPERSEDED',
    status: 409,
    message: 'a newer write of this tag exists (last-writer-wins)',
  },
  // The route exists but not with this method; the edge adds an Allow header.
  METHOD_NOT_ALLOWED: { code: 'UNSUPPORTED', status: 405, message: 'method not allowed' },
  // A /v2/ path that names no endpoint of the API: 404 with an OCI-shaped body.
  ROUTE_UNKNOWN: { code: 'UNSUPPORTED', status: 404, message: 'unknown API endpoint' },
  // A malformed request outside the cases above (bad query value, bad header): UNSUPPORTED covers
  // "an invalid set of parameters" in distribution's description of that code.
  REQUEST_INVALID: { code: 'UNSUPPORTED', status: 400, message: 'invalid request' },
  // The jobs API (/v2/_ext/jobs/…) names a job its queue does not hold (any more). The spec has no
  // job code; NAME_UNKNOWN ("the name used during an operation is unknown to the registry") is the
  // closest: the job id in the URL names nothing, as an unknown repository name does.
  JOB_UNKNOWN: { code: 'NAME_UNKNOWN', status: 404, message: 'job unknown to registry' },
  // The gateway could not reach the service behind it (split deployment): 502, not a bug of ours.
  UPSTREAM_UNAVAILABLE: { code: INTERNAL_ERROR_CODE, status: 502, message: 'registry service unavailable' },
  // Storage or locks failed after their retries (unreachable, timed out, throttled, contended): not
  // a bug, and worth retrying later. 503 with distribution's UNAVAILABLE code.
  UNAVAILABLE: { code: 'UNAVAILABLE', status: 503, message: 'service unavailable, try again later' },
  // Fallback for bugs only; never for bad input.
  INTERNAL: { code: INTERNAL_ERROR_CODE, status: 500, message: 'internal server error' },
});

/** A failure with an OCI meaning. `detail` must be JSON-serializable; it is sent to the client. */
export class OciError extends Error {
  override readonly name = 'OciError';
  readonly kind: OciErrorKind;
  readonly code: string;
  readonly status: number;
  readonly detail?: unknown;

  constructor(kind: OciErrorKind, detail?: unknown, message?: string) {
    const spec = OCI_ERRORS[kind];
    super(message ?? spec.message);
    this.kind = kind;
    this.code = spec.code;
    this.status = spec.status;
    this.detail = detail;
  }
}

export function isOciError(value: unknown): value is OciError {
  return value instanceof OciError;
}

/**
 * The JSON body of an error response: `{"errors":[{"code","message","detail"?}]}`.
 * A detail that cannot be serialized (a cycle, a BigInt) is dropped rather than
 * turning the error response itself into a failure.
 */
export function errorBody(errors: readonly OciError[]): string {
  return `{"errors":[${errors.map(serializeError).join(',')}]}`;
}

function serializeError(error: OciError): string {
  const entry = { code: error.code, message: error.message };
  if (error.detail === undefined) return JSON.stringify(entry);
  try {
    return JSON.stringify({ ...entry, detail: error.detail });
  } catch {
    return JSON.stringify(entry);
  }
}
