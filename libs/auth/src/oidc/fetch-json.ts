/** How a document is fetched; tests and callers may substitute their own (same contract as fetch). */
export type FetchLike = (url: string, init: { signal: AbortSignal }) => Promise<Response>;

export const DOCUMENT_FETCH_TIMEOUT_MS = 10_000;

/** JWKS and discovery documents are a few kilobytes; anything far larger is not one. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

export class DocumentFetchError extends Error {
  override readonly name = 'DocumentFetchError';
}

/** GETs a JSON document, bounded in time and size. Throws DocumentFetchError with the reason. */
export async function fetchJson(
  url: string,
  fetchFn: FetchLike = fetch,
  timeoutMs = DOCUMENT_FETCH_TIMEOUT_MS,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetchFn(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new DocumentFetchError(`cannot fetch ${url}: ${(error as Error).message}`);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new DocumentFetchError(`${url} answered ${response.status}`);
  }
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_DOCUMENT_BYTES) {
    await response.body?.cancel();
    throw new DocumentFetchError(`${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw new DocumentFetchError(`cannot read ${url}: ${(error as Error).message}`);
  }
  if (text.length > MAX_DOCUMENT_BYTES) {
    throw new DocumentFetchError(`${url} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DocumentFetchError(`${url} is not JSON`);
  }
}
