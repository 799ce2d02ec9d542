import type { DigestParts } from '@angos/oci';
import { manifestLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import { decodeOrUndefined, deleteRevisionWithoutBytes, quarantine } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import { blobExists, getValue, list, NAMESPACE_DIRS, namespaces, revisionDirs } from '../walk.js';

const CHECK = 'manifests';

/** What `<namespace>/_manifests/` holds. */
const MANIFEST_DIRS: ReadonlySet<string> = new Set(['tags', 'tombstones', 'revisions', 'referrers']);
/** What a revision directory holds. */
const REVISION_KEYS: ReadonlySet<string> = new Set(['link', 'pulledat']);

/**
 * `--manifests` (`-m`): the manifests each namespace stores, against the layout.
 * - a revision whose link parses but whose manifest bytes are gone: `delete-revision` (with the
 *   tags and referrer links that point at it; see deleteRevisionWithoutBytes);
 * - a pull time (`pulledat`) left without a revision link (a pull racing the manifest's delete):
 *   `delete-pull-time`, under the manifest's lock;
 * - a revision directory that names no digest, anything but `link` and `pulledat` in one,
 *   anything but `tags`, `tombstones`, `revisions` and `referrers` in `_manifests`, and a `_…` directory of a
 *   namespace the layout does not know: `quarantine`.
 * Links that do not parse are `--links`'s.
 */
export const manifestsCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    for await (const namespace of namespaces(ctx)) {
      const root = keyFor({ kind: 'namespace', namespace });
      for (const child of await list(ctx, root)) {
        if (child.startsWith('_') && !NAMESPACE_DIRS.has(child)) {
          yield quarantine(ctx, CHECK, `${root}/${child}`, 'not a directory of a namespace');
        }
      }
      const manifests = keyFor({ kind: 'manifestsRoot', namespace });
      for (const child of await list(ctx, manifests)) {
        if (!MANIFEST_DIRS.has(child)) {
          yield quarantine(ctx, CHECK, `${manifests}/${child}`, 'not a directory of _manifests');
        }
      }
      for await (const entry of revisionDirs(ctx, namespace)) {
        if ('stray' in entry) yield quarantine(ctx, CHECK, entry.stray, 'not a revision directory');
        else yield* checkRevision(ctx, namespace, entry.digest);
      }
    }
  },
};

async function* checkRevision(
  ctx: ScrubContext,
  namespace: string,
  digest: DigestParts,
): AsyncIterable<ScrubAction> {
  const dir = keyFor({ kind: 'revision', namespace, digest });
  const children = await list(ctx, dir);
  for (const child of children) {
    if (!REVISION_KEYS.has(child)) yield quarantine(ctx, CHECK, `${dir}/${child}`, 'not a key of a revision');
  }
  const link = children.includes('link')
    ? await getValue(ctx, keyFor({ kind: 'revisionLink', namespace, digest }))
    : undefined;
  if (link === undefined) {
    if (children.includes('pulledat')) yield deletePullTime(ctx, namespace, digest);
    return;
  }
  if (decodeOrUndefined(link) === undefined) return;
  if (!(await blobExists(ctx, digest))) yield deleteRevision(ctx, CHECK, namespace, digest);
}

/** `delete-revision` of a revision whose manifest bytes are gone (shared by -m, -l and -M). */
export function deleteRevision(
  ctx: ScrubContext,
  check: string,
  namespace: string,
  digest: DigestParts,
): ScrubAction {
  return {
    check,
    action: 'delete-revision',
    key: keyFor({ kind: 'revisionLink', namespace, digest }),
    reason: 'the manifest bytes are gone',
    apply: () => deleteRevisionWithoutBytes(ctx, namespace, digest),
  };
}

function deletePullTime(ctx: ScrubContext, namespace: string, digest: DigestParts): ScrubAction {
  const key = keyFor({ kind: 'pulledAt', namespace, digest });
  return {
    check: CHECK,
    action: 'delete-pull-time',
    key,
    reason: 'a pull time without a revision',
    // Under the manifest's lock: a push of the manifest writes its revision link under it.
    apply: () =>
      ctx.locks.withLocks([manifestLockKey(namespace, digest)], async (signal) => {
        const revision = keyFor({ kind: 'revisionLink', namespace, digest });
        if ((await getValue(ctx, revision, { fresh: true })) !== undefined) return;
        signal.throwIfAborted();
        await ctx.metadata.delete(key);
      }),
  };
}
