import { describe, expect, it } from 'vitest';
import { RunError, run, runOk } from '../src/run.js';

describe('run', () => {
  it('captures stdout, stderr and the exit status', async () => {
    const result = await run('bash', ['-c', 'echo out; echo err >&2; exit 3']);
    expect(result).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n', timedOut: false });
  });

  it('feeds input to stdin and passes the environment', async () => {
    const result = await run('bash', ['-c', 'cat; echo "$GREETING"'], {
      input: 'in\n',
      env: { ...process.env, GREETING: 'hello' },
    });
    expect(result.stdout).toBe('in\nhello\n');
  });

  it('kills a command that outlives its time bound', async () => {
    const result = await run('sleep', ['30'], { timeoutMs: 200 });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
    expect(result.durationMs).toBeLessThan(10_000);
  });

  it('rejects when the command does not exist', async () => {
    await expect(run('angos-no-such-command', [])).rejects.toThrow(/cannot run angos-no-such-command/);
  });

  it('runOk rejects with the output of a failed command', async () => {
    const failure = runOk('bash', ['-c', 'echo because >&2; exit 1']);
    await expect(failure).rejects.toBeInstanceOf(RunError);
    await expect(failure).rejects.toThrow(/exited with 1[\s\S]*because/);
  });
});
