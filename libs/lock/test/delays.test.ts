import { describe, expect, it } from 'vitest';
import { exponentialBackoff, jitteredDelay, MAX_BACKOFF_MS } from '../src/delays.js';
import { isStale } from '../src/s3/lock-object.js';

describe('exponentialBackoff (Redis retries)', () => {
  it('doubles from retry_delay_ms, caps at 1 s, and adds up to half again of jitter', () => {
    const delay = exponentialBackoff(10);
    for (let i = 0; i < 200; i++) {
      const first = delay(0);
      expect(first).toBeGreaterThanOrEqual(10);
      expect(first).toBeLessThan(15);
      const fourth = delay(3);
      expect(fourth).toBeGreaterThanOrEqual(80);
      expect(fourth).toBeLessThan(120);
      const late = delay(50);
      expect(late).toBeGreaterThanOrEqual(MAX_BACKOFF_MS);
      expect(late).toBeLessThan(MAX_BACKOFF_MS * 1.5);
    }
  });

  it('is jittered: retries of two instances do not line up', () => {
    const delays = new Set(Array.from({ length: 20 }, () => exponentialBackoff(10)(4)));
    expect(delays.size).toBeGreaterThan(10);
  });
});

describe('jitteredDelay (S3 retries)', () => {
  it('stays between half and one and a half times retry_delay_ms', () => {
    const delay = jitteredDelay(50);
    const seen = Array.from({ length: 200 }, (_, i) => delay(i));
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(25);
    expect(Math.max(...seen)).toBeLessThan(75);
  });
});

describe('isStale (S3 server-side expiry)', () => {
  const written = new Date('2026-01-01T00:00:00Z');
  const at = (secs: number) => new Date(written.getTime() + secs * 1000);

  it('needs a full TTL plus one second of timestamp resolution on the server clock', () => {
    expect(isStale(written, at(9), 9000)).toBe(false);
    expect(isStale(written, at(9.999), 9000)).toBe(false);
    expect(isStale(written, at(10), 9000)).toBe(true);
  });

  it('never calls a lock stale without the server Date', () => {
    expect(isStale(written, undefined, 9000)).toBe(false);
  });
});
