/**
 * The storage layout, written once. Every key the registry reads or writes is
 * described by a `StorageKey` value and turned into a path by `keyFor()`;
 * nobody concatenates paths anywhere else. The same keys are used on every
 * backend (a directory tree on fs, object keys on S3).
 *
 *   _blobs/<alg>/<hex[0:2]>/<hex>                           blob bytes (blob store, shared by all namespaces)
 *   _blob_index/<alg>/<hex[0:2]>/<hex>                      which namespaces hold which references to a blob (JSON:
 *                                                           namespace → references, plus `_`-prefixed reclamation
 *                                                           marks; see libs/registry/src/blob-index.ts)
 *   <namespace>/_layers/<alg>/<hex>/link                    the namespace's grant to read a blob (uploaded or mounted)
 *   <namespace>/_manifests/revisions/<alg>/<hex>/link       a manifest stored in the namespace (JSON: digest, media type, size)
 *   <namespace>/_manifests/revisions/<alg>/<hex>/pulledat   last pull time of that manifest (update_pull_time)
 *   <namespace>/_manifests/tags/<tag>/link                  a tag (JSON: digest)
 *   <namespace>/_manifests/tombstones/<tag>                 when the tag was last deleted (JSON: deleted_at), for
 *                                                           last-writer-wins against replicated pushes older than
 *                                                           the delete (libs/registry/src/tombstones.ts); outside
 *                                                           `tags/`, so tag listings and the catalog never see it
 *   <namespace>/_manifests/referrers/<alg>/<subject-hex>/<alg>/<hex>/link
 *                                                           a manifest whose `subject` is <subject> (JSON descriptor)
 *   <namespace>/_uploads/<id>/data                          bytes of an upload session in progress (blob store;
 *                                                           on S3 the key of its multipart upload)
 *   <namespace>/_uploads/<id>/state                         S3 only: the session's multipart upload id, parts and tail (JSON)
 *   <namespace>/_uploads/<id>/staged/<name>                 S3 only: bytes staged outside the multipart upload
 *   <namespace>/_uploads/<id>/startedat                     session creation time (metadata store)
 *   <namespace>/_uploads/<id>/writer                        the request appending to or completing the session,
 *                                                           while it streams (metadata store, JSON: token, offset)
 *   _jobs/<queue>/pending/<not-before>-<id>                 a job waiting or running (JSON envelope, libs/jobs); the
 *                                                           zero-padded not-before time in the name lets a listing
 *                                                           alone say which jobs are ready
 *   _jobs/<queue>/claims/<id>                               the worker running that job (JSON: token, lock key),
 *                                                           created with putIfAbsent
 *   _jobs/<queue>/lockkeys/<sha256 of the lock key>         the pending job that enqueues of that lock key join
 *                                                           (JSON: id, name)
 *   _jobs/<queue>/failed/<id>                               a dead-lettered job (JSON envelope with its last error)
 *   _jobs/<queue>/quarantine/<name>                         a record that could not be read, moved out of the way
 *   _lost_and_found/<key>                                   a key `angos scrub` found where the layout has no such key,
 *                                                           moved here (same relative path) instead of being deleted
 *
 * Namespace components always start with [a-z0-9], so a top-level name that
 * starts with `_` can never collide with a namespace.
 *
 * Blob directories fan out by the first two hex characters of the digest, as CNCF distribution's
 * `blobs/sha256/ab/abcdef…/data` do: millions of entries in one directory are slow to list and
 * to look up on NFS and EFS, and 256 subdirectories keep each one small.
 *
 * Stores written before the fan-out hold `_blobs/<alg>/<hex>` and `_blob_index/<alg>/<hex>`
 * (`legacyKeyFor`). They are read in both layouts, never migrated: every read looks at the
 * fanned-out key first and the legacy key after it, every write goes to the fanned-out key, and
 * a delete removes both (fs and S3 blob drivers; `withLegacyBlobIndex` for the index). A legacy
 * entry therefore stays where it is until it is deleted, and a rewritten one is shadowed by its
 * new copy. Why not migrate in place at startup:
 * - index entries change under the registry's locks, which the storage layer does not hold: a
 *   replica moving an entry while another updates it would lose the update (S3 has no rename,
 *   and a copy made before an update lands after it);
 * - a migration of millions of blobs on S3 (a copy and a delete each) or NFS takes hours, and
 *   the store would have to serve both layouts meanwhile anyway;
 * - several replicas starting at once, or a crash half-way, need no coordination at all when
 *   nothing moves.
 * The price is a second lookup when the fanned-out key is absent (a miss costs two). Replicas
 * must all run the fanned-out layout: one still writing the flat layout would not be seen. A
 * listing of `_blobs/<alg>` or `_blob_index/<alg>` shows both layouts: two-character
 * directories, and the entries of the flat layout beside them.
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
  | { kind: 'tagTombstone'; namespace: string; tag: string }
  | { kind: 'tagTombstones'; namespace: string }
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
  | { kind: 'namespace'; namespace: string }
  | { kind: 'jobQueues' }
  | { kind: 'jobQueue'; queue: string }
  | { kind: 'jobsPending'; queue: string }
  | { kind: 'jobPending'; queue: string; name: string }
  | { kind: 'jobClaims'; queue: string }
  | { kind: 'jobClaim'; queue: string; id: string }
  | { kind: 'jobLockKey'; queue: string; hash: string }
  | { kind: 'jobsFailed'; queue: string }
  | { kind: 'jobFailed'; queue: string; id: string }
  | { kind: 'jobsQuarantined'; queue: string }
  | { kind: 'jobQuarantined'; queue: string; name: string }
  | { kind: 'lostAndFound'; key: string }
  // The directories above the links, for the walks of `angos scrub`.
  | { kind: 'manifestsRoot'; namespace: string }
  | { kind: 'revisionsRoot'; namespace: string }
  | { kind: 'revision'; namespace: string; digest: DigestParts }
  | { kind: 'tag'; namespace: string; tag: string }
  | { kind: 'layersRoot'; namespace: string }
  | { kind: 'layer'; namespace: string; digest: DigestParts }
  | { kind: 'referrersRoot'; namespace: string }
  | { kind: 'referrerSubjects'; namespace: string; algorithm: Algorithm }
  | { kind: 'referrerSubject'; namespace: string; subject: DigestParts }
  | { kind: 'referrer'; namespace: string; subject: DigestParts; referrer: DigestParts };

/** Turns a key description into its storage path (no leading slash). */
export function keyFor(key: StorageKey): string {
  switch (key.kind) {
    case 'blob':
      return `_blobs/${key.digest.algorithm}/${fanOut(key.digest)}`;
    case 'blobIndex':
      return `_blob_index/${key.digest.algorithm}/${fanOut(key.digest)}`;
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
    case 'tagTombstone':
      return `${key.namespace}/_manifests/tombstones/${key.tag}`;
    case 'tagTombstones':
      return `${key.namespace}/_manifests/tombstones`;
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
    case 'jobQueues':
      return '_jobs';
    case 'jobQueue':
      return `_jobs/${key.queue}`;
    case 'jobsPending':
      return `_jobs/${key.queue}/pending`;
    case 'jobPending':
      return `_jobs/${key.queue}/pending/${key.name}`;
    case 'jobClaims':
      return `_jobs/${key.queue}/claims`;
    case 'jobClaim':
      return `_jobs/${key.queue}/claims/${key.id}`;
    case 'jobLockKey':
      return `_jobs/${key.queue}/lockkeys/${key.hash}`;
    case 'jobsFailed':
      return `_jobs/${key.queue}/failed`;
    case 'jobFailed':
      return `_jobs/${key.queue}/failed/${key.id}`;
    case 'jobsQuarantined':
      return `_jobs/${key.queue}/quarantine`;
    case 'jobQuarantined':
      return `_jobs/${key.queue}/quarantine/${key.name}`;
    case 'lostAndFound':
      return `_lost_and_found/${key.key}`;
    case 'manifestsRoot':
      return `${key.namespace}/_manifests`;
    case 'revisionsRoot':
      return `${key.namespace}/_manifests/revisions`;
    case 'revision':
      return `${key.namespace}/_manifests/revisions/${key.digest.algorithm}/${key.digest.hex}`;
    case 'tag':
      return `${key.namespace}/_manifests/tags/${key.tag}`;
    case 'layersRoot':
      return `${key.namespace}/_layers`;
    case 'layer':
      return `${key.namespace}/_layers/${key.digest.algorithm}/${key.digest.hex}`;
    case 'referrersRoot':
      return `${key.namespace}/_manifests/referrers`;
    case 'referrerSubjects':
      return `${key.namespace}/_manifests/referrers/${key.algorithm}`;
    case 'referrerSubject':
      return `${key.namespace}/_manifests/referrers/${key.subject.algorithm}/${key.subject.hex}`;
    case 'referrer':
      return `${key.namespace}/_manifests/referrers/${key.subject.algorithm}/${key.subject.hex}/${key.referrer.algorithm}/${key.referrer.hex}`;
  }
}

