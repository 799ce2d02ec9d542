import type { IncomingMessage } from 'node:http';
import { type Duplex, PassThrough, type Readable } from 'node:stream';
import { remoteNamespace, type UpstreamConfig } from '@angos/config';
import {
  type ByteRange,
  type Descriptor,
  type DigestParts,
  digestOf,
  digestsEqual,
  essenceOfContentType,
  formatDigest,
  isValidNamespace,
  isValidTag,
  MANIFEST_MEDIA_TYPES,
  MediaType,
  parseDescriptor,
  parseDigest,
  parseManifest,
  parseReference,
  tryParseDigest,
} from '@angos/oci';
import { basicAuthorization, type IssuedToken, type TokenEndpoint, UpstreamAuth } from './auth.js';
import { isUpstreamError, parseRetryAfter, type UpstreamErrorKind } from './errors.js';
import { DEFAULT_TOKEN_LIFETIME_SECONDS } from './tokens.js';
import {
  DEFAULT_UPSTREAM_TIMEOUTS,
  header,
  readBody,
  Transport,
  type UpstreamTimeouts,
} from './transport.js';
import { VerifyingStream } from './verify.js';

export interface UpstreamClientOptions {
  /** The key of the `[repository."<key>"]` table the upstream belongs to. */
  readonly repository: string;
  readonly config: UpstreamConfig;
  /** `global.max_manifest_size`: larger manifests and referrer lists are refused. */
  readonly maxManifestBytes: number;
  readonly timeouts?: Partial<UpstreamTimeouts>;
  /** The clock tokens expire by (tests). */
  readonly now?: () => number;
}

export interface RequestOptions {
  /** Aborts the request (or the blob body): the call rejects with the AbortError. */
  readonly signal?: AbortSignal;
}

/** A manifest as a HEAD describes it. */
export interface ManifestHead {
  readonly digest: string;
  /** The Content-Type essence; undefined when the upstream sent none. */
  readonly mediaType: string | undefined;
  readonly size: number;
}

/** A manifest's bytes, checked against its digest. */
export interface UpstreamManifest extends ManifestHead {
  readonly bytes: Buffer;
}

/**
 * A blob body. `verified: true`: the whole blob, whose stream fails with a `digest-mismatch`
 * UpstreamError at the end (before its last chunk) unless the bytes hash to the digest. A 206
 * answer to a range request is `verified: false` with its `range`: a part of a blob cannot be
 * checked, so it may be passed on to a client that asked for that range but never stored. The
 * whole blob asked for with `verify: false` is `verified: false` without a range: the caller
 * checks the digest itself (the cache's upload path does, and refuses to commit a mismatch).
 */
export type UpstreamBlob =
  | { readonly verified: true; readonly body: Readable; readonly size: number | undefined }
  | {
      readonly verified: false;
      readonly body: Readable;
      /** The part of the blob this is; undefined: the whole blob, unchecked (`verify: false`). */
      readonly range: ByteRange | undefined;
      /** The blob's full size, when the Content-Length or Content-Range gave it. */
      readonly size: number | undefined;
    };

/** Options of a blob GET. */
export interface BlobRequestOptions extends RequestOptions {
  /** Only these bytes (the upstream may answer the whole blob instead). */
  readonly range?: ByteRange;
  /**
   * Whether to hash the whole blob against its digest as it streams (default true). A caller that
   * hashes the bytes on their way anyway (the upload path a cache fill stores them through) turns
   * it off rather than hash every byte twice.
   */
  readonly verify?: boolean;
}

export interface UpstreamReferrers {
  readonly manifests: Descriptor[];
  /**
   * `api`: the referrers API answered. `tag-schema`: it answered 404 (distribution before 3.0 has
   * none), so the referrers tag `<alg>-<hex>` was read instead, as clients fall back to it.
   */
  readonly source: 'api' | 'tag-schema';
}

/** Tag lists are followed through `Link` pages up to this many, each at most this large. */
const MAX_TAG_PAGES = 1000;
const MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024;
/** A token response is a small JSON document. */
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
/** Only the start of an error body is read, for its OCI error code. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const USER_AGENT = 'angos-pull-through-cache';

/**
 * The client of one configured upstream registry (`[[repository."<key>".upstream]]`). Namespaces
 * are Angos's (`<key>/…`) and are mapped to the upstream's as the configuration reference says
 * (`remoteNamespace`). Every byte it returns is checked against its digest; every failure is an
 * UpstreamError with a `kind`.
 */
