import { type DigestParts, formatDigest } from '@angos/oci';

/** Bounds the memory the cache can take (~100 bytes an entry); the oldest entries go first. */
const MAX_ENTRIES = 10_000;

/**
 * Sizes of blobs, read after a namespace's grant to the blob was checked: blob HEAD and GET then
 * ask the blob store (an S3 HeadObject, a round trip to the provider) once per digest and TTL,
 * not on every request.
 *
 * Why a cached size is as good as a fresh HeadObject, for a caller that has just seen a grant:
 * - A digest names its bytes: while they exist, their size does not change. Bytes only ever
 *   appear whole (an upload commit is atomic and never replaces existing bytes).
 * - A grant's link is written only after its bytes exist (upload commit, mount), and garbage
 *   collection ([2.1], gc.ts) deletes bytes only once no namespace has held them for the grace
 *   period: under its claim, after every grant was revoked. So while a grant stands, its bytes
 *   exist, and a request that saw one is answered with the size they have.
 * - A grant seen through the link cache may have been revoked by another replica up to
 *   `link_cache_ttl` ago; that request is answered as if it came that much earlier. This cache
 *   keeps a size for the same TTL, never longer, so it adds no staleness the grant check does not
 *   already have: bytes another replica deleted (gc past a grace period shorter than the TTL,
 *   `scrub --blobs` removing corrupt bytes, which leaves the grants) answer 404 again within it,
 *   and a client that then pushes them again is not told for longer than that that they exist.
 * - Bytes that do not match their digest (corruption, which `scrub --blobs` removes) may have
 *   another size than the bytes pushed again in their place: the old size too is kept no longer
 *   than the TTL.
 * - This process's own deletes (gc.ts) forget the digest at once.
 * The cache is never consulted for decisions (a mount checks the bytes itself): only to answer a
 * read that a grant allowed.
 */
export class BlobSizes {
  readonly #entries = new Map<string, { readonly size: number; readonly expiresAt: number }>();

  /** `ttlMs`: how long a size is kept, re-read at each call so a reload applies (0: nothing is kept). */
  constructor(
    private readonly ttlMs: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The size read within the TTL, or undefined. */
  get(digest: DigestParts): number | undefined {
    const key = formatDigest(digest);
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.now()) return entry.size;
    this.#entries.delete(key);
    return undefined;
  }

  /** Keeps the size the store reported, for the TTL from now. */
  set(digest: DigestParts, size: number): void {
    const ttlMs = this.ttlMs();
    if (ttlMs <= 0) return;
    const key = formatDigest(digest);
    this.#entries.delete(key);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size < MAX_ENTRIES) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(key, { size, expiresAt: this.now() + ttlMs });
  }

  /** The bytes are being (or were) deleted here: the next read asks the store. */
  forget(digest: DigestParts): void {
    this.#entries.delete(formatDigest(digest));
  }
}
