import type { RuleFailureLog } from '@angos/auth/cel';
import type { Config } from '@angos/config';
import { parseDigest } from '@angos/oci';
import { keyFor } from '@angos/storage';
import { removeManifest } from '../retention/apply.js';
import type { CompiledRetentionPolicies } from '../retention/compile.js';
import { planRetention } from '../retention/plan.js';
import type { ScrubCheck } from '../types.js';
import { namespaces } from '../walk.js';

const CHECK = 'retention';

/** What `--retention` decides with: the configuration and its rules, compiled once per run. */
export interface RetentionSettings {
  readonly config: Config;
  /** `compileRetentionPolicies(config)`. */
  readonly policies: CompiledRetentionPolicies;
  /** Where rules that fail at run time are reported (they keep the manifest). */
  readonly failures: RuleFailureLog;
}

/**
 * `--retention` (`-r`): every namespace a retention rule applies to is decided once (libs/scrub
 * retention: a manifest goes when no global or repository rule keeps any of its tags), then each
 * manifest to remove is one `delete-manifest` action, in plan order (an index before the manifests
 * it lists). The delete re-checks under the manifest's lock that nothing pushed since the
 * decision needs it, so a push racing the run keeps what it pushed; the blobs go with the
 * garbage-collection pass (`--blobs`, or the servers' background one) after the grace period.
 */
export function retentionCheck(settings: RetentionSettings): ScrubCheck {
  return {
    name: CHECK,
    async *plan(ctx) {
      for await (const namespace of namespaces(ctx)) {
        const plan = await planRetention({
          stores: ctx,
          config: settings.config,
          policies: settings.policies,
          namespace,
          now: ctx.now(),
          failures: settings.failures,
          logger: ctx.logger,
        });
        ctx.walked(plan.images.length);
        for (const removal of plan.remove) {
          const tags = removal.tags.length === 0 ? 'untagged' : `tags ${removal.tags.join(', ')}`;
          yield {
            check: CHECK,
            action: 'delete-manifest',
            key: keyFor({ kind: 'revisionLink', namespace, digest: parseDigest(removal.digest) }),
            reason: `${removal.reason} (${tags})`,
            apply: async () => {
              const outcome = await removeManifest(ctx.registry.manifests, namespace, removal);
              if (outcome !== 'deleted') {
                ctx.logger.info('retention left a manifest in place', {
                  namespace,
                  digest: removal.digest,
                  outcome,
                });
              }
            },
          };
        }
      }
    },
  };
}