export class UpstreamClient {
  readonly url: string;
  private readonly transport: Transport;
  private readonly auth: UpstreamAuth;
  private readonly basic: string | undefined;
  private readonly base: URL;

  /** Throws UpstreamSetupError when a TLS file of the upstream cannot be read. */
  constructor(private readonly options: UpstreamClientOptions) {
    this.url = options.config.url;
    this.base = new URL('/', options.config.url);
    this.transport = new Transport(options.config, { ...DEFAULT_UPSTREAM_TIMEOUTS, ...options.timeouts });
    this.basic = basicAuthorization(options.config.username, options.config.password);
    this.auth = new UpstreamAuth(
      this.basic,
      (endpoint, scopes) => this.fetchToken(endpoint, scopes),
      options.now,
    );
  }

  /** The upstream's name for the Angos namespace `namespace` (under this client's repository). */
  remoteNamespace(namespace: string): string {
    const remote = remoteNamespace(this.url, this.options.repository, namespace);
    if (!isValidNamespace(remote)) throw new Error(`"${remote}" is not a valid upstream namespace`);
    return remote;
  }

  /**
   * HEAD of a manifest by tag or digest: its digest, media type and size, or undefined when the
   * upstream answers 404. Only when the answer lacks Docker-Content-Digest for a tag, or lacks a
   * length, is the manifest fetched (and checked) to find them.
   */
  async headManifest(
    namespace: string,
    reference: string,
    options: RequestOptions & { readonly accept?: string } = {},
  ): Promise<ManifestHead | undefined> {
    const remote = this.remoteNamespace(namespace);
    const ref = parseReference(reference);
    const response = await this.exchange('HEAD', remote, `manifests/${reference}`, {
      headers: { accept: options.accept ?? MANIFEST_ACCEPT },
      signal: options.signal,
    });
    response.resume();
    if (response.statusCode === 404) return undefined;
    await this.expectStatus(response, [200], `manifest ${remote}:${reference}`);
    const announced = header(response.headers, 'docker-content-digest');
    if (ref.kind === 'digest' && announced !== undefined && announced !== formatDigest(ref.digest)) {
      throw this.transport.error(
        'digest-mismatch',
        `manifest ${remote}:${reference}: announced as ${announced}`,
      );
    }
    const digest = ref.kind === 'digest' ? formatDigest(ref.digest) : announced;
    const length = Number(header(response.headers, 'content-length') ?? Number.NaN);
    if (digest === undefined || tryParseDigest(digest) === undefined || !Number.isSafeInteger(length)) {
      const { bytes: _bytes, ...head } = await this.getManifest(namespace, reference, options);
      return head;
    }
    return {
      digest,
      mediaType: essenceOfContentType(header(response.headers, 'content-type')),
      size: length,
    };
  }

  /**
   * GET of a manifest, at most `max_manifest_size`, checked: by digest, the bytes must hash to it;
   * by tag, the digest is computed (with Docker-Content-Digest's algorithm when it names one) and
   * must equal Docker-Content-Digest when the upstream sent it. A mismatch is `digest-mismatch`.
   */
  async getManifest(
    namespace: string,
    reference: string,
    options: RequestOptions & { readonly accept?: string } = {},
  ): Promise<UpstreamManifest> {
    const remote = this.remoteNamespace(namespace);
    const ref = parseReference(reference);
    const what = `manifest ${remote}:${reference}`;
    const response = await this.exchange('GET', remote, `manifests/${reference}`, {
      headers: { accept: options.accept ?? MANIFEST_ACCEPT },
      signal: options.signal,
    });
    await this.expectStatus(response, [200], what);
    const bytes = await readBody(this.transport, response, this.options.maxManifestBytes, what);
    const announcedHeader = header(response.headers, 'docker-content-digest');
    const announced = announcedHeader === undefined ? undefined : tryParseDigest(announcedHeader);
    const expected: DigestParts | undefined = ref.kind === 'digest' ? ref.digest : announced;
    const actual = digestOf(expected?.algorithm ?? 'sha256', bytes);
    if (expected !== undefined && !digestsEqual(actual, expected)) {
      throw this.transport.error(
        'digest-mismatch',
        `${what}: content hashes to ${formatDigest(actual)}, not ${formatDigest(expected)}`,
      );
    }
    if (ref.kind === 'digest' && announced !== undefined && !digestsEqual(announced, ref.digest)) {
      throw this.transport.error('digest-mismatch', `${what}: announced as ${formatDigest(announced)}`);
    }
    return {
      digest: formatDigest(actual),
      mediaType: essenceOfContentType(header(response.headers, 'content-type')) ?? declaredMediaType(bytes),
      size: bytes.length,
      bytes,
    };
  }