/** `<hex[0:2]>/<hex>`: the two-character directory a blob key fans out into. */
function fanOut(digest: DigestParts): string {
  return `${digest.hex.slice(0, 2)}/${digest.hex}`;
}

/** The keys that moved when blob directories fanned out, and the top-level directory of each. */
const FANNED_OUT = { blob: '_blobs', blobIndex: '_blob_index' } as const;

/** A key whose location changed with the fan-out. */
export type FannedOutKey = Extract<StorageKey, { kind: keyof typeof FANNED_OUT }>;

/** Where a fanned-out key lived before the fan-out (flat: `_blobs/<alg>/<hex>`). Read-only. */
export function legacyKeyFor(key: FannedOutKey): string {
  return `${FANNED_OUT[key.kind]}/${key.digest.algorithm}/${key.digest.hex}`;
}

/** `_blob_index/sha256/ab/abcd…` → the directory, algorithm and hex it names. */
const FANNED_OUT_PATH = /^(_blobs|_blob_index)\/(sha256|sha512)\/([0-9a-f]{2})\/([0-9a-f]{2,})$/;

/**
 * The legacy location of a path that `keyFor` made for a fanned-out key, or undefined for any
 * other path (for stores that see only paths, such as the metadata store).
 */
export function legacyPathOf(path: string): string | undefined {
  const match = FANNED_OUT_PATH.exec(path);
  if (match === null) return undefined;
  const [, directory, algorithm, prefix, hex] = match as unknown as [string, string, string, string, string];
  if (!hex.startsWith(prefix)) return undefined;
  return `${directory}/${algorithm}/${hex}`;
}

