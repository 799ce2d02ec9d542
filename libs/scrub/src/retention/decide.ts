import { type CompiledRule, type RuleFailureLog, runCelRule } from '@angos/auth/cel';
import type { CompiledRetentionPolicy } from './compile.js';
import { celSeconds, evaluateInFrame, type RuleFrame } from './environment.js';

/** A tag of a manifest and when it was last pushed (its link's creation time). */
export interface TagFacts {
  readonly name: string;
  /** Milliseconds since the epoch. */
  readonly pushedAt: number;
}

/** What retention knows of one manifest of a namespace. */
export interface ImageFacts {
  /** `sha256:…` */
  readonly digest: string;
  readonly mediaType: string;
  /** When the manifest was last pushed (its revision link's creation time), ms since the epoch. */
  readonly pushedAt: number;
  /** When it was last pulled, ms since the epoch; undefined when never (or not recorded). */
  readonly lastPulledAt?: number | undefined;
  /** The tags pointing at it; empty when untagged. */
  readonly tags: readonly TagFacts[];
  /** For an index: the digests of the manifests it lists. */
  readonly children: readonly string[];
  /** For a referrer (signature, SBOM…): the digest of the manifest it refers to. */
  readonly subject?: string | undefined;
}

export interface RetentionInput {
  readonly namespace: string;
  readonly images: readonly ImageFacts[];
  /** The global policy and the repository's, if any (`retentionPoliciesFor`). */
  readonly policies: readonly CompiledRetentionPolicy[];
  /** The time of the decision, ms since the epoch: `now()` in rules, and the grace period's end. */
  readonly now: number;
  /** `[gc] grace_period_secs` in ms: a manifest pushed more recently is never collected. */
  readonly gracePeriodMs: number;
  /** Where rules that fail at run time are reported (rate-limited); silent when absent. */
  readonly failures?: RuleFailureLog | undefined;
}

export interface RemovedManifest {
  readonly digest: string;
  /** The tags that go with it. */
  readonly tags: readonly string[];
  /**
   * When the manifest was last pushed, as the decision saw it: a delete must not go ahead if it was
   * pushed (or tagged) again since (`removeManifest`).
   */
  readonly pushedAt: number;
  readonly reason: string;
}

export interface RetentionDecision {
  /** Digests of the manifests kept. */
  readonly keep: ReadonlySet<string>;
  /** Why each kept manifest is kept (for debug logs and dry runs). */
  readonly keptBecause: ReadonlyMap<string, string>;
  /**
   * The manifests to delete, in the order to delete them: an index before the manifests it lists
   * (which its references would otherwise keep), then by digest, so that a dry run lists exactly
   * what a real run deletes.
   */
  readonly remove: readonly RemovedManifest[];
}

/** One image a rule looks at: a tag of a manifest, or an untagged manifest. */
interface Image {
  readonly manifest: ImageFacts;
  readonly tag: TagFacts | undefined;
}

const RULE_FAILED_MESSAGE = 'retention rule failed, manifest kept';

/**
 * Decides which manifests of a namespace retention keeps and which it deletes.
 *
 * - No rule at all (neither global nor repository): everything is kept. Retention never deletes
 *   what no rule was written for.
 * - Each manifest is looked at as one image per tag (`image.tag` set), or one untagged image
 *   (`image.tag` absent). It is kept when any rule of any policy keeps any of its images.
 * - A rule that fails at run time (or is not boolean) keeps the manifest, and is logged with its
 *   locator, rate-limited.
 * - A manifest pushed within the grace period is kept whatever the rules say.
 * - The children of a kept index, and the referrers of a kept manifest, are kept, transitively.
 *
 * `top_pushed(n)` / `top_pulled(n)` rank the tagged images of the namespace (untagged ones never
 * match). An image is among the top n when fewer than n images were pushed (pulled) strictly
 * later, so images tied at the boundary are all kept rather than one picked at random. Images
 * never pulled never match `top_pulled`.
 */
export function decideRetention(input: RetentionInput): RetentionDecision {
  const keptBecause = new Map<string, string>();
  const rules = input.policies.flatMap((policy) => policy.rules);
  if (rules.length === 0) {
    for (const manifest of input.images) keptBecause.set(manifest.digest, 'no retention rules');
    return { keep: new Set(keptBecause.keys()), keptBecause, remove: [] };
  }

  const images = input.images.flatMap((manifest): Image[] =>
    manifest.tags.length === 0
      ? [{ manifest, tag: undefined }]
      : manifest.tags.map((tag) => ({ manifest, tag })),
  );
  const tagged = images.filter((image) => image.tag !== undefined);
  const pushRank = competitionRanks(tagged, (image) => image.tag?.pushedAt);
  const pullRank = competitionRanks(tagged, (image) => image.manifest.lastPulledAt);
  const nowSecs = celSeconds(input.now);

  for (const manifest of input.images) {
    const pushedAt = Math.max(manifest.pushedAt, ...manifest.tags.map((tag) => tag.pushedAt));
    if (input.now - pushedAt < input.gracePeriodMs)
      keptBecause.set(manifest.digest, 'pushed within the grace period');
  }
  for (const image of images) {
    if (keptBecause.has(image.manifest.digest)) continue;
    const frame: RuleFrame = { nowSecs, pushRank: pushRank.get(image), pullRank: pullRank.get(image) };
    const reason = evaluateInFrame(frame, () => firstKeepingRule(rules, image, input));
    if (reason !== undefined) keptBecause.set(image.manifest.digest, reason);
  }
  keepDependents(input.images, keptBecause);

  const remove = parentsFirst(input.images.filter((manifest) => !keptBecause.has(manifest.digest))).map(
    (manifest) => ({
      digest: manifest.digest,
      tags: manifest.tags.map((tag) => tag.name),
      pushedAt: manifest.pushedAt,
      reason: `no retention rule keeps it (${describe(manifest)})`,
    }),
  );
  return { keep: new Set(keptBecause.keys()), keptBecause, remove };
}

