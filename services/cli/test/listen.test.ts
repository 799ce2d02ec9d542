import { describe, expect, it } from 'vitest';
import { CliError, formatAddress, parseListen } from '../src/index.js';

describe('parseListen', () => {
  it.each([
    ['127.0.0.1:8000', { host: '127.0.0.1', port: 8000 }],
    ['0.0.0.0:0', { host: '0.0.0.0', port: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
    ['[::1]:8000', { host: '::1', port: 8000 }],
    ['[::]:5000', { host: '::', port: 5000 }],
    ['[fe80::1%eth0]:80', { host: 'fe80::1%eth0', port: 80 }],
  ])('%s', (value, expected) => {
    expect(parseListen(value)).toEqual(expected);
  });

  it.each([
    ['8000'],
    [':8000'],
    ['host:'],
    ['host:port'],
    ['host:65536'],
    ['host:-1'],
    ['host:80.5'],
    ['::1:8000'],
    ['[::1]8000'],
    ['[::1:8000'],
    ['[not-ipv6]:8000'],
    [''],
  ])('rejects %j', (value) => {
    expect(() => parseListen(value)).toThrow(CliError);
    expect(() => parseListen(value)).toThrow(/^--listen: /);
  });

  it('formats addresses back', () => {
    expect(formatAddress({ host: '::1', port: 8000 })).toBe('[::1]:8000');
    expect(formatAddress({ host: '127.0.0.1', port: 8000 })).toBe('127.0.0.1:8000');
  });
});
