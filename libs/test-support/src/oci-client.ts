import { createHash } from 'node:crypto';

/** Every manifest media type a registry may answer with, as clients send it. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export const sha256 = (data: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

export interface FetchedManifest {
  status: number;
  mediaType: string | null;
  digest: string | null;
  body: Buffer;
}

/**
 * A deliberately small OCI distribution client over fetch, for checks at the HTTP level that the
 * real clients hide (exact bytes, headers, status codes). Monolithic blob uploads only.
 */
export class OciClient {
  constructor(
    readonly baseUrl: string,
    private readonly headers: Record<string, string> = {},
  ) {}

  request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Uint8Array; redirect?: 'follow' | 'manual' } = {},
  ) {
    return fetch(new URL(path, this.baseUrl), {
      method,
      headers: { ...this.headers, ...init.headers },
      body: init.body,
      redirect: init.redirect ?? 'follow',
      signal: AbortSignal.timeout(30_000),
    });
  }

  /** POST + PUT ?digest= in two requests; returns the digest. Throws unless the PUT gives 201. */
  async pushBlob(repo: string, data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`);
    await start.arrayBuffer();
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw new Error(`upload start: HTTP ${start.status}`);
    const target = new URL(location, this.baseUrl);
    target.searchParams.set('digest', digest);
    const done = await this.request('PUT', target.toString(), {
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    const text = await done.text();
    if (done.status !== 201) throw new Error(`upload finish: HTTP ${done.status} ${text}`);
    return digest;
  }

  /** PUT a manifest; resolves with the status, Docker-Content-Digest and OCI-Subject headers. */
  async pushManifest(repo: string, reference: string, body: Uint8Array | string, mediaType: string) {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const response = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, {
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    const text = await response.text();
    return {
      status: response.status,
      digest: response.headers.get('docker-content-digest'),
      subject: response.headers.get('oci-subject'),
      text,
    };
  }

  /**
   * GET a manifest. A 307 to storage (S3 with `enable_manifest_redirect`) is followed by hand, as
   * registry clients do: the digest is the registry's `Docker-Content-Digest`, the body and media
   * type come from where it points.
   */
  async getManifest(repo: string, reference: string, accept = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const first = await this.request('GET', `/v2/${repo}/manifests/${reference}`, {
      headers: { accept },
      redirect: 'manual',
    });
    const location = first.headers.get('location');
    const redirected = first.status === 307 && location !== null;
    if (redirected) await first.arrayBuffer();
    const response = redirected
      ? await fetch(new URL(location, this.baseUrl), { signal: AbortSignal.timeout(30_000) })
      : first;
    return {
      status: response.status,
      mediaType: response.headers.get('content-type'),
      digest: first.headers.get('docker-content-digest'),
      body: Buffer.from(await response.arrayBuffer()),
    };
  }

  async getBlob(repo: string, digest: string): Promise<{ status: number; body: Buffer }> {
    const response = await this.request('GET', `/v2/${repo}/blobs/${digest}`);
    return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
  }

  async headBlob(repo: string, digest: string): Promise<number> {
    const response = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`);
    await response.arrayBuffer();
    return response.status;
  }

  async tags(repo: string): Promise<{ status: number; tags: string[] }> {
    const response = await this.request('GET', `/v2/${repo}/tags/list`);
    if (response.status !== 200) {
      await response.arrayBuffer();
      return { status: response.status, tags: [] };
    }
    const json = (await response.json()) as { tags?: string[] | null };
    return { status: response.status, tags: json.tags ?? [] };
  }

  async referrers(
    repo: string,
    digest: string,
    artifactType?: string,
  ): Promise<{ status: number; body: unknown }> {
    const query = artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(artifactType)}`;
    const response = await this.request('GET', `/v2/${repo}/referrers/${digest}${query}`);
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }

  async deleteManifest(repo: string, reference: string): Promise<number> {
    const response = await this.request('DELETE', `/v2/${repo}/manifests/${reference}`);
    await response.arrayBuffer();
    return response.status;
  }
}
