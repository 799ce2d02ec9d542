import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { MemoryLockManager } from '../src/index.js';

describe('MemoryLockManager', () => {
  it('serializes holders of the same key', async () => {
    const locks = new MemoryLockManager();
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        locks.withLocks(['k'], async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(1);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect(locks.size).toBe(0);
  });

  it('lets different keys proceed in parallel', async () => {
    const locks = new MemoryLockManager();
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      ['a', 'b', 'c'].map((key) =>
        locks.withLocks([key], async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await sleep(5);
          inside--;
        }),
      ),
    );
    expect(maxInside).toBe(3);
  });

  it('acquires multiple keys without deadlock when callers name them in opposite orders', async () => {
    const locks = new MemoryLockManager();
    const order: string[] = [];
    await Promise.all([
      locks.withLocks(['x', 'y'], async () => {
        await sleep(2);
        order.push('xy');
      }),
      locks.withLocks(['y', 'x'], async () => {
        await sleep(2);
        order.push('yx');
      }),
    ]);
    expect(order.sort()).toEqual(['xy', 'yx']);
    expect(locks.size).toBe(0);
  });

  it('releases when the work throws', async () => {
    const locks = new MemoryLockManager();
    await expect(
      locks.withLocks(['k'], async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(locks.withLocks(['k'], async () => 'ok')).resolves.toBe('ok');
    expect(locks.size).toBe(0);
  });
});