/** What the segment after `<namespace>/_manifests/` or `<namespace>/_uploads/<id>/` names. */
const MANIFEST_KINDS: Readonly<Record<string, string>> = {
  revisions: 'revision',
  tags: 'tag',
  referrers: 'referrer',
  tombstones: 'tombstone',
};

/**
 * The kind of key a path is, in a few words that stay few whatever the registry holds (`blob`,
 * `tag_link`, `job_pending`, `upload_writer`…): the `key_kind` of storage spans, which must not carry
 * repository names or digests. The inverse of `keyFor` in spirit, not in detail: directories above
 * the links read as the kind of what they hold (`tag`, `revision`), anything else as `other`.
 */
export function keyKindOf(path: string): string {
  const segments = path.split('/');
  const [first, second, third] = segments;
  switch (first) {
    case '_blobs':
      return 'blob';
    case '_blob_index':
      return 'blob_index';
    case '_jobs':
      return third === undefined ? 'jobs' : `job_${third}`;
    case '_lost_and_found':
      return 'lost_and_found';
  }
  const last = segments[segments.length - 1];
  const marker = segments.findIndex((segment) => segment.startsWith('_'));
  if (marker === -1) return 'namespace';
  switch (segments[marker]) {
    case '_layers':
      return last === 'link' ? 'layer_link' : 'layer';
    case '_uploads': {
      const part = segments[marker + 2];
      return part === undefined ? 'upload' : `upload_${part}`;
    }
    case '_manifests': {
      const kind = MANIFEST_KINDS[segments[marker + 1] ?? ''] ?? 'manifests';
      if (kind === 'tombstone') return kind; // its last segment is a tag, which may read `link`
      if (last === 'link') return `${kind}_link`;
      return last === 'pulledat' ? 'pulled_at' : kind;
    }
  }
  return second === undefined ? 'namespace' : 'other';
}
