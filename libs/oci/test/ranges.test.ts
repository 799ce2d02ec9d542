import { describe, expect, it } from 'vitest';
import { parseContentRange, parseRangeHeader } from '../src/index.js';

describe('parseRangeHeader', () => {
  const size = 1000;

  it.each([
    ['bytes=0-499', { start: 0, end: 499 }],
    ['bytes=500-999', { start: 500, end: 999 }],
    ['bytes=0-0', { start: 0, end: 0 }],
    ['bytes=999-999', { start: 999, end: 999 }],
    ['bytes=500-', { start: 500, end: 999 }],
    ['bytes=0-', { start: 0, end: 999 }],
    ['bytes=-100', { start: 900, end: 999 }],
    ['bytes=-1000', { start: 0, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=900-5000', { start: 900, end: 999 }],
    [`bytes=0-${Number.MAX_SAFE_INTEGER}`, { start: 0, end: 999 }],
    ['BYTES=1-2', { start: 1, end: 2 }],
    [' bytes = 1 - 2 ', { start: 1, end: 2 }],
  ])('%s', (value, expected) => {
    expect(parseRangeHeader(value, size)).toEqual(expected);
  });

  it.each(['bytes=1000-', 'bytes=1000-1000', 'bytes=5000-6000', 'bytes=-0'])(
    '%s is unsatisfiable',
    (value) => {
      expect(parseRangeHeader(value, size)).toBe('unsatisfiable');
    },
  );

  it('finds nothing satisfiable in an empty blob', () => {
    expect(parseRangeHeader('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=-1', 0)).toBe('unsatisfiable');
    expect(parseRangeHeader('bytes=0-0', 0)).toBe('unsatisfiable');
  });

  it.each([
    '',
    'bytes',
    'bytes=',
    'bytes=-',
    'bytes=a-b',
    'bytes=1-a',
    'bytes=0-1,5-6',
    'bytes=0-1, 5-6',
    'bytes=5-1',
    'bytes=1.5-2',
    'bytes=+1-2',
    'bytes=--1',
    'items=0-1',
    'bytes 0-1',
    '0-1',
    'bytes=99999999999999999999-',
    'bytes=0-99999999999999999999',
    'bytes=-99999999999999999999',
    `bytes=${'1'.repeat(10_000)}-`,
  ])('%s is ignored (whole blob)', (value) => {
    expect(parseRangeHeader(value, size)).toBeUndefined();
  });
});

describe('parseContentRange', () => {
  it.each([
    ['0-0', { start: 0, end: 0 }],
    ['0-1023', { start: 0, end: 1023 }],
    ['1024-2047', { start: 1024, end: 2047 }],
    [' 5-9 ', { start: 5, end: 9 }],
    ['bytes 0-1023/2048', { start: 0, end: 1023 }],
    ['bytes 0-1023/*', { start: 0, end: 1023 }],
    ['bytes 1023-1023/1024', { start: 1023, end: 1023 }],
    [`0-${Number.MAX_SAFE_INTEGER}`, { start: 0, end: Number.MAX_SAFE_INTEGER }],
  ])('%s', (value, expected) => {
    expect(parseContentRange(value)).toEqual(expected);
  });

  it.each([
    '',
    '-',
    '5-',
    '-5',
    '10-5',
    'a-b',
    '0-1-2',
    '0 - 1',
    'bytes=0-1',
    'bytes 0-1',
    'bytes 0-1/',
    'bytes 0-1023/1023',
    'bytes 0-1023/abc',
    'bytes 10-5/*',
    '1.5-2',
    '0-99999999999999999999',
    '99999999999999999999-99999999999999999999',
    'bytes 0-1/99999999999999999999',
  ])('%s is malformed', (value) => {
    expect(parseContentRange(value)).toBeUndefined();
  });
});
