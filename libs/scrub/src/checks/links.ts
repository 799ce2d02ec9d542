import { type DigestParts, formatDigest, parseManifest } from '@angos/oci';
import { BlobIndex, encodeLink, grantLockKey, manifestLockKey, referrerDescriptor } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { decodeOrUndefined, quarantine, referrerDigestOf, sameDigest } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import {
  blobExists,
  digestFrom,
  getValue,
  isAlgorithm,
  list,
  namespaces,
  readManifestBytes,
  revisionDirs,
} from '../walk.js';
import { deleteRevision } from './manifests.js';

const CHECK = 'links';

/**
 * `--links` (`-l`): the link files of every namespace, against the directories they sit in.
 * - a revision link that does not parse or names another digest than its directory:
 *   `rewrite-link`, from the manifest's bytes (media type and size), under the manifest's lock;
 * - a revision whose manifest bytes are gone: `delete-revision` (as `--manifests`);
 * - a layer link (`_layers/<alg>/<hex>/link`, a grant) that does not parse or names another
 *   digest: `rewrite-link`; one whose blob bytes are gone: `delete-layer-link`, which revokes the
 *   grant (link and index `layer`) under the grant lock, as a blob DELETE does;
 * - a phantom referrer back-link: a referrer link whose referrer manifest is stored but does not
 *   have that subject: `delete-referrer-link`; one that does not parse or names another digest:
 *   `rewrite-link` from the manifest (referrers whose manifest is gone are `--referrers`'s);
 * - entries of `_layers` and `_manifests/referrers` that name no digest, and keys other than
 *   `link` in their directories: `quarantine`.
 */
export const linksCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    for await (const namespace of namespaces(ctx)) {
      for await (const entry of revisionDirs(ctx, namespace)) {
        if ('digest' in entry) yield* checkRevisionLink(ctx, namespace, entry.digest);
      }
      yield* checkLayerLinks(ctx, namespace);
      yield* checkReferrerLinks(ctx, namespace);
    }
  },
};

async function* checkRevisionLink(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
): AsyncIterable<ScrubAction> {
  const path = keyFor({ kind: 'revisionLink', namespace, digest });
  const link = await getValue(ctx, path);
  if (link === undefined) return;
  const record = decodeOrUndefined(link);
  if (record !== undefined && sameDigest(record.digest, digest)) {
    if (!(await blobExists(ctx, digest))) yield deleteRevision(ctx, CHECK, namespace, digest);
    return;
  }
  if (!(await blobExists(ctx, digest))) {
    yield deleteRevision(ctx, CHECK, namespace, digest);
    return;
  }
  yield {
    check: CHECK,
    action: 'rewrite-link',
    key: path,
    reason: record === undefined ? 'the link does not parse' : 'the link names another digest',
    apply: () =>
      ctx.locks.withLocks([manifestLockKey(namespace, digest)], async (signal) => {
        const fresh = await getValue(ctx, path, { fresh: true });
        const current = fresh && decodeOrUndefined(fresh);
        if (fresh === undefined || (current !== undefined && sameDigest(current.digest, digest))) return;
        const body = await readManifestBytes(ctx, digest);
        if (body === undefined) return;
        const manifest = parseManifest(body, undefined);
        signal.throwIfAborted();
        await ctx.metadata.put(
          path,
          encodeLink({
            digest,
            mediaType: manifest.mediaType,
            size: body.length,
            createdAt: current?.createdAt,
          }),
        );
      }),
  };
}

async function* checkLayerLinks(ctx: ScrubContext, namespace: string): AsyncIterable<ScrubAction> {
  const root = keyFor({ kind: 'layersRoot', namespace });
  for (const algorithm of await list(ctx, root)) {
    if (!isAlgorithm(algorithm)) {
      yield quarantine(ctx, CHECK, `${root}/${algorithm}`, 'not a directory of _layers');
      continue;
    }
    for (const hex of await list(ctx, keyFor({ kind: 'layerLinks', namespace, algorithm }))) {
      const digest = digestFrom(algorithm, hex);
      if (digest === undefined) {
        yield quarantine(ctx, CHECK, `${root}/${algorithm}/${hex}`, 'not a layer directory');
        continue;
      }
      yield* checkLayerLink(ctx, namespace, digest);
    }
  }
}

async function* checkLayerLink(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
): AsyncIterable<ScrubAction> {
  const dir = keyFor({ kind: 'layer', namespace, digest });
  for (const child of await list(ctx, dir)) {
    if (child !== 'link') yield quarantine(ctx, CHECK, `${dir}/${child}`, 'not a key of a layer directory');
  }
  const path = keyFor({ kind: 'layerLink', namespace, digest });
  const link = await getValue(ctx, path);
  if (link === undefined) return;
  if (!(await blobExists(ctx, digest))) {
    yield {
      check: CHECK,
      action: 'delete-layer-link',
      key: path,
      reason: `the blob ${formatDigest(digest)} is not stored`,
      apply: () => revokeGrantWithoutBytes(ctx, namespace, digest),
    };
    return;
  }
  const record = decodeOrUndefined(link);
  if (record !== undefined && sameDigest(record.digest, digest)) return;
  yield {
    check: CHECK,
    action: 'rewrite-link',
    key: path,
    reason: record === undefined ? 'the link does not parse' : 'the link names another digest',
    apply: () =>
      ctx.locks.withLocks([grantLockKey(namespace, digest)], async (signal) => {
        if ((await getValue(ctx, path, { fresh: true })) === undefined) return;
        signal.throwIfAborted();
        await ctx.metadata.put(path, encodeLink({ digest }));
      }),
  };
}

