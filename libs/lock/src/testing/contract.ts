/**
 * The lock contract suite (`@angos/lock/contract`): memory, Redis and S3 run the same tests
 * against the real thing (STYLE.md #1). Needs vitest.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createMetrics, type Metrics } from '@angos/observability';
import { describe, expect, it } from 'vitest';
import { sleep } from '../delays.js';
import { LockLostError, LockTimeoutError } from '../errors.js';
import { instrumentLocks } from '../instrument.js';
import type { InvalidationReason, LockBackend, LockManager } from '../types.js';
import type { HolderRecipe } from './recipe.js';

export type { HolderRecipe } from './recipe.js';

/** What distributed backends offer beyond in-process locking. */
export interface DistributedUnderTest {
  /** Lock TTL of the managers `manager()` builds. */
  readonly ttlMs: number;
  /** How the crash test's child process builds the same kind of manager. */
  readonly holder: HolderRecipe;
  /** Replaces the lock of `key` as another owner would (the holder must notice). */
  steal(key: string): Promise<void>;
  /** Removes the lock of `key` behind its holder's back, and the reason the holder must give. */
  remove(key: string): Promise<void>;
  readonly removedReason: InvalidationReason;
  /** Lock keys present in the backend: must be none after each test. */
  leftovers(): Promise<string[]>;
  /** `max_hold_secs` of the managers, when the backend has it. */
  readonly maxHoldMs?: number | undefined;
}

export interface ManagerOptions {
  /** Bounds acquisitions (`max_retries`). */
  readonly maxRetries?: number | undefined;
  /** Overrides `max_hold_secs` where the backend has it, in milliseconds. */
  readonly maxHoldMs?: number | undefined;
}

export interface LockUnderTest {
  readonly backend: LockBackend;
  /**
   * A manager as another instance would have it (its own connection), sharing the lock space of
   * every other manager of this backend under test. `maxRetries` bounds its acquisitions.
   */
  manager(options?: ManagerOptions): LockManager;
  readonly distributed?: DistributedUnderTest | undefined;
  /** Closes what `manager()` opened. */
  cleanup(): Promise<void>;
}

/** Builds a fresh backend under test, with its own key space (prefix), for one test. */
export type LockFactory = () => Promise<LockUnderTest>;

const HOLDER_SCRIPT = fileURLToPath(new URL('../../dist/testing/holder.js', import.meta.url));

/**
 * Runs a test on a fresh backend; afterwards closes every manager it built (which waits for
 * background releases) and checks that no lock was left behind.
 */
async function withBackend(
  factory: LockFactory,
  test: (backend: LockUnderTest) => Promise<void>,
): Promise<void> {
  const backend = await factory();
  const opened = new Set<LockManager>();
  const tracked: LockUnderTest = {
    ...backend,
    manager(options) {
      const manager = backend.manager(options);
      opened.add(manager);
      return manager;
    },
  };
  try {
    await test(tracked);
    await Promise.all([...opened].map((manager) => manager.close()));
    if (backend.distributed) {
      expect(await backend.distributed.leftovers(), 'the test left locks behind').toEqual([]);
    }
  } finally {
    await Promise.all([...opened].map((manager) => manager.close()));
    await backend.cleanup();
  }
}

/** The distributed part of a backend under test; the suite runs these tests for distributed backends only. */
function distributedOf(backend: LockUnderTest): DistributedUnderTest {
  if (!backend.distributed) throw new Error(`${backend.backend} is not a distributed backend`);
  return backend.distributed;
}

function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  return metrics.registry
    .getSingleMetric(name)!
    .get()
    .then((metric) =>
      metric.values
        .filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))
        .reduce((sum, v) => sum + v.value, 0),
    );
}

/** Takes `key` and keeps it until `release()`; `inside` resolves once the work holds it. */
function holdKey(
  locks: LockManager,
  key: string,
): { inside: Promise<void>; release(): void; done: Promise<void> } {
  let entered!: () => void;
  let release!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const done = locks.withLocks([key], async () => {
    entered();
    await released;
  });
  return { inside, release, done };
}

