import type { Logger } from '@angos/observability';
import type { KeyLockDriver } from './driver.js';
import { LockLostError } from './errors.js';
import type { InvalidationReason } from './types.js';

export interface LeaseTiming {
  /** How long a lock lives without renewal. */
  readonly ttlMs: number;
  /** Renewal period (ttl / 3); also the bound on one renewal. */
  readonly heartbeatMs: number;
  /** Invalidates the lease once held this long (S3 `max_hold_secs`). */
  readonly maxHoldMs?: number | undefined;
}

/**
 * The keys one `withLocks` call holds, kept alive by a heartbeat from the first key taken until
 * `stop()`. `signal` aborts with a `LockLostError` when the keys stop protecting the work:
 * at once on an authoritative answer (ownership lost, object gone, no ETag, max hold), and on
 * transient renewal failures only when the next renewal could come too late, that is before
 * the last confirmed TTL runs out.
 */
export class Lease<Held extends { readonly key: string }> {
  readonly held: Held[] = [];
  readonly #controller = new AbortController();
  #stopped = false;
  /** The locks are surely alive until then: the last successful renewal was sent a TTL before. */
  #validUntil = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #maxHold: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;

  constructor(
    private readonly driver: KeyLockDriver<Held>,
    private readonly timing: LeaseTiming,
    private readonly logger: Logger,
  ) {}

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Records a key taken by a request sent at `sentAt`; the first one starts the heartbeat. */
  add(held: Held, sentAt: number): void {
    this.held.push(held);
    if (this.held.length > 1 || this.#stopped) return;
    this.#validUntil = sentAt + this.timing.ttlMs;
    this.#schedule(this.timing.heartbeatMs);
    const maxHoldMs = this.timing.maxHoldMs;
    if (maxHoldMs !== undefined) {
      this.#maxHold = setTimeout(() => this.#invalidate('max_hold_exceeded', held.key), maxHoldMs);
      this.#maxHold.unref();
    }
  }

  /** Stops renewing; resolves once no renewal is in flight (it may change what release needs). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#heartbeat);
    clearTimeout(this.#maxHold);
    await this.#renewing;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#heartbeat = setTimeout(() => {
      this.#renewing = this.#renew().finally(() => {
        this.#renewing = undefined;
      });
    }, delayMs);
    this.#heartbeat.unref();
  }

  async #renew(): Promise<void> {
    const startedAt = Date.now();
    try {
      // Each renewal is capped to the heartbeat period, so a stuck request cannot eat the TTL.
      const cap = AbortSignal.timeout(Math.max(1, Math.floor(this.timing.heartbeatMs)));
      const outcome = await this.driver.renew([...this.held], cap);
      if (this.#stopped) return;
      if (outcome.kind === 'lost') {
        this.#invalidate(outcome.reason, outcome.key);
        return;
      }
      this.#validUntil = startedAt + this.timing.ttlMs;
      this.#schedule(Math.max(0, startedAt + this.timing.heartbeatMs - Date.now()));
    } catch (error) {
      if (this.#stopped) return;
      const key = this.held[0]?.key ?? '';
      // Transient: tolerated while another renewal can still land before the locks can lapse.
      if (Date.now() + this.timing.heartbeatMs >= this.#validUntil) {
        this.logger.warn('lock renewal failed; giving the lock up', { key, error: String(error) });
        this.#invalidate('heartbeat_failure', key);
        return;
      }
      this.logger.warn('lock renewal failed; retrying', { key, error: String(error) });
      this.#schedule(this.timing.heartbeatMs / 2);
    }
  }

  #invalidate(reason: InvalidationReason, key: string): void {
    if (this.#controller.signal.aborted) return;
    this.#stopped = true;
    clearTimeout(this.#heartbeat);
    clearTimeout(this.#maxHold);
    this.#controller.abort(new LockLostError(this.driver.backend, reason, key));
  }
}
