import { describe, expect, it } from 'vitest';
import { BoundedSet } from '../src/bounded-set.js';

describe('BoundedSet', () => {
  it('holds at most its capacity, forgetting the oldest value first', () => {
    const set = new BoundedSet<number>(3);
    for (let value = 0; value < 1000; value++) set.add(value);
    expect(set.size).toBe(3);
    expect([997, 998, 999].every((value) => set.has(value))).toBe(true);
    expect(set.has(996)).toBe(false);
  });

  it('does not count a value added twice', () => {
    const set = new BoundedSet<string>(2);
    set.add('a');
    set.add('b');
    set.add('b');
    expect(set.has('a')).toBe(true);
    set.add('c');
    expect(set.has('a')).toBe(false);
    expect(set.has('b') && set.has('c')).toBe(true);
  });
});
