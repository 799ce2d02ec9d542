import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import type { DownstreamConfig } from '@angos/config';
import { SOURCE_TIMESTAMP_HEADER } from '@angos/http';
import { isValidTag, MANIFEST_MEDIA_TYPES } from '@angos/oci';
import {
  basicAuthorization,
  header,
  type IssuedToken,
  nextTagListPage,
  type RequestBody,
  readBody,
  type SendOptions,
  type TokenEndpoint,
  Transport,
  UpstreamAuth,
  type UpstreamError,
  type UpstreamErrorKind,
} from '@angos/upstream';

const USER_AGENT = 'angos-replication';
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
/** Only the start of an error body is read, for its OCI error code. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
/** Bounds of a downstream's tag list (reconciliation): pages followed, bytes of one page. */
const MAX_TAG_PAGES = 1000;
const MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024;
/**
 * A blob upload's answer comes after its last byte: the response deadline covers the whole body,
 * so it is long; a stalled transfer is caught by the idle timeout instead.
 */
const TIMEOUTS = { responseMs: 6 * 60 * 60 * 1000, idleMs: 60_000 };

/** What a write did on the downstream. */
export type WriteOutcome = 'pushed' | 'converged' | 'superseded' | 'unsupported';

/**
 * The client of one downstream registry (`[[repository."<key>".downstream]]`): the writes
 * replication makes, over the same transport and authorization as the pull-through client
 * (TLS files, mTLS, `max_redirect`, Basic, Bearer). Namespaces are the downstream's own (the
 * caller maps them). Failures are UpstreamErrors with a `kind`.
 */
export class DownstreamClient {
  readonly name: string;
  readonly #transport: Transport;
  readonly #auth: UpstreamAuth;
  readonly #basic: string | undefined;
  readonly #base: URL;

  /** Throws UpstreamSetupError when a TLS file of the downstream cannot be read. */
  constructor(config: DownstreamConfig) {
    this.name = config.name;
    this.#base = new URL('/', config.url);
    this.#transport = new Transport(config, TIMEOUTS);
    this.#basic = basicAuthorization(config.username, config.password);
    this.#auth = new UpstreamAuth(this.#basic, (endpoint, scopes) => this.#fetchToken(endpoint, scopes));
  }

