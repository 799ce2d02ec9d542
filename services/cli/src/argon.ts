import { type Algorithm, hash } from '@node-rs/argon2';
import { CliError } from './errors.js';

/** `Algorithm.Argon2id`: the enum is `const` in the typings, which isolated modules cannot inline. */
const ARGON2ID = 2 as Algorithm;

/** The parameters of the hashes in the configuration reference: `$argon2id$v=19$m=19456,t=2,p=1$…`. */
export const ARGON2_OPTIONS = {
  algorithm: ARGON2ID,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

export async function hashPassword(password: string): Promise<string> {
  if (password === '') throw new CliError(['password must not be empty']);
  return await hash(password, ARGON2_OPTIONS);
}

/** The first line of a non-interactive input, without its line ending. */
export async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
    if (text.includes('\n')) break;
  }
  const line = text.split('\n', 1)[0] ?? '';
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

const ENTER = new Set(['\r', '\n']);
const BACKSPACE = new Set(['\u007f', '\b']);
const INTERRUPT = '\u0003';
const END_OF_INPUT = '\u0004';

/** Prompts on the terminal and reads a line without echoing it (raw mode). */
export function promptHidden(
  prompt: string,
  input: NodeJS.ReadStream,
  output: NodeJS.WritableStream,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let password = '';
    const finish = (error?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(password);
    };
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString()) {
        if (ENTER.has(char) || char === END_OF_INPUT) return finish();
        if (char === INTERRUPT) return finish(new CliError(['interrupted']));
        if (BACKSPACE.has(char)) password = [...password].slice(0, -1).join('');
        else password += char;
      }
    };
    output.write(prompt);
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

/** `angos argon`: the password from the terminal (hidden) or the first line of stdin. */
export async function runArgon(
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WritableStream = process.stdout,
  prompts: NodeJS.WritableStream = process.stderr,
): Promise<void> {
  const password = input.isTTY
    ? await promptHidden('Input Password: ', input, prompts)
    : await readFirstLine(input);
  output.write(`${await hashPassword(password)}\n`);
}