  /** HEAD of a blob: its size, or undefined when the upstream answers 404. */
  async headBlob(
    namespace: string,
    digest: string,
    options: RequestOptions = {},
  ): Promise<{ size: number } | undefined> {
    const remote = this.remoteNamespace(namespace);
    parseDigest(digest);
    const response = await this.exchange('HEAD', remote, `blobs/${digest}`, {
      headers: {},
      signal: options.signal,
    });
    response.resume();
    if (response.statusCode === 404) return undefined;
    await this.expectStatus(response, [200], `blob ${remote}@${digest}`);
    const size = Number(header(response.headers, 'content-length') ?? Number.NaN);
    if (!Number.isSafeInteger(size)) {
      throw this.transport.error('invalid-response', `blob ${remote}@${digest}: HEAD without a length`);
    }
    return { size };
  }

  /**
   * GET of a blob, streamed, never held whole. The whole blob (no `range`, or a range the upstream
   * ignored) is verified while it streams: see UpstreamBlob. Redirects (to object storage) are
   * followed without the upstream's Authorization.
   */
  async getBlob(namespace: string, digest: string, options: BlobRequestOptions = {}): Promise<UpstreamBlob> {
    const remote = this.remoteNamespace(namespace);
    const expected = parseDigest(digest);
    const what = `blob ${remote}@${digest}`;
    const range = options.range;
    const response = await this.exchange('GET', remote, `blobs/${digest}`, {
      headers: range === undefined ? {} : { range: `bytes=${range.start}-${range.end}` },
      signal: options.signal,
    });
    await this.expectStatus(response, range === undefined ? [200] : [200, 206], what);
    if (response.statusCode === 206) {
      const partial = parseContentRangeHeader(header(response.headers, 'content-range'));
      if (partial === undefined) {
        response.destroy();
        throw this.transport.error('invalid-response', `${what}: 206 without a valid Content-Range`);
      }
      const body = this.relay(response, new PassThrough(), what);
      return { verified: false, body, range: partial.range, size: partial.total };
    }
    const length = Number(header(response.headers, 'content-length') ?? Number.NaN);
    const size = Number.isSafeInteger(length) ? length : undefined;
    if (options.verify === false) {
      return { verified: false, body: this.relay(response, new PassThrough(), what), range: undefined, size };
    }
    const verifier = new VerifyingStream(expected, size, (reason) =>
      this.transport.error('digest-mismatch', `${what}: ${reason}`),
    );
    return { verified: true, body: this.relay(response, verifier, what), size };
  }

