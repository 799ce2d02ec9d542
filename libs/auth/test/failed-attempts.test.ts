import { describe, expect, it } from 'vitest';
import { attemptKey, FailedAttempts } from '../src/authenticate/failed-attempts.js';

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    advance(ms) {
      now += ms;
    },
  };
}

describe('FailedAttempts', () => {
  it('blocks an address after `limit` failures until its window ends', () => {
    const time = clock();
    const attempts = new FailedAttempts(100, time.now);
    for (let i = 0; i < 3; i++) {
      expect(attempts.retryAfter('10.0.0.1', 3)).toBe(0);
      attempts.recordFailure('10.0.0.1', 60);
    }
    expect(attempts.retryAfter('10.0.0.1', 3)).toBe(60);
    expect(attempts.retryAfter('10.0.0.2', 3)).toBe(0);
    time.advance(59_500);
    expect(attempts.retryAfter('10.0.0.1', 3)).toBe(1);
    time.advance(500);
    expect(attempts.retryAfter('10.0.0.1', 3)).toBe(0);
    // A new window starts from nothing.
    attempts.recordFailure('10.0.0.1', 60);
    expect(attempts.retryAfter('10.0.0.1', 3)).toBe(0);
  });

  it('never blocks with a limit of 0', () => {
    const attempts = new FailedAttempts();
    for (let i = 0; i < 50; i++) attempts.recordFailure('10.0.0.1', 60);
    expect(attempts.retryAfter('10.0.0.1', 0)).toBe(0);
  });

  it('tracks at most maxAddresses, forgetting the oldest window first', () => {
    const attempts = new FailedAttempts(3);
    for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']) {
      attempts.recordFailure(address, 60);
      attempts.recordFailure(address, 60);
    }
    expect(attempts.size).toBe(3);
    expect(attempts.retryAfter('10.0.0.1', 2)).toBe(0);
    expect(attempts.retryAfter('10.0.0.4', 2)).toBeGreaterThan(0);
  });

  it('counts IPv6 clients per /64', () => {
    expect(attemptKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(attemptKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(attemptKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(attemptKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(attemptKey('::1')).toBe('0:0:0:0::/64');
    expect(attemptKey('10.0.0.1')).toBe('10.0.0.1');
    const attempts = new FailedAttempts();
    attempts.recordFailure('2001:db8:1:2::1', 60);
    attempts.recordFailure('2001:db8:1:2::2', 60);
    expect(attempts.retryAfter('2001:db8:1:2::3', 2)).toBeGreaterThan(0);
  });
});
