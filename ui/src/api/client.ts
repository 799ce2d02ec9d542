import type {
  Job,
  JobQueue,
  JobState,
  ManifestDetail,
  NamespaceEntry,
  Page,
  RepositoryEntry,
  Revision,
  SortOrder,
  TagDetail,
  TagSort,
  UiConfig,
  Upload,
} from './types.js';

/** An answer other than 2xx: the status and the first OCI error of its body, when it had one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What the client needs of `fetch`; tests pass their own. */
export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/**
 * The `last` marker of the next page from a `Link: <...?n=..&last=..>; rel="next"` header, or
 * undefined when no other page follows.
 */
export function nextMarker(link: string | null): string | undefined {
  if (link === null) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part);
    if (match === null) continue;
    const target = new URL(match[1] ?? '', 'http://registry.invalid');
    return target.searchParams.get('last') ?? undefined;
  }
  return undefined;
}

/**
 * Path segments go out as they are: the registry matches paths without percent-decoding them, and
 * namespaces ([a-z0-9._/-]), tags, digests (`sha256:…`), upload and job ids need no escaping. One
 * that would (typed into the address bar) is refused by the server as NAME_INVALID, never reinterpreted.
 */
function segment(text: string): string {
  return text.replace(/[?#\s]/g, encodeURIComponent);
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

async function failure(response: Response): Promise<ApiError> {
  let code: string | undefined;
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    if (first?.code !== undefined) code = first.code;
    if (first?.message) message = first.message;
  } catch {
    // Not an OCI error body: the status says enough.
  }
  return new ApiError(response.status, code, message);
}

export interface PageRequest {
  readonly n?: number;
  readonly last?: string | undefined;
}

/**
 * The extension API and the few OCI endpoints the UI uses, same origin: the browser sends the
 * credentials it logged in with. One call is one request: pages are fetched one at a time.
 */
export class ApiClient {
  readonly #fetch: Fetch;

  constructor(fetchImpl: Fetch = (input, init) => fetch(input, init)) {
    this.#fetch = fetchImpl;
  }

  async #get<T>(path: string): Promise<{ body: T; next: string | undefined }> {
    const response = await this.#fetch(path, { headers: { Accept: 'application/json' } });
    if (!response.ok) throw await failure(response);
    return { body: (await response.json()) as T, next: nextMarker(response.headers.get('Link')) };
  }

  async #send(method: string, path: string): Promise<void> {
    const response = await this.#fetch(path, { method });
    if (!response.ok) throw await failure(response);
  }

  async config(): Promise<UiConfig> {
    return (await this.#get<UiConfig>('/v2/_ext/_ui/config')).body;
  }

  /** The configured repositories (`[repository."<name>"]`) the caller may see. */
  async repositories(page: PageRequest = {}): Promise<Page<RepositoryEntry>> {
    const { body, next } = await this.#get<{ repositories: RepositoryEntry[] }>(
      `/v2/_ext/_repositories${query({ n: page.n, last: page.last })}`,
    );
    return { items: body.repositories, next };
  }

  /** Direct children of `parent` ("" = the root). */
  async namespaces(parent: string, page: PageRequest = {}): Promise<Page<NamespaceEntry>> {
    const { body, next } = await this.#get<{ entries: NamespaceEntry[] }>(
      `/v2/_ext/_namespaces${query({ parent, n: page.n, last: page.last })}`,
    );
    return { items: body.entries, next };
  }

  /** Namespaces whose path contains `text`, case-insensitively, flat. */
  async searchNamespaces(text: string, page: PageRequest = {}): Promise<Page<NamespaceEntry>> {
    const { body, next } = await this.#get<{ entries: NamespaceEntry[] }>(
      `/v2/_ext/_namespaces${query({ q: text, n: page.n, last: page.last })}`,
    );
    return { items: body.entries, next };
  }

  async tags(
    namespace: string,
    options: PageRequest & { sort?: TagSort; order?: SortOrder } = {},
  ): Promise<Page<TagDetail>> {
    const { body, next } = await this.#get<{ tags: TagDetail[]; total: number }>(
      `/v2/_ext/${segment(namespace)}/_tags${query({ n: options.n, last: options.last, sort: options.sort, order: options.order })}`,
    );
    return { items: body.tags, next, total: body.total };
  }

  async revisions(namespace: string, page: PageRequest = {}): Promise<Page<Revision>> {
    const { body, next } = await this.#get<{ revisions: Revision[]; total: number }>(
      `/v2/_ext/${segment(namespace)}/_revisions${query({ n: page.n, last: page.last })}`,
    );
    return { items: body.revisions, next, total: body.total };
  }

  async manifest(namespace: string, digest: string): Promise<ManifestDetail> {
    return (await this.#get<ManifestDetail>(`/v2/_ext/${segment(namespace)}/_manifests/${segment(digest)}`))
      .body;
  }

  async uploads(namespace: string, page: PageRequest = {}): Promise<Page<Upload>> {
    const { body, next } = await this.#get<{ uploads: Upload[] }>(
      `/v2/_ext/${segment(namespace)}/_uploads${query({ n: page.n, last: page.last })}`,
    );
    return { items: body.uploads, next };
  }

  cancelUpload(namespace: string, id: string): Promise<void> {
    return this.#send('DELETE', `/v2/${segment(namespace)}/blobs/uploads/${segment(id)}`);
  }

  /** Deletes a tag (the tag only) or a manifest by digest (and every tag pointing at it). */
  deleteManifest(namespace: string, reference: string): Promise<void> {
    return this.#send('DELETE', `/v2/${segment(namespace)}/manifests/${segment(reference)}`);
  }

  async jobs(state: JobState, queue: JobQueue, page: PageRequest = {}): Promise<Page<Job>> {
    const { body, next } = await this.#get<{ jobs: Job[] }>(
      `/v2/_ext/jobs/${state}${query({ queue, n: page.n, last: page.last })}`,
    );
    return { items: body.jobs, next };
  }

  retryJob(queue: JobQueue, id: string): Promise<void> {
    return this.#send('POST', `/v2/_ext/jobs/failed/${queue}/${segment(id)}/retry`);
  }

  deleteJob(state: JobState, queue: JobQueue, id: string): Promise<void> {
    return this.#send('DELETE', `/v2/_ext/jobs/${state}/${queue}/${segment(id)}`);
  }
}

export const api = new ApiClient();