  /**
   * Every tag of a namespace, following `Link` pages; `not-found` when the upstream has no such
   * repository.
   */
  async listTags(namespace: string, options: RequestOptions = {}): Promise<string[]> {
    const remote = this.remoteNamespace(namespace);
    const what = `tag list of ${remote}`;
    const tags: string[] = [];
    let path = 'tags/list';
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const response = await this.exchange('GET', remote, path, {
        headers: { accept: MediaType.Json },
        signal: options.signal,
      });
      await this.expectStatus(response, [200], what);
      const body = parseJson(await readBody(this.transport, response, MAX_TAG_PAGE_BYTES, what));
      const pageTags = isObject(body) ? body['tags'] : undefined;
      if (pageTags !== null && pageTags !== undefined) {
        if (!Array.isArray(pageTags) || !pageTags.every((t) => typeof t === 'string')) {
          throw this.transport.error('invalid-response', `${what}: not a tag list`);
        }
        // A name that is not a valid tag could not be served under it: left out, not fatal.
        tags.push(...(pageTags as string[]).filter(isValidTag));
      }
      const next = nextTagListPage(header(response.headers, 'link'), this.base, remote);
      if (next === undefined) return tags;
      if (next === 'elsewhere')
        throw this.transport.error('invalid-response', `${what}: Link to another registry`);
      path = next;
    }
    throw this.transport.error('invalid-response', `${what}: more than ${MAX_TAG_PAGES} pages`);
  }

  /**
   * The referrers of a manifest: from the referrers API, or when that answers 404 from the
   * referrers tag `<alg>-<hex>` (absent: none). Filtered by `artifactType` when given, locally if
   * the upstream did not filter.
   */
  async referrers(
    namespace: string,
    digest: string,
    options: RequestOptions & { readonly artifactType?: string } = {},
  ): Promise<UpstreamReferrers> {
    const remote = this.remoteNamespace(namespace);
    const subject = parseDigest(digest);
    const what = `referrers of ${remote}@${digest}`;
    const query =
      options.artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(options.artifactType)}`;
    const response = await this.exchange('GET', remote, `referrers/${digest}${query}`, {
      headers: { accept: MediaType.OciIndex },
      signal: options.signal,
    });
    const filter = (manifests: Descriptor[]) =>
      options.artifactType === undefined
        ? manifests
        : manifests.filter((d) => d.artifactType === options.artifactType);
    if (response.statusCode === 404) {
      response.resume();
      const tag = `${subject.algorithm}-${subject.hex}`;
      let fallback: UpstreamManifest;
      try {
        fallback = await this.getManifest(namespace, tag, { accept: MediaType.OciIndex, ...options });
      } catch (error) {
        if (isUpstreamError(error, 'not-found')) return { manifests: [], source: 'tag-schema' };
        throw error;
      }
      const index = this.parse(
        () => parseManifest(fallback.bytes, fallback.mediaType),
        `${what} (tag ${tag})`,
      );
      return { manifests: filter(index.manifests), source: 'tag-schema' };
    }
    await this.expectStatus(response, [200], what);
    const body = parseJson(await readBody(this.transport, response, this.options.maxManifestBytes, what));
    const manifests = this.parse(() => {
      const list = isObject(body) ? body['manifests'] : undefined;
      if (!Array.isArray(list)) throw new Error('no manifests array');
      return list.map((item, index) => parseDescriptor(item, `manifests[${index}]`));
    }, what);
    return { manifests: filter(manifests), source: 'api' };
  }

  /** Closes every connection to the upstream: for shutdown. */
  close(): void {
    this.transport.close();
  }

  /**
   * One request to `/v2/<remote>/<path>` with the upstream's authorization, retried once after a
   * 401 with what the challenge asks for. Resolves with the answer whatever its status.
   */
  private async exchange(
    method: 'GET' | 'HEAD',
    remote: string,
    path: string,
    request: { readonly headers: Readonly<Record<string, string>>; readonly signal: AbortSignal | undefined },
  ): Promise<IncomingMessage> {
    const url = new URL(`/v2/${remote}/${path}`, this.base);
    const scope = `repository:${remote}:pull`;
    const headers = { 'user-agent': USER_AGENT, ...request.headers };
    let authorization = await this.auth.authorization(scope);
    let response = await this.transport.send({ method, url, headers, authorization, signal: request.signal });
    if (response.statusCode !== 401) return response;
    let retry: string | undefined;
    try {
      retry = await this.auth.retryAfter(response.headers['www-authenticate'], scope, authorization);
    } catch (error) {
      response.resume();
      throw error;
    }
    // Without anything new to try, the 401 is the answer, classified by the caller.
    if (retry === undefined) return response;
    response.resume();
    authorization = retry;
    response = await this.transport.send({ method, url, headers, authorization, signal: request.signal });
    return response;
  }

  /** Throws the UpstreamError that `response` means unless its status is one of `ok`. */
  private async expectStatus(response: IncomingMessage, ok: readonly number[], what: string): Promise<void> {
    const status = response.statusCode ?? 0;
    if (ok.includes(status)) return;
    throw await this.statusError(response, what, 'registry');
  }

  private async statusError(response: IncomingMessage, what: string, from: 'registry' | 'token endpoint') {
    const status = response.statusCode ?? 0;
    let code: string | undefined;
    try {
      const body = await readBody(this.transport, response, MAX_ERROR_BODY_BYTES, what);
      code = firstErrorCode(body);
    } catch {
      // The status decides; an unreadable error body only loses the detail.
    }
    const kind = kindOfStatus(status, from);
    const retryAfterSeconds = parseRetryAfter(header(response.headers, 'retry-after'));
    return this.transport.error(
      kind,
      `${what}: ${from} answered ${status}${code === undefined ? '' : ` ${code}`}`,
      {
        status,
        ...(code === undefined ? {} : { code }),
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      },
    );
  }

  /**
   * The Bearer token flow's token request: GET realm?service=…&scope=…, with the credentials as
   * Basic when they are configured (anonymous otherwise).
   */
  private async fetchToken(endpoint: TokenEndpoint, scopes: readonly string[]): Promise<IssuedToken> {
    let url: URL;
    try {
      url = new URL(endpoint.realm);
    } catch {
      throw this.transport.error('invalid-response', 'the Bearer challenge names an invalid realm');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw this.transport.error('invalid-response', `the Bearer challenge names a ${url.protocol} realm`);
    }
    if (endpoint.service !== undefined) url.searchParams.append('service', endpoint.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const what = `token from ${url.host}`;
    // The credentials never travel in clear text to a realm when the upstream itself is HTTPS.
    const downgrade = url.protocol === 'http:' && this.base.protocol === 'https:';
    const response = await this.transport.send({
      method: 'GET',
      url,
      headers: { 'user-agent': USER_AGENT, accept: MediaType.Json },
      authorization: downgrade ? undefined : this.basic,
    });
    if (response.statusCode !== 200) throw await this.statusError(response, what, 'token endpoint');
    const body = parseJson(await readBody(this.transport, response, MAX_TOKEN_RESPONSE_BYTES, what));
    const token = isObject(body)
      ? (nonEmptyString(body['token']) ?? nonEmptyString(body['access_token']))
      : undefined;
    if (token === undefined)
      throw this.transport.error('invalid-response', `${what}: no token in the answer`);
    const expiresIn = isObject(body) ? body['expires_in'] : undefined;
    const lifetimeSeconds =
      typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
        ? expiresIn
        : DEFAULT_TOKEN_LIFETIME_SECONDS;
    return { token, lifetimeSeconds };
  }

  /** Runs a parse of upstream content; what it throws becomes `invalid-response`. */
  private parse<T>(run: () => T, what: string): T {
    try {
      return run();
    } catch (error) {
      throw this.transport.error('invalid-response', `${what}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /**
   * `response` piped into `into`, with a failure of the upstream's body (reset, idle timeout) as an
   * UpstreamError on `into`, and the upstream's body dropped when `into` is closed early.
   */
  private relay<T extends Duplex>(response: IncomingMessage, into: T, what: string): T {
    response.on('error', (error) => into.destroy(this.transport.failure(error, `reading ${what}`)));
    into.on('close', () => {
      if (!response.complete) response.destroy();
    });
    response.pipe(into);
    return into;
  }
}

