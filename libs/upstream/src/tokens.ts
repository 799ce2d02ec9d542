/** The token specification's default when a token response has no `expires_in`. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;

/** At most this long before a token expires it is no longer handed out: requests take time too. */
const MAX_SLACK_SECONDS = 30;

/** Enough for every namespace a cache pulls from one upstream at once; the oldest entry goes first. */
const DEFAULT_MAX_ENTRIES = 1024;

interface Entry {
  readonly token: string;
  readonly usableUntil: number;
}

/**
 * Bearer tokens of one upstream, one per token endpoint and scope, kept until shortly before they
 * expire: a fifth of their lifetime early, at most 30 s, so a 60 s token is used for 48 s.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
  ) {}

  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (this.now() >= entry.usableUntil) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.token;
  }

  set(key: string, token: string, lifetimeSeconds: number): void {
    const slack = Math.min(MAX_SLACK_SECONDS, lifetimeSeconds / 5);
    this.entries.delete(key);
    this.entries.set(key, { token, usableUntil: this.now() + (lifetimeSeconds - slack) * 1000 });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Forgets `key` if it still holds `token` (a newer token fetched meanwhile stays). */
  discard(key: string, token: string): void {
    if (this.entries.get(key)?.token === token) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
