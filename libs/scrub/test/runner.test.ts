import { parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { createRegistry } from '@angos/registry';
import { MemoryBlobStore, MemoryMetadataStore } from '@angos/storage';
import { describe, expect, it } from 'vitest';
import { type PlannedAction, runScrub, type ScrubAction, type ScrubCheck } from '../src/index.js';

/** The runner alone, over checks written here: order, failures, de-duplication, progress. */

function context() {
  const { config } = parseConfig(
    '[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "/unused"\n',
  );
  const blobs = new MemoryBlobStore();
  const metadata = new MemoryMetadataStore();
  const locks = new MemoryLockManager();
  return {
    metadata,
    blobs,
    locks,
    registry: createRegistry({ blobs, metadata, locks, config: () => config, logger: silentLogger }),
    logger: silentLogger,
    now: Date.now,
    options: {},
    fsRoots: {},
  };
}

function action(check: string, key: string, apply: () => Promise<void> = async () => {}): ScrubAction {
  return { check, action: 'delete-tag', key, reason: 'test', apply };
}

function check(name: string, actions: (walked: (n?: number) => void) => ScrubAction[]): ScrubCheck {
  return {
    name,
    async *plan(ctx) {
      yield* actions(ctx.walked);
    },
  };
}

describe('runScrub', () => {
  it('goes on past a failing action and a failing check, counting both', async () => {
    const applied: string[] = [];
    const checks = [
      check('first', (walked) => {
        walked(3);
        return [
          action('first', 'a', async () => {
            throw new Error('disk on fire');
          }),
          action('first', 'b', async () => {
            applied.push('b');
          }),
        ];
      }),
      {
        name: 'broken',
        // biome-ignore lint/correctness/useYield: a check that fails before planning anything
        async *plan() {
          throw new Error('cannot list');
        },
      } satisfies ScrubCheck,
      check('last', () => [action('last', 'c', async () => void applied.push('c'))]),
    ];
    const summary = await runScrub(checks, context(), { dryRun: false });
    expect(applied).toEqual(['b', 'c']);
    expect(summary).toEqual({ keysWalked: 3, repairs: 2, quarantined: 0, corruptRemoved: 0, failures: 2 });
  });

  it('plans an action once when two checks find it, in a dry run as in a real run', async () => {
    const checks = [check('one', () => [action('one', 'same')]), check('two', () => [action('two', 'same')])];
    for (const dryRun of [true, false]) {
      const heard: PlannedAction[] = [];
      const summary = await runScrub(checks, context(), { dryRun, onAction: (a) => heard.push(a) });
      expect(heard).toEqual([{ check: 'one', action: 'delete-tag', key: 'same', reason: 'test' }]);
      expect(summary.repairs).toBe(1);
    }
  });

  it('draws progress on a terminal only', async () => {
    const checks = [
      check('tags', (walked) => {
        walked(5);
        return [];
      }),
    ];
    const tty: string[] = [];
    await runScrub(checks, context(), {
      dryRun: true,
      progress: { isTTY: true, write: (text) => tty.push(text) },
    });
    expect(tty.join('')).toMatch(/scrub tags: \d+ keys walked, \d+ keys\/s/);
    const pipe: string[] = [];
    await runScrub(checks, context(), {
      dryRun: true,
      progress: { isTTY: false, write: (text) => pipe.push(text) },
    });
    expect(pipe).toEqual([]);
  });
  it('stops at the signal between actions, never counting the abort as a failure of a check', async () => {
    const applied: string[] = [];
    const abort = new AbortController();
    const checks = [
      check('first', () => [
        action('first', 'a', async () => {
          applied.push('a');
          abort.abort(new Error('client gone'));
        }),
        action('first', 'b', async () => {
          applied.push('b');
        }),
      ]),
      check('second', () => [
        action('second', 'c', async () => {
          applied.push('c');
        }),
      ]),
    ];
    await expect(runScrub(checks, context(), { dryRun: false, signal: abort.signal })).rejects.toThrow(
      'client gone',
    );
    // The action in progress ended; nothing after it ran.
    expect(applied).toEqual(['a']);
  });
});
