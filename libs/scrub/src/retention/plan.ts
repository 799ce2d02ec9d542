import type { RuleFailureLog } from '@angos/auth/cel';
import type { Config } from '@angos/config';
import type { Logger } from '@angos/observability';
import { type CompiledRetentionPolicies, retentionPoliciesFor } from './compile.js';
import { decideRetention, type ImageFacts, type RetentionDecision } from './decide.js';
import { collectImageFacts, type FactsStores } from './facts.js';

export interface RetentionPlanOptions {
  readonly stores: FactsStores;
  readonly config: Config;
  /** `compileRetentionPolicies(config)`, compiled once for every namespace. */
  readonly policies: CompiledRetentionPolicies;
  readonly namespace: string;
  /** ms since the epoch; default the current time. */
  readonly now?: number | undefined;
  readonly failures?: RuleFailureLog | undefined;
  readonly logger?: Logger | undefined;
}

export interface RetentionPlan extends RetentionDecision {
  /** What the decision was taken on; empty when no rule applies (the store is then not read). */
  readonly images: readonly ImageFacts[];
}

/**
 * What retention does to one namespace: the manifests to delete, with reasons, and the ones it
 * keeps. Reads the namespace only when a rule applies to it; deletes nothing (the caller deletes
 * `remove`, or only prints it in a dry run).
 */
export async function planRetention(options: RetentionPlanOptions): Promise<RetentionPlan> {
  const { config, namespace } = options;
  const policies = retentionPoliciesFor(options.policies, config, namespace);
  if (policies.every((policy) => policy.rules.length === 0)) {
    return { images: [], keep: new Set(), keptBecause: new Map(), remove: [] };
  }
  const images = await collectImageFacts(options.stores, namespace, { logger: options.logger });
  const decision = decideRetention({
    namespace,
    images,
    policies,
    now: options.now ?? Date.now(),
    gracePeriodMs: config.gc.grace_period_secs * 1000,
    failures: options.failures,
  });
  return { ...decision, images };
}