/** Resolves when the work's signal aborts, with its reason. */
function abortReason(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

/** Waits for `held` on the child's stdout. */
async function heldBy(child: ChildProcess): Promise<void> {
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('held')) resolve();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => reject(new Error(`holder exited (${code}) before holding: ${output}`)));
  });
}

export interface LockContractOptions {
  /** The backend coordinates processes (TTL, heartbeat, crash recovery tests). */
  readonly distributed?: boolean | undefined;
  /** The backend has `max_hold_secs`. */
  readonly maxHold?: boolean | undefined;
  /** Per test; default 30 s. */
  readonly timeoutMs?: number | undefined;
}

/**
 * The behaviour every lock backend must have. `factory` builds a fresh backend per test; tests
 * of distributed backends also check that no lock is left behind. Timing tests of distributed
 * backends run concurrently: they mostly wait for TTLs.
 */
export function describeLockContract(
  name: string,
  factory: LockFactory,
  options: LockContractOptions = {},
): void {
  const key = (label: string) => `${label}:${randomUUID()}`;
  const timeout = options.timeoutMs ?? 30_000;

  describe(`Lock contract: ${name}`, { timeout }, () => {
    it('lets one holder at a time in, across managers, and counts the acquisitions', async () => {
      await withBackend(factory, async (backend) => {
        const metrics = createMetrics({ defaultMetrics: false });
        const managers = [1, 2, 3].map(() =>
          instrumentLocks(backend.manager({ maxRetries: 10_000 }), metrics),
        );
        const k = key('tag:ns:latest');
        let inside = 0;
        let maxInside = 0;
        let counter = 0;
        await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            managers[i % managers.length]!.withLocks([k], async () => {
              inside++;
              maxInside = Math.max(maxInside, inside);
              const read = counter;
              await sleep(5, undefined);
              counter = read + 1; // a lost update if two were inside at once
              inside--;
            }),
          ),
        );
        expect(maxInside).toBe(1);
        expect(counter).toBe(12);
        const labels = { backend: backend.backend };
        expect(await counterValue(metrics, 'lock_acquisitions_total', { ...labels, result: 'success' })).toBe(
          12,
        );
        if (backend.distributed) {
          expect(await counterValue(metrics, 'lock_retries_total', labels)).toBeGreaterThan(0);
        }
      });
    });

    it('lets holders of different keys in at the same time', async () => {
      await withBackend(factory, async (backend) => {
        const locks = backend.manager();
        let inside = 0;
        let maxInside = 0;
        await Promise.all(
          ['a', 'b', 'c'].map((label) =>
            locks.withLocks([key(label)], async () => {
              inside++;
              maxInside = Math.max(maxInside, inside);
              await sleep(50, undefined);
              inside--;
            }),
          ),
        );
        expect(maxInside).toBe(3);
      });
    });

    it('takes several keys without deadlock when callers name them in opposite orders', async () => {
      await withBackend(factory, async (backend) => {
        const [one, two] = [backend.manager({ maxRetries: 10_000 }), backend.manager({ maxRetries: 10_000 })];
        const [x, y, z] = [key('x'), key('y'), key('z')];
        const entered: string[] = [];
        let inside = 0;
        const work = (label: string) => async () => {
          inside++;
          expect(inside).toBe(1);
          await sleep(10, undefined);
          entered.push(label);
          inside--;
        };
        await Promise.all([
          one!.withLocks([x, y, z], work('xyz')),
          two!.withLocks([z, y, x], work('zyx')),
          one!.withLocks([y, x], work('yx')),
          two!.withLocks([z, x], work('zx')),
        ]);
        expect(entered.sort()).toEqual(['xyz', 'yx', 'zx', 'zyx']);
      });
    });

    it('releases the keys when the work throws', async () => {
      await withBackend(factory, async (backend) => {
        const locks = backend.manager();
        const k = key('k');
        await expect(
          locks.withLocks([k], async () => {
            throw new Error('boom');
          }),
        ).rejects.toThrow('boom');
        await expect(backend.manager({ maxRetries: 0 }).withLocks([k], async () => 'again')).resolves.toBe(
          'again',
        );
      });
    });

    it('releases at once when the caller cancels the work, and tells the work through its signal', async () => {
      await withBackend(factory, async (backend) => {
        const locks = backend.manager();
        const k = key('upload:ns:id');
        const cancel = new AbortController();
        let workSignal: AbortSignal | undefined;
        const pending = locks.withLocks(
          [k],
          async (signal) => {
            workSignal = signal;
            cancel.abort(new Error('client went away'));
            await abortReason(signal);
          },
          { signal: cancel.signal },
        );
        await expect(pending).rejects.toThrow('client went away');
        expect(workSignal?.aborted).toBe(true);
        // Released in the background, long before any TTL: another instance gets in quickly.
        const started = Date.now();
        await backend.manager({ maxRetries: 10_000 }).withLocks([k], async () => {});
        expect(Date.now() - started).toBeLessThan(2000);
      });
    });

    it('gives up waiting when the caller cancels, without taking the key later', async () => {
      await withBackend(factory, async (backend) => {
        const [holder, waiter] = [backend.manager(), backend.manager({ maxRetries: 10_000 })];
        const k = key('k');
        const held = holdKey(holder, k);
        await held.inside;
        const cancel = new AbortController();
        let entered = false;
        const waiting = waiter!.withLocks(
          [k],
          async () => {
            entered = true;
          },
          { signal: cancel.signal },
        );
        await sleep(50, undefined);
        cancel.abort(new Error('gave up'));
        await expect(waiting).rejects.toThrow('gave up');
        held.release();
        await held.done;
        await backend.manager({ maxRetries: 10_000 }).withLocks([k], async () => {});
        expect(entered).toBe(false);
      });
    });

    it('refuses a cancelled caller before taking anything', async () => {
      await withBackend(factory, async (backend) => {
        const cancel = new AbortController();
        cancel.abort(new Error('already gone'));
        await expect(
          backend.manager().withLocks([key('k')], async () => 1, { signal: cancel.signal }),
        ).rejects.toThrow('already gone');
      });
    });

    describe.runIf(options.distributed)('distributed backends', () => {
      it('times out with LockTimeoutError when the key stays held through every retry', async () => {
        await withBackend(factory, async (backend) => {
          const metrics = createMetrics({ defaultMetrics: false });
          const k = key('k');
          const held = holdKey(backend.manager(), k);
          await held.inside;
          const impatient = instrumentLocks(backend.manager({ maxRetries: 2 }), metrics);
          const error = await impatient.withLocks([k], async () => {}).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(LockTimeoutError);
          expect((error as LockTimeoutError).transient).toBe(true); // 503 at the HTTP edge
          const labels = { backend: backend.backend };
          expect(
            await counterValue(metrics, 'lock_acquisitions_total', { ...labels, result: 'timeout' }),
          ).toBe(1);
          expect(await counterValue(metrics, 'lock_retries_total', labels)).toBe(2);
          held.release();
          await held.done;
        });
      });

      it('tells the work when another owner took the lock over, and when the lock vanished', async () => {
        await withBackend(factory, async (backend) => {
          const distributed = distributedOf(backend);
          const metrics = createMetrics({ defaultMetrics: false });
          const locks = instrumentLocks(backend.manager(), metrics);
          const seen = new Map<InvalidationReason, number>();
          for (const [tamper, reason] of [
            [distributed.steal, 'ownership_lost'],
            [distributed.remove, distributed.removedReason],
          ] as const) {
            const k = key('k');
            const started = Date.now();
            const error = await locks
              .withLocks([k], async (signal) => {
                await tamper(k);
                return abortReason(signal);
              })
              .catch((e: unknown) => e);
            expect(error).toBeInstanceOf(LockLostError);
            expect((error as LockLostError).reason).toBe(reason);
            // Noticed by the next heartbeat (ttl / 3), not after a TTL.
            expect(Date.now() - started).toBeLessThan(distributed.ttlMs);
            seen.set(reason, (seen.get(reason) ?? 0) + 1);
            expect(
              await counterValue(metrics, 'lock_invalidations_total', { backend: backend.backend, reason }),
            ).toBe(seen.get(reason));
            await distributed.remove(k); // what the test put there is not the holder's to release
          }
        });
      });
    });

    describe.runIf(options.distributed)('distributed timing', { concurrent: true }, () => {
      it('frees the lock of a holder killed with SIGKILL after the TTL', async () => {
        await withBackend(factory, async (backend) => {
          const distributed = distributedOf(backend);
          const k = key('crash');
          const child = spawn(process.execPath, [HOLDER_SCRIPT, JSON.stringify(distributed.holder), k], {
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          try {
            await heldBy(child);
          } catch (error) {
            child.kill('SIGKILL');
            throw error;
          }
          child.kill('SIGKILL');
          await once(child, 'exit');
          const killedAt = Date.now();
          const metrics = createMetrics({ defaultMetrics: false });
          const locks = instrumentLocks(backend.manager({ maxRetries: 100_000 }), metrics);
          await locks.withLocks([k], async () => {});
          const waited = Date.now() - killedAt;
          // Not before the TTL (the holder never released it), not long after.
          expect(waited).toBeGreaterThan(distributed.ttlMs * 0.75);
          expect(waited).toBeLessThan(distributed.ttlMs + 4000);
          if (backend.backend === 's3') {
            const labels = { backend: 's3' };
            expect(
              await counterValue(metrics, 'lock_recoveries_total', { ...labels, result: 'acquired' }),
            ).toBe(1);
            expect(
              await counterValue(metrics, 'lock_recoveries_total', { ...labels, result: 'not_stale' }),
            ).toBeGreaterThan(0);
          }
        });
      });

      it('keeps a lock held longer than its TTL alive with the heartbeat', async () => {
        await withBackend(factory, async (backend) => {
          const distributed = distributedOf(backend);
          const k = key('long');
          const holdMs = distributed.ttlMs * 1.5;
          let releasedAt = 0;
          let lost = false;
          const holder = backend.manager({ maxHoldMs: distributed.ttlMs * 3 });
          let entered!: () => void;
          const inside = new Promise<void>((resolve) => (entered = resolve));
          const holding = holder.withLocks([k], async (signal) => {
            entered();
            signal.addEventListener('abort', () => {
              lost = true;
            });
            await sleep(holdMs, undefined);
            releasedAt = Date.now();
          });
          holding.catch(() => {}); // awaited below, after the contender got in
          await inside;
          let enteredAt = 0;
          await backend.manager({ maxRetries: 100_000 }).withLocks([k], async () => {
            enteredAt = Date.now();
          });
          await holding;
          expect(lost).toBe(false);
          expect(enteredAt).toBeGreaterThanOrEqual(releasedAt);
        });
      });

      it.runIf(options.maxHold)('invalidates a lock held longer than max_hold_secs', async () => {
        await withBackend(factory, async (backend) => {
          const maxHoldMs = distributedOf(backend).maxHoldMs;
          if (maxHoldMs === undefined) throw new Error('maxHold: the backend under test must give maxHoldMs');
          const metrics = createMetrics({ defaultMetrics: false });
          const locks = instrumentLocks(backend.manager(), metrics);
          const k = key('hog');
          const started = Date.now();
          const error = await locks.withLocks([k], (signal) => abortReason(signal)).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(LockLostError);
          expect((error as LockLostError).reason).toBe('max_hold_exceeded');
          expect(Date.now() - started).toBeGreaterThanOrEqual(maxHoldMs - 50);
          expect(
            await counterValue(metrics, 'lock_invalidations_total', {
              backend: backend.backend,
              reason: 'max_hold_exceeded',
            }),
          ).toBe(1);
          // The work stopped when told to, so the key went back at once.
          const reacquired = Date.now();
          await backend.manager({ maxRetries: 10_000 }).withLocks([k], async () => {});
          expect(Date.now() - reacquired).toBeLessThan(2000);
        });
      });
    });
  });
}
