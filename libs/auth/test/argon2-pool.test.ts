import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Argon2JobFailed, Argon2Pool, Argon2PoolBusy } from '../src/authenticate/argon2-pool.js';

/** Real hash of "secret" with the parameters `angos argon` uses (m=19456, t=2): tens of ms each. */
const SECRET_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$6surVjzDIpEmx03OUZEePg$dJEa9+zw5wGXxCt/ynjsLXtDgufz3DcbA6K5mjGEn2Q';

const pools: Argon2Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
});

function pool(concurrency: number, queueLimit = 1000): Argon2Pool {
  const made = new Argon2Pool({ concurrency, queueLimit });
  pools.push(made);
  return made;
}

describe('Argon2Pool', () => {
  it('verifies, and makes hashes with the parameters of another', async () => {
    const argon2 = pool(1);
    expect(await argon2.verify(SECRET_HASH, 'secret')).toBe(true);
    expect(await argon2.verify(SECRET_HASH, 'wrong')).toBe(false);
    const like = await argon2.hashLike(SECRET_HASH, 'other');
    expect(like).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await argon2.verify(like, 'other')).toBe(true);
    await expect(argon2.verify('not a hash', 'x')).rejects.toBeInstanceOf(Argon2JobFailed);
  });

  it('never runs more than its concurrency at once; the rest wait their turn', async () => {
    const argon2 = pool(2);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => argon2.verify(SECRET_HASH, i === 5 ? 'secret' : `guess-${i}`)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(argon2.stats).toMatchObject({ started: 12, running: 0, queued: 0, peakRunning: 2 });
  });

  it('refuses a job at once when the queue is full', async () => {
    const argon2 = pool(1, 2);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => argon2.verify(SECRET_HASH, `guess-${i}`)),
    );
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    // One running, two waiting: the last two are refused.
    expect(refused).toHaveLength(2);
    for (const outcome of refused) expect(outcome.reason).toBeInstanceOf(Argon2PoolBusy);
    expect(argon2.stats.started).toBe(3);
  });

  it('follows new limits', async () => {
    const argon2 = pool(1);
    await Promise.all(Array.from({ length: 4 }, (_, i) => argon2.verify(SECRET_HASH, `a-${i}`)));
    expect(argon2.stats.peakRunning).toBe(1);
    argon2.configure({ concurrency: 3, queueLimit: 1000 });
    await Promise.all(Array.from({ length: 9 }, (_, i) => argon2.verify(SECRET_HASH, `b-${i}`)));
    expect(argon2.stats.peakRunning).toBe(3);
  });

  it('rejects what is queued or running when closed, and everything after', async () => {
    const argon2 = pool(1);
    const pending = Promise.allSettled(
      Array.from({ length: 3 }, (_, i) => argon2.verify(SECRET_HASH, `guess-${i}`)),
    );
    await argon2.close();
    for (const outcome of await pending) {
      expect(outcome).toMatchObject({
        status: 'rejected',
        reason: { message: expect.stringMatching(/closed/) },
      });
    }
    await expect(argon2.verify(SECRET_HASH, 'secret')).rejects.toThrow(/closed/);
  });

  it('does not keep a process alive when idle: a script that used the pool and never closed it exits', async () => {
    const source = fileURLToPath(new URL('../src/authenticate/argon2-pool.ts', import.meta.url));
    const script = [
      `const { Argon2Pool } = await import(${JSON.stringify(source)});`,
      'const pool = new Argon2Pool({ concurrency: 2, queueLimit: 10 });',
      `console.log(await pool.verify(${JSON.stringify(SECRET_HASH)}, 'secret'));`,
    ].join('\n');
    // Node runs the module's TypeScript itself (type stripping). The job in progress keeps the
    // child alive until it answers; a worker left referenced after it would keep the child
    // running until the timeout kills it.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--no-warnings', '--input-type=module', '-e', script],
      { timeout: 30_000 },
    );
    expect(stdout.trim()).toBe('true');
  }, 40_000);
});