/**
 * Revokes a grant whose bytes are gone, under the grant lock (an upload commit writes the bytes
 * before the link under the same lock, so bytes missing there are missing for good): the link,
 * then the index `layer`, as a blob DELETE does.
 */
async function revokeGrantWithoutBytes(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
): Promise<void> {
  await ctx.locks.withLocks([grantLockKey(namespace, digest)], async (signal) => {
    const path = keyFor({ kind: 'layerLink', namespace, digest });
    if ((await getValue(ctx, path, { fresh: true })) === undefined) return;
    if (await blobExists(ctx, digest)) return;
    signal.throwIfAborted();
    await ctx.metadata.delete(path);
    signal.throwIfAborted();
    await new BlobIndex(ctx.metadata, ctx.locks, ctx.logger).remove(digest, namespace, ['layer'], { signal });
  });
}

/** Every referrer directory of a namespace (`_manifests/referrers/<alg>/<hex>/<alg>/<hex>`), strays quarantined. */
export async function* referrerEntries(
  ctx: ScrubContext,
  namespace: string,
  check: string,
): AsyncIterable<{ subject: DigestParts; referrer: DigestParts } | ScrubAction> {
  const root = keyFor({ kind: 'referrersRoot', namespace });
  for (const subjectAlgorithm of await list(ctx, root)) {
    const subjects = `${root}/${subjectAlgorithm}`;
    if (!isAlgorithm(subjectAlgorithm)) {
      yield quarantine(ctx, check, subjects, 'not a directory of referrers');
      continue;
    }
    for (const subjectHex of await list(ctx, subjects)) {
      const subject = digestFrom(subjectAlgorithm, subjectHex);
      const subjectDir = `${subjects}/${subjectHex}`;
      if (subject === undefined) {
        yield quarantine(ctx, check, subjectDir, 'not a subject directory');
        continue;
      }
      for (const algorithm of await list(ctx, subjectDir)) {
        if (!isAlgorithm(algorithm)) {
          yield quarantine(ctx, check, `${subjectDir}/${algorithm}`, 'not a directory of referrers');
          continue;
        }
        for (const hex of await list(ctx, keyFor({ kind: 'referrers', namespace, subject, algorithm }))) {
          const referrer = digestFrom(algorithm, hex);
          if (referrer === undefined) {
            yield quarantine(ctx, check, `${subjectDir}/${algorithm}/${hex}`, 'not a referrer directory');
            continue;
          }
          yield { subject, referrer };
        }
      }
    }
  }
}

async function* checkReferrerLinks(ctx: ScrubContext, namespace: string): AsyncIterable<ScrubAction> {
  for await (const entry of referrerEntries(ctx, namespace, CHECK)) {
    if ('apply' in entry) {
      yield entry;
      continue;
    }
    const { subject, referrer } = entry;
    const dir = keyFor({ kind: 'referrer', namespace, subject, referrer });
    for (const child of await list(ctx, dir)) {
      if (child !== 'link')
        yield quarantine(ctx, CHECK, `${dir}/${child}`, 'not a key of a referrer directory');
    }
    const path = keyFor({ kind: 'referrerLink', namespace, subject, referrer });
    const link = await getValue(ctx, path);
    if (link === undefined) continue;
    const verdict = await referrerVerdict(ctx, namespace, subject, referrer, link);
    if (verdict === undefined) continue;
    yield {
      check: CHECK,
      action: verdict.action,
      key: path,
      reason: verdict.reason,
      apply: () =>
        ctx.locks.withLocks([manifestLockKey(namespace, referrer)], async (signal) => {
          const fresh = await getValue(ctx, path, { fresh: true });
          if (fresh === undefined) return;
          const now = await referrerVerdict(ctx, namespace, subject, referrer, fresh, true);
          if (now?.action !== verdict.action) return;
          signal.throwIfAborted();
          if (now.action === 'delete-referrer-link') await ctx.metadata.delete(path);
          else await ctx.metadata.put(path, JSON.stringify(now.descriptor));
        }),
    };
  }
}

type ReferrerVerdict =
  | { action: 'delete-referrer-link'; reason: string }
  | { action: 'rewrite-link'; reason: string; descriptor: object };

/**
 * What is wrong with a referrer link whose referrer manifest is stored; undefined when nothing is,
 * or when the manifest is not stored (an orphan: `--referrers`).
 */
async function referrerVerdict(
  ctx: ScrubContext,
  namespace: string,
  subject: DigestParts,
  referrer: DigestParts,
  link: Buffer,
  fresh = false,
): Promise<ReferrerVerdict | undefined> {
  const revision = await getValue(ctx, keyFor({ kind: 'revisionLink', namespace, digest: referrer }), {
    fresh,
  });
  if (revision === undefined) return undefined;
  const body = await readManifestBytes(ctx, referrer);
  if (body === undefined) return undefined;
  let manifest: ReturnType<typeof parseManifest>;
  try {
    manifest = parseManifest(body, decodeOrUndefined(revision)?.mediaType);
  } catch {
    return undefined; // not a manifest any more: the revision is the problem, not this link
  }
  const declared = manifest.subject?.digest;
  if (declared !== formatDigest(subject)) {
    return { action: 'delete-referrer-link', reason: 'the referrer manifest does not have this subject' };
  }
  const named = referrerDigestOf(link);
  if (named !== undefined && sameDigest(named, referrer)) return undefined;
  return {
    action: 'rewrite-link',
    reason: named === undefined ? 'the link does not parse' : 'the link names another digest',
    descriptor: referrerDescriptor(manifest, referrer, body.length),
  };
}
