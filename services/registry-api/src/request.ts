import type { IncomingMessage } from 'node:http';
import { type DigestParts, isValidNamespace, OciError, parseDigest } from '@angos/oci';
import { markChunksUnshared } from '@angos/storage';

/** The raw path and query of a request. The path is never normalised or percent-decoded. */
export interface ParsedUrl {
  readonly pathname: string;
  readonly query: URLSearchParams;
}

export function parseUrl(url: string | undefined): ParsedUrl {
  const raw = url ?? '/';
  const mark = raw.indexOf('?');
  return mark === -1
    ? { pathname: raw, query: new URLSearchParams() }
    : { pathname: raw.slice(0, mark), query: new URLSearchParams(raw.slice(mark + 1)) };
}

export function assertNamespace(namespace: string): void {
  if (!isValidNamespace(namespace))
    throw new OciError('NAME_INVALID', { namespace: namespace.slice(0, 300) });
}

export function digestParam(value: string | null | undefined): DigestParts {
  if (value === null || value === undefined || value === '')
    throw new OciError('DIGEST_INVALID', 'digest required');
  return parseDigest(value);
}

/** Content-Length as a number, or undefined when the body is chunked or absent. */
export function contentLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  const value = Number(header);
  if (!/^\d+$/.test(header) || !Number.isSafeInteger(value)) {
    throw new OciError('REQUEST_INVALID', { header: 'Content-Length' });
  }
  return value;
}

/** True when the request carries a body (a length above zero, or chunked transfer). */
export function hasBody(req: IncomingMessage): boolean {
  const length = contentLength(req);
  if (length !== undefined) return length > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads a small body (a manifest) into memory, refusing it as soon as it
 * exceeds `limit`, so a huge or endless body costs at most `limit` bytes.
 */
export async function readBoundedBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: () => OciError,
): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** `n` of a paginated list: a non-negative integer, or undefined when absent. */
export function pageSize(query: URLSearchParams): number | undefined {
  const n = query.get('n');
  if (n === null) return undefined;
  const value = Number(n);
  if (!/^\d{1,9}$/.test(n) || !Number.isSafeInteger(value)) throw new OciError('REQUEST_INVALID', { n });
  return value;
}

/** `last` of a paginated list, or undefined. */
export function pageLast(query: URLSearchParams): string | undefined {
  return query.get('last') ?? undefined;
}

/**
 * The request's body as a blob's bytes: Node's HTTP parser copies each chunk into a buffer of its
 * own that nothing else keeps, so storage may free each one once written (markChunksUnshared).
 */
export function blobBody(req: IncomingMessage): IncomingMessage {
  return markChunksUnshared(req);
}
