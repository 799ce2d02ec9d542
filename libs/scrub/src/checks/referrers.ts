import { manifestLockKey } from '@angos/registry';
import { keyFor } from '@angos/storage';
import type { ScrubCheck } from '../types.js';
import { getValue, namespaces } from '../walk.js';
import { referrerEntries } from './links.js';

const CHECK = 'referrers';

/**
 * `--referrers` (`-R`): a referrer link (`_manifests/referrers/<subject>/<alg>/<hex>/link`) whose
 * referrer manifest is no longer a revision of the namespace (deleted, or a crash between its
 * revision and its link): `delete-referrer-link`, re-decided under the referrer's manifest lock
 * (a push of it writes the revision before the link under that lock). Strays in the referrers
 * tree are quarantined.
 */
export const referrersCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    for await (const namespace of namespaces(ctx)) {
      for await (const entry of referrerEntries(ctx, namespace, CHECK)) {
        if ('apply' in entry) {
          yield entry;
          continue;
        }
        const { subject, referrer } = entry;
        const path = keyFor({ kind: 'referrerLink', namespace, subject, referrer });
        const revision = keyFor({ kind: 'revisionLink', namespace, digest: referrer });
        if ((await getValue(ctx, path)) === undefined) continue;
        if ((await getValue(ctx, revision)) !== undefined) continue;
        yield {
          check: CHECK,
          action: 'delete-referrer-link',
          key: path,
          reason: 'the referrer manifest is not a revision of the namespace',
          apply: () =>
            ctx.locks.withLocks([manifestLockKey(namespace, referrer)], async (signal) => {
              if ((await getValue(ctx, revision, { fresh: true })) !== undefined) return;
              signal.throwIfAborted();
              await ctx.metadata.delete(path);
            }),
        };
      }
    }
  },
};
