import { truncateForDetail } from './detail.js';
import { type DigestParts, isDigestString, parseDigest } from './digest.js';
import { OciError } from './errors.js';

/** The distribution-spec caps a repository name, slashes included, at 255 characters. */
export const MAX_NAMESPACE_LENGTH = 255;

// distribution-spec `<name>`: components of lowercase alphanumerics joined by `.`, `_`, `__`
// or runs of `-`, separated by `/`. Separators and components use disjoint characters,
// so the regex cannot backtrack badly; the length is checked first anyway.
const NAMESPACE_GRAMMAR =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

// distribution-spec `<reference>` as a tag: at most 128 characters.
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function isValidNamespace(name: string): boolean {
  return typeof name === 'string' && name.length <= MAX_NAMESPACE_LENGTH && NAMESPACE_GRAMMAR.test(name);
}

export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG_GRAMMAR.test(tag);
}

export type Reference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: DigestParts };

/**
 * The `<reference>` of a manifest URL: a digest or a tag. A tag can never contain
 * a colon, so anything with one is meant as a digest and is judged as a digest
 * (DIGEST_INVALID when malformed or of an algorithm Angos does not support);
 * everything else must be a valid tag (TAG_INVALID).
 */
export function parseReference(ref: string): Reference {
  if (isMeantAsDigest(ref)) return { kind: 'digest', digest: parseDigest(ref) };
  if (!isValidTag(ref)) {
    throw new OciError('TAG_INVALID', { tag: typeof ref === 'string' ? truncateForDetail(ref) : null });
  }
  return { kind: 'tag', tag: ref };
}

/**
 * The `<reference>` of a manifest GET, HEAD or DELETE. A name that is not a valid tag can never
 * have been pushed, so it names no manifest: MANIFEST_UNKNOWN (404), as distribution and zot
 * answer and the conformance suite expects, where a PUT gets TAG_INVALID (400). A malformed
 * digest is still DIGEST_INVALID.
 */
export function parseLookupReference(ref: string): Reference {
  if (isMeantAsDigest(ref) || isValidTag(ref)) return parseReference(ref);
  throw new OciError('MANIFEST_UNKNOWN', { tag: typeof ref === 'string' ? truncateForDetail(ref) : null });
}

function isMeantAsDigest(ref: string): boolean {
  return typeof ref === 'string' && (isDigestString(ref) || ref.includes(':'));
}

/** Throws OciError('NAME_INVALID') unless `name` is a valid namespace. */
export function assertValidNamespace(name: string): void {
  if (!isValidNamespace(name)) {
    throw new OciError('NAME_INVALID', { name: typeof name === 'string' ? truncateForDetail(name) : null });
  }
}