/** Why the first rule that keeps `image` keeps it (true, or failed), or undefined when none does. */
function firstKeepingRule(
  rules: readonly CompiledRule[],
  image: Image,
  input: RetentionInput,
): string | undefined {
  const activation = { image: imageVariable(image) };
  const which = image.tag === undefined ? 'untagged' : `tag ${JSON.stringify(image.tag.name)}`;
  for (const rule of rules) {
    const run = runCelRule(rule, activation);
    if ('failure' in run) {
      input.failures?.report(rule.locator, RULE_FAILED_MESSAGE, {
        rule: rule.locator,
        namespace: input.namespace,
        digest: image.manifest.digest,
        ...(image.tag === undefined ? {} : { tag: image.tag.name }),
        reason: run.failure,
      });
      return `${rule.locator} failed for ${which} (${run.failure}); failing rules keep`;
    }
    if (run.result) return `${rule.locator} keeps ${which}`;
  }
  return undefined;
}

/** The `image` variable: absent tag when untagged, times in CEL int seconds, 0 when never pulled. */
function imageVariable(image: Image): Record<string, unknown> {
  const { manifest, tag } = image;
  return {
    ...(tag === undefined ? {} : { tag: tag.name }),
    pushed_at: celSeconds(tag?.pushedAt ?? manifest.pushedAt),
    last_pulled_at: manifest.lastPulledAt === undefined ? 0n : celSeconds(manifest.lastPulledAt),
  };
}

/**
 * Each item's rank: how many items have a strictly later time. Items without a time get none.
 * Sorted once, so a namespace of many tags costs n log n, not n².
 */
function competitionRanks<T>(items: readonly T[], time: (item: T) => number | undefined): Map<T, number> {
  const timed = items
    .map((item) => ({ item, at: time(item) }))
    .filter((entry): entry is { item: T; at: number } => entry.at !== undefined)
    .sort((a, b) => b.at - a.at);
  const ranks = new Map<T, number>();
  timed.forEach((entry, index) => {
    const previous = timed[index - 1];
    ranks.set(
      entry.item,
      previous !== undefined && previous.at === entry.at ? (ranks.get(previous.item) ?? index) : index,
    );
  });
  return ranks;
}

/** Keeps the children of kept indexes and the referrers of kept manifests, transitively. */
function keepDependents(manifests: readonly ImageFacts[], keptBecause: Map<string, string>): void {
  const byDigest = new Map(manifests.map((manifest) => [manifest.digest, manifest]));
  const referrers = new Map<string, string[]>();
  for (const manifest of manifests) {
    if (manifest.subject === undefined) continue;
    referrers.set(manifest.subject, [...(referrers.get(manifest.subject) ?? []), manifest.digest]);
  }
  const pending = [...keptBecause.keys()];
  for (let digest = pending.pop(); digest !== undefined; digest = pending.pop()) {
    const dependents: Array<[string, string]> = [
      ...(byDigest.get(digest)?.children ?? []).map((child): [string, string] => [
        child,
        `child of kept index ${digest}`,
      ]),
      ...(referrers.get(digest) ?? []).map((referrer): [string, string] => [
        referrer,
        `referrer of kept manifest ${digest}`,
      ]),
    ];
    for (const [dependent, reason] of dependents) {
      if (keptBecause.has(dependent) || !byDigest.has(dependent)) continue;
      keptBecause.set(dependent, reason);
      pending.push(dependent);
    }
  }
}

/** `manifests` ordered by how deep they sit under indexes also in the list, then by digest. */
function parentsFirst(manifests: readonly ImageFacts[]): ImageFacts[] {
  const listed = new Set(manifests.map((manifest) => manifest.digest));
  const parents = new Map<string, string[]>();
  for (const manifest of manifests) {
    for (const child of manifest.children) {
      if (listed.has(child)) parents.set(child, [...(parents.get(child) ?? []), manifest.digest]);
    }
  }
  const depths = new Map<string, number>();
  // Content addressing makes the graph acyclic: an index cannot list itself, even indirectly.
  const depth = (digest: string): number => {
    let known = depths.get(digest);
    if (known === undefined) {
      known = Math.max(-1, ...(parents.get(digest) ?? []).map(depth)) + 1;
      depths.set(digest, known);
    }
    return known;
  };
  return [...manifests].sort(
    (a, b) => depth(a.digest) - depth(b.digest) || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0),
  );
}

function describe(manifest: ImageFacts): string {
  const tags =
    manifest.tags.length === 0 ? 'untagged' : `tags ${manifest.tags.map((tag) => tag.name).join(', ')}`;
  const pulled =
    manifest.lastPulledAt === undefined
      ? 'never pulled'
      : `last pulled ${new Date(manifest.lastPulledAt).toISOString()}`;
  return `${tags}; pushed ${new Date(manifest.pushedAt).toISOString()}; ${pulled}`;
}
