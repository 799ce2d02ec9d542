import {
  type Descriptor,
  type DigestParts,
  formatDigest,
  isIndexMediaType,
  MediaType,
  type ParsedManifest,
  parseManifest,
  tryParseDigest,
} from '@angos/oci';
import { type BlobStore, NotFoundError } from '@angos/storage';
import { readWhole } from '../read-whole.js';

/** A platform as the extension API shows it. */
export interface PlatformView {
  readonly os: string;
  readonly architecture: string;
  readonly variant: string | null;
}

/**
 * What a listing shows of a manifest, computed from its bytes: immutable for a digest, so cached
 * by digest for every namespace and every request.
 */
export interface ManifestSummary {
  readonly mediaType: string;
  /** The manifest's `artifactType`, else a config media type that is not an image's; null for an image. */
  readonly artifactType: string | null;
  /** The manifest's bytes plus what it references: config and layers, or for an index each child's size. */
  readonly size: number;
  /** An image's platform (from its config), or an index's list of its children's. */
  readonly platforms: readonly PlatformView[];
  /** An index's children. */
  readonly children: readonly string[];
  readonly subject: string | null;
}

/** How many summaries are kept: a few hundred bytes each. */
const SUMMARY_CAPACITY = 20_000;
/** A config larger than this is not read for its platform (configs are a few KiB). */
const MAX_CONFIG_BYTES = 1024 * 1024;
/** Indexes of indexes are followed this deep for their sizes. */
const MAX_DEPTH = 2;

const IMAGE_CONFIGS: ReadonlySet<string> = new Set([MediaType.OciConfig, MediaType.DockerConfig]);

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** `{os, architecture, variant}` of a descriptor's or a config's platform fields; undefined without both. */
export function platformOf(value: unknown): PlatformView | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const os = text(record['os']);
  const architecture = text(record['architecture']);
  if (os === undefined || architecture === undefined) return undefined;
  return { os, architecture, variant: text(record['variant']) ?? null };
}

/** The artifact type the API shows: an image's config type is not one. */
export function artifactTypeOf(manifest: ParsedManifest): string | null {
  const type = manifest.artifactType;
  if (type === undefined) return null;
  if (manifest.config !== undefined && type === manifest.config.mediaType && IMAGE_CONFIGS.has(type))
    return null;
  return type;
}

/** Summaries of manifests by digest, in a bounded least-recently-used cache. */
export class ManifestSummaries {
  readonly #cache = new Map<string, ManifestSummary>();
  readonly #loading = new Map<string, Promise<ManifestSummary | undefined>>();

  constructor(private readonly blobs: BlobStore) {}

  /** The summary of a stored manifest; undefined when its bytes are gone or it does not parse. */
  async get(digest: DigestParts, mediaType?: string, depth = 0): Promise<ManifestSummary | undefined> {
    const key = formatDigest(digest);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return cached;
    }
    let loading = this.#loading.get(key);
    if (loading === undefined) {
      loading = this.#compute(digest, mediaType, depth).finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    const summary = await loading;
    if (summary !== undefined) this.#remember(key, summary);
    return summary;
  }

  #remember(key: string, summary: ManifestSummary): void {
    this.#cache.set(key, summary);
    if (this.#cache.size > SUMMARY_CAPACITY) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
  }

  /** A blob's bytes, or undefined when absent or larger than `limit`. */
  async #read(digest: DigestParts, limit: number): Promise<Buffer | undefined> {
    try {
      return await readWhole(await this.blobs.readBlob(digest), limit);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  async #compute(
    digest: DigestParts,
    mediaType: string | undefined,
    depth: number,
  ): Promise<ManifestSummary | undefined> {
    const body = await this.#read(digest, 4 * 1024 * 1024);
    if (body === undefined) return undefined;
    let manifest: ParsedManifest;
    try {
      manifest = parseManifest(body, mediaType);
    } catch {
      return undefined;
    }
    const subject = manifest.subject?.digest ?? null;
    const artifactType = artifactTypeOf(manifest);
    if (manifest.kind === 'index' || isIndexMediaType(manifest.mediaType)) {
      let size = body.length;
      for (const child of manifest.manifests) size += await this.#childSize(child, depth);
      const platforms = manifest.manifests
        .map((child) => platformOf(child.platform))
        .filter((p): p is PlatformView => p !== undefined && p.os !== 'unknown');
      const children = manifest.manifests.map((child) => child.digest);
      return { mediaType: manifest.mediaType, artifactType, size, platforms, children, subject };
    }
    const references = [...(manifest.config ? [manifest.config] : []), ...manifest.layers];
    const size = references.reduce((sum, descriptor) => sum + descriptor.size, body.length);
    const platform = await this.#configPlatform(manifest.config);
    return {
      mediaType: manifest.mediaType,
      artifactType,
      size,
      platforms: platform === undefined ? [] : [platform],
      children: [],
      subject,
    };
  }

  /** A child of an index: its own summary's size, or its descriptor's when it cannot be read. */
  async #childSize(child: Descriptor, depth: number): Promise<number> {
    const digest = tryParseDigest(child.digest);
    if (digest === undefined || depth >= MAX_DEPTH) return child.size;
    const summary = await this.get(digest, child.mediaType, depth + 1);
    return summary?.size ?? child.size;
  }

  async #configPlatform(config: Descriptor | undefined): Promise<PlatformView | undefined> {
    if (config === undefined || !IMAGE_CONFIGS.has(config.mediaType) || config.size > MAX_CONFIG_BYTES)
      return undefined;
    const digest = tryParseDigest(config.digest);
    if (digest === undefined) return undefined;
    const bytes = await this.#read(digest, MAX_CONFIG_BYTES);
    if (bytes === undefined) return undefined;
    try {
      return platformOf(JSON.parse(bytes.toString('utf8')));
    } catch {
      return undefined;
    }
  }
}
