import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryLockManager } from '../src/index.js';
import { describeLockContract } from '../src/testing/contract.js';

describeLockContract('memory', async () => {
  // One manager per process: every "instance" of the contract shares it.
  const shared = new MemoryLockManager();
  return {
    backend: 'memory',
    manager: () => shared,
    async cleanup() {
      expect(shared.size, 'keys still held or awaited').toBe(0);
    },
  };
});

describe('MemoryLockManager', () => {
  it('forgets released keys, so the map stays bounded', async () => {
    const locks = new MemoryLockManager();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        locks.withLocks([`k${i % 3}`], async () => {
          await sleep(1);
        }),
      ),
    );
    expect(locks.size).toBe(0);
  });

  it('lets a waiter behind a cancelled waiter in once the holder releases', async () => {
    const locks = new MemoryLockManager();
    let release!: () => void;
    const held = locks.withLocks(['k'], () => new Promise<void>((resolve) => (release = resolve)));
    const cancel = new AbortController();
    const cancelled = locks.withLocks(['k'], async () => 'never', { signal: cancel.signal });
    const behind = locks.withLocks(['k'], async () => 'behind');
    cancel.abort(new Error('gone'));
    await expect(cancelled).rejects.toThrow('gone');
    release();
    await held;
    await expect(behind).resolves.toBe('behind');
    expect(locks.size).toBe(0);
  });
});
