import { RuleFailureLog } from '@angos/auth/cel';
import { quoted } from '@angos/config';
import { MediaType } from '@angos/oci';
import { captureLogger } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import {
  type CompiledRetentionPolicy,
  compileRetentionPolicy,
  decideRetention,
  type ImageFacts,
} from '../../src/index.js';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;
const GRACE = HOUR;

const global = (...rules: string[]) => compileRetentionPolicy(rules, ['global', 'retention_policy']);
const repository = (...rules: string[]) =>
  compileRetentionPolicy(rules, ['repository', quoted('team'), 'retention_policy']);

let counter = 0;
/** A manifest pushed `ageDays` ago, its tags pushed then too unless given as [name, ageDays]. */
function manifest(
  ageDays: number,
  tags: Array<string | [string, number]> = [],
  extra: Partial<ImageFacts> = {},
): ImageFacts {
  counter += 1;
  return {
    digest: `sha256:${counter.toString(16).padStart(64, '0')}`,
    mediaType: MediaType.OciManifest,
    pushedAt: NOW - ageDays * DAY,
    tags: tags.map((tag) =>
      typeof tag === 'string'
        ? { name: tag, pushedAt: NOW - ageDays * DAY }
        : { name: tag[0], pushedAt: NOW - tag[1] * DAY },
    ),
    children: [],
    ...extra,
  };
}

function decide(images: ImageFacts[], policies: CompiledRetentionPolicy[], failures?: RuleFailureLog) {
  return decideRetention({
    namespace: 'team/app',
    images,
    policies,
    now: NOW,
    gracePeriodMs: GRACE,
    failures,
  });
}

const removed = (decision: ReturnType<typeof decide>) => decision.remove.map((entry) => entry.digest);

