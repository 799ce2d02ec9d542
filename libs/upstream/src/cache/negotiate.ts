import { MANIFEST_MEDIA_TYPES } from '@angos/oci';

/**
 * The manifest media types an `Accept` header allows, or 'any' (no header, a wildcard, or no
 * manifest type named at all): the same reading as registry-api's, so a hit through the cache
 * answers as a pull from a local namespace does.
 */
export function acceptedManifestTypes(header: string | string[] | undefined): Set<string> | 'any' {
  if (header === undefined) return 'any';
  const values = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((item) => item.split(';')[0]!.trim().toLowerCase())
    .filter((item) => item !== '');
  if (values.some((value) => value === '*/*' || value === 'application/*')) return 'any';
  const manifestTypes = values.filter((value) => MANIFEST_MEDIA_TYPES.includes(value));
  return manifestTypes.length === 0 ? 'any' : new Set(manifestTypes);
}