function kindOfStatus(status: number, from: 'registry' | 'token endpoint'): UpstreamErrorKind {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 429) return 'rate-limited';
  if (status === 408 || status >= 500) return 'unavailable';
  // A token endpoint that is not there is as good as down; a registry's 404 names missing content.
  if (status === 404) return from === 'registry' ? 'not-found' : 'unavailable';
  return 'invalid-response';
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The first `errors[].code` of an OCI error body, if it is one. */
function firstErrorCode(body: Buffer): string | undefined {
  const parsed = parseJson(body);
  const errors = isObject(parsed) ? parsed['errors'] : undefined;
  const first: unknown = Array.isArray(errors) ? errors[0] : undefined;
  const code = isObject(first) ? first['code'] : undefined;
  return typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) ? code : undefined;
}

/** The `mediaType` a manifest body declares, for an answer without Content-Type. */
function declaredMediaType(bytes: Buffer): string | undefined {
  const parsed = parseJson(bytes);
  return isObject(parsed) ? nonEmptyString(parsed['mediaType']) : undefined;
}

/** `bytes <start>-<end>/<total|*>` of a 206. */
function parseContentRangeHeader(
  value: string | undefined,
): { range: ByteRange; total: number | undefined } | undefined {
  const match =
    value === undefined ? null : /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)$/i.exec(value.trim());
  if (match === null) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const total = match[3] === '*' ? undefined : Number(match[3]);
  if (end < start || (total !== undefined && end >= total)) return undefined;
  return { range: { start, end }, total };
}

/**
 * The next page of a tag list from its `Link: </v2/<name>/tags/list?last=x&n=y>; rel="next"`, as
 * a path under `/v2/<remote>/`; 'elsewhere' when it points outside that; undefined when none.
 * Also the downstream tag lists of replication's reconciliation.
 */
export function nextTagListPage(
  link: string | undefined,
  base: URL,
  remote: string,
): string | 'elsewhere' | undefined {
  if (link === undefined) return undefined;
  const match = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
  if (match === null) return undefined;
  let target: URL;
  try {
    target = new URL(match[1]!, base);
  } catch {
    return 'elsewhere';
  }
  const prefix = `/v2/${remote}/`;
  if (target.origin !== base.origin || !target.pathname.startsWith(prefix)) return 'elsewhere';
  return `${target.pathname.slice(prefix.length)}${target.search}`;
}
