import { OciError } from './errors.js';
import { parseManifest } from './manifest.js';
import { MANIFEST_MEDIA_TYPES, MediaType } from './media-types.js';

/** What to serve for a manifest pull, given the client's `Accept` header. */
export type ManifestChoice =
  /** The stored manifest, as it is. */
  | { readonly kind: 'stored' }
  /** The child of a Docker manifest list the client can read instead (its linux/amd64 image). */
  | { readonly kind: 'child'; readonly digest: string };

/**
 * Serves what the client accepts. With no Accept header, or a wildcard, the stored manifest is
 * served as is. A client that lists manifest types but not the stored one gets MANIFEST_UNKNOWN —
 * except that a Docker manifest list asked for by tag is resolved to its linux/amd64 image, as
 * distribution does for old clients. One reading for every service that serves manifests
 * (registry-api, the pull-through cache), so a pull answers the same wherever it lands.
 */
export function negotiateManifest(
  accept: string | string[] | undefined,
  stored: { readonly mediaType: string; readonly body: Buffer },
  byTag: boolean,
): ManifestChoice {
  if (acceptsManifestType(accept, stored.mediaType)) return { kind: 'stored' };
  const accepted = acceptedManifestTypes(accept);
  if (stored.mediaType === MediaType.DockerManifestList && byTag) {
    const list = parseManifest(stored.body, stored.mediaType);
    const amd64 = list.manifests.find((child) => {
      const platform = child.platform as { os?: string; architecture?: string } | undefined;
      return platform?.os === 'linux' && platform.architecture === 'amd64';
    });
    if (amd64 && accepted !== 'any' && accepted.has(amd64.mediaType))
      return { kind: 'child', digest: amd64.digest };
  }
  throw new OciError('MANIFEST_UNKNOWN', {
    mediaType: stored.mediaType,
    reason: 'the Accept header does not allow this manifest type',
  });
}

/** Whether a client sending `accept` reads a manifest of `mediaType` as it is stored. */
export function acceptsManifestType(accept: string | string[] | undefined, mediaType: string): boolean {
  const accepted = acceptedManifestTypes(accept);
  return accepted === 'any' || accepted.has(mediaType);
}

/** The manifest media types an `Accept` header allows, or 'any'. */
function acceptedManifestTypes(header: string | string[] | undefined): Set<string> | 'any' {
  if (header === undefined) return 'any';
  const values = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((item) => item.split(';')[0]!.trim().toLowerCase())
    .filter((item) => item !== '');
  if (values.some((value) => value === '*/*' || value === 'application/*')) return 'any';
  const manifestTypes = values.filter((value) => MANIFEST_MEDIA_TYPES.includes(value));
  // An Accept header naming no manifest type at all (e.g. `application/json`) is not a negotiation.
  return manifestTypes.length === 0 ? 'any' : new Set(manifestTypes);
}
