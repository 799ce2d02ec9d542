import { describe, expect, it } from 'vitest';
import { ReplayGuard } from '../src/index.js';

const T0 = 1_800_000_000_000;

describe('ReplayGuard', () => {
  it('admits a nonce once within the window', () => {
    const guard = new ReplayGuard({ windowMs: 1_000, now: () => T0 });
    expect(guard.admit(T0, 'a')).toBe('ok');
    expect(guard.admit(T0, 'a')).toBe('replayed');
    expect(guard.admit(T0 - 500, 'b')).toBe('ok');
    expect(guard.admit(T0 - 1_001, 'c')).toBe('outside-window');
    expect(guard.admit(T0 + 1_001, 'd')).toBe('outside-window');
  });

  it('forgets nonces once their timestamp has left the window', () => {
    const clock = { now: T0 };
    const guard = new ReplayGuard({ windowMs: 1_000, now: () => clock.now });
    for (let i = 0; i < 10; i += 1) expect(guard.admit(T0 + i, `n${i}`)).toBe('ok');
    expect(guard.size).toBe(10);
    clock.now = T0 + 2_000;
    expect(guard.admit(clock.now, 'fresh')).toBe('ok');
    expect(guard.size).toBe(1);
  });

  it('stays within its capacity, and a dropped nonce still cannot be replayed', () => {
    const clock = { now: T0 };
    const guard = new ReplayGuard({ windowMs: 10_000, capacity: 3, now: () => clock.now });
    for (let i = 0; i < 5; i += 1) {
      clock.now = T0 + i;
      expect(guard.admit(clock.now, `n${i}`)).toBe('ok');
    }
    expect(guard.size).toBe(3);
    // n0 and n1 were dropped while inside the window: their replays are refused all the same.
    expect(guard.admit(T0, 'n0')).toBe('outside-window');
    expect(guard.admit(T0 + 1, 'n1')).toBe('outside-window');
    expect(guard.admit(T0 + 4, 'n4')).toBe('replayed');
    // Newer requests go on being admitted.
    expect(guard.admit(T0 + 5, 'n5')).toBe('ok');
    expect(guard.size).toBe(3);
  });
});
