import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { uploadLockKey } from '@angos/registry';
import { FsMetadataStore, keyFor, type MetadataStore, NotFoundError } from '@angos/storage';
import { quarantine } from '../repairs.js';
import type { ScrubAction, ScrubCheck, ScrubContext } from '../types.js';
import { getValue, list, namespaces } from '../walk.js';

const CHECK = 'uploads';

/** What an upload session directory holds, on either store (keys.ts). */
const SESSION_KEYS: ReadonlySet<string> = new Set(['data', 'state', 'staged', 'startedat', 'writer']);

/**
 * `--uploads <duration>` (`-u`): upload sessions, each re-decided under its session lock (the
 * lock a PATCH, PUT or DELETE of the session takes around its transitions):
 * - started longer ago than the duration: `delete-upload`;
 * - broken: a start time that does not parse, or no bytes in the blob store (a session removed
 *   half-way, or one holding only a writer claim): `delete-upload`;
 * - no start time (a crash between creating the session and recording its start): on the
 *   filesystem aged by its data file's modification time; elsewhere left alone;
 * - keys a session directory does not hold: `quarantine`.
 * On the filesystem the blob store's own session directories are walked too when its root is not
 * the metadata store's (abandoned sessions have nothing in the metadata store).
 */
export const uploadsCheck: ScrubCheck = {
  name: CHECK,
  async *plan(ctx) {
    const olderThanMs = ctx.options.uploadsOlderThanMs;
    if (olderThanMs === undefined) throw new Error('--uploads needs a duration');
    const seen = new Set<string>();
    for (const store of sessionStores(ctx)) {
      for await (const namespace of namespaces(ctx, store)) {
        const root = keyFor({ kind: 'uploads', namespace });
        for (const id of await list(ctx, root, store)) {
          const dir = keyFor({ kind: 'upload', namespace, id });
          if (seen.has(dir)) continue;
          seen.add(dir);
          if (store === ctx.metadata) {
            for (const child of await list(ctx, dir)) {
              if (!SESSION_KEYS.has(child))
                yield quarantine(ctx, CHECK, `${dir}/${child}`, 'not a key of an upload session');
            }
          }
          yield* checkSession(ctx, namespace, id, olderThanMs);
        }
      }
    }
  },
};

/** The stores whose listing shows sessions: the metadata store, and an fs blob root of its own. */
function sessionStores(ctx: ScrubContext): MetadataStore[] {
  const { metadata, blobs } = ctx.fsRoots;
  if (blobs === undefined || blobs === metadata) return [ctx.metadata];
  return [ctx.metadata, new FsMetadataStore(blobs, { syncToDisk: false })];
}

async function* checkSession(
  ctx: ScrubContext,
  namespace: string,
  id: string,
  olderThanMs: number,
): AsyncIterable<ScrubAction> {
  const reason = await sessionVerdict(ctx, namespace, id, olderThanMs);
  if (reason === undefined) return;
  yield {
    check: CHECK,
    action: 'delete-upload',
    key: keyFor({ kind: 'upload', namespace, id }),
    reason,
    apply: () =>
      ctx.locks.withLocks([uploadLockKey(namespace, id)], async (signal) => {
        if ((await sessionVerdict(ctx, namespace, id, olderThanMs, true)) === undefined) return;
        signal.throwIfAborted();
        await ctx.blobs.deleteUpload(namespace, id);
        signal.throwIfAborted();
        // Start time, writer claim, and whatever a crash left beside them.
        await ctx.metadata.deletePrefix(keyFor({ kind: 'upload', namespace, id }));
      }),
  };
}

/** Why the session should go, or undefined when it is live (or its age cannot be told). */
async function sessionVerdict(
  ctx: ScrubContext,
  namespace: string,
  id: string,
  olderThanMs: number,
  fresh = false,
): Promise<string | undefined> {
  const cutoff = ctx.now() - olderThanMs;
  const started = await getValue(ctx, keyFor({ kind: 'uploadStartedAt', namespace, id }), { fresh });
  const size = await uploadSize(ctx, namespace, id);
  if (started !== undefined) {
    const at = Date.parse(started.toString('utf8'));
    if (Number.isNaN(at)) return 'the start time does not parse';
    if (at <= cutoff) return 'older than --uploads';
    return size === undefined ? 'the session has no data' : undefined;
  }
  if (size === undefined) return 'the session has neither a start time nor data';
  const modified = await dataModifiedAt(ctx, namespace, id);
  if (modified !== undefined && modified <= cutoff)
    return 'no start time, and its data is older than --uploads';
  return undefined;
}

async function uploadSize(ctx: ScrubContext, namespace: string, id: string): Promise<number | undefined> {
  try {
    return await ctx.blobs.uploadSize(namespace, id);
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** The modification time of the session's data file on an fs blob store; undefined elsewhere. */
async function dataModifiedAt(ctx: ScrubContext, namespace: string, id: string): Promise<number | undefined> {
  const root = ctx.fsRoots.blobs;
  if (root === undefined) return undefined;
  try {
    return (await stat(join(root, keyFor({ kind: 'uploadData', namespace, id })))).mtimeMs;
  } catch {
    return undefined;
  }
}
