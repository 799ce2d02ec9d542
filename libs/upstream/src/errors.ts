/**
 * What went wrong with an upstream, as the pull-through cache decides on it:
 *
 * - `not-found`: the upstream answered 404 for the manifest, blob or repository.
 * - `unauthorized`, `forbidden`: 401 (after the one retry with fresh credentials) and 403, from the
 *   registry or its token endpoint. Terminal: asking again with the same credentials will not help.
 * - `rate-limited`: 429, with the upstream's `Retry-After` when it sent one.
 * - `unavailable`: no usable answer: connection refused or reset, TLS failure, a timeout, a 5xx,
 *   a body cut short, too many redirects.
 * - `digest-mismatch`: bytes that do not hash to the digest they were asked for or announced with.
 * - `invalid-response`: an answer the client cannot use: another 4xx, a manifest over
 *   `max_manifest_size`, a token or document that does not parse.
 */
export type UpstreamErrorKind =
  | 'not-found'
  | 'unauthorized'
  | 'forbidden'
  | 'rate-limited'
  | 'unavailable'
  | 'digest-mismatch'
  | 'invalid-response';

export interface UpstreamErrorDetails {
  /** The upstream's configured URL. */
  readonly upstream: string;
  /** The HTTP status that caused it, when there was one. */
  readonly status?: number;
  /** Seconds the upstream asked to wait (`Retry-After` on a 429 or 503). */
  readonly retryAfterSeconds?: number;
  /** The first OCI error code of the upstream's error body, e.g. `TOOMANYREQUESTS`. */
  readonly code?: string;
  readonly cause?: unknown;
}

/** The one error the upstream client throws (or destroys a blob stream with). */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  readonly upstream: string;
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly code: string | undefined;

  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    details: UpstreamErrorDetails,
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.upstream = details.upstream;
    this.status = details.status;
    this.retryAfterSeconds = details.retryAfterSeconds;
    this.code = details.code;
  }

  /** Whether the same request may work later (rate limit, outage) rather than never. */
  get transient(): boolean {
    return this.kind === 'rate-limited' || this.kind === 'unavailable';
  }
}

export function isUpstreamError(value: unknown, kind?: UpstreamErrorKind): value is UpstreamError {
  return value instanceof UpstreamError && (kind === undefined || value.kind === kind);
}

/** An upstream's TLS files could not be read: a configuration problem, reported when the client is built. */
export class UpstreamSetupError extends Error {
  override readonly name = 'UpstreamSetupError';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
  }
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}
