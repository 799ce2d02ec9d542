import { describe, expect, it } from 'vitest';
import { ByteCache } from '../src/byte-cache.js';

describe('ByteCache', () => {
  it('evicts the least recently used values beyond its byte budget', () => {
    const cache = new ByteCache(1600);
    for (const key of ['a', 'b', 'c', 'd']) cache.set(key, Buffer.alloc(100, key));
    expect(cache.get('a')?.toString()).toBe('a'.repeat(100)); // a is now the most recent
    for (let i = 0; i < 13; i++) cache.set(`x${i}`, Buffer.alloc(100));
    expect(cache.size).toBeLessThanOrEqual(1600);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
  });

  it('does not keep a value above a sixteenth of the budget', () => {
    const cache = new ByteCache(1600);
    cache.set('big', Buffer.alloc(101));
    expect(cache.get('big')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
