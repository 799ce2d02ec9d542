import { describe, expect, it } from 'vitest';
import { readCredentials } from '../src/credentials.js';

const basic = (value: string) => `Basic ${Buffer.from(value).toString('base64')}`;

describe('readCredentials', () => {
  it.each([
    [basic('alice:pw'), { kind: 'basic', username: 'alice', password: 'pw' }],
    [basic('alice:p:w:'), { kind: 'basic', username: 'alice', password: 'p:w:' }],
    [basic('alice:'), { kind: 'basic', username: 'alice', password: '' }],
    [`basic ${Buffer.from('a:b').toString('base64')}`, { kind: 'basic', username: 'a', password: 'b' }],
    ['Bearer abc.def.ghi', { kind: 'bearer', token: 'abc.def.ghi' }],
    ['bearer  tok ', { kind: 'bearer', token: 'tok' }],
  ])('reads %s', (header, expected) => {
    expect(readCredentials({ authorization: header })).toEqual(expected);
  });

  it.each([
    [undefined],
    [''],
    ['Basic'],
    ['Basic '],
    ['Basic !!!not-base64'],
    [basic('no-colon')],
    [basic(':')],
    ['Digest username="a"'],
    [`Bearer ${'x'.repeat(20_000)}`],
  ])('ignores %s', (header) => {
    expect(readCredentials(header === undefined ? {} : { authorization: header })).toBeUndefined();
  });
});
