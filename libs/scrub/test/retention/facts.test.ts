import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuleFailureLog } from '@angos/auth/cel';
import { type Config, parseConfig } from '@angos/config';
import { MemoryLockManager } from '@angos/lock';
import { silentLogger } from '@angos/observability';
import { formatDigest, MediaType, OciError, parseDigest, parseReference } from '@angos/oci';
import { createRegistry, type Registry } from '@angos/registry';
import {
  type BlobStore,
  FsBlobStore,
  FsMetadataStore,
  keyFor,
  MemoryBlobStore,
  MemoryMetadataStore,
  type MetadataStore,
} from '@angos/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  collectImageFacts,
  compileRetentionPolicies,
  planRetention,
  type RetentionPlan,
  type RetentionPlanOptions,
  removeManifest,
} from '../../src/index.js';

const NAMESPACE = 'team/app';
const CONFIG_DIGEST = `sha256:${'c'.repeat(64)}`;

let dir: string;
let blobs: BlobStore;
let metadata: MetadataStore;
let registry: Registry;
let config: Config;

function configWith(toml: string): Config {
  return parseConfig(
    `[server]\nbind_address = "127.0.0.1"\n[blob_store.fs]\nroot_dir = "${dir}"\n[global]\nupdate_pull_time = true\n${toml}`,
  ).config;
}

/** The retention plan of NAMESPACE under the current `config`. */
function planForNamespace(options: Partial<RetentionPlanOptions> = {}): Promise<RetentionPlan> {
  return planRetention({
    stores: { metadata, blobs },
    config,
    policies: compileRetentionPolicies(config),
    namespace: NAMESPACE,
    ...options,
  });
}