describe('decideRetention', () => {
  it('keeps everything when no rule applies', () => {
    const images = [manifest(100), manifest(200, ['old'])];
    for (const policies of [[], [global()], [global(), repository()]]) {
      const decision = decide(images, policies);
      expect(decision.remove).toEqual([]);
      expect([...decision.keep]).toEqual(images.map((image) => image.digest));
    }
  });

  it('keeps a manifest that a rule keeps, and removes the others with their tags and a reason', () => {
    const latest = manifest(50, ['latest']);
    const old = manifest(40, ['v1', 'v1.0']);
    const untagged = manifest(30);
    const decision = decide([latest, old, untagged], [global("has(image.tag) && image.tag == 'latest'")]);
    expect([...decision.keep]).toEqual([latest.digest]);
    expect(decision.keptBecause.get(latest.digest)).toBe(
      'global.retention_policy.rules[0] keeps tag "latest"',
    );
    expect(decision.remove).toEqual([
      {
        digest: old.digest,
        tags: ['v1', 'v1.0'],
        pushedAt: old.pushedAt,
        reason: expect.stringContaining('no retention rule keeps it'),
      },
      {
        digest: untagged.digest,
        tags: [],
        pushedAt: untagged.pushedAt,
        reason: expect.stringContaining('untagged'),
      },
    ]);
  });

  it('keeps a manifest when any one of its tags is kept', () => {
    const both = manifest(10, ['keep-me', 'other']);
    const decision = decide([both], [global("has(image.tag) && image.tag.startsWith('keep')")]);
    expect(decision.remove).toEqual([]);
  });

  it('compares push and pull times in seconds with now() and days(), hours(), minutes()', () => {
    const recent = manifest(5, ['recent']);
    const old = manifest(45, ['old']);
    const pulled = manifest(90, ['pulled'], { lastPulledAt: NOW - 2 * HOUR });
    const neverPulled = manifest(90, ['never']);
    const decision = decide(
      [recent, old, pulled, neverPulled],
      [global('image.pushed_at > now() - days(30)', 'image.last_pulled_at > now() - hours(2) - minutes(1)')],
    );
    expect(removed(decision)).toEqual([old.digest, neverPulled.digest]);
  });

  it("uses the tag's push time for a tagged image and the manifest's for an untagged one", () => {
    // Pushed long ago, tagged `fresh` yesterday: the tag is what counts.
    const retagged = manifest(100, [['fresh', 1]]);
    const untagged = manifest(100);
    const decision = decide([retagged, untagged], [global('image.pushed_at > now() - days(7)')]);
    expect(removed(decision)).toEqual([untagged.digest]);
  });

  it('keeps the union of the global and the repository rules', () => {
    const latest = manifest(50, ['latest']);
    const recent = manifest(3, ['wip']);
    const old = manifest(60, ['v0']);
    const decision = decide(
      [latest, recent, old],
      [global("has(image.tag) && image.tag == 'latest'"), repository('image.pushed_at > now() - days(7)')],
    );
    expect(removed(decision)).toEqual([old.digest]);
    expect(decision.keptBecause.get(recent.digest)).toBe(
      'repository."team".retention_policy.rules[0] keeps tag "wip"',
    );
  });

  it('keeps a manifest for which a rule fails, and logs the rule by locator, rate-limited', () => {
    const { logger, records } = captureLogger('debug');
    const failures = new RuleFailureLog(logger, () => NOW);
    const untagged = [manifest(50), manifest(51), manifest(52)];
    const tagged = manifest(50, ['v2']);
    // Reads image.tag without has(): fails for untagged images, which are therefore kept.
    const decision = decide([...untagged, tagged], [global("image.tag == 'latest'", '1 / 0 == 1')], failures);
    expect(removed(decision)).toEqual([]);
    expect(decision.keptBecause.get(untagged[0]!.digest)).toMatch(
      /^global\.retention_policy\.rules\[0\] failed for untagged .*failing rules keep$/,
    );
    expect(decision.keptBecause.get(tagged.digest)).toMatch(/^global\.retention_policy\.rules\[1\] failed/);
    const logged = records().filter((record) => record['message'] === 'retention rule failed, manifest kept');
    expect(logged.map((record) => [record['level'], record['rule']])).toEqual([
      ['WARN', 'global.retention_policy.rules[0]'],
      ['DEBUG', 'global.retention_policy.rules[0]'],
      ['DEBUG', 'global.retention_policy.rules[0]'],
      ['WARN', 'global.retention_policy.rules[1]'],
    ]);
    expect(logged[0]).toMatchObject({ namespace: 'team/app', digest: untagged[0]!.digest });
    expect(logged[3]).toMatchObject({ tag: 'v2', reason: 'division by zero' });
  });

  it('never removes a manifest pushed within the grace period, whatever the rules say', () => {
    const justPushed = { ...manifest(0), pushedAt: NOW - GRACE / 2 };
    const oldButJustTagged = manifest(30, [['new-tag', 0]]);
    const fromTheFuture = { ...manifest(0), pushedAt: NOW + HOUR };
    const old = { ...manifest(0), pushedAt: NOW - GRACE - 1 };
    const decision = decide([justPushed, oldButJustTagged, fromTheFuture, old], [global('false')]);
    expect(removed(decision)).toEqual([old.digest]);
    expect(decision.keptBecause.get(justPushed.digest)).toBe('pushed within the grace period');
  });

  it('keeps the children of a kept index, transitively, and judges those of a removed one on their own', () => {
    const [amd64, arm64, nestedChild] = [manifest(40), manifest(40), manifest(40)];
    const nested = manifest(40, [], { mediaType: MediaType.OciIndex, children: [nestedChild.digest] });
    const index = manifest(40, ['release'], {
      mediaType: MediaType.OciIndex,
      children: [amd64.digest, arm64.digest, nested.digest, 'sha256:absent'],
    });
    const [oldChild, recentChild] = [manifest(40), manifest(2)];
    const oldIndex = manifest(40, ['old'], {
      mediaType: MediaType.OciIndex,
      children: [oldChild.digest, recentChild.digest],
    });
    const decision = decide(
      [amd64, arm64, nestedChild, nested, index, oldChild, recentChild, oldIndex],
      [global("has(image.tag) && image.tag == 'release'", 'image.pushed_at > now() - days(7)')],
    );
    expect(removed(decision).sort()).toEqual([oldChild.digest, oldIndex.digest].sort());
    expect(decision.keptBecause.get(nestedChild.digest)).toBe(`child of kept index ${nested.digest}`);
    expect(decision.keep.has('sha256:absent')).toBe(false);
  });

  it('keeps the referrers of a kept manifest, transitively, and removes those of a removed one', () => {
    const image = manifest(40, ['stable']);
    const signature = manifest(40, [], { subject: image.digest });
    const signatureOfSignature = manifest(40, [], { subject: signature.digest });
    const gone = manifest(40, ['gone']);
    const sbomOfGone = manifest(40, [], { subject: gone.digest });
    const orphan = manifest(40, [], { subject: 'sha256:deleted-long-ago' });
    const decision = decide(
      [image, signature, signatureOfSignature, gone, sbomOfGone, orphan],
      [global("has(image.tag) && image.tag == 'stable'")],
    );
    expect(removed(decision).sort()).toEqual([gone.digest, sbomOfGone.digest, orphan.digest].sort());
    expect(decision.keptBecause.get(signatureOfSignature.digest)).toBe(
      `referrer of kept manifest ${signature.digest}`,
    );
  });

  it('top_pushed(n) keeps the n most recently pushed tags; ties at the boundary are all kept', () => {
    const images = [1, 2, 3, 4, 5].map((age) => manifest(10 + age, [`v${age}`]));
    const tiedA = manifest(20, [['tie-a', 13]]);
    const tiedB = manifest(20, [['tie-b', 13]]);
    const untagged = manifest(10);
    const decision = decide([...images, tiedA, tiedB, untagged], [global('top_pushed(3)')]);
    // v1, v2 rank 0 and 1; v3, tie-a and tie-b all pushed 13 days ago share rank 2.
    expect(removed(decision).sort()).toEqual([images[3]!.digest, images[4]!.digest, untagged.digest].sort());
    expect(removed(decide([...images], [global('top_pushed(0)')]))).toHaveLength(5);
    expect(removed(decide([...images], [global('top_pushed(-1)')]))).toHaveLength(5);
  });

  it('counts each tag of a manifest as one image in the ranking', () => {
    const multi = manifest(10, ['a', 'b']);
    const next = manifest(11, ['c']);
    expect(removed(decide([multi, next], [global('top_pushed(2)')]))).toEqual([next.digest]);
  });

  it('top_pulled(n) keeps the n most recently pulled tags; never pulled ones never match; ties are all kept', () => {
    const pulled = (hoursAgo: number, tag: string) =>
      manifest(50, [tag], { lastPulledAt: NOW - hoursAgo * HOUR });
    const a = pulled(1, 'a');
    const b = pulled(2, 'b');
    const bTie = pulled(2, 'b-tie');
    const c = pulled(3, 'c');
    const never = manifest(50, ['never']);
    const decision = decide([a, b, bTie, c, never], [global('top_pulled(2)')]);
    expect(removed(decision).sort()).toEqual([c.digest, never.digest].sort());
    expect(removed(decide([never], [global('top_pulled(10)')]))).toEqual([never.digest]);
  });

  it('lists removals indexes first, then by digest, the same on every run', () => {
    const images = [manifest(90), manifest(80), manifest(70)];
    const child = images[0]!;
    const index = manifest(90, [], { mediaType: MediaType.OciIndex, children: [child.digest] });
    const outer = manifest(90, [], { mediaType: MediaType.OciIndex, children: [index.digest, child.digest] });
    const all = [...images, index, outer];
    const first = decide(all, [global('false')]);
    const second = decide([...all].reverse(), [global('false')]);
    expect(first.remove).toEqual(second.remove);
    // The child has the smallest digest but goes after both indexes that list it.
    expect(removed(first)).toEqual([
      images[1]!.digest,
      images[2]!.digest,
      outer.digest,
      index.digest,
      child.digest,
    ]);
  });
});
