import { spawn } from 'node:child_process';
import { track } from './children.js';
import { OutputTail } from './output-tail.js';

export interface RunOptions {
  /** The complete environment of the child; defaults to this process's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The child is killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
}

export interface RunResult {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** Runs a command to completion with bounded time; never rejects because of the exit status. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].join(' ');
  const started = Date.now();
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    track(child);
    const stdout = new OutputTail();
    const stderr = new OutputTail();
    child.stdout.on('data', (chunk: Buffer) => stdout.write(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.write(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({
        command,
        code,
        signal,
        timedOut,
        stdout: stdout.toString(),
        stderr: stderr.toString(),
        durationMs: Date.now() - started,
      });
    });
    child.stdin.on('error', () => {}); // the child may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

export class RunError extends Error {
  constructor(readonly result: RunResult) {
    const status = result.timedOut ? 'timed out' : `exited with ${result.code ?? result.signal}`;
    super(`${result.command} ${status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
    this.name = 'RunError';
  }
}

/** Like `run`, but rejects with the command's output unless it exits with status 0. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const result = await run(cmd, args, options);
  if (result.timedOut || result.code !== 0) throw new RunError(result);
  return result;
}