// fs, and memory, whose compare-and-swap takes the other path through blob-index updates.
describe.each(['fs', 'memory'])('on %s', (STORE) => {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'angos-retention-'));
    blobs = STORE === 'memory' ? new MemoryBlobStore() : new FsBlobStore(dir, { syncToDisk: false });
    metadata =
      STORE === 'memory' ? new MemoryMetadataStore() : new FsMetadataStore(dir, { syncToDisk: false });
    config = configWith('');
    registry = createRegistry({
      blobs,
      metadata,
      locks: new MemoryLockManager(),
      config: () => config,
      logger: silentLogger,
    });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Pushes an image manifest (its config blob need not exist), by tag or by digest; returns its digest. */
  async function pushImage(name: string, tags: string[] = [], subject?: string): Promise<string> {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: CONFIG_DIGEST, size: 2 },
        layers: [],
        annotations: { name },
        ...(subject === undefined
          ? {}
          : { subject: { mediaType: MediaType.OciManifest, digest: subject, size: 1 } }),
      }),
    );
    return push(body, MediaType.OciManifest, tags);
  }

  async function pushIndex(children: string[], tags: string[]): Promise<string> {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: children.map((digest) => ({ mediaType: MediaType.OciManifest, digest, size: 1 })),
      }),
    );
    return push(body, MediaType.OciIndex, tags);
  }

  async function push(body: Buffer, mediaType: string, tags: string[]): Promise<string> {
    const [first, ...rest] = tags;
    const reference = parseReference(first ?? `sha256:${createHash('sha256').update(body).digest('hex')}`);
    const pushed = await registry.manifests.put(NAMESPACE, reference, body, mediaType, []);
    for (const tag of rest) await registry.manifests.put(NAMESPACE, parseReference(tag), body, mediaType, []);
    return formatDigest(pushed.digest);
  }

  async function waitForPullTime(digest: string): Promise<void> {
    const key = keyFor({ kind: 'pulledAt', namespace: NAMESPACE, digest: parseDigest(digest) });
    for (let i = 0; i < 200; i++) {
      if (
        await metadata.get(key).then(
          () => true,
          () => false,
        )
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('pull time not recorded');
  }

  describe('collectImageFacts', () => {
    it('reads tags, push and pull times, index children and referrer subjects from the store', async () => {
      const before = Date.now() - 1000;
      const image = await pushImage('app', ['v1', 'latest']);
      const untagged = await pushImage('old');
      const [amd64, arm64] = [await pushImage('amd64'), await pushImage('arm64')];
      const index = await pushIndex([amd64, arm64], ['multi']);
      const signature = await pushImage('signature', [], image);
      await registry.manifests.get(NAMESPACE, parseReference('latest'));
      await waitForPullTime(image);

      const facts = await collectImageFacts({ metadata, blobs }, NAMESPACE);
      const byDigest = new Map(facts.map((fact) => [fact.digest, fact]));
      expect([...byDigest.keys()].sort()).toEqual([image, untagged, amd64, arm64, index, signature].sort());
      expect(byDigest.get(image)?.tags.map((tag) => tag.name)).toEqual(['latest', 'v1']);
      expect(byDigest.get(untagged)?.tags).toEqual([]);
      expect(byDigest.get(index)).toMatchObject({ mediaType: MediaType.OciIndex, children: [amd64, arm64] });
      expect(byDigest.get(signature)?.subject).toBe(image);
      expect(byDigest.get(image)?.lastPulledAt).toBeGreaterThanOrEqual(before);
      expect(byDigest.get(untagged)?.lastPulledAt).toBeUndefined();
      for (const fact of facts) {
        expect(fact.pushedAt).toBeGreaterThanOrEqual(before);
        for (const tag of fact.tags) expect(tag.pushedAt).toBeGreaterThanOrEqual(before);
      }
    });

    it('judges the children of an index whose bytes are gone on their own', async () => {
      const child = await pushImage('child');
      const index = await pushIndex([child], ['broken']);
      await blobs.deleteBlob(parseDigest(index));
      const facts = await collectImageFacts({ metadata, blobs }, NAMESPACE);
      expect(facts.find((fact) => fact.digest === index)?.children).toEqual([]);
    });
  });

  describe('planRetention', () => {
    it('lists what the rules do not keep; deleting it leaves every kept image pullable', async () => {
      const image = await pushImage('app', ['v1', 'latest']);
      const untagged = await pushImage('old');
      const [amd64, arm64] = [await pushImage('amd64'), await pushImage('arm64')];
      const index = await pushIndex([amd64, arm64], ['release']);
      const signatureOfImage = await pushImage('signature', [], image);
      const signatureOfIndex = await pushImage('index-signature', [], index);
      config = configWith(
        `[gc]\ngrace_period_secs = 0\n[repository."team".retention_policy]\nrules = ["has(image.tag) && image.tag == 'release'"]\n`,
      );
      const plan = await planForNamespace({ failures: new RuleFailureLog(silentLogger) });
      expect(plan.remove.map((entry) => entry.digest).sort()).toEqual(
        [image, untagged, signatureOfImage].sort(),
      );
      expect(plan.remove.find((entry) => entry.digest === image)?.tags).toEqual(['latest', 'v1']);

      for (const entry of plan.remove) {
        await registry.manifests.delete(NAMESPACE, parseReference(entry.digest));
      }
      for (const kept of [index, amd64, arm64, signatureOfIndex]) {
        await expect(registry.manifests.get(NAMESPACE, parseReference(kept))).resolves.toBeDefined();
      }
      await expect(registry.manifests.get(NAMESPACE, parseReference('latest'))).rejects.toBeInstanceOf(
        OciError,
      );
      expect((await registry.manifests.listTags(NAMESPACE, {})).tags).toEqual(['release']);
    });

    it('reads nothing and removes nothing when no rule applies to the namespace', async () => {
      await pushImage('app', ['v1']);
      config = configWith(
        `[gc]\ngrace_period_secs = 0\n[repository."other".retention_policy]\nrules = ["false"]\n`,
      );
      const plan = await planForNamespace();
      expect(plan).toMatchObject({ images: [], remove: [] });
    });

    it('keeps what was pushed within the grace period', async () => {
      const image = await pushImage('app', ['v1']);
      config = configWith(`[global.retention_policy]\nrules = ["false"]\n`);
      const plan = await planForNamespace();
      expect(plan.remove).toEqual([]);
      expect(plan.keptBecause.get(image)).toBe('pushed within the grace period');
    });

    it('does not delete a manifest pushed or tagged again after the decision, nor fail on one already gone', async () => {
      const body = async (name: string) => {
        const digest = await pushImage(name, [`${name}-old`]);
        return digest;
      };
      const retagged = await body('retagged');
      const untouched = await body('untouched');
      config = configWith(`[gc]\ngrace_period_secs = 0\n[global.retention_policy]\nrules = ["false"]\n`);
      const plan = await planForNamespace();
      expect(plan.remove.map((entry) => entry.digest).sort()).toEqual([retagged, untouched].sort());

      // A client tags the manifest again between the decision and the delete.
      await new Promise((resolve) => setTimeout(resolve, 10));
      const stored = await registry.manifests.get(NAMESPACE, parseReference(retagged));
      await registry.manifests.put(
        NAMESPACE,
        parseReference('retagged-new'),
        stored.body,
        stored.mediaType,
        [],
      );

      const outcomes = new Map<string, string>();
      for (const entry of plan.remove)
        outcomes.set(entry.digest, await removeManifest(registry.manifests, NAMESPACE, entry));
      expect(outcomes.get(retagged)).toBe('pushed-since');
      expect(outcomes.get(untouched)).toBe('deleted');
      expect((await registry.manifests.listTags(NAMESPACE, {})).tags).toEqual([
        'retagged-new',
        'retagged-old',
      ]);
      const gone = plan.remove.find((entry) => entry.digest === untouched)!;
      expect(await removeManifest(registry.manifests, NAMESPACE, gone)).toBe('gone');
    });

    it('does not delete a child that an index pushed after the decision lists; deletes old indexes before their children', async () => {
      const reused = await pushImage('reused');
      const oldChild = await pushImage('old-child');
      const oldIndex = await pushIndex([oldChild], ['old']);
      config = configWith(`[gc]\ngrace_period_secs = 0\n[global.retention_policy]\nrules = ["false"]\n`);
      const plan = await planForNamespace();
      expect(plan.remove.map((entry) => entry.digest).indexOf(oldIndex)).toBeLessThan(
        plan.remove.map((entry) => entry.digest).indexOf(oldChild),
      );

      // A client pushes a new index over the existing, untagged manifest without pushing it again.
      await new Promise((resolve) => setTimeout(resolve, 10));
      await pushIndex([reused], ['new']);

      const outcomes = new Map<string, string>();
      for (const entry of plan.remove)
        outcomes.set(entry.digest, await removeManifest(registry.manifests, NAMESPACE, entry));
      expect(Object.fromEntries(outcomes)).toEqual({
        [reused]: 'referenced',
        [oldIndex]: 'deleted',
        [oldChild]: 'deleted',
      });
      await expect(registry.manifests.get(NAMESPACE, parseReference(reused))).resolves.toBeDefined();
      await expect(registry.manifests.get(NAMESPACE, parseReference(oldChild))).rejects.toBeInstanceOf(
        OciError,
      );
    });
  });
});
