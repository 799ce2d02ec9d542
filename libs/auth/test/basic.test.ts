import { afterEach, describe, expect, it } from 'vitest';
import { BasicAuthenticator } from '../src/authenticate/basic.js';
import { AuthenticationRefused } from '../src/authenticate/refused.js';
import { closePasswordChecks, passwordChecks } from './helpers.js';

afterEach(closePasswordChecks);

/** Real @node-rs/argon2 hash of "secret" with the parameters `angos argon` uses (m=19456, t=2). */
const SECRET_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$6surVjzDIpEmx03OUZEePg$dJEa9+zw5wGXxCt/ynjsLXtDgufz3DcbA6K5mjGEn2Q';
const CHEAP_HASH =
  '$argon2id$v=19$m=64,t=1,p=1$bC87hUMfbQpL2Jjl8j+RxQ$OOKrstt+HXHBcNpma8p9Sxx9K6GmHQ9hEuXjr6aomp8';

async function millis(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

describe('BasicAuthenticator', () => {
  it('authenticates a configured username with its password', async () => {
    const basic = new BasicAuthenticator(
      { 'alice-identity': { username: 'alice', password: CHEAP_HASH } },
      passwordChecks(),
    );
    expect(await basic.authenticate('alice', 'alice-secret')).toEqual({
      outcome: 'authenticated',
      value: { id: 'alice-identity', username: 'alice' },
    });
    expect(await basic.authenticate('alice', 'wrong')).toMatchObject({ outcome: 'rejected' });
    expect(await basic.authenticate('Alice', 'alice-secret')).toMatchObject({ outcome: 'rejected' });
    expect(await basic.authenticate('bob', 'alice-secret')).toMatchObject({ outcome: 'rejected' });
  });

  it('has nothing to say when no identity is configured', async () => {
    const basic = new BasicAuthenticator({}, passwordChecks());
    expect(await basic.authenticate('alice', 'x')).toEqual({ outcome: 'absent' });
  });

  it('makes an unknown username cost as much as a wrong password', async () => {
    const basic = new BasicAuthenticator(
      { alice: { username: 'alice', password: SECRET_HASH } },
      passwordChecks(),
    );
    await basic.authenticate('nobody', 'warm-up');
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 5; i++) {
      unknown.push(await millis(() => basic.authenticate(`nobody-${i}`, 'guess')));
      wrong.push(await millis(() => basic.authenticate('alice', `guess-${i}`)));
    }
    const ratio = median(unknown) / median(wrong);
    expect(median(wrong)).toBeGreaterThan(3);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });

  it('verifies a password once, then remembers it; a changed hash is verified again', async () => {
    const checks = passwordChecks();
    const slow = new BasicAuthenticator({ alice: { username: 'alice', password: SECRET_HASH } }, checks);
    const first = await millis(() => slow.authenticate('alice', 'secret'));
    const again = await millis(() => slow.authenticate('alice', 'secret'));
    expect(again).toBeLessThan(first / 3);
    // Same password, other hash (the operator changed it): the old entry does not apply.
    const changed = new BasicAuthenticator({ alice: { username: 'alice', password: CHEAP_HASH } }, checks);
    expect(await changed.authenticate('alice', 'secret')).toMatchObject({ outcome: 'rejected' });
  });

  it('checks a wrong pair with Argon2 once; the same pair again costs no Argon2 work', async () => {
    const checks = passwordChecks();
    const basic = new BasicAuthenticator({ alice: { username: 'alice', password: SECRET_HASH } }, checks);
    await basic.authenticate('nobody', 'warm-up'); // the decoy hash, then its verification
    const before = checks.argon2.stats.started;
    expect(await basic.authenticate('alice', 'wrong')).toMatchObject({ outcome: 'rejected' });
    expect(await basic.authenticate('nobody', 'guess')).toMatchObject({ outcome: 'rejected' });
    expect(checks.argon2.stats.started).toBe(before + 2);
    for (let i = 0; i < 5; i++) {
      expect(await basic.authenticate('alice', 'wrong')).toMatchObject({ outcome: 'rejected' });
      expect(await basic.authenticate('nobody', 'guess')).toMatchObject({ outcome: 'rejected' });
    }
    expect(checks.argon2.stats.started).toBe(before + 2);
    // Another password is another pair, and the right one still verifies.
    expect(await basic.authenticate('alice', 'wrong-2')).toMatchObject({ outcome: 'rejected' });
    expect(await basic.authenticate('alice', 'secret')).toMatchObject({ outcome: 'authenticated' });
    expect(checks.argon2.stats.started).toBe(before + 4);
  });

  it('refuses an address with 429 and Retry-After after failed_auth_limit new wrong pairs; others go on', async () => {
    const checks = passwordChecks();
    const basic = new BasicAuthenticator({ alice: { username: 'alice', password: CHEAP_HASH } }, checks, {
      limit: 3,
      windowSeconds: 60,
    });
    // The same wrong pair again and again (a client with a stale password) is no new guess.
    for (let i = 0; i < 10; i++) {
      expect(await basic.authenticate('alice', 'stale', '10.0.0.9')).toMatchObject({ outcome: 'rejected' });
    }
    for (let i = 0; i < 2; i++) {
      expect(await basic.authenticate('alice', `guess-${i}`, '10.0.0.9')).toMatchObject({
        outcome: 'rejected',
      });
    }
    const started = checks.argon2.stats.started;
    const refusal = await basic
      .authenticate('alice', 'alice-secret', '10.0.0.9')
      .catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(AuthenticationRefused);
    expect(refusal).toMatchObject({ status: 429, code: 'TOOMANYREQUESTS' });
    expect((refusal as AuthenticationRefused).retryAfterSeconds).toBeGreaterThan(0);
    expect((refusal as AuthenticationRefused).retryAfterSeconds).toBeLessThanOrEqual(60);
    // Refused before any Argon2 work; another address authenticates as usual.
    expect(checks.argon2.stats.started).toBe(started);
    expect(await basic.authenticate('alice', 'alice-secret', '10.0.0.10')).toMatchObject({
      outcome: 'authenticated',
    });
  });

  it('answers 503 with Retry-After when the Argon2 queue is full, instead of queueing without bound', async () => {
    const checks = passwordChecks({ concurrency: 1, queueLimit: 1 });
    const basic = new BasicAuthenticator({ alice: { username: 'alice', password: SECRET_HASH } }, checks);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => basic.authenticate('alice', `guess-${i}`, `10.0.1.${i}`)),
    );
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const outcome of refused) {
      expect(outcome.reason).toBeInstanceOf(AuthenticationRefused);
      expect(outcome.reason).toMatchObject({ status: 503, code: 'UNAVAILABLE', retryAfterSeconds: 1 });
    }
    expect(checks.argon2.stats.peakRunning).toBe(1);
  });
});
