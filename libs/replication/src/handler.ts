import { type Config, downstreamNamespace } from '@angos/config';
import { type JobContext, type JobHandler, TerminalJobError } from '@angos/jobs';
import type { Logger, Metrics } from '@angos/observability';
import { OciError, parseDigest, parseReference } from '@angos/oci';
import type { Registry } from '@angos/registry';
import { isUpstreamError } from '@angos/upstream';
import { DownstreamClient, type WriteOutcome } from './client.js';
import { findDownstream, matchesFilter } from './downstreams.js';
import { recordOutcome } from './metrics.js';
import { parseReplicationPayload, REPLICATION_JOB_KIND, type ReplicationPayload } from './payload.js';
import { pushManifest, type Replication } from './push.js';

export interface ReplicationHandlerDeps {
  /** The configuration of the runner: a reload builds a new runner, and a new handler. */
  readonly config: Config;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly metrics?: Metrics | undefined;
}

/**
 * The `replication` job: brings one tag (or one manifest by digest) of a namespace on one
 * downstream to its state here. Present here: pushed (content first, see push.ts). Gone here:
 * deleted there, dated with the delete's time, so the downstream's last-writer-wins keeps a
 * later write it holds. Outcomes: see metrics.ts. 401 and 403 dead-letter the job at once (new
 * credentials are needed; retry it through the jobs API then); a downstream that is no longer
 * configured dead-letters it too, loudly.
 */
export function replicationHandler(deps: ReplicationHandlerDeps): JobHandler<ReplicationPayload> {
  const logger = deps.logger.child('angos::replication');
  const clients = new Map<string, DownstreamClient>();
  const clientFor = (key: string, config: ConstructorParameters<typeof DownstreamClient>[0]) => {
    let client = clients.get(key);
    if (client === undefined) {
      client = new DownstreamClient(config);
      clients.set(key, client);
    }
    return client;
  };

  return {
    kind: REPLICATION_JOB_KIND,
    parse: parseReplicationPayload,
    async run({ payload, signal }: JobContext<ReplicationPayload>) {
      const found = findDownstream(deps.config, payload.namespace, payload.downstream);
      if (found === undefined) {
        logger.error('replication job for a downstream that is not configured', {
          namespace: payload.namespace,
          downstream: payload.downstream,
        });
        throw new TerminalJobError(
          `downstream "${payload.downstream}" of namespace "${payload.namespace}" is not configured (removed or renamed?): clear such jobs with angos scrub --replication-orphans`,
        );
      }
      const { repository, downstream } = found;
      if (!matchesFilter(downstream, payload.namespace)) return;
      const remote = downstreamNamespace(downstream.url, repository, payload.namespace);
      const replication: Replication = {
        registry: deps.registry,
        client: clientFor(`${repository}\u0000${downstream.name}`, downstream),
        namespace: payload.namespace,
        remote,
        concurrency: downstream.max_concurrent_pushes,
        async mountSources(digest) {
          const sources = new Set<string>();
          for (const holder of await deps.registry.blobs.holders(parseDigest(digest))) {
            const other = findDownstream(deps.config, holder, downstream.name);
            if (other?.repository !== repository || !matchesFilter(other.downstream, holder)) continue;
            const there = downstreamNamespace(downstream.url, repository, holder);
            if (there !== remote) sources.add(there);
          }
          return [...sources];
        },
        signal,
      };
      let outcome: WriteOutcome;
      try {
        outcome = await replicate(replication, payload);
      } catch (error) {
        if (deps.metrics) recordOutcome(deps.metrics, downstream.name, 'failed');
        if (isUpstreamError(error, 'unauthorized') || isUpstreamError(error, 'forbidden')) {
          throw new TerminalJobError(`${error.message} (check the downstream's credentials and policy)`);
        }
        throw error;
      }
      if (deps.metrics) recordOutcome(deps.metrics, downstream.name, outcome);
      logger.debug('replicated', {
        namespace: payload.namespace,
        downstream: downstream.name,
        target: payload.tag ?? payload.digest,
        outcome,
      });
    },
  };
}

/** The state of the payload's target here, sent to the downstream. */
async function replicate(replication: Replication, payload: ReplicationPayload): Promise<WriteOutcome> {
  const { registry, namespace, client, remote, signal } = replication;
  const target = payload.tag ?? (payload.digest as string);
  const reference = parseReference(target);
  let tagTime: string | undefined;
  try {
    await registry.manifests.resolve(namespace, reference);
    if (reference.kind === 'tag') tagTime = await registry.manifests.tagTime(namespace, reference.tag);
  } catch (error) {
    if (!(error instanceof OciError && error.kind === 'MANIFEST_UNKNOWN')) throw error;
    // Gone here: deleted there, dated with the time of the delete that removed it: a tag's
    // tombstone (the latest delete of it here, whichever job announced it); otherwise the
    // delete's own time when this job announced it; otherwise (a push job whose target was
    // deleted since, with no time recorded) now, the latest the delete can have been.
    const deletedAt =
      reference.kind === 'tag' ? await registry.manifests.tagDeletedAt(namespace, reference.tag) : undefined;
    const at =
      deletedAt ?? (payload.change === 'delete' ? payload.sourceTimestamp : new Date().toISOString());
    return client.deleteManifest(remote, target, at, signal);
  }
  // A tag link without a time (written before times were recorded) is sent as the push's time.
  return pushManifest(
    replication,
    reference,
    reference.kind === 'tag' ? (tagTime ?? payload.sourceTimestamp) : undefined,
  );
}
