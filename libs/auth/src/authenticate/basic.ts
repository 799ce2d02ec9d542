import { createHmac, randomBytes } from 'node:crypto';
import type { IdentityConfig } from '@angos/config';
import { MemoryCache } from '../cache/memory.js';
import { Argon2JobFailed, type Argon2Pool, Argon2PoolBusy } from './argon2-pool.js';
import type { FailedAttempts } from './failed-attempts.js';
import { ABSENT, authenticated, rejected, type StepOutcome } from './outcome.js';
import { AuthenticationRefused } from './refused.js';

export interface BasicIdentity {
  /** The `<name>` of `[auth.identity.<name>]`. */
  readonly id: string;
  readonly username: string;
}

/**
 * (identity, password) pairs remembered by an HMAC with a key that lives only in this process,
 * over the identity, its stored hash and the password: a changed hash never matches an old entry,
 * and nothing kept here helps guess a password. It never leaves the process (no Redis) for the
 * same reason. Bounded: past `maxEntries` the oldest entry goes first.
 */
class RememberedPasswords {
  private readonly key = randomBytes(32);
  private readonly entries: MemoryCache;

  constructor(
    private readonly ttlSeconds: number,
    maxEntries: number,
  ) {
    this.entries = new MemoryCache(maxEntries);
  }

  private entryKey(id: string, storedHash: string, password: string): string {
    return createHmac('sha256', this.key).update(`${id}\0${storedHash}\0${password}`).digest('hex');
  }

  async has(id: string, storedHash: string, password: string): Promise<boolean> {
    return (await this.entries.get(this.entryKey(id, storedHash, password))) !== undefined;
  }

  async add(id: string, storedHash: string, password: string): Promise<void> {
    await this.entries.set(this.entryKey(id, storedHash, password), '1', this.ttlSeconds);
  }
}

/**
 * Passwords that verified, so a client sending Basic credentials with every request (docker,
 * podman) pays for Argon2 once per `ttlSeconds` rather than on each of a push's requests.
 */
export class VerifiedPasswords extends RememberedPasswords {
  constructor(ttlSeconds = 300) {
    super(ttlSeconds, 4096);
  }
}

/**
 * Passwords that did not verify, so the same wrong pair sent again (a client retrying with a
 * stale password, a flood repeating one guess) is refused without Argon2 work. Kept briefly: a
 * pair for a username nobody has would stay refused for this long after the identity is added.
 */
export class FailedPasswords extends RememberedPasswords {
  constructor(ttlSeconds = 60) {
    super(ttlSeconds, 10_000);
  }
}

/** What basic authentication keeps across configuration versions. */
export interface PasswordChecks {
  readonly verified: VerifiedPasswords;
  readonly failed: FailedPasswords;
  /** Where Argon2 runs: worker threads of its own, never libuv's threadpool. */
  readonly argon2: Argon2Pool;
  /** Failed logins per client address. */
  readonly attempts: FailedAttempts;
}

/** `[auth] failed_auth_limit` and `failed_auth_window_secs`. */
export interface FailureLimit {
  /** Failures per window before an address is refused with 429; 0 never refuses. */
  readonly limit: number;
  readonly windowSeconds: number;
}

/**
 * One decoy hash per parameter set, computed once: verifying against it costs what verifying a
 * real hash with the same parameters costs. Keyed by the stored hash's parameter segments and
 * output length, which is what the decoy copies.
 */
const decoys = new Map<string, Promise<string>>();

function decoyFor(argon2: Argon2Pool, storedHash: string): Promise<string> {
  const segments = storedHash.split('$');
  const key = `${segments.slice(0, 4).join('$')}$${segments[5]?.length ?? 0}`;
  let decoy = decoys.get(key);
  if (decoy === undefined) {
    decoy = argon2.hashLike(storedHash, randomBytes(24).toString('hex'));
    // A failure (a full queue) is not kept: the next unknown username tries again.
    decoy.catch(() => decoys.delete(key));
    decoys.set(key, decoy);
  }
  return decoy;
}

interface Account {
  readonly id: string;
  readonly hash: string;
}

/**
 * Basic authentication against `[auth.identity.<name>]` (Argon2 hashes). A username nobody has
 * is verified against a decoy hash with the parameters of a configured one, so it takes as long
 * as a wrong password and response times do not reveal which usernames exist.
 *
 * What a flood of wrong passwords can cost is bounded three ways: Argon2 runs on the pool's few
 * workers (queue full: 503), a pair that failed is remembered and fails again for free, and an
 * address with `limit` new failed pairs in a window gets 429 without its credentials being
 * looked at.
 */
export class BasicAuthenticator {
  private readonly accounts = new Map<string, Account>();
  private readonly decoySource: string | undefined;

  constructor(
    identities: Readonly<Record<string, IdentityConfig>>,
    private readonly checks: PasswordChecks,
    private readonly failureLimit: FailureLimit = { limit: 0, windowSeconds: 60 },
  ) {
    for (const [id, identity] of Object.entries(identities)) {
      this.accounts.set(identity.username, { id, hash: identity.password });
    }
    this.decoySource = Object.values(identities)[0]?.password;
    // Computed ahead, so the first unknown username does not take twice as long.
    if (this.decoySource !== undefined) void decoyFor(checks.argon2, this.decoySource).catch(() => undefined);
  }

  /**
   * Rejects bad credentials (the caller stays anonymous); throws {@link AuthenticationRefused}
   * when `clientIp` failed too often lately or the Argon2 queue is full.
   */
  async authenticate(username: string, password: string, clientIp = ''): Promise<StepOutcome<BasicIdentity>> {
    if (this.decoySource === undefined) return ABSENT;
    const { verified, failed, attempts } = this.checks;
    // Before anything else, remembered successes included: a blocked address must not be able to
    // keep guessing against what is remembered either.
    const wait = attempts.retryAfter(clientIp, this.failureLimit.limit);
    if (wait > 0) {
      throw new AuthenticationRefused('TOOMANYREQUESTS', wait, 'too many failed logins from this address');
    }
    const account = this.accounts.get(username);
    // An unknown username is remembered under the name itself and no hash, which no account has.
    const id = account?.id ?? username;
    const storedHash = account?.hash ?? '';
    if (account !== undefined && (await verified.has(id, storedHash, password))) {
      return authenticated({ id, username });
    }
    if (!(await failed.has(id, storedHash, password))) {
      const matches =
        account === undefined
          ? await this.verify(decoyFor(this.checks.argon2, this.decoySource), password).then(() => false)
          : await this.verify(Promise.resolve(account.hash), password);
      if (matches) {
        await verified.add(id, storedHash, password);
        return authenticated({ id, username });
      }
      await failed.add(id, storedHash, password);
      // Only a new guess counts: a pair refused from memory costs nothing and tells the client
      // nothing new, and a client retrying with a stale password must not lock its address out.
      attempts.recordFailure(clientIp, this.failureLimit.windowSeconds);
    }
    return rejected('unknown username or wrong password');
  }

  /** Argon2 verification on the pool; false for a hash the binding cannot read. */
  private async verify(hash: Promise<string>, password: string): Promise<boolean> {
    try {
      return await this.checks.argon2.verify(await hash, password);
    } catch (error) {
      if (error instanceof Argon2JobFailed) return false;
      if (error instanceof Argon2PoolBusy) {
        throw new AuthenticationRefused('UNAVAILABLE', 1, 'too many password checks waiting');
      }
      throw error;
    }
  }
}