  /** The digest the downstream's manifest `reference` has, or undefined when it has none. */
  async manifestDigest(remote: string, reference: string, signal?: AbortSignal): Promise<string | undefined> {
    const response = await this.#exchange('HEAD', remote, `manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT },
      signal,
    });
    response.resume();
    if (response.statusCode === 404) return undefined;
    await this.#expect(response, [200], `manifest ${remote}:${reference}`);
    return header(response.headers, 'docker-content-digest') ?? '';
  }

  /**
   * Every tag of the downstream's namespace, following `Link` pages (reconciliation); empty when
   * the downstream has no such namespace (404).
   */
  async listTags(remote: string, signal?: AbortSignal): Promise<string[]> {
    const what = `tag list of ${remote}`;
    const tags: string[] = [];
    let path = 'tags/list';
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const response = await this.#exchange('GET', remote, path, {
        headers: { accept: 'application/json' },
        signal,
      });
      if (response.statusCode === 404) {
        response.resume();
        return tags;
      }
      await this.#expect(response, [200], what);
      const body = parseJson(await readBody(this.#transport, response, MAX_TAG_PAGE_BYTES, what));
      const pageTags = body['tags'];
      if (pageTags !== null && pageTags !== undefined) {
        if (!Array.isArray(pageTags) || !pageTags.every((tag) => typeof tag === 'string')) {
          throw this.#transport.error('invalid-response', `${what}: not a tag list`);
        }
        // A name that is not a valid tag could not be pushed or deleted under it: left out.
        tags.push(...(pageTags as string[]).filter(isValidTag));
      }
      const next = nextTagListPage(header(response.headers, 'link'), this.#base, remote);
      if (next === undefined) return tags;
      if (next === 'elsewhere')
        throw this.#transport.error('invalid-response', `${what}: Link to another registry`);
      path = next;
    }
    throw this.#transport.error('invalid-response', `${what}: more than ${MAX_TAG_PAGES} pages`);
  }

  /** True when the downstream's namespace holds the blob. */
  async hasBlob(remote: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    const response = await this.#exchange('HEAD', remote, `blobs/${digest}`, { headers: {}, signal });
    response.resume();
    if (response.statusCode === 404) return false;
    await this.#expect(response, [200], `blob ${remote}@${digest}`);
    return true;
  }

  /**
   * Mounts a blob the downstream holds in `from` into `remote` (201: true). Otherwise the upload
   * session the downstream opened instead (202) is returned, for the bytes.
   */
  async mountBlob(remote: string, digest: string, from: string, signal?: AbortSignal): Promise<true | URL> {
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const what = `mount of ${digest} into ${remote}`;
    const response = await this.#exchange('POST', remote, `blobs/uploads/${query}`, { headers: {}, signal });
    response.resume();
    if (response.statusCode === 201) return true;
    await this.#expect(response, [202], what);
    return this.#location(response, what);
  }

  /**
   * Uploads a blob: a session (POST, unless a refused mount opened one), then one PUT of its
   * bytes, written by `body`. 201 is success.
   */
  async uploadBlob(
    remote: string,
    digest: string,
    size: number,
    body: (request: Writable) => Promise<void>,
    signal?: AbortSignal,
    opened?: URL,
  ): Promise<void> {
    const what = `upload of ${digest} into ${remote}`;
    let session = opened;
    if (session === undefined) {
      const started = await this.#exchange('POST', remote, 'blobs/uploads/', { headers: {}, signal });
      started.resume();
      await this.#expect(started, [202], what);
      session = this.#location(started, what);
    }
    session.searchParams.set('digest', digest);
    const response = await this.#send('PUT', session, remote, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body,
      signal,
    });
    response.resume();
    await this.#expect(response, [201], what);
  }

  /**
   * Pushes a manifest by tag or digest. With `sourceTimestamp` (by tag) the downstream decides
   * by last-writer-wins: `superseded` when it holds a later write of the tag.
   */
  async putManifest(
    remote: string,
    reference: string,
    manifest: { readonly mediaType: string; readonly body: Buffer },
    options: { sourceTimestamp?: string | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<WriteOutcome> {
    const headers: Record<string, string> = { 'content-type': manifest.mediaType };
    if (options.sourceTimestamp !== undefined) headers[SOURCE_TIMESTAMP_HEADER] = options.sourceTimestamp;
    const response = await this.#exchange('PUT', remote, `manifests/${reference}`, {
      headers,
      body: manifest.body,
      signal: options.signal,
    });
    const what = `manifest ${remote}:${reference}`;
    if (response.statusCode === 201 || response.statusCode === 200) {
      response.resume();
      return 'pushed';
    }
    const error = await this.#statusError(response, what);
    if (error.status === 409 && error.code === 'REPLICATION_SUPERSEDED') return 'superseded';
    throw error;
  }

  /**
   * Deletes a tag, or a manifest by digest, dated `sourceTimestamp` (last-writer-wins on Angos):
   * `converged` when it is gone already, `unsupported` when the downstream does not delete it:
   * 405 or UNSUPPORTED (deletes disabled), or, for a tag, DIGEST_INVALID (CNCF distribution 2.x
   * deletes manifests by digest only; deleting the digest there would take every other tag of it).
   */
  async deleteManifest(
    remote: string,
    reference: string,
    sourceTimestamp: string,
    signal?: AbortSignal,
  ): Promise<WriteOutcome> {
    const response = await this.#exchange('DELETE', remote, `manifests/${reference}`, {
      headers: { [SOURCE_TIMESTAMP_HEADER]: sourceTimestamp },
      signal,
    });
    if (response.statusCode === 202 || response.statusCode === 200 || response.statusCode === 204) {
      response.resume();
      return 'pushed';
    }
    const error = await this.#statusError(response, `delete of ${remote}:${reference}`);
    if (error.status === 404) return 'converged';
    if (error.status === 409 && error.code === 'REPLICATION_SUPERSEDED') return 'superseded';
    if (error.status === 405 || (error.status === 400 && error.code === 'UNSUPPORTED')) return 'unsupported';
    const byTag = !reference.includes(':');
    if (byTag && error.status === 400 && error.code === 'DIGEST_INVALID') return 'unsupported';
    throw error;
  }

  /** Closes every connection: for shutdown. */
  close(): void {
    this.#transport.close();
  }

  #location(response: IncomingMessage, what: string): URL {
    const location = header(response.headers, 'location');
    if (location === undefined) {
      throw this.#transport.error('invalid-response', `${what}: ${response.statusCode} without a Location`);
    }
    try {
      return new URL(location, this.#base);
    } catch {
      throw this.#transport.error('invalid-response', `${what}: invalid Location`);
    }
  }

  #exchange(
    method: SendOptions['method'],
    remote: string,
    path: string,
    request: {
      readonly headers: Readonly<Record<string, string>>;
      readonly body?: RequestBody | undefined;
      readonly signal: AbortSignal | undefined;
    },
  ): Promise<IncomingMessage> {
    return this.#send(method, new URL(`/v2/${remote}/${path}`, this.#base), remote, request);
  }

  /**
   * One request with the downstream's authorization, retried once after a 401 with what the
   * challenge asks for. Resolves with the answer whatever its status.
   */
  async #send(
    method: SendOptions['method'],
    url: URL,
    remote: string,
    request: {
      readonly headers: Readonly<Record<string, string>>;
      readonly body?: RequestBody | undefined;
      readonly signal: AbortSignal | undefined;
    },
  ): Promise<IncomingMessage> {
    const scope = `repository:${remote}:pull,push,delete`;
    const headers = { 'user-agent': USER_AGENT, ...request.headers };
    const send = (authorization: string | undefined) =>
      this.#transport.send({
        method,
        url,
        headers,
        authorization,
        body: request.body,
        signal: request.signal,
      });
    const authorization = await this.#auth.authorization(scope);
    const response = await send(authorization);
    if (response.statusCode !== 401) return response;
    let retry: string | undefined;
    try {
      retry = await this.#auth.retryAfter(response.headers['www-authenticate'], scope, authorization);
    } catch (error) {
      response.resume();
      throw error;
    }
    if (retry === undefined) return response;
    response.resume();
    return send(retry);
  }

  async #expect(response: IncomingMessage, ok: readonly number[], what: string): Promise<void> {
    if (ok.includes(response.statusCode ?? 0)) return;
    throw await this.#statusError(response, what);
  }

  async #statusError(response: IncomingMessage, what: string): Promise<UpstreamError> {
    const status = response.statusCode ?? 0;
    let code: string | undefined;
    try {
      code = firstErrorCode(await readBody(this.#transport, response, MAX_ERROR_BODY_BYTES, what));
    } catch {
      // The status decides; an unreadable error body only loses the detail.
    }
    return this.#transport.error(
      kindOfStatus(status),
      `${what}: downstream ${this.name} answered ${status}${code === undefined ? '' : ` ${code}`}`,
      { status, ...(code === undefined ? {} : { code }) },
    );
  }

  /** The Bearer flow's token request, with the credentials as Basic when configured. */
  async #fetchToken(endpoint: TokenEndpoint, scopes: readonly string[]): Promise<IssuedToken> {
    let url: URL;
    try {
      url = new URL(endpoint.realm);
    } catch {
      throw this.#transport.error('invalid-response', 'the Bearer challenge names an invalid realm');
    }
    if (endpoint.service !== undefined) url.searchParams.append('service', endpoint.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const what = `token from ${url.host}`;
    const downgrade = url.protocol === 'http:' && this.#base.protocol === 'https:';
    const response = await this.#transport.send({
      method: 'GET',
      url,
      headers: { 'user-agent': USER_AGENT, accept: 'application/json' },
      authorization: downgrade ? undefined : this.#basic,
    });
    if (response.statusCode !== 200) throw await this.#statusError(response, what);
    const body = parseJson(await readBody(this.#transport, response, MAX_TOKEN_RESPONSE_BYTES, what));
    const token = typeof body['token'] === 'string' ? body['token'] : body['access_token'];
    if (typeof token !== 'string' || token === '') {
      throw this.#transport.error('invalid-response', `${what}: no token in the answer`);
    }
    const expiresIn = body['expires_in'];
    return {
      token,
      lifetimeSeconds: typeof expiresIn === 'number' && expiresIn > 0 ? expiresIn : 60,
    };
  }
}

function kindOfStatus(status: number): UpstreamErrorKind {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'rate-limited';
  if (status === 408 || status >= 500) return 'unavailable';
  if (status === 404) return 'not-found';
  return 'invalid-response';
}

function parseJson(bytes: Buffer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function firstErrorCode(body: Buffer): string | undefined {
  const errors = parseJson(body)['errors'];
  const first: unknown = Array.isArray(errors) ? errors[0] : undefined;
  const code =
    typeof first === 'object' && first !== null ? (first as Record<string, unknown>)['code'] : undefined;
  return typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) ? code : undefined;
}
