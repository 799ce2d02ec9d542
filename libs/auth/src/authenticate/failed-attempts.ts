import { isIPv6 } from 'node:net';

/** Addresses tracked at most; past it the address whose window started first is forgotten. */
export const DEFAULT_TRACKED_ADDRESSES = 10_000;

interface Window {
  failures: number;
  readonly endsAt: number;
}

/**
 * The key an address is counted under. IPv6 clients are counted per /64, the block one customer
 * is usually given: otherwise every new address of the block would get a fresh allowance.
 */
export function attemptKey(clientIp: string): string {
  const address = clientIp.split('%')[0] ?? '';
  if (!isIPv6(address) || address.includes('.')) return address;
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Failed password logins per client address (BasicAuthenticator records only pairs it had to
 * check, not ones refused from memory), in fixed windows: the first failure opens a window
 * of `windowSeconds`, and once `limit` failures fall in it the address waits for its end. Memory
 * is bounded by `maxAddresses`; an attacker with more addresses than that can make the oldest
 * be forgotten, which costs them a fresh allowance of Argon2 work for each, no more.
 */
export class FailedAttempts {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly maxAddresses = DEFAULT_TRACKED_ADDRESSES,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Seconds `clientIp` must wait before its next password is looked at (at least 1), or 0 when it
   * may try now. A `limit` of 0 never blocks.
   */
  retryAfter(clientIp: string, limit: number): number {
    if (limit === 0) return 0;
    const key = attemptKey(clientIp);
    const window = this.windows.get(key);
    if (window === undefined) return 0;
    const left = window.endsAt - this.now();
    if (left <= 0) {
      this.windows.delete(key);
      return 0;
    }
    return window.failures >= limit ? Math.max(1, Math.ceil(left / 1000)) : 0;
  }

  recordFailure(clientIp: string, windowSeconds: number): void {
    const key = attemptKey(clientIp);
    const now = this.now();
    const window = this.windows.get(key);
    if (window !== undefined && window.endsAt > now) {
      window.failures += 1;
      return;
    }
    // A new window goes to the end of the map, so the first entry is always the oldest window.
    this.windows.delete(key);
    this.windows.set(key, { failures: 1, endsAt: now + windowSeconds * 1000 });
    while (this.windows.size > this.maxAddresses) {
      const oldest = this.windows.keys().next().value;
      if (oldest === undefined) break;
      this.windows.delete(oldest);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}
