/**
 * The storage layout, written once. Every key the registry reads or writes is
 * described by a `StorageKey` value and turned into a path by `keyFor()`;
 * nobody concatenates paths anywhere else. The same keys are used on every
 * backend (a directory tree on fs, object keys on S3).
 *
 *   _blobs/<alg>/<hex>                                      blob bytes (blob store, shared by all namespaces)
 *   _blob_index/<alg>/<hex>                                 which namespaces hold which references to a blob (JSON:
 *                                                           namespace → references, plus `_`-prefixed reclamation
 *                                                           marks; see libs/registry/src/blob-index.ts)
 *   <namespace>/_layers/<alg>/<hex>/link                    the namespace's grant to read a blob (uploaded or mounted)
 *   <namespace>/_manifests/revisions/<alg>/<hex>/link       a manifest stored in the namespace (JSON: digest, media type, size)
 *   <namespace>/_manifests/revisions/<alg>/<hex>/pulledat   last pull time of that manifest (update_pull_time)
 *   <namespace>/_manifests/tags/<tag>/link                  a tag (JSON: digest)
 *   <namespace>/_manifests/referrers/<alg>/<subject-hex>/<alg>/<hex>/link
 *                                                           a manifest whose `subject` is <subject> (JSON descriptor)
 *   <namespace>/_uploads/<id>/data                          bytes of an upload session in progress (blob store;
 *                                                           on S3 the key of its multipart upload)
 *   <namespace>/_uploads/<id>/state                         S3 only: the session's multipart upload id, parts and tail (JSON)
 *   <namespace>/_uploads/<id>/staged/<name>                 S3 only: bytes staged outside the multipart upload
 *   <namespace>/_uploads/<id>/startedat                     session creation time (metadata store)
 *   <namespace>/_uploads/<id>/writer                        the request appending to or completing the session,
 *                                                           while it streams (metadata store, JSON: token, offset)
 *   _jobs/…                                                 durable job queue (later)
 *
 * Namespace components always start with [a-z0-9], so a top-level name that
 * starts with `_` can never collide with a namespace.
 */
export type Algorithm = 'sha256' | 'sha512';

export interface DigestParts {
  readonly algorithm: Algorithm;
  readonly hex: string;
}

export type StorageKey =
  | { kind: 'blob'; digest: DigestParts }
  | { kind: 'blobIndex'; digest: DigestParts }
  | { kind: 'blobIndexes'; algorithm: Algorithm }
  | { kind: 'layerLink'; namespace: string; digest: DigestParts }
  | { kind: 'layerLinks'; namespace: string; algorithm: Algorithm }
  | { kind: 'revisionLink'; namespace: string; digest: DigestParts }
  | { kind: 'revisionLinks'; namespace: string; algorithm: Algorithm }
  | { kind: 'pulledAt'; namespace: string; digest: DigestParts }
  | { kind: 'tagLink'; namespace: string; tag: string }
  | { kind: 'tags'; namespace: string }
  | { kind: 'referrerLink'; namespace: string; subject: DigestParts; referrer: DigestParts }
  | { kind: 'referrers'; namespace: string; subject: DigestParts; algorithm: Algorithm }
  | { kind: 'uploadData'; namespace: string; id: string }
  | { kind: 'uploadState'; namespace: string; id: string }
  | { kind: 'uploadStaging'; namespace: string; id: string }
  | { kind: 'uploadStaged'; namespace: string; id: string; name: string }
  | { kind: 'uploadStartedAt'; namespace: string; id: string }
  | { kind: 'uploadWriter'; namespace: string; id: string }
  | { kind: 'uploads'; namespace: string }
  | { kind: 'upload'; namespace: string; id: string }
  | { kind: 'namespace'; namespace: string };

/** Turns a key description into its storage path (no leading slash). */
export function keyFor(key: StorageKey): string {
  switch (key.kind) {
    case 'blob':
      return `_blobs/${key.digest.algorithm}/${key.digest.hex}`;
    case 'blobIndex':
      return `_blob_index/${key.digest.algorithm}/${key.digest.hex}`;
    case 'blobIndexes':
      return `_blob_index/${key.algorithm}`;
    case 'layerLink':
      return `${key.namespace}/_layers/${key.digest.algorithm}/${key.digest.hex}/link`;
    case 'layerLinks':
      return `${key.namespace}/_layers/${key.algorithm}`;
    case 'revisionLink':
      return `${key.namespace}/_manifests/revisions/${key.digest.algorithm}/${key.digest.hex}/link`;
    case 'revisionLinks':
      return `${key.namespace}/_manifests/revisions/${key.algorithm}`;
    case 'pulledAt':
      return `${key.namespace}/_manifests/revisions/${key.digest.algorithm}/${key.digest.hex}/pulledat`;
    case 'tagLink':
      return `${key.namespace}/_manifests/tags/${key.tag}/link`;
    case 'tags':
      return `${key.namespace}/_manifests/tags`;
    case 'referrerLink':
      return `${key.namespace}/_manifests/referrers/${key.subject.algorithm}/${key.subject.hex}/${key.referrer.algorithm}/${key.referrer.hex}/link`;
    case 'referrers':
      return `${key.namespace}/_manifests/referrers/${key.subject.algorithm}/${key.subject.hex}/${key.algorithm}`;
    case 'uploadData':
      return `${key.namespace}/_uploads/${key.id}/data`;
    case 'uploadState':
      return `${key.namespace}/_uploads/${key.id}/state`;
    case 'uploadStaging':
      return `${key.namespace}/_uploads/${key.id}/staged`;
    case 'uploadStaged':
      return `${key.namespace}/_uploads/${key.id}/staged/${key.name}`;
    case 'uploadStartedAt':
      return `${key.namespace}/_uploads/${key.id}/startedat`;
    case 'uploadWriter':
      return `${key.namespace}/_uploads/${key.id}/writer`;
    case 'uploads':
      return `${key.namespace}/_uploads`;
    case 'upload':
      return `${key.namespace}/_uploads/${key.id}`;
    case 'namespace':
      return key.namespace;
  }
}
