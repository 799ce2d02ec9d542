import { type DigestParts, formatDigest, parseDigest } from '@angos/oci';
import { type MetadataStore, NotFoundError } from '@angos/storage';

/** What a tag or revision link file holds. Revisions also record what the manifest is. */
export interface LinkRecord {
  readonly digest: DigestParts;
  readonly mediaType?: string;
  readonly size?: number;
  readonly createdAt?: string;
}

interface LinkJson {
  digest: string;
  media_type?: string;
  size?: number;
  created_at?: string;
}

export function encodeLink(record: LinkRecord): string {
  const json: LinkJson = { digest: formatDigest(record.digest) };
  if (record.mediaType !== undefined) json.media_type = record.mediaType;
  if (record.size !== undefined) json.size = record.size;
  json.created_at = record.createdAt ?? new Date().toISOString();
  return JSON.stringify(json);
}

/**
 * When a link was written, in ms since the epoch: the last push of a revision or of a tag. A link
 * without a creation time (or one that does not parse) counts as written at the epoch.
 */
export function linkCreatedAtMs(link: LinkRecord): number {
  const at = link.createdAt === undefined ? Number.NaN : Date.parse(link.createdAt);
  return Number.isNaN(at) ? 0 : at;
}

export function decodeLink(data: Buffer): LinkRecord {
  const json = JSON.parse(data.toString('utf8')) as LinkJson;
  return {
    digest: parseDigest(json.digest),
    ...(json.media_type !== undefined && { mediaType: json.media_type }),
    ...(json.size !== undefined && { size: json.size }),
    ...(json.created_at !== undefined && { createdAt: json.created_at }),
  };
}

/**
 * Reads a link, or undefined when it does not exist. `fresh` reads past any cache of the store:
 * use it for decisions taken under a lock, which must see what other replicas wrote.
 */
export async function readLink(
  metadata: MetadataStore,
  path: string,
  options: { fresh?: boolean } = {},
): Promise<LinkRecord | undefined> {
  try {
    const data =
      options.fresh && metadata.getUncached ? await metadata.getUncached(path) : await metadata.get(path);
    return decodeLink(data);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** Whether a key exists; `fresh` reads past any cache of the store, as for `readLink`. */
export async function exists(
  metadata: MetadataStore,
  path: string,
  options: { fresh?: boolean } = {},
): Promise<boolean> {
  try {
    if (options.fresh && metadata.getUncached) await metadata.getUncached(path);
    else await metadata.get(path);
    return true;
  } catch (error) {
    if (error instanceof NotFoundError) return false;
    throw error;
  }
}
