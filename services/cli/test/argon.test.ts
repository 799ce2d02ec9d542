import { PassThrough } from 'node:stream';
import { verify } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { hashPassword, promptHidden, readFirstLine } from '../src/argon.js';
import { CliError } from '../src/errors.js';

/** A stand-in for a terminal: records raw mode, lets the test type keys. */
function fakeTerminal() {
  const input = Object.assign(new PassThrough(), {
    isTTY: true,
    rawModes: [] as boolean[],
    setRawMode(mode: boolean) {
      input.rawModes.push(mode);
      return input;
    },
  });
  const output = new PassThrough();
  let shown = '';
  output.on('data', (chunk: Buffer) => {
    shown += chunk.toString();
  });
  return {
    input: input as unknown as NodeJS.ReadStream & { rawModes: boolean[] },
    output,
    shown: () => shown,
  };
}

describe('promptHidden', () => {
  it('reads keys in raw mode without echoing them, honouring backspace', async () => {
    const terminal = fakeTerminal();
    const password = promptHidden('Input Password: ', terminal.input, terminal.output);
    terminal.input.write('pass');
    terminal.input.write('\u007f\u007fsw0rd');
    terminal.input.write('\r');
    expect(await password).toBe('pasw0rd');
    expect(terminal.shown()).toBe('Input Password: \n');
    expect(terminal.input.rawModes).toEqual([true, false]);
  });

  it('gives up on Ctrl-C and restores the terminal', async () => {
    const terminal = fakeTerminal();
    const password = promptHidden('Input Password: ', terminal.input, terminal.output);
    terminal.input.write('abc\u0003');
    await expect(password).rejects.toBeInstanceOf(CliError);
    expect(terminal.input.rawModes).toEqual([true, false]);
  });
});

describe('readFirstLine', () => {
  it.each([
    ['one line\n', 'one line'],
    ['first\nsecond\n', 'first'],
    ['no newline', 'no newline'],
    ['windows\r\n', 'windows'],
    ['  spaces kept  \n', '  spaces kept  '],
    ['', ''],
  ])('%j → %j', async (text, expected) => {
    const input = new PassThrough();
    input.end(text);
    expect(await readFirstLine(input)).toBe(expected);
  });
});

describe('hashPassword', () => {
  it('produces a verifiable argon2id hash with the documented parameters', async () => {
    const hash = await hashPassword('hunter2');
    expect(hash.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(await verify(hash, 'hunter2')).toBe(true);
  });

  it('refuses an empty password', async () => {
    await expect(hashPassword('')).rejects.toThrow('password must not be empty');
  });
});
