import { type Config, type DownstreamConfig, downstreamNamespace } from '@angos/config';
import type { Logger, Metrics } from '@angos/observability';
import { formatDigest, OciError, parseReference } from '@angos/oci';
import type { Registry } from '@angos/registry';
import { DownstreamClient } from './client.js';
import { type DownstreamOf, reconcileDownstreams } from './downstreams.js';
import { forEachLimited } from './limited.js';
import { type ReconcileOutcome, recordReconcile } from './metrics.js';
import type { ReplicationPayload } from './payload.js';

/** One replication job that reconciliation asks for, and why. */
export interface ReconcileDecision {
  /** The job, as the live path would enqueue it (same lock key: the queue coalesces them). */
  readonly payload: ReplicationPayload;
  readonly reason: string;
}

export interface ReconcilerDeps {
  readonly config: Config;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
  /** The clock, milliseconds since the epoch (the time a prune delete is dated with). */
  readonly now?: (() => number) | undefined;
}

/**
 * `angos scrub --replicate`: compares each namespace's tag→digest map with each downstream that
 * reconciles it (`mode` `event+reconcile` or `reconcile-only`, `namespace_filter` matched), from
 * the downstream's tag list and a `HEAD` of each tag both hold (`max_concurrent_pushes` at once). It decides a push for every tag
 * missing or naming another digest there, and, on a `prune = true` downstream (a one-way
 * mirror), a delete of every tag only the downstream holds; it never decides anything else.
 * Deciding writes nothing: the caller enqueues (or, in a dry run, lists) the decisions, and the
 * replication jobs then replicate the state of each tag when they run, as live ones do.
 *
 * A downstream that cannot be compared (unreachable, refusing) is logged and counted in
 * `failures` (and as `skipped` in angos_replication_reconcile_total); the other downstreams and
 * namespaces go on.
 */
export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly #logger: Logger;
  readonly #clients = new Map<string, DownstreamClient>();
  #failures = 0;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#logger = deps.logger.child('angos::replication');
  }

  /** Namespace and downstream pairs that could not be compared so far. */
  get failures(): number {
    return this.#failures;
  }

  /** The decisions for one local namespace, downstream by downstream, tags in code-point order. */
  async *reconcile(namespace: string, signal?: AbortSignal): AsyncIterable<ReconcileDecision> {
    const downstreams = reconcileDownstreams(this.#deps.config, namespace);
    if (downstreams.length === 0) return;
    const local = await this.#localTags(namespace);
    for (const target of downstreams) {
      let decisions: ReconcileDecision[];
      try {
        decisions = await this.#compare(namespace, local, target, signal);
      } catch (error) {
        this.#failures++;
        // Its tags wait for the next run: the queueing outcomes are counted by whoever enqueues.
        this.#count('skipped');
        this.#logger.error('replication reconcile: the downstream could not be compared', {
          namespace,
          downstream: target.downstream.name,
          error: String(error),
        });
        continue;
      }
      yield* decisions;
    }
  }

  /** Closes the downstreams' connections. */
  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }

  /** The local tags and the digests they name (a tag whose manifest is missing is left out). */
  async #localTags(namespace: string): Promise<Map<string, string>> {
    const { registry } = this.#deps;
    let tags: string[];
    try {
      ({ tags } = await registry.manifests.listTags(namespace, {}));
    } catch (error) {
      if (error instanceof OciError && error.kind === 'NAME_UNKNOWN') return new Map();
      throw error;
    }
    const map = new Map<string, string>();
    for (const tag of tags) {
      try {
        const { digest } = await registry.manifests.resolve(namespace, parseReference(tag));
        map.set(tag, formatDigest(digest));
      } catch (error) {
        // Deleted since the listing, or broken (`scrub --tags` repairs it): nothing to replicate.
        if (!(error instanceof OciError && error.kind === 'MANIFEST_UNKNOWN')) throw error;
      }
    }
    return map;
  }

  async #compare(
    namespace: string,
    local: ReadonlyMap<string, string>,
    { repository, downstream }: DownstreamOf,
    signal: AbortSignal | undefined,
  ): Promise<ReconcileDecision[]> {
    const client = this.#clientFor(repository, downstream);
    const remote = downstreamNamespace(downstream.url, repository, namespace);
    const there = new Set(await client.listTags(remote, signal));
    const decisions: ReconcileDecision[] = [];
    const base = { namespace, downstream: downstream.name } as const;
    const tags = [...local].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // The HEADs, `max_concurrent_pushes` at once; the decisions then in tag order.
    const remoteDigests: Array<string | undefined> = [];
    await forEachLimited(tags, downstream.max_concurrent_pushes, async ([tag], index) => {
      remoteDigests[index] = there.has(tag) ? await client.manifestDigest(remote, tag, signal) : undefined;
    });
    for (const [index, [tag, digest]] of tags.entries()) {
      const remoteDigest = remoteDigests[index];
      if (remoteDigest === digest) continue;
      const sourceTimestamp = (await this.#deps.registry.manifests.tagTime(namespace, tag)) ?? this.#nowIso();
      decisions.push({
        payload: { ...base, tag, change: 'push', sourceTimestamp },
        reason:
          remoteDigest === undefined
            ? `${downstream.name} lacks ${remote}:${tag}`
            : `${downstream.name} has ${remote}:${tag} at ${remoteDigest}, here ${digest}`,
      });
    }
    if (downstream.prune) {
      for (const tag of [...there].sort()) {
        if (local.has(tag)) continue;
        decisions.push({
          // Dated now: the receiver's last-writer-wins keeps a tag written there after this run.
          payload: { ...base, tag, change: 'delete', sourceTimestamp: this.#nowIso() },
          reason: `${downstream.name} has ${remote}:${tag}, absent here (prune)`,
        });
      }
    }
    return decisions;
  }

  #clientFor(repository: string, downstream: DownstreamConfig): DownstreamClient {
    const key = `${repository}\u0000${downstream.name}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new DownstreamClient(downstream);
      this.#clients.set(key, client);
    }
    return client;
  }

  #count(outcome: ReconcileOutcome): void {
    if (this.#deps.metrics) recordReconcile(this.#deps.metrics, outcome);
  }

  #nowIso(): string {
    return new Date((this.#deps.now ?? Date.now)()).toISOString();
  }
}
