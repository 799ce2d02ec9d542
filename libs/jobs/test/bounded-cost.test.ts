import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemoryLockManager } from '@angos/lock';
import { createMetadataStore, type ListPageOptions, type MetadataStore } from '@angos/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeEnvelope, newJobId, pendingName } from '../src/envelope.js';
import { GAUGE_COUNT_CAP, type JobFinished, JobQueue, JobRunner } from '../src/index.js';
import { paths } from '../src/layout.js';

/**
 * However deep a queue is, a poll reads only the head of its `pending/` and a gauge refresh at
 * most GAUGE_COUNT_CAP names in two listing pages: counted here in names listed and listing calls,
 * on the in-memory store (the listing contract is the same on every backend).
 */

const Q = 'deep';

/** The in-memory store, counting what is listed: whole listings and pages of `pending/`. */
function countingStore(): { store: MetadataStore; counts: { lists: number; pages: number; names: number } } {
  const inner = createMetadataStore({ kind: 'memory' });
  const counts = { lists: 0, pages: 0, names: 0 };
  const store = new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'list') {
        return async (prefix: string) => {
          const names = await target.list(prefix);
          if (prefix === paths.pendingDir(Q) || prefix === paths.failedDir(Q)) {
            counts.lists++;
            counts.names += names.length;
          }
          return names;
        };
      }
      if (property === 'listPage') {
        return async (prefix: string, options: ListPageOptions) => {
          const names = await target.listPage(prefix, options);
          if (prefix === paths.pendingDir(Q) || prefix === paths.failedDir(Q)) {
            counts.pages++;
            counts.names += names.length;
          }
          return names;
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, counts };
}

/** `count` envelopes written straight into `pending/` (an enqueue each would only be slower), due at `notBeforeMs`. */
async function seed(store: MetadataStore, count: number, notBeforeMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = newJobId(Date.now());
    const envelope = {
      id,
      queue: Q,
      kind: 'noop',
      lockKey: `deep:${id}`,
      createdAt: new Date().toISOString(),
      attempts: 0,
      notBefore: new Date(notBeforeMs).toISOString(),
      payload: {},
    };
    await store.put(paths.pending(Q, pendingName(notBeforeMs, id)), encodeEnvelope(envelope));
  }
}

let runner: JobRunner | undefined;
afterEach(async () => {
  await runner?.stop(0);
  runner = undefined;
});

describe('job queue cost however deep the queue', () => {
  it('counts the pending gauge up to its cap, in two listing pages of at most the cap in all', async () => {
    const { store, counts } = countingStore();
    const queue = new JobQueue({ store });
    await seed(store, GAUGE_COUNT_CAP + 500, Date.now());
    expect(await queue.pendingCount(Q, 600)).toBe(GAUGE_COUNT_CAP);
    expect(counts.lists).toBe(0);
    expect(counts.pages).toBe(2);
    expect(counts.names).toBeLessThanOrEqual(GAUGE_COUNT_CAP);
  }, 60_000);

  it('stops counting at the first job beyond the ready horizon', async () => {
    const { store, counts } = countingStore();
    const queue = new JobQueue({ store });
    await seed(store, 30, Date.now());
    await seed(store, 3000, Date.now() + 3600_000);
    expect(await queue.pendingCount(Q, 600)).toBe(30);
    expect(counts.pages).toBe(1);
    expect(await queue.pendingCount(Q, 7200)).toBe(3030);
  }, 60_000);

  it('polls only the head of pending/ while draining a deep queue', async () => {
    const { store, counts } = countingStore();
    await seed(store, 5000, Date.now());
    const finished: JobFinished[] = [];
    runner = new JobRunner({
      queue: new JobQueue({ store }),
      locks: new MemoryLockManager(),
      pools: [{ name: Q, concurrency: 4 }],
      handlers: [{ kind: 'noop', run: async () => {} }],
      pollIntervalMs: 50,
      onJobFinished: (event) => finished.push(event),
    });
    runner.start();
    const deadline = Date.now() + 60_000;
    while (finished.length < 200 && Date.now() < deadline) await sleep(20);
    await runner.stop(5000);
    expect(finished.length).toBeGreaterThanOrEqual(200);
    expect(finished.every((event) => event.outcome === 'completed')).toBe(true);
    expect(counts.lists).toBe(0);
    // Each look lists a page of (claims + pool + slack) names, not the 5,000 of the queue.
    expect(counts.names / counts.pages).toBeLessThanOrEqual(4 + 4 + 32);
  }, 90_000);

  it('lists a page of pending jobs deep into the queue without listing the whole of it', async () => {
    const { store, counts } = countingStore();
    const queue = new JobQueue({ store });
    await seed(store, 3000, Date.now());
    const first = await queue.listPending(Q, { n: 10 });
    const second = await queue.listPending(Q, { n: 10, last: first.last });
    expect(second.items).toHaveLength(10);
    expect(second.items[0]?.id).not.toBe(first.items[9]?.id);
    expect(counts.lists).toBe(0);
    expect(counts.names).toBeLessThanOrEqual(22);
  }, 60_000);
});

describe('temp files a kill left in a queue (fs)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('does not list a queue that holds nothing but temp files', async () => {
    dir = await mkdtemp(join(tmpdir(), 'angos-jobs-temp-'));
    const store = createMetadataStore({ kind: 'fs', rootDir: dir, syncToDisk: false });
    const queue = new JobQueue({ store });
    const { id } = await queue.enqueue('live', 'k', 'live:1', {});
    // What a worker SIGKILLed while writing a claim leaves behind: the claim's temp file.
    const claims = join(dir, paths.claimsDir('dead'));
    await mkdir(claims, { recursive: true });
    await writeFile(join(claims, '.tmp-deadbeef-1'), '{"token":');
    expect(await store.list(paths.queues())).toEqual(['dead', 'live']);
    expect(await queue.queues()).toEqual(['live']);
    expect(await queue.pendingCount('dead', 3600)).toBe(0);
    expect(await queue.deletePending('live', id)).toBe(true);
    expect(await queue.queues()).toEqual([]);
  });
});
