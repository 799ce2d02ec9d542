import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../src/index.js';
import { BASE, expectIssues, parseWith } from './helpers.js';

describe('parseSize', () => {
  it.each([
    ['5MiB', 5 * 1024 ** 2],
    ['100GiB', 100 * 1024 ** 3],
    ['5GB', 5_000_000_000],
    ['100MB', 100_000_000],
    ['50MiB', 52_428_800],
    ['1KiB', 1024],
    ['1KB', 1000],
    ['2TiB', 2 * 1024 ** 4],
    ['1PB', 1e15],
    ['512', 512],
    ['512B', 512],
    ['0', 0],
    ['5 MiB', 5 * 1024 ** 2],
    [' 5mib ', 5 * 1024 ** 2],
    ['1.5MiB', 1_572_864],
    ['0.5KB', 500],
    [1048576, 1048576],
    [0, 0],
  ])('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toEqual({ value: bytes });
  });

  it.each([
    ['', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['MiB', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['5 MegaBytes', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['5MiB extra', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['1e6', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['0x10', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['5.MiB', 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    [true, 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    [Number.NaN, 'expected a size such as "5MiB", "100MB" or a whole number of bytes'],
    ['-5MiB', 'must not be negative'],
    [-1, 'must not be negative'],
    ['1.5B', 'must be a whole number of bytes'],
    ['0.0001KB', 'must be a whole number of bytes'],
    [1.5, 'must be a whole number of bytes'],
    ['9PiB', 'must be at most 9007199254740991 bytes'],
  ])('rejects %j: %s', (input, error) => {
    expect(parseSize(input)).toEqual({ error });
  });

  it('range-checks integers too large for a double (BigInt from the TOML parser)', () => {
    expect(parseSize(2n ** 60n)).toEqual({ error: 'must be at most 9007199254740991 bytes' });
    expect(parseSize(-(2n ** 60n))).toEqual({ error: 'must not be negative' });
  });

  it.each([
    [5 * 1024 ** 2, '5MiB'],
    [5_000_000_000, '5GB'],
    [100_000_000, '100MB'],
    [7, '7B'],
  ])('formats %d as %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});

describe('size options', () => {
  it('parses sizes in the configuration', () => {
    const { config } = parseWith('[global]\nmax_manifest_size = "4MiB"\nmax_blob_size = 1073741824\n');
    expect(config.global.max_manifest_size).toBe(4 * 1024 ** 2);
    expect(config.global.max_blob_size).toBe(1024 ** 3);
  });

  it('names the key of a bad size', () => {
    expectIssues(`${BASE}[global]\nmax_manifest_size = "lots"\nmax_blob_size = -3\n`, [
      'global.max_manifest_size: expected a size such as "5MiB", "100MB" or a whole number of bytes',
      'global.max_blob_size: must not be negative',
    ]);
  });
});
