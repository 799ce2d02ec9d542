import { formatDigest, isValidTag } from '@angos/oci';
import { keyFor } from '@angos/storage';
import { decodeOrUndefined, deleteTagWhile, isStoredManifest, quarantine } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import { getValue, list, namespaces } from '../walk.js';
import { checkTombstones } from './tombstones.js';

const CHECK = 'tags';

/**
 * `--tags` (`-t`): every tag of every namespace must be a valid tag name whose link points at a
 * manifest the namespace stores (revision link and bytes).
 * - a tag whose link does not parse, or whose manifest has no revision or no bytes: `delete-tag`
 *   (its link; re-decided under the tag's lock);
 * - a tag directory whose name is not a tag (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`): `delete-tag`
 *   (the whole directory: no request can reach it);
 * - anything but `link` in a tag directory: `quarantine`;
 * - a tag tombstone last-writer-wins no longer needs (its tag exists again, or its delete is older
 *   than 30 days): `delete-tombstone` (tombstones.ts).
 */
export const tagsCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    for await (const namespace of namespaces(ctx)) {
      for (const tag of await list(ctx, keyFor({ kind: 'tags', namespace }))) {
        yield* checkTag(ctx, namespace, tag);
      }
      yield* checkTombstones(ctx, CHECK, namespace);
    }
  },
};

async function* checkTag(ctx: ScrubContext, namespace: string, tag: string): AsyncIterable<ScrubAction> {
  const dir = keyFor({ kind: 'tag', namespace, tag });
  if (!isValidTag(tag)) {
    yield {
      check: CHECK,
      action: 'delete-tag',
      key: dir,
      reason: 'the directory name is not a valid tag',
      apply: () => ctx.metadata.deletePrefix(dir),
    };
    return;
  }
  for (const child of await list(ctx, dir)) {
    if (child !== 'link') yield quarantine(ctx, CHECK, `${dir}/${child}`, 'not a key of a tag directory');
  }
  const path = keyFor({ kind: 'tagLink', namespace, tag });
  const link = await getValue(ctx, path);
  if (link === undefined) return;
  const verdict = await brokenTag(ctx, namespace, link);
  if (verdict === undefined) return;
  yield {
    check: CHECK,
    action: 'delete-tag',
    key: path,
    reason: verdict,
    apply: () =>
      deleteTagWhile(
        ctx,
        namespace,
        tag,
        async (fresh) => fresh !== undefined && (await brokenTag(ctx, namespace, fresh, true)) !== undefined,
      ),
  };
}

/** Why a tag link is broken, or undefined when it points at a stored manifest. */
async function brokenTag(
  ctx: ScrubContext,
  namespace: string,
  link: Buffer,
  fresh = false,
): Promise<string | undefined> {
  const record = decodeOrUndefined(link);
  if (record === undefined) return 'the tag link does not parse';
  if (await isStoredManifest(ctx, namespace, record.digest, { fresh })) return undefined;
  return `the tag's manifest ${formatDigest(record.digest)} is not stored (no revision link or no bytes)`;
}
