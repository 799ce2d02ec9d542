import { type DigestParts, parseDigest } from '@angos/oci';
import { BlobIndex, decodeLink, manifestLockKey, tagLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { QUARANTINE } from './runner.js';
import type { ScrubAction, ScrubContext } from './types.js';
import { blobExists, getValue, isAlgorithm } from './walk.js';

/**
 * The repairs several checks share, each re-deciding under the locks the registry's request paths
 * take for the same keys (libs/registry manifests.ts, blob-locks.ts): a push or delete that races
 * a repair either finishes first, and the repair then finds nothing to do, or starts after it.
 */

/** The action that moves an unknown key to `_lost_and_found/<key>`: never deleted silently. */
export function quarantine(ctx: ScrubContext, check: string, key: string, reason: string): ScrubAction {
  return { check, action: QUARANTINE, key, reason, apply: () => moveToLostAndFound(ctx, key) };
}

/** Moves a value, or every value under a prefix, to the lost-and-found prefix. */
async function moveToLostAndFound(ctx: ScrubContext, key: string): Promise<void> {
  const value = await getValue(ctx, key);
  if (value !== undefined) {
    await ctx.metadata.put(keyFor({ kind: 'lostAndFound', key }), value);
    await ctx.metadata.delete(key);
    return;
  }
  for (const child of await ctx.metadata.list(key)) await moveToLostAndFound(ctx, `${key}/${child}`);
}

/** Whether the namespace stores the manifest: its revision link and its bytes. */
export async function isStoredManifest(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
  options: { fresh?: boolean } = {},
): Promise<boolean> {
  const link = await getValue(ctx, keyFor({ kind: 'revisionLink', namespace, digest }), options);
  return link !== undefined && (await blobExists(ctx, digest));
}

/**
 * Deletes a tag link while `broken(link)` holds for it, read fresh under the tag's lock (a push
 * moving the tag meanwhile makes it healthy, and the repair does nothing).
 */
export async function deleteTagWhile(
  ctx: ScrubContext,
  namespace: string,
  tag: string,
  broken: (link: Buffer | undefined) => Promise<boolean>,
): Promise<void> {
  await ctx.locks.withLocks([tagLockKey(namespace, tag)], async (signal) => {
    const path = keyFor({ kind: 'tagLink', namespace, tag });
    if (!(await broken(await getValue(ctx, path, { fresh: true })))) return;
    signal.throwIfAborted();
    await ctx.metadata.delete(path);
  });
}

/**
 * Removes a revision whose manifest bytes are gone, under the manifest's lock (a push of the
 * manifest writes its bytes before its revision, under the same lock): the tags still pointing at
 * it (each under its tag lock), its referrer links, its pull time, its revision link, and its
 * `manifest` hold on the blob index. The references it made to other blobs cannot be read any
 * more; garbage collection prunes them, as for any revision that is gone.
 */
export async function deleteRevisionWithoutBytes(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
): Promise<void> {
  await ctx.locks.withLocks([manifestLockKey(namespace, digest)], async (signal) => {
    const revision = keyFor({ kind: 'revisionLink', namespace, digest });
    if ((await getValue(ctx, revision, { fresh: true })) === undefined) return;
    if (await blobExists(ctx, digest)) return;
    await deleteTagsPointingAt(ctx, namespace, digest, signal);
    for await (const link of referrerLinksOf(ctx, namespace, digest)) {
      signal.throwIfAborted();
      await ctx.metadata.delete(link);
    }
    signal.throwIfAborted();
    await ctx.metadata.delete(revision);
    signal.throwIfAborted();
    await ctx.metadata.delete(keyFor({ kind: 'pulledAt', namespace, digest }));
    const index = new BlobIndex(ctx.metadata, ctx.locks, ctx.logger);
    await index.remove(digest, namespace, ['manifest'], { signal });
  });
}

async function deleteTagsPointingAt(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
  signal: AbortSignal,
): Promise<void> {
  const pointsAt = async (link: Buffer | undefined) => {
    const target = link && decodeOrUndefined(link);
    return target !== undefined && sameDigest(target.digest, digest);
  };
  for (const tag of await ctx.metadata.list(keyFor({ kind: 'tags', namespace }))) {
    signal.throwIfAborted();
    await deleteTagWhile(ctx, namespace, tag, pointsAt);
  }
}

/** The referrer links (`…/referrers/<subject>/<alg>/<hex>/link`) whose referrer is `referrer`. */
async function* referrerLinksOf(
  ctx: ScrubContext,
  namespace: string,
  referrer: DigestParts,
): AsyncIterable<string> {
  for (const algorithm of await ctx.metadata.list(keyFor({ kind: 'referrersRoot', namespace }))) {
    if (!isAlgorithm(algorithm)) continue;
    for (const hex of await ctx.metadata.list(keyFor({ kind: 'referrerSubjects', namespace, algorithm }))) {
      const subject = { algorithm, hex };
      const link = keyFor({ kind: 'referrerLink', namespace, subject, referrer });
      if ((await getValue(ctx, link)) !== undefined) yield link;
    }
  }
}

/** A link's record, or undefined when it does not parse. */
export function decodeOrUndefined(data: Buffer): ReturnType<typeof decodeLink> | undefined {
  try {
    return decodeLink(data);
  } catch {
    return undefined;
  }
}

/** A referrer link's descriptor digest, or undefined when it does not parse. */
export function referrerDigestOf(data: Buffer): DigestParts | undefined {
  try {
    const descriptor = JSON.parse(data.toString('utf8')) as { digest?: unknown };
    return typeof descriptor.digest === 'string' ? parseDigest(descriptor.digest) : undefined;
  } catch {
    return undefined;
  }
}

export function sameDigest(a: DigestParts, b: DigestParts): boolean {
  return a.algorithm === b.algorithm && a.hex === b.hex;
}
