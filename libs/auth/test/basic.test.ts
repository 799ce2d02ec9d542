import { describe, expect, it } from 'vitest';
import { BasicAuthenticator, VerifiedPasswords } from '../src/authenticate/basic.js';

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
      new VerifiedPasswords(),
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
    const basic = new BasicAuthenticator({}, new VerifiedPasswords());
    expect(await basic.authenticate('alice', 'x')).toEqual({ outcome: 'absent' });
  });

  it('makes an unknown username cost as much as a wrong password', async () => {
    const basic = new BasicAuthenticator(
      { alice: { username: 'alice', password: SECRET_HASH } },
      new VerifiedPasswords(),
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
    const verified = new VerifiedPasswords();
    const slow = new BasicAuthenticator({ alice: { username: 'alice', password: SECRET_HASH } }, verified);
    const first = await millis(() => slow.authenticate('alice', 'secret'));
    const again = await millis(() => slow.authenticate('alice', 'secret'));
    expect(again).toBeLessThan(first / 3);
    // Same password, other hash (the operator changed it): the old entry does not apply.
    const changed = new BasicAuthenticator({ alice: { username: 'alice', password: CHEAP_HASH } }, verified);
    expect(await changed.authenticate('alice', 'secret')).toMatchObject({ outcome: 'rejected' });
  });
});
