import { createHmac, randomBytes } from 'node:crypto';
import type { IdentityConfig } from '@angos/config';
import type * as Argon2 from '@node-rs/argon2';
import { MemoryCache } from '../cache/memory.js';
import { ABSENT, authenticated, rejected, type StepOutcome } from './outcome.js';

export interface BasicIdentity {
  /** The `<name>` of `[auth.identity.<name>]`. */
  readonly id: string;
  readonly username: string;
}

/**
 * Remembers passwords that verified, so a client sending Basic credentials with every request
 * (docker, podman) pays for Argon2 once per `ttlSeconds` rather than on each of a push's requests.
 * Entries are keyed by an HMAC with a key that lives only in this process, over the identity's
 * stored hash and the password: a changed hash never matches an old entry, and nothing kept here
 * helps guess a password. It never leaves the process (no Redis) for the same reason.
 */
export class VerifiedPasswords {
  private readonly key = randomBytes(32);
  private readonly entries = new MemoryCache(4096);

  constructor(private readonly ttlSeconds = 300) {}

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

let argon2: Promise<typeof Argon2> | undefined;

/**
 * The Argon2 binding costs ~11 MiB of RSS: imported on first use, which only a configured
 * `[auth.identity]` causes (an authenticator without identities never hashes or verifies).
 */
function loadArgon2(): Promise<typeof Argon2> {
  argon2 ??= import('@node-rs/argon2');
  return argon2;
}

/**
 * One decoy hash per parameter set, computed once: verifying against it costs what verifying a
 * real hash with the same parameters costs.
 */
const decoys = new Map<string, Promise<string>>();

async function decoyFor(storedHash: string): Promise<string> {
  const { hash, parseOptions } = await loadArgon2();
  const options = parseOptions(storedHash);
  const key = JSON.stringify(options);
  let decoy = decoys.get(key);
  if (decoy === undefined) {
    decoy = hash(randomBytes(24).toString('hex'), {
      algorithm: options.algorithm,
      version: options.version,
      memoryCost: options.memoryCost,
      timeCost: options.timeCost,
      parallelism: options.parallelism,
      outputLen: options.outputLen,
    });
    decoys.set(key, decoy);
  }
  return decoy;
}

/** Argon2 verification that answers false instead of throwing (a hash the library cannot read). */
async function verifyQuietly(storedHash: Promise<string>, password: string): Promise<boolean> {
  // Outside the try: a binding that cannot load is a broken installation, not a wrong password.
  const { verify } = await loadArgon2();
  try {
    return await verify(await storedHash, password);
  } catch {
    return false;
  }
}

interface Account {
  readonly id: string;
  readonly hash: string;
}

/**
 * Basic authentication against `[auth.identity.<name>]` (Argon2 hashes). A username nobody has
 * is verified against a decoy hash with the parameters of a configured one, so it takes as long
 * as a wrong password and response times do not reveal which usernames exist.
 */
export class BasicAuthenticator {
  private readonly accounts = new Map<string, Account>();
  private readonly decoySource: string | undefined;

  constructor(
    identities: Readonly<Record<string, IdentityConfig>>,
    private readonly verified: VerifiedPasswords,
  ) {
    for (const [id, identity] of Object.entries(identities)) {
      this.accounts.set(identity.username, { id, hash: identity.password });
    }
    this.decoySource = Object.values(identities)[0]?.password;
    // Computed ahead, so the first unknown username does not take twice as long.
    if (this.decoySource !== undefined) void decoyFor(this.decoySource).catch(() => undefined);
  }

  async authenticate(username: string, password: string): Promise<StepOutcome<BasicIdentity>> {
    if (this.decoySource === undefined) return ABSENT;
    const account = this.accounts.get(username);
    if (account === undefined) {
      await verifyQuietly(decoyFor(this.decoySource), password);
      return rejected('unknown username or wrong password');
    }
    if (await this.verified.has(account.id, account.hash, password)) {
      return authenticated({ id: account.id, username });
    }
    const matches = await verifyQuietly(Promise.resolve(account.hash), password);
    if (!matches) return rejected('unknown username or wrong password');
    await this.verified.add(account.id, account.hash, password);
    return authenticated({ id: account.id, username });
  }
}
